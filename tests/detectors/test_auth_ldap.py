"""SMB/NTLM brute force, password spraying, default credentials, success after failures; LDAP reconnaissance.
Benign look-alikes: a user mistyping a password twice, an admin's single LDAP query, a workstation's GPO lookups."""

from __future__ import annotations

from typing import Any

from appliance.alert import Alert
from appliance.detectors.auth_bruteforce import AuthBruteforceDetector, auth_outcome, is_default_account
from appliance.detectors.engine import DetectorEngine
from appliance.detectors.ldap_recon import LdapReconDetector, broad_kinds
from appliance.model import FlowId, ProtocolEvent

VPN, USER, ADMIN, DC1, DC2 = "10.8.0.23", "10.1.0.40", "10.1.0.41", "10.40.1.5", "10.40.1.6"
T0 = 1_700_000_000.0


def logon(client: str, server: str, ts: float, user: str, ok: bool, n: int = 0) -> ProtocolEvent:
    fid = FlowId(f"S{client}{n}", client, 50000 + n, server, 445, "tcp")
    status = "STATUS_SUCCESS" if ok else "STATUS_LOGON_FAILURE"
    fields = {"command": "SESSION_SETUP", "status": status, "auth": "ntlm", "username": user, "domainname": ".",
              "hostname": "WIN-BRUTE", "success": ok}  # fmt: skip
    return ProtocolEvent(ts, fid, "smb", "session_setup", "response" if ok else "exception", False, server, client,
                         fields)  # fmt: skip


def search(client: str, ts: float, filter_text: str, n: int = 1, scope: str = "tree") -> ProtocolEvent:
    fid = FlowId(f"L{client}", client, 51000, DC2, 389, "tcp")
    fields = {"message_id": n, "base_object": "DC=corp,DC=local", "scope": scope, "filter": filter_text}
    return ProtocolEvent(ts, fid, "ldap", "search", "request", True, client, DC2, fields)


def done(client: str, ts: float, count: int, n: int = 1) -> ProtocolEvent:
    fid = FlowId(f"L{client}", client, 51000, DC2, 389, "tcp")
    fields: dict[str, Any] = {"message_id": n, "result_code": 0, "result": "success", "result_count": count,
                              "filter": "(objectClass=user)", "base_object": "DC=corp,DC=local"}  # fmt: skip
    return ProtocolEvent(ts, fid, "ldap", "search_result_done", "response", False, DC2, client, fields)


def run(events: list[ProtocolEvent]) -> list[Alert]:
    alerts: list[Alert] = []
    engine = DetectorEngine([AuthBruteforceDetector(), LdapReconDetector()], alerts.append)
    for ev in events:
        engine.on_event(ev)
    return alerts


def test_brute_force_with_a_default_account_across_hosts_then_a_success() -> None:
    events = [logon(VPN, f"10.40.1.{10 + i % 4}", T0 + i * 5, "administrator", False, i) for i in range(12)]
    events.append(logon(VPN, "10.40.1.12", T0 + 70, "administrator", True, 99))
    alerts = run(events)
    assert [(a.note, a.ts - T0) for a in alerts] == [
        ("default_credentials", 10.0), ("bruteforce", 45.0), ("success_after_failures", 70.0),
    ]  # fmt: skip
    assert alerts[0].techniques == ("T0812", "T1078.001") and alerts[0].src == VPN
    assert alerts[1].explanation.startswith("10.8.0.23 failed 10 authentications within 600 s (threshold 10;")
    assert alerts[2].severity == "critical" and alerts[2].details["failures"] == 12
    assert "as .\\administrator" in alerts[2].explanation


def test_password_spraying_across_accounts() -> None:
    users = ["jdoe", "asmith", "bwayne", "ckent", "dprince", "pparker"]
    alerts = run([logon(VPN, DC1, T0 + i, u, False, i) for i, u in enumerate(users)])
    assert [a.note for a in alerts] == ["password_spray"]
    assert alerts[0].details["accounts"][:2] == [".\\jdoe", ".\\asmith"]


def test_a_user_mistyping_twice_then_logging_on_stays_quiet() -> None:
    events = [logon(USER, DC1, T0, "jdoe", False, 1), logon(USER, DC1, T0 + 8, "jdoe", False, 2),
              logon(USER, DC1, T0 + 15, "jdoe", True, 3)]  # fmt: skip
    assert run(events) == []


def test_failures_spread_over_hours_stay_quiet() -> None:
    assert run([logon(USER, DC1, T0 + i * 900, "jdoe", False, i) for i in range(20)]) == []


def test_auth_outcomes_and_default_accounts() -> None:
    assert auth_outcome(logon(VPN, DC1, T0, "admin", False)) == (VPN, DC1, ".\\admin", False)
    bind = ProtocolEvent(T0, None, "ldap", "bind", "exception", False, DC2, VPN,
                         {"result_code": 49, "object": "CN=admin,DC=corp,DC=local"})  # fmt: skip
    assert auth_outcome(bind) == (VPN, DC2, "CN=admin,DC=corp,DC=local", False)
    assert is_default_account("CN=admin,DC=corp,DC=local") and is_default_account("CORP\\Administrator")
    assert not is_default_account("CORP\\jdoe")


def test_ad_enumeration_and_a_large_directory_read() -> None:
    events = [search(VPN, T0, "(&(objectClass=user)(adminCount=1))", 1), done(VPN, T0 + 20, 600, 1),
              search(VPN, T0 + 21, "(objectCategory=computer)", 2), done(VPN, T0 + 53, 450, 2)]  # fmt: skip
    alerts = run(events)
    assert [(a.note, a.ts - T0) for a in alerts] == [("ad_enumeration", 0.0), ("large_directory_read", 53.0)]
    assert alerts[0].details["kinds"] == ["all users", "privileged accounts"]
    assert alerts[0].explanation == (
        "10.8.0.23 searched the directory on 10.40.1.6 for 2 broad kinds of object within 600 s (all users, "
        "privileged accounts; threshold 2), e.g. (&(objectClass=user)(adminCount=1))"
    )
    assert alerts[1].details["entries"] == 1050 and alerts[1].src == VPN


def test_an_admins_single_query_and_gpo_lookups_stay_quiet() -> None:
    events = [search(ADMIN, T0, "(sAMAccountName=jdoe)", 1), done(ADMIN, T0 + 1, 1, 1),
              search(ADMIN, T0 + 60, "(objectClass=user)", 2), done(ADMIN, T0 + 61, 40, 2)]  # fmt: skip
    events += [search(USER, T0 + i, "(objectClass=groupPolicyContainer)", 10 + i, scope="base") for i in range(5)]
    assert run(events) == []


def test_broad_kinds() -> None:
    assert broad_kinds("(objectClass=trustedDomain)") == ["domain trusts"]
    assert broad_kinds("(&(samAccountType=805306368)(servicePrincipalName=*))") == ["all users",
                                                                                    "service accounts (SPNs)"]
    assert broad_kinds("(objectClass=*)", "tree") == ["every object"]
    assert broad_kinds("(objectClass=*)", "base") == []


def test_the_explanation_says_when_the_source_never_spoke_ldap_before() -> None:
    from appliance.inventory import AssetInventory

    inventory = AssetInventory()
    inventory.on_event(search(ADMIN, T0 - 100, "(sAMAccountName=x)"))  # the admin host is a known LDAP client
    alerts: list[Alert] = []
    engine = DetectorEngine([LdapReconDetector()], alerts.append, inventory=inventory)
    for client in (VPN, ADMIN):
        engine.on_event(search(client, T0, "(&(objectClass=user)(adminCount=1))"))
    assert [(a.src, a.explanation.endswith("; it had not used LDAP before")) for a in alerts] == [
        (VPN, True), (ADMIN, False),
    ]  # fmt: skip
    assert alerts[0].details["new_ldap_client"] is True
