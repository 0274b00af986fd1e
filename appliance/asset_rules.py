"""The category rule table, FC43 identity, operation classes, and freezing records into Assets.

`RULES` is ordered; the first rule whose evidence function returns words decides the category, and those words
are kept on the asset as `category_evidence`. Add a rule here with its rule id, category and confidence. The
mutable `AssetRecord` and the identity helpers live in `appliance.asset_record` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from appliance.asset_record import (
    MAX_ATTR_LEN,
    MAX_PEERS,
    MAX_ROLE_PEERS,
    MAX_SERVICES,
    MAX_UNITS,
    OT_PORTS,
    OT_PROTOCOLS,
    AssetRecord,
    add_bounded,
    clean_text,
    normalize_mac,
)
from appliance.bacnet_assets import BACNET_OP_CLASSES, ENGINEERING_OPS, READ_OPS
from appliance.model import ASSET_ATTRIBUTES, Asset, Attribute, Hostname, Role
from appliance.mqtt_rules import camera_images, camera_words, gateway_protocols, gateway_words, sensor_words

__all__ = [
    "FC43",
    "MAX_ATTR_LEN",
    "MAX_PEERS",
    "MAX_ROLE_PEERS",
    "MAX_SERVICES",
    "MAX_UNITS",
    "OT_PORTS",
    "OT_PROTOCOLS",
    "OUI",
    "RULES",
    "AssetRecord",
    "add_bounded",
    "apply_fc43",
    "categorize",
    "clean_text",
    "default_op_class",
    "freeze",
    "normalize_mac",
    "thaw",
]

FC43 = "modbus/fc43"
OUI = "oui"
MIN_FRONT_END_DEVICES = 3  # BACnet devices read before a host counts as a BMS front end
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
    if protocol == "bacnet":
        return BACNET_OP_CLASSES.get(op, "other")
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


# ---- category rules: (rule id, category, confidence, evidence function); first to return words wins ----


def _plc_identified(r: AssetRecord) -> str | None:
    vendor = r.attrs.get("vendor")
    if ("modbus", "server") not in r.roles or vendor is None or vendor.source != FC43:
        return None
    product = r.attrs.get("product_code") or r.attrs.get("model")
    what = vendor.value + (f" {product.value}" if product else "")
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


IT_DOMAINS = frozenset({"IT", "VPN", "DMZ"})
OT_CLIENT_ROLES = (("modbus", "client"), ("bacnet", "client"))


def _it_zone_ot_client(r: AssetRecord) -> str | None:
    """A host of an IT, VPN or DMZ zone that only ever acts as an OT client: an IT host reaching into OT, not an HMI,
    engineering workstation or BMS front end (those live in OT zones); the alerts say what it did there."""
    if r.domain not in IT_DOMAINS or not any(role in r.roles for role in OT_CLIENT_ROLES):
        return None
    if any(role in r.roles for role in (("modbus", "server"), ("bacnet", "server"))):
        return None
    used = sorted(p for p, role in r.roles if role == "client" and (p, role) in OT_CLIENT_ROLES)
    return f"a host of zone {r.zone} ({r.domain}) acting as a {' and '.join(used)} client"


def _hmi(r: AssetRecord) -> str | None:
    entry = r.roles.get(("modbus", "client"))
    if entry is None or len(entry[1]) < 2:
        return None
    return f"polls {len(entry[1])} Modbus servers"


def _numbers(values: set[int], limit: int = 8) -> str:
    ordered = sorted(values)
    return ", ".join(str(v) for v in ordered[:limit]) + (", ..." if len(ordered) > limit else "")


def _bacnet_router(r: AssetRecord) -> str | None:
    entry = r.roles.get(("bacnet", "router"))
    if entry is None:
        return None
    text = f"routes to BACnet network(s) {_numbers(entry[0]) or 'unknown'}"
    return text + (f"; relays messages of {len(entry[1])} routed device(s)" if entry[1] else "")


def _bbmd(r: AssetRecord) -> str | None:
    entry = r.roles.get(("bacnet", "bbmd"))
    if entry is None:
        return None
    return f"forwards BACnet/IP broadcasts (Forwarded-NPDU) or answers BDT/FDT requests ({len(entry[1])} peer(s))"


def _bacnet_engineering(r: AssetRecord) -> str | None:
    if ("bacnet", "client") not in r.roles:
        return None
    used = [op for op in ENGINEERING_OPS if op in r.bacnet_services]
    return f"sends BACnet device management services ({', '.join(used)})" if used else None


def _bacnet_reads(r: AssetRecord) -> int:
    entry = r.roles.get(("bacnet", "client"))
    if entry is None or not any(op in r.bacnet_services for op in READ_OPS):
        return 0
    return len(entry[1])


def _bms_front_end(r: AssetRecord) -> str | None:
    n = _bacnet_reads(r)
    if n < MIN_FRONT_END_DEVICES or "who_is" not in r.bacnet_services:
        return None
    return f"sends Who-Is and reads {n} BACnet devices (ReadProperty/ReadPropertyMultiple)"


def _bms_poller(r: AssetRecord) -> str | None:
    n = _bacnet_reads(r)
    if n < MIN_FRONT_END_DEVICES or ("bacnet", "server") in r.roles:
        return None
    return f"reads {n} BACnet devices (ReadProperty/ReadPropertyMultiple) and serves none"


def _bms_identified(r: AssetRecord) -> str | None:
    entry = r.roles.get(("bacnet", "server"))
    if entry is None or r.bacnet_instance is None:
        return None
    known = [a.value for a in (r.attrs.get("vendor"), r.attrs.get("model")) if a is not None]
    who = f" ({', '.join(known)})" if known else ""
    return f"BACnet device {r.bacnet_instance}{who} announcing itself or serving {len(entry[1])} client(s)"


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
    ("it-zone-ot-client", "IT host", 0.5, _it_zone_ot_client),
    ("modbus-engineering", "engineering workstation", 0.6, _engineering),
    ("mqtt-protocol-gateway", "IoT gateway", 0.7, gateway_protocols),
    ("modbus-poller", "HMI/SCADA", 0.6, _hmi),
    ("bacnet-router", "BACnet router", 0.8, _bacnet_router),
    ("bacnet-bbmd", "BBMD", 0.7, _bbmd),
    ("bacnet-engineering", "engineering workstation", 0.6, _bacnet_engineering),
    ("bacnet-front-end", "BMS workstation", 0.7, _bms_front_end),
    ("bacnet-poller", "BMS workstation", 0.5, _bms_poller),
    ("bacnet-server-identified", "BMS controller", 0.7, _bms_identified),
    ("bacnet-server", "BMS controller", 0.5, _bms),
    ("mqtt-server", "MQTT broker", 0.7, _broker),
    ("mqtt-camera-images", "IP camera", 0.8, camera_images),
    ("mqtt-camera-words", "IP camera", 0.6, camera_words),
    ("mqtt-gateway-words", "IoT gateway", 0.6, gateway_words),
    ("mqtt-sensor-words", "sensor", 0.5, sensor_words),
    ("non-ot-only", "IT host", 0.4, _it_host),
)


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
        via_ip=rec.via_ip,
        via_asset=rec.via_asset,
        bacnet_device_instance=rec.bacnet_instance,
        bacnet_network=rec.bacnet_network,
        bacnet_mac=rec.bacnet_mac,
        bacnet_vendor_id=rec.bacnet_vendor_id,
        bacnet_max_apdu=rec.bacnet_max_apdu,
        bacnet_segmentation=rec.bacnet_segmentation,
        bacnet_services=tuple(sorted(rec.bacnet_services)),
        application_software=attrs.get("application_software"),
        object_name=attrs.get("object_name"),
        location=attrs.get("location"),
        description=attrs.get("description"),
        serial_number=attrs.get("serial_number"),
        mqtt_client_ids=tuple(sorted(rec.mqtt_client_ids)),
        mqtt_usernames=tuple(sorted(rec.mqtt_usernames)),
        mqtt_topics_published=tuple(sorted(rec.mqtt_published)),
        mqtt_topics_subscribed=tuple(sorted(rec.mqtt_subscribed)),
        mqtt_payload_types=tuple(sorted(rec.mqtt_payload_types.items())),
        hostnames=tuple(
            sorted(
                (Hostname(n, s, f, last) for n, s, f, last in rec.hostnames.values()),
                key=lambda h: (h.first_seen, h.name),
            )
        ),
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
    rec.via_ip, rec.via_asset = a.via_ip, a.via_asset
    rec.bacnet_instance, rec.bacnet_network, rec.bacnet_mac = a.bacnet_device_instance, a.bacnet_network, a.bacnet_mac
    rec.bacnet_vendor_id, rec.bacnet_max_apdu = a.bacnet_vendor_id, a.bacnet_max_apdu
    rec.bacnet_segmentation = a.bacnet_segmentation
    rec.bacnet_services.update(a.bacnet_services)
    rec.mqtt_client_ids.update(a.mqtt_client_ids)
    rec.mqtt_usernames.update(a.mqtt_usernames)
    rec.mqtt_published.update(a.mqtt_topics_published)
    rec.mqtt_subscribed.update(a.mqtt_topics_subscribed)
    rec.mqtt_payload_types.update(dict(a.mqtt_payload_types))
    for h in a.hostnames:
        rec.hostnames[h.name.lower()] = [h.name, h.source, h.first_seen, h.last_seen]
    return rec
