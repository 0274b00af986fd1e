"""From a decoded OT request to the facts it states: its operation keys, roles, the points it writes and the values.

Pure functions of one event (no state). An operation key is a tuple of strings: Modbus (op, unit id); BACnet
(service, object types, properties[, priority for writes]) -- a ReadPropertyMultiple or a COV notification names
the sorted distinct object types and properties it lists; MQTT (packet type[, topic or filter, cut at N levels]).
A written point is (space, address): Modbus `<unit>:hr` / `<unit>:coil` and the register or coil number, BACnet
`<object type>:<instance>` and the property; its value is the number written, when there is one.
"""

from __future__ import annotations

from typing import Any

from appliance.model import ProtocolEvent
from protocols.bacnet_names import OP_CLASSES as BACNET_OP_CLASSES

OT_PROTOCOLS = frozenset({"modbus", "bacnet", "mqtt"})
COMMANDS = frozenset({"write", "command"})
BACNET_COMMANDS = frozenset(op for op, c in BACNET_OP_CLASSES.items() if c in COMMANDS)
# Modbus write functions -> (space, field of the first address, field of the count, field of the values)
_MODBUS_WRITES: dict[str, tuple[str, str, str, str]] = {
    "write_single_register": ("hr", "address", "quantity", "request_values"),
    "write_multiple_registers": ("hr", "address", "quantity", "request_values"),
    "write_single_coil": ("coil", "address", "quantity", "request_values"),
    "write_multiple_coils": ("coil", "address", "quantity", "request_values"),
    "mask_write_register": ("hr", "address", "", ""),
    "read_write_multiple_registers": ("hr", "write_start_address", "write_quantity", "write_registers"),
}
BACNET_WRITES = frozenset({"write_property", "write_property_multiple"})
# BACnet messages that answer another one (a Who-Is, a COV subscription): the request is judged, not its answers
REPLIES = frozenset({"i_am", "i_have", "unconfirmed_cov_notification", "confirmed_cov_notification",
                     "unconfirmed_event_notification", "confirmed_event_notification"})  # fmt: skip
MAX_POINTS_PER_WRITE = 128  # registers of one write that are looked at (a 123-register FC16 is the protocol's max)


def topic_key(topic: Any, levels: int) -> str:
    """An MQTT topic (or filter) cut at its first `levels` levels."""
    text = str(topic)
    parts = text.split("/", levels)
    return "/".join(parts[:levels]) if len(parts) > levels else text


def topic_shape(topic: str) -> str:
    """A topic with the levels that name one device (numbers, `pdu-1`) replaced by `+`, for comparing peers."""
    return "/".join("+" if any(c.isdigit() for c in part) else part for part in topic.split("/"))


def _filters(fields: dict[str, Any]) -> list[str]:
    topics = fields.get("topics")
    if isinstance(topics, list | tuple):
        return [str(t) for t in topics]
    return [str(topics)] if topics else []


def _bacnet_key(op: str, f: dict[str, Any]) -> tuple[str, ...]:
    props = f.get("properties")
    if isinstance(props, list) and props:
        types = ",".join(sorted({str(p.get("object_type", "")) for p in props if isinstance(p, dict)}))
        names = ",".join(sorted({str(p.get("property", "")) for p in props if isinstance(p, dict)}))
    else:
        types = str(f.get("object_type") or f.get("monitored_object_type") or "")
        names = str(f.get("property") or "")
    if op in BACNET_COMMANDS:
        prio = f.get("priority")
        if prio is None and isinstance(props, list):
            prio = next((p.get("priority") for p in props if isinstance(p, dict) and p.get("priority") is not None),
                        None)  # fmt: skip
        return (op, types, names, "" if prio is None else str(prio))
    return (op, types, names)


def op_keys(ev: ProtocolEvent, levels: int) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The event's channel operation (one tuple) and the operations it states (one per MQTT filter, else one)."""
    f = ev.fields
    protocol = ev.protocol
    if protocol == "modbus":
        key: tuple[str, ...] = (ev.op, str(f.get("unit", "")))
        return key, [key]
    if protocol == "bacnet":
        key = _bacnet_key(ev.op, f)
        return key, [key]
    if protocol == "mqtt":
        if ev.op == "publish":
            key = (ev.op, topic_key(f.get("topic", ""), levels))
            return key, [key]
        if ev.op in ("subscribe", "unsubscribe"):
            filters = [topic_key(t, levels) for t in _filters(f)]
            return (ev.op, ",".join(filters)), [(ev.op, t) for t in filters] or [(ev.op, "")]
    return (ev.op,), [(ev.op,)]


def is_command(ev: ProtocolEvent, op_class: str) -> bool:
    """True when the request commands its destination: any Modbus request (its sender acts as the device's
    master), a BACnet write or command."""
    if ev.protocol == "modbus":
        return True
    return ev.protocol == "bacnet" and op_class in COMMANDS


def roles(ev: ProtocolEvent, levels: int) -> list[tuple[str, str, str]]:
    """(address, protocol, role) facts of one request: Modbus master/slave; BACnet client/server of a confirmed
    service; MQTT publisher/subscriber of a topic prefix (its first two levels), and the broker."""
    protocol = ev.protocol
    if protocol == "modbus":
        return [(ev.src, protocol, "master"), (ev.dst, protocol, "slave")]
    if protocol == "bacnet":
        if ev.fields.get("pdu_type") == "CONFIRMED_REQUEST":
            return [(ev.src, protocol, "client"), (ev.dst, protocol, "server")]
        return []
    if protocol == "mqtt":
        if ev.op == "publish":
            return [(ev.src, protocol, "publisher " + topic_key(ev.fields.get("topic", ""), min(levels, 2))),
                    (ev.dst, protocol, "broker")]  # fmt: skip
        if ev.op == "subscribe":
            out = [(ev.src, protocol, "subscriber " + topic_key(t, min(levels, 2))) for t in _filters(ev.fields)]
            return [*out, (ev.dst, protocol, "broker")]
    return []


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def written_points(ev: ProtocolEvent) -> list[tuple[str, str, float | None]]:
    """The (space, address, value) points a write request sets (empty for other requests)."""
    f = ev.fields
    if ev.protocol == "modbus":
        spec = _MODBUS_WRITES.get(ev.op)
        if spec is None:
            return []
        space, first_field, count_field, values_field = spec
        first = f.get(first_field)
        if not isinstance(first, int):
            return []
        values = f.get(values_field) if values_field else None
        values = values if isinstance(values, list) else []
        count = f.get(count_field) if count_field else 1
        count = count if isinstance(count, int) and count > 0 else max(len(values), 1)
        unit = f.get("unit", "")
        return [(f"{unit}:{space}", str(first + i), _number(values[i]) if i < len(values) else None)
                for i in range(min(count, MAX_POINTS_PER_WRITE))]  # fmt: skip
    if ev.protocol == "bacnet" and ev.op in BACNET_WRITES:
        props = f.get("properties")
        items = props if isinstance(props, list) and ev.op == "write_property_multiple" else [f]
        out = []
        for p in items[:MAX_POINTS_PER_WRITE]:
            if not isinstance(p, dict) or "object_type" not in p:
                continue
            values = p.get("values")
            value = _number(values[0]) if isinstance(values, list) and len(values) == 1 else None
            out.append((f"{p.get('object_type')}:{p.get('instance_number', '')}", str(p.get("property", "")), value))
        return out
    return []


def discovery_kind(ev: ProtocolEvent) -> str | None:
    """The OT discovery an event is part of: fc43 (read device identification), fc17 (report server id), who_is,
    who_has, device_walk (a read of a device's object list); None for other events."""
    op = ev.op
    if ev.protocol == "modbus":
        return {"read_device_identification": "fc43", "report_slave_id": "fc17"}.get(op)
    if ev.protocol == "bacnet":
        if op in ("who_is", "who_has"):
            return op
        if op in ("read_property", "read_property_multiple"):
            f = ev.fields
            if f.get("property") == "object-list":
                return "device_walk"
            props = f.get("properties")
            if isinstance(props, list) and any(isinstance(p, dict) and p.get("property") == "object-list"
                                               for p in props):  # fmt: skip
                return "device_walk"
    return None


def named_objects(ev: ProtocolEvent) -> list[str]:
    """The BACnet objects whose name a read asks for (`type:instance`), for the device-walk window."""
    if ev.protocol != "bacnet" or ev.op not in ("read_property", "read_property_multiple"):
        return []
    f = ev.fields
    props = f.get("properties")
    items = props if isinstance(props, list) else [f]
    return [f"{p.get('object_type')}:{p.get('instance_number')}" for p in items
            if isinstance(p, dict) and p.get("property") == "object-name"]  # fmt: skip
