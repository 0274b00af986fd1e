"""An incident's title and narrative, written from its facts (who, from where, what in order, what it touched,
what is at stake), the way an analyst's summary reads. 3-6 sentences; times are packet time in UTC."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from appliance.incidents.facts import IT_DOMAINS, AssetFacts
from appliance.incidents.model import SEVERITY_RANK, Entry
from appliance.incidents.phases import META, PHASE_LABELS
from appliance.incidents.risk import RiskScore, operation

ROLES = {
    "PLC": "a controller of the physical process",
    "BMS controller": "a controller of the building plant (cooling, power, air)",
    "HMI/SCADA": "the operators' view and control of the process",
    "engineering workstation": "the machine that programs the controllers",
    "BMS workstation": "the operators' front end of the building plant",
    "BACnet router": "the router of the building network",
    "BBMD": "the broadcast manager of the building network",
    "IoT gateway": "a gateway of the IoT devices",
    "MQTT broker": "the message hub of the IoT devices",
    "IP camera": "a physical-security camera",
    "sensor": "a sensor",
}


def _hm(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ts))


def _day(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} seconds"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.1f} days"


def _facts(assets: Mapping[str, AssetFacts], ip: str) -> AssetFacts:
    return assets.get(ip) or AssetFacts(ip)


def actor_words(facts: AssetFacts) -> str:
    """`VPN host 10.8.0.23`, `HMI/SCADA 10.50.1.20`, `Host 192.0.2.7`."""
    if facts.domain in IT_DOMAINS:
        return f"{facts.domain} host {facts.ip}"
    if facts.category and facts.category not in ("unknown", "IT host"):
        return f"{facts.category} {facts.ip}"
    if facts.domain:
        return f"{facts.domain} device {facts.ip}"
    return f"Host {facts.ip}"


def target_words(facts: AssetFacts) -> str:
    """`cooling PLC` when zone and category are known, else what is known with the address."""
    category = facts.category if facts.category and facts.category != "unknown" else None
    if facts.zone and category:
        return f"{facts.zone} {category}"
    return f"{category or facts.zone or 'device'} {facts.ip}"


def _first_target(e: Entry) -> str:
    dst = e.details.get("dst")
    return str(dst) if isinstance(dst, str) and dst else (e.targets[0] if e.targets else "")


def _impair_words(e: Entry, assets: Mapping[str, AssetFacts]) -> str:
    target = target_words(_facts(assets, _first_target(e)))
    kind = operation(e)
    if kind == "write":
        return f"OT write to {target}"
    if kind == "command":
        return f"OT command to {target}"
    return f"impair {target}"


def title(entries: list[Entry], assets: Mapping[str, AssetFacts], actor: str, phases: tuple[str, ...]) -> str:
    """`VPN host 10.8.0.23: IT recon -> credential access -> pivot into OT -> OT write to cooling PLC`."""
    who = actor_words(_facts(assets, actor))
    words = []
    for phase in phases:
        if phase == "impair":
            first = next(e for e in entries if "impair" in e.phases)
            words.append(_impair_words(first, assets))
        else:
            words.append(PHASE_LABELS[phase])
    if not words:
        top = max(entries, key=lambda e: (SEVERITY_RANK.get(e.severity, 0), e.score), default=None)
        words.append(top.note.replace("_", " ") if top is not None else "alerts")
    return f"{who}: {' -> '.join(words)}"


def _d(e: Entry, name: str) -> Any:
    return e.details.get(name)


def phrase(e: Entry, assets: Mapping[str, AssetFacts]) -> str:
    """What the actor did, in a few words, for one timeline entry."""
    dst = target_words(_facts(assets, _first_target(e))) if _first_target(e) else "a device"
    n = e.note
    proto, op = _d(e, "protocol") or "", _d(e, "op") or ""
    phrases = {
        "hostname_change": f"logged on as {_d(e, 'hostname')!r}, a machine name never seen for its address"
        if _d(e, "hostname")
        else "logged on as a machine never seen for its address",
        "new_mac": "sent from a MAC never seen for its address",
        "new_device": "appeared as a new device",
        "ad_enumeration": "enumerated the directory over LDAP",
        "large_directory_read": f"read {_d(e, 'entries') or 'many'} directory entries",
        "scanner_probe": f"probed services with {_d(e, 'tool') or 'a scanner'}",
        "vulnerability_scanner": f"ran {_d(e, 'tool') or 'a vulnerability scanner'}",
        "address_scan": f"scanned {_d(e, 'hosts') or 'many'} hosts on port {_d(e, 'port')}",
        "rdp_scan": f"scanned {_d(e, 'hosts') or 'many'} hosts for RDP",
        "smb_scan": f"scanned {_d(e, 'hosts') or 'many'} hosts for SMB",
        "port_scan": f"scanned the ports of {_d(e, 'dst') or dst}",
        "udp_enumeration": f"probed {_d(e, 'hosts') or 'many'} hosts' UDP services",
        "reverse_dns_sweep": f"swept {_d(e, 'addresses') or 'many'} addresses by reverse DNS",
        "bruteforce": f"failed {_d(e, 'failures') or 'many'} logons in a row",
        "password_spray": "sprayed passwords across accounts",
        "default_credentials": "tried default accounts on several hosts",
        "success_after_failures": f"then logged on to {_d(e, 'server') or dst} as {_d(e, 'account') or 'an account'}",
        "it_to_ot": f"reached {dst} with {proto} {op}".rstrip(),
        "it_to_ot_write": f"wrote to {dst} with {proto} {op}".rstrip(),
        "device_control": f"sent {proto} {op} to {dst}".rstrip(),
        "program_download": f"wrote a file into {dst} (bacnet atomic_write_file)",
        "program_upload": f"read a file from {dst} (bacnet atomic_read_file)",
        "modbus_register_scan": f"read {_d(e, 'count') or 'many'} register blocks of {dst}",
        "policy_violation_into_ot": f"reached {dst} with {_d(e, 'protocol')}, against the zone policy",
        "policy_violation": f"reached {dst} with {_d(e, 'protocol')}, against the zone policy",
    }
    return phrases.get(n, f"raised {e.detector}/{n} on {dst}")


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _groups(entries: list[Entry]) -> list[tuple[str, float, list[Entry]]]:
    """Consecutive timeline entries grouped by their first phase (context entries by 'context')."""
    out: list[tuple[str, float, list[Entry]]] = []
    for e in entries:
        if (e.detector, e.note) in META:
            continue
        phase = e.phases[0] if e.phases else "context"
        if out and out[-1][0] == phase:
            out[-1][2].append(e)
        else:
            out.append((phase, e.ts, [e]))
    return out


def _chunks(groups: list[tuple[str, float, list[Entry]]], n: int) -> list[list[tuple[str, float, list[Entry]]]]:
    size = -(-len(groups) // n) if groups else 1
    return [groups[i : i + size] for i in range(0, len(groups), size)]


def _clause(group: tuple[str, float, list[Entry]], assets: Mapping[str, AssetFacts]) -> str:
    phase, ts, members = group
    said = list(dict.fromkeys(phrase(e, assets) for e in members))
    more = f" and {len(said) - 3} more" if len(said) > 3 else ""
    label = PHASE_LABELS.get(phase, "a first sighting")
    return f"{label} at {_hm(ts)} ({_join(said[:3])}{more})"


def narrative(
    entries: list[Entry], assets: Mapping[str, AssetFacts], actors: list[str], phases: tuple[str, ...], risk: RiskScore
) -> str:
    """3-6 sentences: who and when; what it did, in order; what it touched; what is at stake."""
    actor = actors[0]
    me = _facts(assets, actor)
    names = f", known as {_join(list(me.hostnames[:3]))}," if me.hostnames else ""
    where = f" in zone {me.zone}" if me.zone else ""
    others = actors[1:]
    joined = f" ({_join(others[:3])} joined it)" if others else ""
    first, last = entries[0].ts, max(e.last_ts for e in entries)
    count = sum(e.count for e in entries)
    when = f"at {_day(first)}" if last == first else f"over {_span(last - first)} from {_day(first)} to {_hm(last)}"
    sentences = [f"{actor_words(me)}{where}{names} raised {count} alert{'s' if count != 1 else ''} {when} UTC{joined}."]
    groups = _groups(entries)
    for i, chunk in enumerate(_chunks(groups, 3)):
        opener = "It began with" if i == 0 else "Then came"
        sentences.append(f"{opener} " + "; then ".join(_clause(g, assets) for g in chunk) + ".")
    actor_set = set(actors)
    touched = list(dict.fromkeys(t for e in entries for t in e.targets if t not in actor_set))
    if touched:
        ranked = sorted(touched, key=lambda ip: -_facts(assets, ip).criticality()[0])
        shown = ", ".join(_facts(assets, ip).describe() for ip in ranked[:4])
        sentences.append(f"It touched {len(touched)} other address{'es' if len(touched) != 1 else ''}: {shown}"
                         + (f" and {len(touched) - 4} more" if len(touched) > 4 else "") + ".")  # fmt: skip
    sentences.append(_stake(entries, assets, phases, risk, actor_set))
    return " ".join(sentences)


def _stake(
    entries: list[Entry], assets: Mapping[str, AssetFacts], phases: tuple[str, ...], risk: RiskScore,
    actors: set[str],
) -> str:  # fmt: skip
    top = sorted(risk.factors, key=lambda f: -f.points)[:2]
    score = f"risk {risk.score}/100 ({', '.join(f'{f.factor} {f.points}' for f in top if f.points)})"
    if "impair" in phases:
        e = next(e for e in entries if "impair" in e.phases)
        facts = _facts(assets, _first_target(e))
        role = ROLES.get(facts.category or "", "an OT device")
        what = f"{operation(e) or 'an impairing operation'} ({e.details.get('op') or e.note})"
        return f"At stake is {facts.describe()}, {role}, which received a {what}; {score}."
    if "pivot_into_ot" in phases or "ot_discovery" in phases:
        e = next(e for e in entries if {"pivot_into_ot", "ot_discovery"} & set(e.phases))
        facts = _facts(assets, _first_target(e))
        role = ROLES.get(facts.category or "", "an OT device")
        return f"At stake is {facts.describe()}, {role}, reached from outside OT without a write yet; {score}."
    ot = [ip for ip in assets if ip not in actors and _facts(assets, ip).domain in ("OT", "BMS")]
    if ot:
        return f"At stake are OT or BMS devices it named ({', '.join(ot[:3])}); {score}."
    return f"At stake are the IT hosts and credentials it reached; no OT or BMS device was touched; {score}."
