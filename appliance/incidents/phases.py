"""Kill-chain phases of an incident, and the one table that says which phase each detector note reaches.

The phases, in order: `it_recon` (mapping the IT network: scans, sweeps, directory reads, scanner probes),
`credential_access` (brute force, spraying, default accounts, a known address used by another machine),
`pivot_into_ot` (an IT, VPN or DMZ host speaking an industrial protocol to an OT or BMS device), `ot_discovery`
(mapping the OT network: unit-id or Who-Is sweeps, device identification, scans of OT addresses) and `impair`
(ATT&CK for ICS's Impair Process Control and Inhibit Response Function: writes, commands, restarts,
communication control).

`PHASE_OF` maps every (detector, note) to the phases it reaches (a write from IT into OT is both a pivot and an
impairment). A note that reaches no phase is listed in `NO_PHASE` with the reason (a meta-alert about other alerts,
or a fact that is context rather than a step). A test fails when a registered detector has a note in neither.
Two refinements read the alert itself: a recon note whose targets (with a known zone) are all in OT, BMS or IoT
zones is `ot_discovery` instead of `it_recon`; an alert whose details carry `op_class: discovery` for an industrial
protocol also reaches `ot_discovery`, and one with `op_class` write or command also reaches `impair`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

PHASES = ("it_recon", "credential_access", "pivot_into_ot", "ot_discovery", "impair")
PHASE_LABELS = {
    "it_recon": "IT recon",
    "credential_access": "credential access",
    "pivot_into_ot": "pivot into OT",
    "ot_discovery": "OT discovery",
    "impair": "impair process control",
}
PHASE_RANK = {p: i for i, p in enumerate(PHASES)}

OT_DOMAINS = frozenset({"OT", "BMS", "IoT"})
INDUSTRIAL = frozenset({"modbus", "bacnet", "dnp3", "s7comm", "enip", "cip", "iec104", "opcua", "mqtt"})

# (detector, note) -> phases reached, in kill-chain order
PHASE_OF: dict[tuple[str, str], tuple[str, ...]] = {
    ("scan", "address_scan"): ("it_recon",),
    ("scan", "rdp_scan"): ("it_recon",),
    ("scan", "smb_scan"): ("it_recon",),
    ("scan", "port_scan"): ("it_recon",),
    ("scan", "udp_enumeration"): ("it_recon",),
    ("dns_sweep", "reverse_dns_sweep"): ("it_recon",),
    ("recon_tools", "scanner_probe"): ("it_recon",),
    ("recon_tools", "vulnerability_scanner"): ("it_recon",),
    ("ldap_recon", "ad_enumeration"): ("it_recon",),
    ("ldap_recon", "large_directory_read"): ("it_recon",),
    ("new_device", "hostname_change"): ("credential_access",),  # valid credentials used from another machine
    ("new_device", "new_mac"): ("credential_access",),  # ARP spoofing / masquerading (T1557.002)
    ("auth_bruteforce", "bruteforce"): ("credential_access",),
    ("auth_bruteforce", "password_spray"): ("credential_access",),
    ("auth_bruteforce", "default_credentials"): ("credential_access",),
    ("auth_bruteforce", "success_after_failures"): ("credential_access",),
    ("ot_pivot", "it_to_ot"): ("pivot_into_ot",),
    ("ot_pivot", "it_to_ot_write"): ("pivot_into_ot", "impair"),
    ("ot_pivot", "device_control"): ("impair",),
    # learned behaviour (appliance/detectors/ot_baseline.py and the other baseline detectors)
    ("ot_baseline", "new_ot_edge"): ("pivot_into_ot",),  # a way into an OT device never seen
    ("ot_baseline", "rogue_modbus_master"): ("pivot_into_ot",),  # its writes also reach impair (op_class)
    ("ot_baseline", "rogue_bacnet_writer"): ("impair",),
    ("ot_baseline", "new_write_point"): ("impair",),
    ("ot_baseline", "write_out_of_range"): ("impair",),
    ("ot_baseline", "new_operation"): ("ot_discovery",),  # a read or other operation never seen on an edge
    ("ot_baseline", "new_command"): ("impair",),
    ("ot_discovery", "modbus_unit_sweep"): ("ot_discovery",),
    ("ot_discovery", "modbus_register_scan"): ("ot_discovery",),
    ("ot_pivot", "program_download"): ("impair",),
    ("ot_pivot", "program_upload"): ("ot_discovery",),
    ("zone_policy", "policy_violation_into_ot"): ("pivot_into_ot",),
    ("zone_policy", "policy_violation"): ("it_recon",),
    ("ot_discovery", "modbus_device_identification"): ("ot_discovery",),
    ("ot_discovery", "bacnet_who_is_sweep"): ("ot_discovery",),
    ("ot_discovery", "bacnet_device_walk"): ("ot_discovery",),
    ("ot_internet", "ot_internet"): ("pivot_into_ot",),  # a path between OT and the outside (T0883)
    ("mqtt_baseline", "mqtt_wildcard_subscription"): ("ot_discovery",),  # reading every topic of the site
    ("mqtt_baseline", "mqtt_new_publisher"): ("impair",),  # a forged command or spoofed reading
    ("ot_timing", "polling_silence"): ("impair",),  # inhibit response: a silenced master or device (T0814)
    ("ot_timing", "polling_period_change"): ("impair",),
}

# (detector, note) -> why it reaches no phase; such alerts join an incident's timeline but add no phase
NO_PHASE: dict[tuple[str, str], str] = {
    ("alert_burst", "multiple_alerts"): "a meta-alert about its source's other alerts: it joins their incident",
    ("new_device", "new_device"): "an address first seen is context (the actor's arrival), not a kill-chain step",
    ("ot_anomaly", "statistical_anomaly"): "a statistical finding names no step; its anomaly_score adds to the risk",
}
META = frozenset({("alert_burst", "multiple_alerts")})
# notes that report something never seen before (novelty, for the risk score); details `novel: true` also count
NOVELTY = frozenset({("new_device", "new_device"), ("new_device", "hostname_change"), ("new_device", "new_mac")})


def known(detector: str, note: str) -> bool:
    """True when the note is declared in PHASE_OF or NO_PHASE."""
    return (detector, note) in PHASE_OF or (detector, note) in NO_PHASE


def order(phases: Iterable[str]) -> tuple[str, ...]:
    """Distinct phases in kill-chain order (unknown names dropped)."""
    return tuple(sorted({p for p in phases if p in PHASE_RANK}, key=PHASE_RANK.__getitem__))


def phases_of(
    detector: str, note: str, details: Mapping[str, Any] | None = None, target_domains: Iterable[str | None] = ()
) -> tuple[str, ...]:
    """The phases an alert reaches: the table's, refined by where its targets are and what operation it saw."""
    phases = list(PHASE_OF.get((detector, note), ()))
    domains = [d for d in target_domains if d]
    if "it_recon" in phases and domains and all(d in OT_DOMAINS for d in domains):
        phases[phases.index("it_recon")] = "ot_discovery"
    if details:
        protocol = details.get("protocol")
        op_class = details.get("op_class")
        if op_class == "discovery" and (protocol in INDUSTRIAL or "pivot_into_ot" in phases):
            phases.append("ot_discovery")
        elif op_class in ("write", "command") and protocol in INDUSTRIAL:
            phases.append("impair")
    return order(phases)


def furthest(phases: Iterable[str]) -> str | None:
    """The last phase in kill-chain order among `phases` (None when there is none)."""
    ordered = order(phases)
    return ordered[-1] if ordered else None
