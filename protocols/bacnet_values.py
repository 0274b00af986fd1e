"""BACnet service parameters: the deep decode of the services that feed the inventory and the property logs.

`decode_request(confirmed, service, data)`, `decode_ack(service, data)` (complex-ACK payload) and
`decode_error(service, data)` (Error-PDU payload) take the parameters after the APDU header and service choice
and return `(fields, problems)`: fields named as in the BACnet event schema, problems `(weird_name, addl)`.
They never raise, whatever the bytes: a malformed or truncated blob yields what could be read and a problem.

Coverage (service: fields):
- Who-Is: range (`All` or `low-high`).
- I-Am: object_type, instance_number, max_apdu, segmentation, vendor_id, vendor (ASHRAE vendor-id list).
- Who-Has: range, object_type and instance_number or object_name. I-Have: device_id_type, device_id_number,
  object_type, instance_number, object_name.
- ReadProperty request and ACK, WriteProperty: object_type, instance_number, property, array_index, value,
  values, priority (writes).
- ReadPropertyMultiple request and ACK, WritePropertyMultiple: properties (one dict per object/property:
  object_type, instance_number, property, array_index, value, values, priority, error_class, error_code).
- DeviceCommunicationControl: time_duration, device_state, password. ReinitializeDevice: device_state,
  password. `password` only says whether one was sent: its text is never read.
- AtomicReadFile request and ACK, AtomicWriteFile request and ACK: file_object, file_start_position,
  file_octet_count or file_record_count, file_data_length, end_of_file (sizes only, never the file data).
- TimeSynchronization, UTCTimeSynchronization: time.
- SubscribeCOV: subscriber_process_id, monitored_object_type, monitored_instance, issue_confirmed, lifetime.
- Confirmed and Unconfirmed COV notifications: subscriber_process_id, initiating_device, monitored_object_type,
  monitored_instance, time_remaining, properties.
- AcknowledgeAlarm: acknowledging_process_id, event_object_type, event_instance, event_state_acknowledged,
  ack_source.
- Error PDUs (every service): error_class, error_code; WritePropertyMultiple's error adds properties (the first
  failed write). The wrapped forms (ChangeList, CreateObject, ConfirmedPrivateTransfer, VTClose) are read too.
Other services decode to no fields and no problem.

`value` is ICSNPP's text rendering (see protocols/bacnet_tags.py): a string for one primitive value, a list of
strings (one per primitive, as ICSNPP logs one row per primitive) for several, absent for none; `values` holds
the same primitives as plain JSON values. A per-property error in a ReadPropertyMultiple ACK has ICSNPP's
`value` `PropertyError`. Weird names: bacnet_truncated_parameters, bacnet_invalid_tag, bacnet_invalid_value,
bacnet_unknown_character_set, bacnet_nesting_too_deep (protocols/bacnet_tags.py), bacnet_missing_parameter,
bacnet_unexpected_parameters (tags left after the parameters). The property services live here, the others in
protocols/bacnet_services.py; the tag codec and value rendering in protocols/bacnet_tags.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from protocols import bacnet_services as svc
from protocols.bacnet_acks import read_property_ack, read_property_multiple_ack
from protocols.bacnet_enums import ERROR_CLASSES, ERROR_CODES, VALUE_NAMES, name, object_type_name, property_name
from protocols.bacnet_tags import (
    APP,
    CLOSE,
    CTX,
    MISSING,
    OPEN,
    Fields,
    Problems,
    Token,
    constructed,
    missing,
    objid_at,
    tok_at,
    tokenize,
    uint,
    uint_at,
)

_NO_TOKEN: Token = (-1, -1, 0, 0)
ServiceDecoder = Callable[[bytes, list[Token], Fields, Problems], int]

EXTRA = "bacnet_unexpected_parameters"
INTERNAL = "bacnet_decoder_error"


def _set_value(e: Fields, values: list[Any], texts: list[str]) -> None:
    """Store a property value's primitives as `values` and their ICSNPP texts as `value`."""
    e["values"] = values
    if len(texts) == 1:
        e["value"] = texts[0]
    elif texts:
        e["value"] = texts


def _obj_prop(b: bytes, toks: list[Token], f: Fields, probs: Problems) -> tuple[int, int]:
    """[0] object identifier, [1] property identifier, [2] optional array index into f; (next index, property)."""
    o, p = objid_at(b, toks, 0, CTX, 0), uint_at(b, toks, 1, CTX, 1)
    if o is None or p is None:
        return missing(toks, probs, "object identifier and property identifier"), -1
    f["object_type"] = object_type_name(o[0])
    f["instance_number"] = o[1]
    f["property"] = property_name(p)
    idx = uint_at(b, toks, 2, CTX, 2)
    if idx is None:
        return 2, p
    f["array_index"] = idx
    return 3, p


def _rp(b: bytes, toks: list[Token], f: Fields, probs: Problems) -> int:
    return _obj_prop(b, toks, f, probs)[0]


def _rp_ack(b: bytes, toks: list[Token], f: Fields, probs: Problems) -> int:
    i, p = _obj_prop(b, toks, f, probs)
    if p < 0:
        return i
    if tok_at(toks, i, OPEN, 3) is None:
        return missing(toks, probs, "read-property-ack property value")
    values, texts, i = constructed(b, toks, i, probs, VALUE_NAMES.get(p))
    _set_value(f, values, texts)
    return i


def _wp(b: bytes, toks: list[Token], f: Fields, probs: Problems) -> int:
    i, p = _obj_prop(b, toks, f, probs)
    if p < 0:
        return i
    if tok_at(toks, i, OPEN, 3) is None:
        return missing(toks, probs, "write-property property value")
    values, texts, i = constructed(b, toks, i, probs, VALUE_NAMES.get(p))
    _set_value(f, values, texts)
    prio = uint_at(b, toks, i, CTX, 4)
    if prio is None:
        return i
    f["priority"] = prio
    return i + 1


def _property_ref(b: bytes, toks: list[Token], i: int, base: Fields, prop: int) -> tuple[Fields, int]:
    """The entry for property `prop` (its [0] tag at toks[i]) and an optional [1] array index after it."""
    e = dict(base)
    e["property"] = property_name(prop)
    i += 1
    idx = uint_at(b, toks, i, CTX, 1)
    if idx is not None:
        e["array_index"] = idx
        i += 1
    return e, i


def _property_values(b: bytes, toks: list[Token], i: int, base: Fields, out: list[Fields], probs: Problems) -> int:
    """A SEQUENCE OF BACnetPropertyValue up to the closing tag that ends it; one dict per value into `out`."""
    n = len(toks)
    while i < n and toks[i][0] != CLOSE:
        p = uint_at(b, toks, i, CTX, 0)
        if p is None:
            return missing(toks, probs, "property value: property identifier")
        e, i = _property_ref(b, toks, i, base, p)
        if tok_at(toks, i, OPEN, 2) is None:
            return missing(toks, probs, "property value: value")
        values, texts, i = constructed(b, toks, i, probs, VALUE_NAMES.get(p))
        _set_value(e, values, texts)
        prio = uint_at(b, toks, i, CTX, 3)
        if prio is not None:
            e["priority"] = prio
            i += 1
        out.append(e)
    return i + 1  # past the closing tag


def _object_lists(
    b: bytes, toks: list[Token], f: Fields, probs: Problems, item: Callable[..., int], ack: bool = False
) -> int:
    """RPM/WPM: repeated [0] object identifier, [1] list; `item(b, toks, i, base, props, probs)` reads a list."""
    props: list[Fields] = []
    f["properties"] = props
    i, n = 0, len(toks)
    while i < n:
        o = objid_at(b, toks, i, CTX, 0)
        if o is None:
            return missing(toks, probs, "object identifier")
        base: Fields = {"object_type": object_type_name(o[0]), "instance_number": o[1]}
        i += 1
        if tok_at(toks, i, OPEN, 1) is None:
            if ack:  # a ReadAccessResult's list of results is optional
                continue
            return missing(toks, probs, "list of properties")
        i = item(b, toks, i + 1, base, props, probs)
    if not props and (not ack or not toks):
        probs.append((MISSING, "no object/property"))
    return i


def _references(b: bytes, toks: list[Token], i: int, base: Fields, out: list[Fields], probs: Problems) -> int:
    """ReadPropertyMultiple request: BACnetPropertyReference ([0] property, [1] array index) up to [1]'s close."""
    n = len(toks)
    while i < n and toks[i][0] != CLOSE:
        p = uint_at(b, toks, i, CTX, 0)
        if p is None:
            return missing(toks, probs, "property reference")
        e, i = _property_ref(b, toks, i, base, p)
        out.append(e)
    return i + 1


def _results(b: bytes, toks: list[Token], i: int, base: Fields, out: list[Fields], probs: Problems) -> int:
    """ReadPropertyMultiple ACK: [2] property, [3] index, then [4] value or [5] error, up to [1]'s close."""
    n = len(toks)
    while i < n:
        t = toks[i]
        if t[0] == CLOSE:
            break
        p = uint(b, t) if t[0] == CTX and t[1] == 2 else None
        if p is None:
            return missing(toks, probs, "read access result: property identifier")
        e = dict(base)
        e["property"] = property_name(p)
        i += 1
        t = toks[i] if i < n else _NO_TOKEN
        if t[0] == CTX and t[1] == 3:
            idx = uint(b, t)
            if idx is not None:
                e["array_index"] = idx
            i += 1
            t = toks[i] if i < n else _NO_TOKEN
        if t[0] == OPEN and t[1] == 4:
            values, texts, i = constructed(b, toks, i, probs, VALUE_NAMES.get(p))
            _set_value(e, values, texts)
        elif t[0] == OPEN and t[1] == 5:
            i = _error(b, toks, i + 1, e, probs)
            e["value"] = "PropertyError"
            if tok_at(toks, i, CLOSE, 5) is None:
                return missing(toks, probs, "read access result: end of the property access error")
            i += 1
        else:
            return missing(toks, probs, "read access result: value or error")
        out.append(e)
    return i + 1


def _rpm(b: bytes, toks: list[Token], f: Fields, probs: Problems) -> int:
    return _object_lists(b, toks, f, probs, _references)


def _rpm_ack(b: bytes, toks: list[Token], f: Fields, probs: Problems) -> int:
    return _object_lists(b, toks, f, probs, _results, ack=True)


def _wpm(b: bytes, toks: list[Token], f: Fields, probs: Problems) -> int:
    return _object_lists(b, toks, f, probs, _property_values)


def _cov_notification(b: bytes, toks: list[Token], f: Fields, probs: Problems) -> int:
    sp, d = uint_at(b, toks, 0, CTX, 0), objid_at(b, toks, 1, CTX, 1)
    o, tr = objid_at(b, toks, 2, CTX, 2), uint_at(b, toks, 3, CTX, 3)
    if sp is None or d is None or o is None or tr is None:
        return missing(toks, probs, "cov notification header")
    f["subscriber_process_id"] = sp
    f["initiating_device"] = d[1]
    f["monitored_object_type"] = object_type_name(o[0])
    f["monitored_instance"] = o[1]
    f["time_remaining"] = tr
    if tok_at(toks, 4, OPEN, 4) is None:
        return missing(toks, probs, "cov notification list of values")
    props: list[Fields] = []
    f["properties"] = props
    base: Fields = {"object_type": f["monitored_object_type"], "instance_number": o[1]}
    return _property_values(b, toks, 5, base, props, probs)


def _error(b: bytes, toks: list[Token], i: int, f: Fields, probs: Problems) -> int:
    """Error ::= error-class ENUMERATED, error-code ENUMERATED (application tags) at toks[i]; next index."""
    cls, code = uint_at(b, toks, i, APP, 9), uint_at(b, toks, i + 1, APP, 9)
    if cls is None or code is None:
        return missing(toks, probs, "error class and code")
    f["error_class"] = name(ERROR_CLASSES, cls)
    f["error_code"] = name(ERROR_CODES, code)
    return i + 2


_UNCONFIRMED: dict[int, ServiceDecoder] = {
    0: svc.i_am, 1: svc.i_have, 2: _cov_notification, 6: svc.time_sync, 7: svc.who_has, 8: svc.who_is,
    9: svc.time_sync,
}
_CONFIRMED: dict[int, ServiceDecoder] = {
    0: svc.ack_alarm, 1: _cov_notification, 5: svc.subscribe_cov, 6: svc.arf, 7: svc.awf, 12: _rp, 14: _rpm,
    15: _wp, 16: _wpm, 17: svc.dcc, 20: svc.reinit,
}
_ACKS: dict[int, ServiceDecoder] = {6: svc.arf_ack, 7: svc.awf_ack, 12: _rp_ack, 14: _rpm_ack}


def _run(dec: ServiceDecoder, data: bytes, f: Fields) -> Problems:
    """Tokenize, decode, and report what is wrong; the last-resort guard keeps any bug from raising."""
    probs: Problems = []
    try:
        b = data if type(data) is bytes else bytes(data)
        toks, bad = tokenize(b, 0, len(b))
        i = dec(b, toks, f, probs)
        if bad is not None:  # a truncated/malformed blob: missing parameters are its consequence
            probs = [p for p in probs if p[0] != MISSING]
            probs.append(bad)
        elif i < len(toks):
            probs.append((EXTRA, f"{len(toks) - i} tags after the service parameters"))
    except Exception as exc:  # pragma: no cover - must never happen; the fuzz tests check it does not
        probs.append((INTERNAL, f"{type(exc).__name__}: {exc}"))
    return probs


def decode_request(confirmed: bool, service: int, data: bytes) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Decode a confirmed or unconfirmed request's service parameters into (fields, problems)."""
    f: Fields = {}
    dec = (_CONFIRMED if confirmed else _UNCONFIRMED).get(service)
    return f, (_run(dec, data, f) if dec is not None else [])


def decode_ack(service: int, data: bytes) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Decode a complex ACK's service parameters into (fields, problems)."""
    if service == 12 or service == 14:  # the everyday shapes first, straight from the bytes
        fast = (read_property_ack if service == 12 else read_property_multiple_ack)(bytes(data))
        if fast is not None:
            return fast, []
    f: Fields = {}
    dec = _ACKS.get(service)
    return f, (_run(dec, data, f) if dec is not None else [])


def _error_pdu(b: bytes, toks: list[Token], f: Fields, probs: Problems, service: int) -> int:
    """Error PDU: a plain Error, or one wrapped in [0] and followed by service-specific parameters."""
    if tok_at(toks, 0, OPEN, 0) is None:
        return _error(b, toks, 0, f, probs)
    i = _error(b, toks, 1, f, probs)
    if tok_at(toks, i, CLOSE, 0) is None:
        return missing(toks, probs, "end of the wrapped error")
    i += 1
    if service == 16 and tok_at(toks, i, OPEN, 1) is not None:  # WritePropertyMultiple: first failed write
        e: Fields = {}
        ref = toks[i + 1:i + 5]  # [0] object, [1] property, [2] optional array index, closing [1]
        j, p = _obj_prop(b, ref, e, probs)
        if p < 0 or tok_at(ref, j, CLOSE, 1) is None:
            return missing(toks, probs, "write-property-multiple error: first failed write")
        e["error_class"], e["error_code"] = f["error_class"], f["error_code"]
        f["properties"] = [e]
        return i + 2 + j
    if i >= len(toks) and service in (8, 9, 10, 16, 18):  # these wrapped forms go on with mandatory parameters
        return missing(toks, probs, "parameters after the wrapped error")
    return len(toks)  # the other wrapped forms' trailing parameters are not decoded


def decode_error(service: int, data: bytes) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Decode an Error PDU's parameters (error class and code, plus the WritePropertyMultiple form)."""
    f: Fields = {}
    return f, _run(lambda b, t, ff, p: _error_pdu(b, t, ff, p, service), data, f)


# Service parameters repeat: a front end polls the same objects and properties over and over, a device announces
# itself with the same I-Am. `decode_shared` memoises the decoders by content (blobs up to CACHE_BLOB bytes) in two
# generations of up to CACHE_ENTRIES each: when the young one is full it becomes the old one, and a result found
# in the old generation moves back to the young one (a cheap approximation of least-recently-used). `memo_get`
# looks a (which, service, data) key up in the young generation only: a hit without a call, for hot paths.
CONFIRMED, UNCONFIRMED, ACK, ERROR = range(4)
CACHE_ENTRIES = 1024
CACHE_BLOB = 256
Decoded = tuple[dict[str, Any], list[tuple[str, str]]]
_young: dict[tuple[int, int, bytes], Decoded] = {}
_old: dict[tuple[int, int, bytes], Decoded] = {}
memo_get = _young.get


def _decode(which: int, service: int, data: bytes) -> Decoded:
    if which == ACK:
        return decode_ack(service, data)
    if which == ERROR:
        return decode_error(service, data)
    return decode_request(which == CONFIRMED, service, data)


def decode_shared(which: int, service: int, data: bytes) -> Decoded:
    """What decode_request (which CONFIRMED or UNCONFIRMED), decode_ack (ACK) or decode_error (ERROR) returns,
    memoised by content: the result may be shared with other callers, so read it and never modify it."""
    if len(data) > CACHE_BLOB or type(data) is not bytes:
        return _decode(which, service, data)
    key = (which, service, data)
    hit = _young.get(key)
    if hit is None:
        hit = _old.get(key)
        if hit is None:
            hit = _decode(which, service, data)
        if len(_young) >= CACHE_ENTRIES:
            _old.clear()
            _old.update(_young)
            _young.clear()
        _young[key] = hit
    return hit
