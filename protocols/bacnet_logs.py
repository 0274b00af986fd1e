"""ICSNPP's BACnet detail logs from bacnet.jsonl rows: bacnet_discovery, bacnet_property, bacnet_device_control.

`log_rows(row)` takes one row of bacnet.jsonl (an event row as the JSONL writer builds it: `ts uid id.orig_h
id.orig_p id.resp_h id.resp_p src dst is_orig proto op kind` and the event's fields) and returns the detail rows
CISA ICSNPP-BACnet would write for that message, with its column names and order (newest ICSNPP, whose optional
routing columns `snet slen sadr dnet dlen dadr fwd_ip fwd_port` appear only when the message had them). Unset
columns are left out, as Zeek's JSON writer does. `source_h/p` and `destination_h/p` are the message's true
sender and receiver, `is_orig` whether the sender is the flow's originator.

- bacnet_discovery: Who-Is, I-Am, Who-Has, I-Have (pdu_service `who-is`, `i-am`, `who-has`, `i-have`).
- bacnet_property: ReadProperty (`read-property-request`, `read-property-ack`), WriteProperty (`write-property`),
  ReadPropertyMultiple (`read-property-multiple-request`, `read-property-multiple-ack`), WritePropertyMultiple
  (`write-property-multiple`; ICSNPP has no such row, ours follows write-property), ReadRange when decoded
  (`read-range-request`, `read-range-ack`), and ICSNPP's row for an Error answering one of the four property
  services (`ERROR: read_property`, the error code in `object_type`). A value of several primitives (e.g. an
  object-list) gives one row per primitive, as ICSNPP does; each object/property of a *Multiple message its rows.
- bacnet_device_control: DeviceCommunicationControl and ReinitializeDevice requests (time_duration,
  device_state, password) and their answers (result SUCCESS, ERROR, REJECT or ABORT, result_code). ICSNPP logs the
  password text; we never have it: `password` is "" when none was sent and "<redacted>" when one was.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DETAIL_LOGS", "PROPERTY_SERVICE", "discovery_columns", "log_rows"]

Row = dict[str, Any]
Rest = list[tuple[str, Row]]

DISCOVERY = "bacnet_discovery"
PROPERTY = "bacnet_property"
DEVICE_CONTROL = "bacnet_device_control"
DETAIL_LOGS = (DISCOVERY, PROPERTY, DEVICE_CONTROL)
REDACTED = "<redacted>"
_NO_COLUMNS: Row = {}  # shared and never filled: the routing columns of a row without any

_DISCOVERY_SERVICE = {"who_is": "who-is", "i_am": "i-am", "who_has": "who-has", "i_have": "i-have"}
_PROPERTY_OPS = frozenset(
    {"read_property", "write_property", "read_property_multiple", "write_property_multiple", "read_range"}
)
_ERROR_ROW_OPS = frozenset({"read_property", "read_property_multiple", "write_property", "write_property_multiple"})
_DEVICE_CONTROL_OPS = frozenset({"device_communication_control", "reinitialize_device"})
_ANSWER_RESULT = {"SIMPLE_ACK": "SUCCESS", "ERROR_PDU": "ERROR", "REJECT_PDU": "REJECT", "ABORT_PDU": "ABORT"}
PROPERTY_SERVICE = {  # (op, pdu_type) -> ICSNPP pdu_service
    ("read_property", "CONFIRMED_REQUEST"): "read-property-request",
    ("read_property", "COMPLEX_ACK"): "read-property-ack",
    ("write_property", "CONFIRMED_REQUEST"): "write-property",
    ("read_property_multiple", "CONFIRMED_REQUEST"): "read-property-multiple-request",
    ("read_property_multiple", "COMPLEX_ACK"): "read-property-multiple-ack",
    ("write_property_multiple", "CONFIRMED_REQUEST"): "write-property-multiple",
    ("read_range", "CONFIRMED_REQUEST"): "read-range-request",
    ("read_range", "COMPLEX_ACK"): "read-range-ack",
}


def _put(out: Row, name: str, value: Any) -> None:
    """Set a column unless the value is unset (None)."""
    if value is not None:
        out[name] = value


def _base(row: Row) -> Row:
    """The columns every ICSNPP BACnet log starts with."""
    get = row.get
    is_orig = bool(get("is_orig", True))
    orig_p, resp_p = get("id.orig_p"), get("id.resp_p")
    out: Row = {
        "ts": get("ts"), "uid": get("uid"), "id.orig_h": get("id.orig_h"), "id.orig_p": orig_p,
        "id.resp_h": get("id.resp_h"), "id.resp_p": resp_p, "is_orig": is_orig, "source_h": get("src"),
        "source_p": orig_p if is_orig else resp_p, "destination_h": get("dst"),
        "destination_p": resp_p if is_orig else orig_p,
    }  # fmt: skip
    if None in out.values():
        return {name: value for name, value in out.items() if value is not None}
    return out


def _routing(row: Row) -> Row:
    """ICSNPP's optional routing columns, from the NPDU and Forwarded-NPDU fields of the row."""
    out: Row = {}
    for net, adr in (("snet", "sadr"), ("dnet", "dadr")):
        number = row.get(net)
        if number is None:
            continue
        address = row.get(adr) or ""
        out[net] = number
        out[net[0] + "len"] = len(address) // 2 if isinstance(address, str) else 0
        if address:
            out[adr] = address
    fwd = row.get("forwarded_from")
    if isinstance(fwd, str) and ":" in fwd:
        host, _, port = fwd.rpartition(":")
        out["fwd_ip"] = host
        if port.isdigit():
            out["fwd_port"] = int(port)
    return out


def _routed(row: Row) -> Row:
    """The routing columns, or an empty dict when the row has none (the common case, checked cheaply)."""
    if "snet" in row or "dnet" in row or "forwarded_from" in row:
        return _routing(row)
    return _NO_COLUMNS


def _texts(value: Any) -> list[Any]:
    """One entry per primitive of an ICSNPP value rendering: a list as is, a single text as one, none as [None]."""
    if isinstance(value, list):
        return list(value) or [None]
    return [value]


def discovery_columns(row: Row, op: str) -> Row:
    """The bacnet_discovery columns of a Who-Is, I-Am, Who-Has or I-Have row after the leading ones, routing aside."""
    out: Row = {"pdu_service": _DISCOVERY_SERVICE[op]}
    if op == "i_have":
        _put(out, "device_id_type", row.get("device_id_type"))
        _put(out, "device_id_number", row.get("device_id_number"))
    if op == "i_am":  # ICSNPP puts the device's own identifier in object_type/instance_number
        _put(out, "object_type", row.get("object_type", row.get("device_id_type")))
        _put(out, "instance_number", row.get("instance_number", row.get("device_id_number")))
        _put(out, "vendor", row.get("vendor"))
    else:
        _put(out, "object_type", row.get("object_type"))
        _put(out, "instance_number", row.get("instance_number"))
    if op == "who_is" or op == "who_has":
        out["range"] = row.get("range") or "All"
    if op == "who_has":
        out["object_name"] = row.get("object_name") or "N/A"
    elif op == "i_have":
        out["object_name"] = row.get("object_name") or ""
    return out


def _discovery(row: Row, op: str) -> Rest:
    out = discovery_columns(row, op)
    out.update(_routed(row))
    return [(DISCOVERY, out)]


def _property_rows(row: Row, service: str, entries: list[Row]) -> Rest:
    """One row per primitive value of each object/property entry."""
    rows: Rest = []
    invoke = row.get("invoke_id")
    routing = _routed(row)
    for entry in entries:
        get = entry.get
        head: Row = {"pdu_service": service} if invoke is None else {"invoke_id": invoke, "pdu_service": service}
        value = get("object_type")
        if value is not None:
            head["object_type"] = value
        value = get("instance_number")
        if value is not None:
            head["instance_number"] = value
        value = get("property")
        if value is not None:
            head["property"] = value
        value = get("array_index")
        if value is not None:
            head["array_index"] = value
        priority = get("priority")
        value = get("value")
        if type(value) is str and not routing and priority is None:  # the common case: one row, nothing after
            head["value"] = value
            rows.append((PROPERTY, head))
            continue
        for text in _texts(value):
            out = head.copy()
            if text is not None:
                out["value"] = text
            if routing:
                out.update(routing)
            if priority is not None:
                out["priority"] = priority
            rows.append((PROPERTY, out))
    return rows


def _property(row: Row, op: str, pdu_type: Any) -> Rest:
    if pdu_type == "ERROR_PDU":
        if op not in _ERROR_ROW_OPS:
            return []
        out: Row = {}
        _put(out, "invoke_id", row.get("invoke_id"))
        out["pdu_service"] = f"ERROR: {op}"
        _put(out, "object_type", row.get("error_code"))  # sic: ICSNPP logs the error code there
        out.update(_routed(row))
        return [(PROPERTY, out)]
    service = PROPERTY_SERVICE.get((op, pdu_type))
    if service is None:
        return []
    if op.endswith("_multiple"):
        props = row.get("properties")
        entries = [p for p in props if isinstance(p, dict)] if isinstance(props, list) else []
        return _property_rows(row, service, entries)
    if op == "read_range":
        if row.get("object_type") is None:  # not decoded: nothing ICSNPP-like to say
            return []
        entry = dict(row)
        count = row.get("item_count")
        entry["value"] = f"item_count: {count}" if pdu_type == "COMPLEX_ACK" and count is not None else None
        return _property_rows(row, service, [entry])
    return _property_rows(row, service, [row])


def _device_control(row: Row, op: str, pdu_type: Any) -> Rest:
    out: Row = {}
    if pdu_type == "CONFIRMED_REQUEST":
        _put(out, "invoke_id", row.get("invoke_id"))
        out["pdu_service"] = op
        _put(out, "time_duration", row.get("time_duration"))
        _put(out, "device_state", row.get("device_state"))
        out["password"] = REDACTED if row.get("password") else ""
    elif pdu_type in _ANSWER_RESULT:
        _put(out, "invoke_id", row.get("invoke_id"))
        out["pdu_service"] = op
        out["result"] = row.get("result") or _ANSWER_RESULT[pdu_type]
        if pdu_type != "SIMPLE_ACK":
            _put(out, "result_code", row.get("result_code"))
    else:
        return []
    out.update(_routed(row))
    return [(DEVICE_CONTROL, out)]


def _rest(row: Row) -> Rest:
    """Each detail row's columns after the leading ones, with its log name."""
    if row.get("kind") == "weird":
        return []
    op = row.get("op")
    if op in _PROPERTY_OPS:
        return _property(row, op, row.get("pdu_type"))
    if op in _DISCOVERY_SERVICE:
        if row.get("pdu_type") != "UNCONFIRMED_REQUEST":
            return []
        return _discovery(row, op)
    if op in _DEVICE_CONTROL_OPS:
        return _device_control(row, op, row.get("pdu_type"))
    return []


def log_rows(row: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The ICSNPP detail rows (log name, row) for one bacnet.jsonl row; [] when ICSNPP has none for it."""
    rest = _rest(row)
    if not rest:
        return []
    base = _base(row)
    return [(log, {**base, **columns}) for log, columns in rest]
