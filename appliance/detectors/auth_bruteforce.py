"""Brute force of Windows authentication (NTLM over SMB, LDAP binds): many failures from one source, across
accounts (password spraying) or across hosts with default account names, and a success after such a run.

A failure is an authentication outcome the decoders mark `success: false` (SMB SESSION_SETUP ending in
STATUS_LOGON_FAILURE, STATUS_ACCOUNT_LOCKED_OUT, ...; an LDAP bind answered invalidCredentials). The client is the
event's dst for a server's answer and its src for a client message. A user who mistypes a password twice and then
logs on stays far below every threshold. Thresholds in `detectors.auth_bruteforce`.
"""

from __future__ import annotations

from typing import ClassVar

from appliance.detectors.base import AlertContext, Note, notes_of
from appliance.detectors.settings import AuthBruteforceSettings
from appliance.detectors.windows import DistinctWindow
from appliance.model import Flow, ProtocolEvent

# account names that come with systems or that attack tools try first (compared case-folded, domain dropped)
DEFAULT_ACCOUNTS = frozenset(
    {"administrator", "admin", "guest", "user", "test", "root", "support", "operator", "default", "defaultaccount",
     "scanner", "backup", "service", "sa", "sysadmin", "demo"}
)  # fmt: skip


def auth_outcome(ev: ProtocolEvent) -> tuple[str, str, str, bool] | None:
    """(client, server, account, success) of an event that ends an authentication, else None."""
    f = ev.fields
    success = f.get("success")
    if ev.protocol == "ldap" and ev.op == "bind" and ev.kind != "request":
        code = f.get("result_code")
        if type(code) is int:
            success = code == 0
    if not isinstance(success, bool) or ev.kind == "request":
        return None
    user = f.get("username")
    if not isinstance(user, str) or not user:
        obj = f.get("object")
        user = obj if isinstance(obj, str) else ""
    domain = f.get("domainname")
    account = f"{domain}\\{user}" if isinstance(domain, str) and domain and user else user
    return ev.dst, ev.src, account, success


def is_default_account(account: str) -> bool:
    """True for a default or commonly tried account name (`CORP\\Administrator`, `admin`, `CN=admin,...`)."""
    name = account.rsplit("\\", 1)[-1].casefold()
    if name.startswith("cn="):
        name = name[3:].split(",", 1)[0]
    return name in DEFAULT_ACCOUNTS


class AuthBruteforceDetector:
    """Failed authentications per client in a sliding window of packet time."""

    name: ClassVar[str] = "auth_bruteforce"
    notes: ClassVar[dict[str, Note]] = notes_of(
        Note("bruteforce", "high", 70, ("T1110.001",), "many failed authentications from one source"),
        Note("password_spray", "high", 75, ("T1110.003",), "failed authentications for many accounts from one source"),
        Note(
            "default_credentials", "high", 75, ("T0812", "T1078.001"),
            "failed logons with default account names on many hosts from one source",
        ),
        Note(
            "success_after_failures", "critical", 85, ("T1110", "T1078"),
            "a successful logon from a source right after a run of failures",
        ),
    )  # fmt: skip
    event_protocols: ClassVar[frozenset[str]] = frozenset({"smb", "ldap"})
    wants_flows: ClassVar[bool] = False

    def __init__(self, settings: AuthBruteforceSettings | None = None) -> None:
        s = self.settings = settings or AuthBruteforceSettings()
        self._failures = DistinctWindow(s.window, s.max_sources, s.failures * 8)  # client -> failure n
        self._accounts = DistinctWindow(s.window, s.max_sources, s.accounts * 4)  # client -> accounts
        self._default_hosts = DistinctWindow(s.window, s.max_sources, s.default_hosts * 4)  # client -> servers
        self._count: dict[str, int] = {}  # client -> failures so far (numbering the window's items)

    def on_event(self, ev: ProtocolEvent, ctx: AlertContext) -> None:
        """Count an authentication outcome; raise when a threshold is crossed."""
        outcome = auth_outcome(ev)
        if outcome is None:
            return
        client, server, account, success = outcome
        s = self.settings
        if success:
            failed = len(self._failures.items(client))
            if failed >= s.failures and ctx.fresh(self, "success_after_failures", client, ev.ts):
                ctx.alert(
                    self, "success_after_failures", ev.ts, client, assets=(client, server),
                    uids=(*self._failures.evidence(client, 19), *((ev.uid,) if ev.uid else ())),
                    explanation=(
                        f"{client} logged on to {server} as {account or 'an unnamed account'} ({ev.protocol}) after "
                        f"{failed} failed authentications within {s.window:g} s"
                    ),
                    details={"account": account, "failures": failed, "server": server},
                )  # fmt: skip
            return
        n = self._count.get(client, 0) + 1
        if len(self._count) > s.max_sources:
            self._count.clear()
        self._count[client] = n
        uid = ev.uid or ""
        failures = self._failures.add(client, n, ev.ts, uid)
        accounts = self._accounts.add(client, account.casefold(), ev.ts, uid)
        where = f"{ev.protocol} on {server}"
        if failures >= s.failures and ctx.fresh(self, "bruteforce", client, ev.ts):
            ctx.alert(
                self, "bruteforce", ev.ts, client, assets=(client, server), uids=self._failures.evidence(client),
                explanation=(
                    f"{client} failed {failures} authentications within {s.window:g} s (threshold {s.failures}; "
                    f"last: {account or 'unnamed'} {where}, {ev.fields.get('status') or ev.fields.get('result')})"
                ),
                details={"failures": failures, "accounts": len(self._accounts.items(client))},
            )  # fmt: skip
        if accounts >= s.accounts and ctx.fresh(self, "password_spray", client, ev.ts):
            names = self._accounts.items(client)
            ctx.alert(
                self, "password_spray", ev.ts, client, assets=(client, server), uids=self._accounts.evidence(client),
                explanation=(
                    f"{client} failed authentications for {accounts} different accounts within {s.window:g} s "
                    f"(threshold {s.accounts}): {', '.join(names[:5])}{', ...' if len(names) > 5 else ''}"
                ),
                details={"accounts": names[:32]},
            )  # fmt: skip
        if is_default_account(account):
            hosts = self._default_hosts.add(client, server, ev.ts, uid)
            if hosts >= s.default_hosts and ctx.fresh(self, "default_credentials", client, ev.ts):
                servers = self._default_hosts.items(client)
                ctx.alert(
                    self, "default_credentials", ev.ts, client, assets=(client, *servers[:20]),
                    uids=self._default_hosts.evidence(client),
                    explanation=(
                        f"{client} failed to log on with default account names (last: {account}) on {hosts} hosts "
                        f"within {s.window:g} s (threshold {s.default_hosts})"
                    ),
                    details={"hosts": servers[:32], "account": account},
                )  # fmt: skip

    def on_flow(self, flow: Flow, ctx: AlertContext) -> None:
        """Not used: outcomes are events."""

    def on_tick(self, now: float, ctx: AlertContext) -> None:
        """Forget clients whose failures all left the window."""
        for window in (self._failures, self._accounts, self._default_hosts):
            window.expire(now)
