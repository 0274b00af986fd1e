"""Hand-made alerts and asset facts for the incident tests: a VPN actor, IT servers, a cooling PLC, a BMS
controller, an HMI. Severities, scores and techniques come from the registered detectors' note tables."""

from __future__ import annotations

from typing import Any

from appliance.alert import Alert
from appliance.detectors import DETECTORS
from appliance.incidents.facts import AssetFacts, StaticLookup

T0 = 1_717_483_800.0  # 2024-06-04 06:50:00 UTC
VPN, VPN2, DC, SQL = "10.8.0.23", "10.8.0.31", "10.20.0.11", "10.20.1.40"
PLC, BMS, HMI = "10.50.1.10", "10.60.1.13", "10.50.1.20"
NOTES = {(d.name, n.name): n for d in DETECTORS for n in d.notes.values()}
FACTS = [
    AssetFacts(VPN, "vpn", "VPN", 4.0, "IT host", ("LAPTOP-JSMITH", "DESKTOP-7QK2M1")),
    AssetFacts(VPN2, "vpn", "VPN", 4.0, "IT host", ("desktop-7qk2m1.corp.local",)),
    AssetFacts(DC, "corp", "IT", 4.0, "IT host", ("dc2",)),
    AssetFacts(SQL, "corp", "IT", 4.0, "IT host", ("sql01",)),
    AssetFacts(PLC, "cooling", "OT", 1.0, "PLC"),
    AssetFacts(BMS, "bms", "BMS", 2.0, "BMS controller"),
    AssetFacts(HMI, "cooling", "OT", 2.0, "HMI/SCADA"),
]


def lookup() -> StaticLookup:
    """The facts above."""
    return StaticLookup(FACTS)


def alert(
    ts: float, detector: str, note: str, src: str, *targets: str, key: str | None = None, severity: str | None = None,
    **details: Any,
) -> Alert:  # fmt: skip
    """An alert as the engine would raise it (key detector/note/src unless given)."""
    spec = NOTES[(detector, note)]
    return Alert(
        ts, detector, note, severity or spec.severity, spec.score, spec.techniques, src, (src, *targets),
        (f"C{int(ts)}",), f"{src} did {note}", key or f"{detector}/{note}/{src}", details,
    )  # fmt: skip


def chain(src: str = VPN, t: float = T0) -> list[Alert]:
    """An intrusion in four phases: a stolen-credential logon, LDAP recon, a brute force, a Modbus write."""
    return [
        alert(t, "new_device", "hostname_change", src, hostname="DESKTOP-7QK2M1"),
        alert(t + 20, "ldap_recon", "ad_enumeration", src, DC),
        alert(t + 140, "scan", "rdp_scan", src, "10.20.31.1", "10.20.31.8", port=3389, hosts=35),
        alert(t + 430, "auth_bruteforce", "bruteforce", src, DC, failures=10),
        alert(t + 436, "auth_bruteforce", "success_after_failures", src, SQL, server=SQL, account="administrator"),
        alert(t + 480, "ot_pivot", "it_to_ot", src, PLC, protocol="modbus", op="read_holding_registers",
              op_class="read", dst=PLC, key=f"ot_pivot/it_to_ot/{src}/cooling/modbus"),
        alert(t + 481, "ot_pivot", "it_to_ot_write", src, PLC, protocol="modbus", op="write_single_register",
              op_class="write", dst=PLC, key=f"ot_pivot/it_to_ot_write/{src}/cooling/modbus"),
    ]  # fmt: skip
