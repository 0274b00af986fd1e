"""The mutable record behind each asset, small identity helpers, and the category rule table.

`RULES` is ordered; the first rule whose evidence function returns words decides the category, and those words
are kept on the asset as `category_evidence`. Add a rule here with its rule id, category and confidence.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from appliance.model import ASSET_ATTRIBUTES, Asset, Attribute, Role

MAX_PEERS = 128  # peers kept per asset
MAX_ROLE_PEERS = 64  # peers kept per (protocol, role)
MAX_UNITS = 256
MAX_ATTR_LEN = 128

OT_PROTOCOLS = frozenset(
    {"modbus", "bacnet", "mqtt", "dnp3", "s7comm", "enip", "cip", "iec104", "opcua", "knx", "profinet"}
)
OT_PORTS = frozenset({502, 102, 1883, 8883, 2222, 2404, 4840, 20000, 44818, 47808})

FC43 = "modbus/fc43"
OUI = "oui"
# FC43 object name -> asset attribute, confidence (a device's own claim: high, not certain)
FC43_OBJECTS = (
    ("vendor_name", "vendor", 0.9),
    ("product_code", "product_code", 0.9),
    ("revision", "firmware", 0.9),
    ("major_minor_revision", "firmware", 0.9),
    ("product_name", "product_name", 0.9),
    ("model_name", "model", 0.9),
    ("product_name", "model", 0.7),
    ("product_code", "model", 0.6),
)

_DIAGNOSTIC_OPS = frozenset(
    {"diagnostics", "get_comm_event_counter", "get_comm_event_log", "read_exception_status"}
)
_DISCOVERY_OPS = frozenset(
    {"read_device_identification", "report_slave_id", "who_is", "i_am", "who_has",
     "i_have"}
)


def default_op_class(protocol: str, op: str) -> str:
    """A name-based operation class (read, write, command, discovery, diagnostic, other): the fallback."""
    if op in _DISCOVERY_OPS:
        return "discovery"
    if op in _DIAGNOSTIC_OPS:
        return "diagnostic"
    if "write" in op:
        return "write"
    if op.startswith("read"):
        return "read"
    if op.startswith(("program", "firmware", "reinitialize", "device_communication_control", "reset")):
        return "command"
    return "other"


def normalize_mac(mac: str | bytes | None) -> str | None:
    """A sender's MAC as lower-case `aa:bb:cc:dd:ee:ff`; None if absent, zero, multicast or malformed."""
    if mac is None:
        return None
    if isinstance(mac, bytes):
        if len(mac) != 6:
            return None
        raw = mac
    else:
        try:
            raw = bytes.fromhex(mac.replace(":", "").replace("-", "").replace(".", ""))
        except ValueError:
            return None
        if len(raw) != 6:
            return None
    if raw[0] & 1 or not any(raw):
        return None
    return raw.hex(":")


@dataclass(slots=True)
class AssetRecord:
    """The mutable state behind one asset (pipeline thread only)."""

    asset_id: str
    ip: str
    mac: str | None
    first_seen: float
    last_seen: float
    zone: str | None = None
    domain: str | None = None
    purdue_level: float | None = None
    via_mac: str | None = None
    attrs: dict[str, Attribute] = field(default_factory=dict)
    protocols: set[str] = field(default_factory=set)
    roles: dict[tuple[str, str], tuple[set[int], set[str]]] = field(default_factory=dict)
    peers: set[str] = field(default_factory=set)
    sent: Counter[tuple[str, str]] = field(default_factory=Counter)
    received: Counter[tuple[str, str]] = field(default_factory=Counter)
    flows: int = 0
    ot_traffic: bool = False
    cached: Asset | None = None

    def role(self, protocol: str, role: str) -> tuple[set[int], set[str]]:
        """The (unit ids, peers) sets of one role, created on first use."""
        entry = self.roles.get((protocol, role))
        if entry is None:
            entry = self.roles[(protocol, role)] = (set(), set())
        return entry

    def absorb(self, other: AssetRecord) -> None:
        """Merge another record of the same device into this one."""
        self.first_seen = min(self.first_seen, other.first_seen)
        self.last_seen = max(self.last_seen, other.last_seen)
        for name, attr in other.attrs.items():
            mine = self.attrs.get(name)
            if mine is None or attr.confidence > mine.confidence:
                self.attrs[name] = attr
        self.protocols |= other.protocols
        for key, (units, peers) in other.roles.items():
            my_units, my_peers = self.role(*key)
            my_units |= units
            add_bounded(my_peers, peers, MAX_ROLE_PEERS)
        add_bounded(self.peers, other.peers, MAX_PEERS)
        self.sent.update(other.sent)
        self.received.update(other.received)
        self.flows += other.flows
        self.ot_traffic |= other.ot_traffic
        self.via_mac = self.via_mac or other.via_mac
        self.cached = None


def add_bounded(target: set[str], items: Iterable[str], limit: int) -> None:
    """Add items to a set until it holds `limit` entries."""
    for item in items:
        if len(target) >= limit:
            return
        target.add(item)


# ---- category rules: (rule id, category, confidence, evidence function); first to return words wins ----


def _plc_identified(r: AssetRecord) -> str | None:
    if ("modbus", "server") not in r.roles or "vendor" not in r.attrs:
        return None
    product = r.attrs.get("product_code") or r.attrs.get("model")
    what = r.attrs["vendor"].value + (f" {product.value}" if product else "")
    return f"answers Modbus requests and identifies itself as {what} (FC43)"


def _plc(r: AssetRecord) -> str | None:
    entry = r.roles.get(("modbus", "server"))
    if entry is None:
        return None
    units = ", ".join(str(u) for u in sorted(entry[0])) or "none"
    return f"answers Modbus requests (unit ids {units}) from {len(entry[1])} client(s)"


def _engineering(r: AssetRecord) -> str | None:
    if ("modbus", "client") not in r.roles:
        return None
    n = r.sent[("modbus", "diagnostic")] + r.sent[("modbus", "command")]
    return f"sends Modbus diagnostic or programming functions ({n} messages)" if n else None


def _hmi(r: AssetRecord) -> str | None:
    entry = r.roles.get(("modbus", "client"))
    if entry is None or len(entry[1]) < 2:
        return None
    return f"polls {len(entry[1])} Modbus servers"


def _bms(r: AssetRecord) -> str | None:
    return "answers BACnet requests" if ("bacnet", "server") in r.roles else None


def _broker(r: AssetRecord) -> str | None:
    return "serves MQTT clients" if ("mqtt", "server") in r.roles else None


def _it_host(r: AssetRecord) -> str | None:
    if r.ot_traffic or not (r.flows or r.protocols):
        return None
    spoken = ", ".join(sorted(r.protocols)) or "unidentified services"
    return f"seen only in non-OT traffic ({spoken})"


CategoryRule = tuple[str, str, float, Callable[[AssetRecord], str | None]]

RULES: tuple[CategoryRule, ...] = (
    ("modbus-server-fc43", "PLC", 0.8, _plc_identified),
    ("modbus-server", "PLC", 0.6, _plc),
    ("modbus-engineering", "engineering workstation", 0.6, _engineering),
    ("modbus-poller", "HMI/SCADA", 0.6, _hmi),
    ("bacnet-server", "BMS controller", 0.5, _bms),
    ("mqtt-server", "MQTT broker", 0.7, _broker),
    ("non-ot-only", "IT host", 0.4, _it_host),
)


def clean_text(value: Any) -> str:
    """An identity string from a device: decoded, control characters dropped, trimmed and bounded."""
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    text = "".join(ch for ch in str(value) if ch.isprintable()).strip()
    return text[:MAX_ATTR_LEN]




def categorize(rec: AssetRecord) -> tuple[str, str, str, float]:
    """(category, rule id, evidence, confidence) from the first matching rule; `unknown` when none matches."""
    for rule_id, category, confidence, evidence_fn in RULES:
        evidence = evidence_fn(rec)
        if evidence:
            return category, rule_id, evidence, confidence
    return "unknown", "", "", 0.0


def apply_fc43(rec: AssetRecord, objects: Any) -> None:
    """Take vendor, product code, firmware, names from an FC43 (MEI 14) objects dict; never raises."""
    if not isinstance(objects, dict):
        return
    for obj, attr, confidence in FC43_OBJECTS:
        raw = objects.get(obj)
        if raw is None:
            continue
        value = clean_text(raw)
        current = rec.attrs.get(attr)
        if value and (current is None or confidence >= current.confidence):
            rec.attrs[attr] = Attribute(value, FC43, confidence)
            rec.cached = None


def freeze(rec: AssetRecord) -> Asset:
    """An immutable Asset from a record, with its category decided now."""
    category, rule_id, evidence, confidence = categorize(rec)
    attrs = rec.attrs
    return Asset(
        asset_id=rec.asset_id, ip=rec.ip, mac=rec.mac, first_seen=rec.first_seen, last_seen=rec.last_seen,
        category=category, category_rule=rule_id, category_evidence=evidence,
        category_confidence=confidence, via_mac=rec.via_mac, zone=rec.zone, domain=rec.domain,
        purdue_level=rec.purdue_level, vendor=attrs.get("vendor"), model=attrs.get("model"),
        firmware=attrs.get("firmware"), product_code=attrs.get("product_code"),
        product_name=attrs.get("product_name"), mac_vendor=attrs.get("mac_vendor"),
        protocols=tuple(sorted(rec.protocols)),
        roles=tuple(
            Role(p, role, tuple(sorted(units)), tuple(sorted(peers)))
            for (p, role), (units, peers) in sorted(rec.roles.items())
        ),
        peers=tuple(sorted(rec.peers)),
        events_sent=tuple((p, c, n) for (p, c), n in sorted(rec.sent.items())),
        events_received=tuple((p, c, n) for (p, c), n in sorted(rec.received.items())),
        flows=rec.flows,
        ot_traffic=rec.ot_traffic,
    )


def thaw(a: Asset) -> AssetRecord:
    """A mutable record from a stored Asset (zone fields are left for the caller to look up again)."""
    rec = AssetRecord(a.asset_id, a.ip, a.mac, a.first_seen, a.last_seen, via_mac=a.via_mac)
    for name in ASSET_ATTRIBUTES:
        attr = getattr(a, name)
        if attr is not None:
            rec.attrs[name] = attr
    rec.protocols.update(a.protocols)
    for r in a.roles:
        rec.roles[(r.protocol, r.role)] = (set(r.units), set(r.peers))
    rec.peers.update(a.peers)
    rec.sent.update({(p, c): n for p, c, n in a.events_sent})
    rec.received.update({(p, c): n for p, c, n in a.events_received})
    rec.flows, rec.ot_traffic = a.flows, a.ot_traffic
    return rec
