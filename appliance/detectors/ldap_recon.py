"""Active Directory reconnaissance over LDAP: searches for every user, computer, group, privileged account, trust
or service account from one source, and directory reads that return a large share of the directory.

Everyday LDAP (a workstation's group-policy lookups, an admin tool looking one account up) asks narrow questions
and gets a few entries back. BloodHound/SharpHound, ldapdomaindump, PowerView and `net user /domain` ask the broad
ones. A source raises `ad_enumeration` when its searches in the window cover `categories` different broad kinds,
and `large_directory_read` when they returned `entries` entries or more; the explanation says when the source had
never spoken LDAP before its searches (read from the inventory). Thresholds in `detectors.ldap_recon`.
"""

from __future__ import annotations

from typing import ClassVar

from appliance.detectors.base import AlertContext, Note, notes_of
from appliance.detectors.settings import LdapReconSettings
from appliance.detectors.windows import DistinctWindow
from appliance.model import Flow, ProtocolEvent

# (kind, the lower-cased filter text without spaces must contain one of these)
BROAD_FILTERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("all users", ("objectclass=user)", "objectcategory=person)", "objectclass=person)", "samaccounttype=805306368")),
    ("all computers", ("objectclass=computer)", "objectcategory=computer)", "samaccounttype=805306369")),
    ("all groups", ("objectclass=group)", "objectcategory=group)")),
    ("privileged accounts", ("admincount=1", "memberof=cn=domainadmins", "memberof=cn=enterpriseadmins")),
    ("domain trusts", ("objectclass=trusteddomain)",)),
    ("service accounts (SPNs)", ("serviceprincipalname=*",)),
    ("accounts without pre-authentication", ("1.2.840.113556.1.4.803:=4194304",)),
    ("delegation", ("msds-allowedtodelegateto=*", "1.2.840.113556.1.4.803:=524288")),
    ("group policy objects", ("objectclass=grouppolicycontainer)",)),
)
EVERYTHING = "(objectclass=*)"


def broad_kinds(filter_text: str, scope: object = None) -> list[str]:
    """The broad kinds of directory object a search filter asks for ([] for a narrow search)."""
    text = filter_text.replace(" ", "").lower()
    kinds = [kind for kind, needles in BROAD_FILTERS if any(n in text for n in needles)]
    if text == EVERYTHING and scope in ("tree", "wholeSubtree", "subtree"):
        kinds.append("every object")
    return kinds


class LdapReconDetector:
    """Broad LDAP searches and large directory reads per source in a sliding window."""

    name: ClassVar[str] = "ldap_recon"
    notes: ClassVar[dict[str, Note]] = notes_of(
        Note(
            "ad_enumeration", "high", 70, ("T1087.002", "T1069.002", "T1482", "T1018"),
            "LDAP searches for several broad kinds of directory object (accounts, computers, groups, trusts)",
        ),
        Note("large_directory_read", "medium", 55, ("T1087.002",), "LDAP searches that returned many entries"),
    )  # fmt: skip
    event_protocols: ClassVar[frozenset[str]] = frozenset({"ldap"})
    wants_flows: ClassVar[bool] = False

    def __init__(self, settings: LdapReconSettings | None = None) -> None:
        s = self.settings = settings or LdapReconSettings()
        self._kinds = DistinctWindow(s.window, s.max_sources, 32)  # client -> broad kinds asked
        self._entries = DistinctWindow(s.window, s.max_sources, 4096)  # client -> (uid, message id) -> entries
        self._filters: dict[str, list[str]] = {}  # client -> broad filters asked (a few, for the explanation)
        self._counts: dict[str, dict[tuple[object, object], int]] = {}  # client -> search -> entries returned
        self._newcomers: dict[str, bool] = {}  # client -> it had not spoken LDAP when its first search was seen

    def on_event(self, ev: ProtocolEvent, ctx: AlertContext) -> None:
        """A search request (its filter) or a search's end (its entry count)."""
        f = ev.fields
        s = self.settings
        if ev.op == "search" and ev.kind == "request":
            text = f.get("filter")
            kinds = broad_kinds(text, f.get("scope")) if isinstance(text, str) else []
            if not kinds:
                return
            client = ev.src
            if client not in self._newcomers:
                if len(self._newcomers) > s.max_sources:
                    self._newcomers.clear()
                inventory = ctx.inventory
                self._newcomers[client] = inventory is not None and "ldap" not in inventory.protocols_of(client)
            shown = self._filters.setdefault(client, [])
            if len(self._filters) > s.max_sources:
                self._filters.clear()
                shown = self._filters[client] = []
            if text not in shown and len(shown) < 5:
                shown.append(str(text))
            n = 0
            for kind in kinds:
                n = self._kinds.add(client, kind, ev.ts, ev.uid or "")
            if n >= s.categories and ctx.fresh(self, "ad_enumeration", client, ev.ts):
                asked = self._kinds.items(client)
                ctx.alert(
                    self, "ad_enumeration", ev.ts, client, assets=(client, ev.dst), uids=self._kinds.evidence(client),
                    explanation=(
                        f"{client} searched the directory on {ev.dst} for {n} broad kinds of object within "
                        f"{s.window:g} s ({', '.join(asked)}; threshold {s.categories}), e.g. {shown[0]}"
                        + ("; it had not used LDAP before" if self._newcomers.get(client) else "")
                    ),
                    details={"kinds": asked, "filters": list(shown), "base_object": f.get("base_object"),
                             "new_ldap_client": self._newcomers.get(client, False)},
                )  # fmt: skip
        elif ev.op == "search_result_done" and ev.kind != "request":
            count = f.get("result_count")
            if type(count) is not int or count <= 0:
                return
            client = ev.dst
            self._entries.add(client, (ev.uid, f.get("message_id")), ev.ts, ev.uid or "")
            total = self._total(client, (ev.uid, f.get("message_id")), count)
            if total >= s.entries and ctx.fresh(self, "large_directory_read", client, ev.ts):
                ctx.alert(
                    self, "large_directory_read", ev.ts, client, assets=(client, ev.src),
                    uids=self._entries.evidence(client),
                    explanation=(
                        f"{client} received {total} directory entries from {ev.src} within {s.window:g} s "
                        f"(threshold {s.entries}); last search: {f.get('filter')} under {f.get('base_object')!r}"
                    ),
                    details={"entries": total},
                )  # fmt: skip

    def _total(self, client: str, search: tuple[object, object], count: int) -> int:
        """Entries returned to `client` by the searches still in its window (this one counted as `count`)."""
        counts = self._counts.setdefault(client, {})
        counts[search] = count
        live = set(self._entries.items(client))
        for key in [k for k in counts if k not in live]:
            del counts[key]
        return sum(counts.values())

    def on_flow(self, flow: Flow, ctx: AlertContext) -> None:
        """Not used: searches are events."""

    def on_tick(self, now: float, ctx: AlertContext) -> None:
        """Forget sources whose searches all left the window."""
        self._kinds.expire(now)
        self._entries.expire(now)
        for client in [c for c in self._counts if not self._entries.items(c)]:
            del self._counts[client]
        for client in [c for c in self._filters if not self._kinds.items(c)]:
            del self._filters[client]
