"""The recommended response of an incident, rendered as nftables rules text and never applied.

Two rule sets: `block` drops the actor's traffic to the ports it abused (per target and port, read from the
alerts' details: a Modbus write is tcp/502 to that PLC, an RDP scan is tcp/3389 to anywhere, a brute force is the
SMB and LDAP ports of the servers it tried), and `quarantine` drops everything from and to the actor (a device taken
off the network until it is rebuilt). Both hook the `forward` chain of an `inet` table, for the router or firewall
between the zones. otwatch never runs `nft`: with `incidents.enforce: true` it only writes the rules to
`<state_dir>/response/<incident id>.nft` for an operator (or their automation) to review and load.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from appliance.incidents.model import Entry

ANY = "any"
# industrial and IT protocols by their default transport and ports (an alert names the protocol, not the port)
PROTOCOL_PORTS: dict[str, tuple[str, tuple[int, ...]]] = {
    "modbus": ("tcp", (502,)),
    "bacnet": ("udp", (47808,)),
    "mqtt": ("tcp", (1883, 8883)),
    "dnp3": ("tcp", (20000,)),
    "s7comm": ("tcp", (102,)),
    "enip": ("tcp", (44818,)),
    "cip": ("tcp", (44818,)),
    "iec104": ("tcp", (2404,)),
    "opcua": ("tcp", (4840,)),
    "smb": ("tcp", (445, 139)),
    "ldap": ("tcp", (389, 636, 3268)),
    "http": ("tcp", (80, 443, 8080)),
    "dns": ("udp", (53,)),
}
# notes whose details name no protocol: the protocols their detector reads
NOTE_PROTOCOLS: dict[str, tuple[str, ...]] = {
    "ad_enumeration": ("ldap",),
    "large_directory_read": ("ldap",),
    "bruteforce": ("smb", "ldap"),
    "password_spray": ("smb", "ldap"),
    "default_credentials": ("smb", "ldap"),
    "success_after_failures": ("smb", "ldap"),
    "reverse_dns_sweep": ("dns",),
    "scanner_probe": ("http",),
    "vulnerability_scanner": ("http",),
}
SWEEPS = frozenset({"address_scan", "rdp_scan", "smb_scan"})  # many hosts on one port: block the port anywhere
MAX_COMMENT = 120


@dataclass(frozen=True, slots=True)
class Block:
    """One block: traffic from `src` to `target` (an address or `any`) on `proto` ports, and why."""

    src: str
    target: str
    proto: str
    ports: tuple[int, ...]
    notes: tuple[str, ...]
    source: str  # "details" (ports from the alert) or "protocol" (the protocol's default ports)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"src": self.src, "target": self.target, "proto": self.proto, "ports": list(self.ports),
                "notes": list(self.notes), "source": self.source}  # fmt: skip


def _ints(value: Any) -> list[int]:
    values = value if isinstance(value, list | tuple) else [value]
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool) and 0 < v < 65536]


def _wants(e: Entry) -> list[tuple[str, str, tuple[int, ...], str]]:
    """(target, proto, ports, source) that one timeline entry abused."""
    d = e.details
    if e.note in SWEEPS and _ints(d.get("port")):
        return [(ANY, "tcp", tuple(_ints(d.get("port"))), "details")]
    if e.note == "port_scan" and isinstance(d.get("dst"), str):
        return [(str(d["dst"]), "tcp", tuple(_ints(d.get("ports"))), "details")]
    if e.note == "udp_enumeration" and _ints(d.get("ports")):
        return [(ANY, "udp", tuple(_ints(d.get("ports"))), "details")]
    if _ints(d.get("port")) and isinstance(d.get("dst"), str) and d["dst"]:  # one port of one device
        proto = PROTOCOL_PORTS.get(str(d.get("protocol")), ("tcp", ()))[0]
        return [(str(d["dst"]), proto, tuple(_ints(d.get("port"))), "details")]
    targets: list[str] = []
    for name in ("dst", "server", "resolver"):
        if isinstance(d.get(name), str) and d[name]:
            targets.append(str(d[name]))
    hosts = d.get("hosts")
    if isinstance(hosts, list):
        targets += [str(h) for h in hosts if isinstance(h, str)]
    targets = list(dict.fromkeys(targets or list(e.targets))) or [ANY]
    protocols = [d["protocol"]] if isinstance(d.get("protocol"), str) else list(NOTE_PROTOCOLS.get(e.note, ()))
    out = []
    for protocol in protocols:
        if protocol in PROTOCOL_PORTS:
            proto, ports = PROTOCOL_PORTS[protocol]
            out += [(t, proto, ports, "protocol") for t in targets]
    return out


def blocks(entries: Iterable[Entry]) -> list[Block]:
    """The blocks an incident's alerts call for, merged per (src, target, proto)."""
    merged: dict[tuple[str, str, str], tuple[set[int], list[str], str]] = {}
    for e in entries:
        for target, proto, ports, source in _wants(e):
            if not ports:
                continue
            ports_set, notes, src0 = merged.setdefault((e.src, target, proto), (set(), [], source))
            ports_set.update(ports)
            if e.note not in notes:
                notes.append(e.note)
            if source == "details" and src0 != "details":
                merged[(e.src, target, proto)] = (ports_set, notes, "details")
    return [Block(src, target, proto, tuple(sorted(ports)), tuple(notes), source)
            for (src, target, proto), (ports, notes, source) in merged.items()]  # fmt: skip


def _family(ip: str) -> str | None:
    try:
        return "ip6" if ipaddress.ip_address(ip).version == 6 else "ip"
    except ValueError:
        return None


def _comment(text: str) -> str:
    clean = "".join(c if c.isprintable() and c not in '"\\' else " " for c in text)
    return f'comment "{clean[:MAX_COMMENT]}"'


def table_name(incident_id: str, kind: str) -> str:
    """An nftables table name for one incident's rule set (`otwatch_block_inc_20240604_075000_3f2a1c`)."""
    return f"otwatch_{kind}_" + "".join(c if c.isalnum() else "_" for c in incident_id.lower())


def _header(incident_id: str, what: str) -> list[str]:
    return [
        f"# otwatch: recommended response for {incident_id}: {what}",
        "# Rendered from the incident's alerts; otwatch never applies it. Review, then load with: nft -f FILE",
    ]


def _table(name: str, priority: str, rules: list[str]) -> list[str]:
    return [
        f"table inet {name} {{",
        "\tchain forward {",
        f"\t\ttype filter hook forward priority {priority}; policy accept;",
        *[f"\t\t{r}" for r in rules],
        "\t}",
        "}",
    ]


def render_block(incident_id: str, items: list[Block]) -> str:
    """nftables rules that drop each actor's traffic to the ports it abused."""
    rules = []
    for b in items:
        fam = _family(b.src)
        if fam is None:
            rules.append(f"# {b.src} is not an IP address: block it at layer 2 by hand")
            continue
        dst = ""
        if b.target != ANY:
            tfam = _family(b.target)
            if tfam != fam:
                continue
            dst = f" {fam} daddr {b.target}"
        ports = str(b.ports[0]) if len(b.ports) == 1 else "{ " + ", ".join(str(p) for p in b.ports) + " }"
        why = f"{incident_id}: {', '.join(b.notes)}"
        rules.append(f"{fam} saddr {b.src}{dst} {b.proto} dport {ports} counter drop {_comment(why)}")
    if not rules:
        rules.append("# no port-level block follows from the alerts: see the quarantine rule set")
    lines = _header(incident_id, "block the actor to the ports it abused")
    return "\n".join(lines + _table(table_name(incident_id, "block"), "filter - 10", rules)) + "\n"


def render_quarantine(incident_id: str, actors: Iterable[str]) -> str:
    """nftables rules that cut a compromised device off: everything from it and to it dropped."""
    rules = []
    for actor in actors:
        fam = _family(actor)
        if fam is None:
            rules.append(f"# {actor} is not an IP address: quarantine it at its switch port by hand")
            continue
        why = f"{incident_id}: quarantine {actor}"
        rules += [f"{fam} {way} {actor} counter drop {_comment(why)}" for way in ("saddr", "daddr")]
    lines = _header(incident_id, "quarantine the compromised device")
    return "\n".join(lines + _table(table_name(incident_id, "quarantine"), "filter - 20", rules)) + "\n"


def response(incident_id: str, entries: list[Entry], actors: list[str], enforce: bool) -> dict[str, Any]:
    """The recommended response record of an incident (rules text; `enforce` only says whether a file is written)."""
    items = blocks(entries)
    return {
        "applied": False,
        "enforce": enforce,
        "block": [b.to_dict() for b in items],
        "nftables_block": render_block(incident_id, items),
        "nftables_quarantine": render_quarantine(incident_id, actors[:16]),
    }
