"""What BACnet messages tell the asset inventory: op sets, device-object properties, and the identity they carry.

Pure helpers on `AssetRecord`s; `appliance.inventory` decides which record an event belongs to (the IP sender,
the origin named by a BBMD's Forwarded-NPDU, or the routed device named by SNET/SADR) and calls these. Fields
follow the BACnet event schema (ICSNPP names): `device_id_number`, `object_type`, `instance_number`, `vendor`,
`vendor_id`, `max_apdu`, `segmentation`, `property`, `value`, `values`, `properties`, `networks`, ...
"""

from __future__ import annotations

from typing import Any

from appliance.asset_record import MAX_UNITS, AssetRecord
from protocols.bacnet_names import OP_CLASSES

I_AM = "bacnet/i-am"
READ_PROPERTY = "bacnet/read-property"

MAX_INSTANCE = 4194302  # 4194303 is the wildcard "any device" instance
I_AM_VENDOR_CONFIDENCE = 0.8  # the ASHRAE name of the vendor id the device announces
PROPERTY_CONFIDENCE = 0.9  # the device's own device-object properties

# The operation classes of BACnet ops: one table, the decoder's (the inventory's default classifier uses it for
# protocol "bacnet" when no op_class function is given).
BACNET_OP_CLASSES: dict[str, str] = OP_CLASSES

# Requests a device sends about itself or its own objects: the sender is the BACnet server, an answer comes
# from the client (the subscriber that acknowledges a notification).
ANNOUNCE_OPS = frozenset(
    {"i_am", "i_have", "who_am_i", "confirmed_cov_notification", "unconfirmed_cov_notification",
     "confirmed_event_notification", "unconfirmed_event_notification"}
)
NO_ROLE_OPS = frozenset({"segment_ack", "reject", "abort"})  # either side sends these
# Network-layer messages that only a router sends; the `networks` field lists the networks it reaches.
ROUTER_OPS = frozenset(
    {"i_am_router_to_network", "i_could_be_router_to_network", "router_busy_to_network",
     "router_available_to_network", "initialize_routing_table_ack", "reject_message_to_network"}
)
NETWORK_OPS = ROUTER_OPS | frozenset(
    {"who_is_router_to_network", "initialize_routing_table", "establish_connection_to_network",
     "disconnect_connection_to_network", "challenge_request", "security_payload", "security_response",
     "request_key_update", "update_key_set", "update_distribution_key", "request_master_key", "set_master_key",
     "what_is_network_number", "network_number_is"}
)
BVLC_OPS = frozenset(
    {"bvlc_result", "write_bdt", "read_bdt", "read_bdt_ack", "register_foreign_device", "read_fdt",
     "read_fdt_ack", "delete_fdt_entry", "secure_bvll"}
)
BBMD_ANSWERS = frozenset({"bvlc_result", "read_bdt_ack", "read_fdt_ack"})  # as responses (ACK), not NAKs
FORWARDED = "Forwarded_NPDU"
BROADCAST = "Original_Broadcast_NPDU"
DISTRIBUTE = frozenset({"Distribute_Broadcast_to_Network", "Distribute_Broadcast_To_Network"})  # ICSNPP: "to"
ENGINEERING_OPS = ("device_communication_control", "reinitialize_device", "atomic_write_file")
READ_OPS = ("read_property", "read_property_multiple")

# device-object property -> asset attribute
DEVICE_PROPERTIES = {
    "vendor-name": "vendor",
    "model-name": "model",
    "firmware-revision": "firmware",
    "application-software-version": "application_software",
    "object-name": "object_name",
    "location": "location",
    "description": "description",
    "serial-number": "serial_number",
}


def is_network_op(op: str) -> bool:
    """True for a network-layer (NPDU) or BVLC-only message, which has no client/server role."""
    return op in NETWORK_OPS or op in BVLC_OPS or op.startswith(("unknown-network-", "unknown-bvlc-"))


def instance_of(value: Any) -> int | None:
    """A device instance number, or None (not an int, out of range, or the 4194303 wildcard)."""
    return value if type(value) is int and 0 <= value <= MAX_INSTANCE else None


def network_of(value: Any) -> int | None:
    """A routed network number (1..65534), or None (absent, local, global broadcast 65535, malformed)."""
    return value if type(value) is int and 0 < value < 0xFFFF else None


def mac_of(value: Any) -> str | None:
    """A BACnet MAC address as lower-case hex (1..8 bytes), or None (absent, empty: broadcast, malformed)."""
    if not isinstance(value, str) or not 2 <= len(value) <= 16 or len(value) % 2:
        return None
    try:
        return bytes.fromhex(value).hex()
    except ValueError:
        return None


def forwarded_ip(value: Any) -> str | None:
    """The IP of a Forwarded-NPDU's original source from its `forwarded_from` text (`ip:port`)."""
    if not isinstance(value, str) or not value:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        return value
    return host.strip("[]") or None


def add_instance(rec: AssetRecord, instance: int) -> None:
    """Record the sender's own device instance: the asset's instance and a unit of its server role."""
    units = rec.role("bacnet", "server")[0]
    if instance not in units and len(units) < MAX_UNITS:
        units.add(instance)
    if rec.bacnet_instance != instance:
        rec.bacnet_instance = instance
        rec.cached = None


def learn_announcement(rec: AssetRecord, op: str, f: dict[str, Any]) -> None:
    """Identity from a message a device sends about itself (I-Am, I-Have, notifications); never raises."""
    if op == "i_am":
        instance = instance_of(f.get("device_id_number"))
        if instance is None and f.get("object_type") in ("device", None):
            instance = instance_of(f.get("instance_number"))
        if instance is not None:
            add_instance(rec, instance)
        vendor = f.get("vendor")
        current = rec.attrs.get("vendor")  # a surer vendor (the device's own vendor-name) is kept as it is
        if (isinstance(vendor, str) and (current is None or current.confidence <= I_AM_VENDOR_CONFIDENCE)
                and not vendor.lower().startswith("unknown")):
            rec.set_attr("vendor", vendor, I_AM, I_AM_VENDOR_CONFIDENCE)
        for name, key in (("bacnet_vendor_id", "vendor_id"), ("bacnet_max_apdu", "max_apdu")):
            value = f.get(key)
            if type(value) is int and value >= 0 and getattr(rec, name) != value:
                setattr(rec, name, value)
                rec.cached = None
        segmentation = f.get("segmentation")
        if isinstance(segmentation, str) and segmentation and rec.bacnet_segmentation != segmentation[:32]:
            rec.bacnet_segmentation = segmentation[:32]
            rec.cached = None
        return
    # I-Have names the answering device; COV and event notifications their initiating device
    instance = instance_of(f.get("device_id_number" if op == "i_have" else "initiating_device"))
    if instance is not None and rec.bacnet_instance is None:
        add_instance(rec, instance)


def _plain(entry: dict[str, Any]) -> Any:
    """The single plain value of a property entry: `values[0]`, else the `value` text without its quotes."""
    values = entry.get("values")
    if isinstance(values, list) and len(values) == 1 and isinstance(values[0], str | int | float):
        return values[0]
    text = entry.get("value")
    if isinstance(text, str):
        if len(text) >= 2 and text[0] == text[-1] == '"':
            return text[1:-1]
        return text
    return None


def learn_device_properties(rec: AssetRecord, op: str, f: dict[str, Any]) -> None:
    """Identity from a ReadProperty(-Multiple) ACK of the sender's own DEVICE object; never raises."""
    if op == "read_property":
        entries: Any = (f,)
    else:
        entries = f.get("properties")
        if not isinstance(entries, list | tuple):
            return
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("object_type") != "device" or entry.get("error_class"):
            continue
        instance = instance_of(entry.get("instance_number"))
        if instance is not None and rec.bacnet_instance is not None and instance != rec.bacnet_instance:
            continue  # not this device's own device object
        prop = entry.get("property")
        if not isinstance(prop, str):
            continue
        prop = prop.replace("_", "-")
        if prop == "object-identifier" and instance is None:  # a read of the wildcard device names the real one
            values = entry.get("values")
            named = values[0] if isinstance(values, list) and len(values) == 1 else None
            if isinstance(named, dict) and named.get("object_type") == "device":
                instance = instance_of(named.get("instance_number"))
        if instance is not None and rec.bacnet_instance is None:
            add_instance(rec, instance)
        attr = DEVICE_PROPERTIES.get(prop)
        value = _plain(entry)
        if value is None:
            continue
        if attr is not None:
            rec.set_attr(attr, value, READ_PROPERTY, PROPERTY_CONFIDENCE)
        elif prop == "vendor-identifier" and type(value) is int and rec.bacnet_vendor_id != value:
            rec.bacnet_vendor_id = value
            rec.cached = None
        elif prop == "max-apdu-length-accepted" and type(value) is int and rec.bacnet_max_apdu != value:
            rec.bacnet_max_apdu = value
            rec.cached = None
