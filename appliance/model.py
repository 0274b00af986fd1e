"""Core types that flow through the pipeline: packets, flow ids, protocol events, conn records, assets.

`Packet` and `ProtocolEvent` are plain slotted dataclasses (not frozen): one is built per frame or per message on the
hot path, and a frozen dataclass's `object.__setattr__` initialiser costs about four times more. They are treated as
immutable all the same. `FlowId`, `Flow` and `Asset`, built once per connection or per asset, are frozen.
`FlowId` and `ProtocolEvent` are defined in `protocols.base` so that the parse layer imports nothing from the
appliance.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.base import (  # re-exported: the event types live with the parsers
    EXCEPTION,
    NOTICE,
    REQUEST,
    RESPONSE,
    WEIRD,
    FlowId,
    ProtocolEvent,
)

__all__ = [
    "EXCEPTION",
    "NOTICE",
    "REQUEST",
    "RESPONSE",
    "WEIRD",
    "Flow",
    "FlowId",
    "Packet",
    "ProtocolEvent",
    "mac_str",
]

TCP = 6
UDP = 17
ICMP = 1
ICMP6 = 58
# Not an IP protocol: an 802.2 LLC frame carrying BACnet/Ethernet (DSAP/SSAP 0x82). Its Packet has the MAC
# addresses as src/dst, 0x82 as both ports and the bytes after the LLC header as payload; the FlowTable treats it
# like a UDP datagram, and a decoder claims it with transport "llc".
LLC = 256
LLC_BACNET_SAP = 0x82

TRANSPORT_NAMES = {TCP: "tcp", UDP: "udp", ICMP: "icmp", ICMP6: "icmp", LLC: "llc"}

# TCP flag bits
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20


@dataclass(slots=True)
class Packet:
    """One parsed L2-L4 frame: time, MACs, VLANs, addresses, ports, TCP header fields and the payload."""

    ts: float
    src_mac: bytes
    dst_mac: bytes
    vlans: tuple[int, ...]
    src: str
    dst: str
    proto: int
    sport: int
    dport: int
    payload: bytes
    ip_len: int
    tcp_flags: int = 0
    seq: int = 0
    ack: int = 0
    wire_len: int = 0


@dataclass(frozen=True, slots=True)
class Flow:
    """A finished (or flushed) connection record, like a row of Zeek's conn.log."""

    id: FlowId
    ts: float
    duration: float
    service: str | None
    orig_bytes: int
    resp_bytes: int
    conn_state: str
    missed_bytes: int
    history: str
    orig_pkts: int
    orig_ip_bytes: int
    resp_pkts: int
    resp_ip_bytes: int
    orig_mac: str | None = None
    resp_mac: str | None = None
    vlans: tuple[int, ...] = ()


def mac_str(mac: bytes) -> str:
    """Render six bytes as a lower-case colon-separated MAC address."""
    return mac.hex(":")


ZERO_MAC = b"\x00" * 6


# --- Asset inventory types ---------------------------------------------------------------------------------

from typing import Any  # noqa: E402  (appended section: kept with the types that use it)

__all__ += ["Asset", "Attribute", "Hostname", "Role", "routed_address"]

ASSET_ATTRIBUTES = (
    "vendor",
    "model",
    "firmware",
    "product_code",
    "product_name",
    "mac_vendor",
    "application_software",
    "object_name",
    "location",
    "description",
    "serial_number",
)


def routed_address(network: int, mac: str) -> str:
    """The text that names a routed BACnet device (network number, MAC in hex) where an IP would: `bacnet:5:0a`."""
    return f"bacnet:{network}:{mac}"


@dataclass(frozen=True, slots=True)
class Attribute:
    """One fact about an asset, where it came from (`modbus/fc43`, `oui`) and how sure we are of it (0..1)."""

    value: str
    source: str
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"value": self.value, "source": self.source, "confidence": self.confidence}

    @classmethod
    def from_dict(cls, data: Any) -> Attribute | None:
        """The attribute from `to_dict` output; None for None or a malformed value."""
        if not isinstance(data, dict) or not isinstance(data.get("value"), str):
            return None
        return cls(data["value"], str(data.get("source", "")), float(data.get("confidence", 0.0)))


@dataclass(frozen=True, slots=True)
class Role:
    """What an asset does in one protocol: `client` or `server`, the unit ids and the peers in that role."""

    protocol: str
    role: str
    units: tuple[int, ...] = ()
    peers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Hostname:
    """A name an asset went by: where it was learnt (ntlm, dhcp, dns, ...) and when first and last seen."""

    name: str
    source: str
    first_seen: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class Asset:
    """An inventory entry: identity, category with its evidence, zone, identity attributes, roles."""

    asset_id: str
    ip: str
    mac: str | None
    first_seen: float
    last_seen: float
    category: str = "unknown"
    category_rule: str = ""
    category_evidence: str = ""
    category_confidence: float = 0.0
    via_mac: str | None = None  # the gateway MAC this address was seen behind (its own MAC is unknown)
    zone: str | None = None
    domain: str | None = None
    purdue_level: float | None = None
    vendor: Attribute | None = None
    model: Attribute | None = None
    firmware: Attribute | None = None
    product_code: Attribute | None = None
    product_name: Attribute | None = None
    mac_vendor: Attribute | None = None
    protocols: tuple[str, ...] = ()
    roles: tuple[Role, ...] = ()
    peers: tuple[str, ...] = ()
    events_sent: tuple[tuple[str, str, int], ...] = ()  # (protocol, op class, count), sorted
    events_received: tuple[tuple[str, str, int], ...] = ()
    flows: int = 0
    ot_traffic: bool = False  # took part in OT/IoT traffic (by protocol or well-known port)
    # a device with no IP of its own (routed BACnet device): the IP and asset id of the router that relays it
    via_ip: str | None = None
    via_asset: str | None = None
    bacnet_device_instance: int | None = None
    bacnet_network: int | None = None  # routed BACnet device: its network number (SNET) ...
    bacnet_mac: str | None = None  # ... and its MAC address on that network (SADR, hex)
    bacnet_vendor_id: int | None = None
    bacnet_max_apdu: int | None = None
    bacnet_segmentation: str | None = None
    bacnet_services: tuple[str, ...] = ()  # BACnet request services (ops) the asset sent, sorted
    application_software: Attribute | None = None
    object_name: Attribute | None = None
    location: Attribute | None = None
    description: Attribute | None = None
    serial_number: Attribute | None = None
    # MQTT: what a client said about itself on the wire or what the broker session saw (bounded, sorted)
    mqtt_client_ids: tuple[str, ...] = ()
    mqtt_usernames: tuple[str, ...] = ()  # never a password
    mqtt_topics_published: tuple[str, ...] = ()
    mqtt_topics_subscribed: tuple[str, ...] = ()
    mqtt_payload_types: tuple[tuple[str, int], ...] = ()  # (jpeg|png|gif|json|text|binary|empty, PUBLISH count)
    hostnames: tuple[Hostname, ...] = ()  # by first seen

    @property
    def address(self) -> str:
        """The IP; for an asset without one, its routed BACnet address or its MAC (BACnet/Ethernet)."""
        if self.ip:
            return self.ip
        if self.bacnet_network is not None and self.bacnet_mac is not None:
            return routed_address(self.bacnet_network, self.bacnet_mac)
        return self.mac or ""

    def role_map(self) -> dict[str, dict[str, set[int]]]:
        """Roles as `{"modbus": {"server": {1, 2}}}`: protocol -> role -> unit ids."""
        out: dict[str, dict[str, set[int]]] = {}
        for r in self.roles:
            out.setdefault(r.protocol, {})[r.role] = set(r.units)
        return out

    def has_role(self, protocol: str, role: str) -> bool:
        """True when the asset acts as `role` (client, server) in `protocol`."""
        return any(r.protocol == protocol and r.role == role for r in self.roles)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with a fixed key order; `Asset.from_dict` reverses it."""
        roles: dict[str, dict[str, dict[str, list[Any]]]] = {}
        for r in self.roles:
            roles.setdefault(r.protocol, {})[r.role] = {"units": list(r.units), "peers": list(r.peers)}
        out: dict[str, Any] = {
            "asset_id": self.asset_id,
            "ip": self.ip,
            "mac": self.mac,
            "via_mac": self.via_mac,
            "via_ip": self.via_ip,
            "via_asset": self.via_asset,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "category": self.category,
            "category_rule": self.category_rule,
            "category_evidence": self.category_evidence,
            "category_confidence": self.category_confidence,
            "zone": self.zone,
            "domain": self.domain,
            "purdue_level": self.purdue_level,
            "bacnet_device_instance": self.bacnet_device_instance,
            "bacnet_network": self.bacnet_network,
            "bacnet_mac": self.bacnet_mac,
            "bacnet_vendor_id": self.bacnet_vendor_id,
            "bacnet_max_apdu": self.bacnet_max_apdu,
            "bacnet_segmentation": self.bacnet_segmentation,
            "bacnet_services": list(self.bacnet_services),
        }
        for name in ASSET_ATTRIBUTES:
            attr: Attribute | None = getattr(self, name)
            out[name] = attr.to_dict() if attr is not None else None
        out["protocols"] = list(self.protocols)
        out["roles"] = roles
        out["peers"] = list(self.peers)
        out["events_sent"] = [list(t) for t in self.events_sent]
        out["events_received"] = [list(t) for t in self.events_received]
        out["flows"] = self.flows
        out["ot_traffic"] = self.ot_traffic
        out["mqtt_client_ids"] = list(self.mqtt_client_ids)
        out["mqtt_usernames"] = list(self.mqtt_usernames)
        out["mqtt_topics_published"] = list(self.mqtt_topics_published)
        out["mqtt_topics_subscribed"] = list(self.mqtt_topics_subscribed)
        out["mqtt_payload_types"] = [list(t) for t in self.mqtt_payload_types]
        out["hostnames"] = [
            {"name": h.name, "source": h.source, "first_seen": h.first_seen, "last_seen": h.last_seen}
            for h in self.hostnames
        ]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Asset:
        """Rebuild an asset from `to_dict` output (raises KeyError/TypeError/ValueError when malformed)."""
        roles = tuple(
            Role(
                proto,
                role,
                tuple(int(u) for u in v.get("units", ())),
                tuple(str(p) for p in v.get("peers", ())),
            )
            for proto, by_role in sorted(d.get("roles", {}).items())
            for role, v in sorted(by_role.items())
        )
        level = d.get("purdue_level")

        def attr(name: str) -> Attribute | None:
            return Attribute.from_dict(d.get(name))

        return cls(
            asset_id=str(d["asset_id"]),
            ip=str(d["ip"]),
            mac=d.get("mac"),
            first_seen=float(d["first_seen"]),
            last_seen=float(d["last_seen"]),
            category=str(d.get("category", "unknown")),
            category_rule=str(d.get("category_rule", "")),
            category_evidence=str(d.get("category_evidence", "")),
            category_confidence=float(d.get("category_confidence", 0.0)),
            via_mac=d.get("via_mac"),
            zone=d.get("zone"),
            domain=d.get("domain"),
            purdue_level=float(level) if level is not None else None,
            protocols=tuple(str(p) for p in d.get("protocols", ())),
            roles=roles,
            peers=tuple(str(p) for p in d.get("peers", ())),
            events_sent=tuple((str(p), str(c), int(n)) for p, c, n in d.get("events_sent", ())),
            events_received=tuple((str(p), str(c), int(n)) for p, c, n in d.get("events_received", ())),
            flows=int(d.get("flows", 0)),
            ot_traffic=bool(d.get("ot_traffic", False)),
            via_ip=_opt_str(d.get("via_ip")),
            via_asset=_opt_str(d.get("via_asset")),
            bacnet_device_instance=_opt_int(d.get("bacnet_device_instance")),
            bacnet_network=_opt_int(d.get("bacnet_network")),
            bacnet_mac=_opt_str(d.get("bacnet_mac")),
            bacnet_vendor_id=_opt_int(d.get("bacnet_vendor_id")),
            bacnet_max_apdu=_opt_int(d.get("bacnet_max_apdu")),
            bacnet_segmentation=_opt_str(d.get("bacnet_segmentation")),
            bacnet_services=tuple(str(s) for s in d.get("bacnet_services", ())),
            vendor=attr("vendor"),
            model=attr("model"),
            firmware=attr("firmware"),
            product_code=attr("product_code"),
            product_name=attr("product_name"),
            mac_vendor=attr("mac_vendor"),
            application_software=attr("application_software"),
            object_name=attr("object_name"),
            location=attr("location"),
            description=attr("description"),
            serial_number=attr("serial_number"),
            mqtt_client_ids=tuple(str(v) for v in d.get("mqtt_client_ids", ())),
            mqtt_usernames=tuple(str(v) for v in d.get("mqtt_usernames", ())),
            mqtt_topics_published=tuple(str(v) for v in d.get("mqtt_topics_published", ())),
            mqtt_topics_subscribed=tuple(str(v) for v in d.get("mqtt_topics_subscribed", ())),
            mqtt_payload_types=tuple((str(k), int(n)) for k, n in d.get("mqtt_payload_types", ())),
            hostnames=tuple(
                Hostname(str(h["name"]), str(h["source"]), float(h["first_seen"]), float(h["last_seen"]))
                for h in d.get("hostnames", ())
            ),
        )


def _opt_int(value: Any) -> int | None:
    return int(value) if value is not None else None


def _opt_str(value: Any) -> str | None:
    return str(value) if value is not None else None
