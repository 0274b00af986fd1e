"""The mutable record behind each asset, its bounds, and small identity helpers (MACs, device strings).

`appliance.asset_rules` re-exports everything here; the inventory and the rules import from either.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from appliance.model import Asset, Attribute

MAX_PEERS = 128  # peers kept per asset
MAX_ROLE_PEERS = 64  # peers kept per (protocol, role)
MAX_UNITS = 256
MAX_ATTR_LEN = 128
MAX_SERVICES = 64  # BACnet request services kept per asset
MAX_TOPICS = 64  # MQTT topics kept per asset and direction (published, subscribed)
MAX_CLIENT_IDS = 16  # MQTT client ids and usernames kept per asset
MAX_HOSTNAMES = 16  # names kept per asset (the first ones: a name seen later is what detectors care about)

OT_PROTOCOLS = frozenset(
    {"modbus", "bacnet", "mqtt", "dnp3", "s7comm", "enip", "cip", "iec104", "opcua", "knx", "profinet"}
)
OT_PORTS = frozenset({502, 102, 1883, 8883, 2222, 2404, 4840, 20000, 44818, 47808})


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


def clean_text(value: Any) -> str:
    """An identity string from a device: decoded, control characters dropped, trimmed and bounded."""
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    text = "".join(ch for ch in str(value) if ch.isprintable()).strip()
    return text[:MAX_ATTR_LEN]


def add_bounded(target: set[str], items: Iterable[str], limit: int) -> None:
    """Add items to a set until it holds `limit` entries."""
    for item in items:
        if len(target) >= limit:
            return
        target.add(item)


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
    via_ip: str | None = None  # routed BACnet device: the router's IP ...
    via_asset: str | None = None  # ... and its asset id
    bacnet_instance: int | None = None
    bacnet_network: int | None = None
    bacnet_mac: str | None = None
    bacnet_vendor_id: int | None = None
    bacnet_max_apdu: int | None = None
    bacnet_segmentation: str | None = None
    bacnet_services: set[str] = field(default_factory=set)
    mqtt_client_ids: set[str] = field(default_factory=set)
    mqtt_usernames: set[str] = field(default_factory=set)
    mqtt_published: set[str] = field(default_factory=set)
    mqtt_subscribed: set[str] = field(default_factory=set)
    mqtt_payload_types: Counter[str] = field(default_factory=Counter)
    hostnames: dict[str, list[Any]] = field(default_factory=dict)  # lower-case name -> [name, source, first, last]

    def role(self, protocol: str, role: str) -> tuple[set[int], set[str]]:
        """The (unit ids, peers) sets of one role, created on first use."""
        entry = self.roles.get((protocol, role))
        if entry is None:
            entry = self.roles[(protocol, role)] = (set(), set())
        return entry

    def learn_hostname(self, name: str, source: str, ts: float) -> bool:
        """Record that the asset went by `name` at `ts` (learnt from `source`); True when the name is new to it."""
        key = name.lower()
        entry = self.hostnames.get(key)
        if entry is not None:
            if ts > entry[3]:
                entry[3] = ts
                self.cached = None
            elif ts < entry[2]:
                entry[2] = ts
                self.cached = None
            return False
        if len(self.hostnames) >= MAX_HOSTNAMES:
            return True
        self.hostnames[key] = [name, source, ts, ts]
        self.cached = None
        return True

    def set_attr(self, name: str, value: Any, source: str, confidence: float) -> None:
        """Keep `value` as attribute `name` unless an existing value is more confident; empty values are ignored."""
        current = self.attrs.get(name)
        if current is not None and (current.value, current.source, current.confidence) == (value, source, confidence):
            return  # the same fact again (the common case: devices repeat themselves)
        text = clean_text(value)
        if not text or (current is not None and confidence < current.confidence):
            return
        if current is None or (current.value, current.source, current.confidence) != (text, source, confidence):
            self.attrs[name] = Attribute(text, source, confidence)
            self.cached = None

    def absorb(self, other: AssetRecord) -> None:
        """Merge another record of the same device into this one (the more recent one's BACnet identity wins)."""
        newer = other.last_seen > self.last_seen
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
        self.via_ip = self.via_ip or other.via_ip
        self.via_asset = self.via_asset or other.via_asset
        for name in ("bacnet_instance", "bacnet_vendor_id", "bacnet_max_apdu", "bacnet_segmentation"):
            theirs = getattr(other, name)
            if theirs is not None and (newer or getattr(self, name) is None):
                setattr(self, name, theirs)
        if self.bacnet_network is None:
            self.bacnet_network, self.bacnet_mac = other.bacnet_network, other.bacnet_mac
        add_bounded(self.bacnet_services, other.bacnet_services, MAX_SERVICES)
        add_bounded(self.mqtt_client_ids, other.mqtt_client_ids, MAX_CLIENT_IDS)
        add_bounded(self.mqtt_usernames, other.mqtt_usernames, MAX_CLIENT_IDS)
        add_bounded(self.mqtt_published, other.mqtt_published, MAX_TOPICS)
        add_bounded(self.mqtt_subscribed, other.mqtt_subscribed, MAX_TOPICS)
        self.mqtt_payload_types.update(other.mqtt_payload_types)
        for name, source, first, last in other.hostnames.values():
            self.learn_hostname(name, source, first)
            self.learn_hostname(name, source, last)
        self.cached = None
