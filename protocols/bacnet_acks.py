"""Direct byte parsers for the commonest complex ACKs: ReadProperty and ReadPropertyMultiple with plain values.

A BMS front end polls present values all day long, so these two ACKs are most of a BACnet capture's answers.
`read_property_ack(data)` and `read_property_multiple_ack(data)` read the service parameters straight from the
bytes, with no token list, when they have the everyday shape: context tags of one or two content bytes for the
property identifier and array index, and each value a single application-tagged primitive. They return exactly
the fields that protocols/bacnet_values.py's general decoder (tokenizer and service decoders) returns for the
same bytes with no problem, and None for anything else (another shape, a truncated or odd blob, a value that
renders with a problem): the caller then takes the general path, which reports what is wrong.
`tests/protocols/test_bacnet_values.py` checks both paths agree on every ACK of the test traces and on mutations.
"""

from __future__ import annotations

from struct import error as StructError
from typing import Any

from protocols.bacnet_enums import VALUE_NAMES, object_type_name, property_name
from protocols.bacnet_tags import _TF, APP, REAL, U32, Problems, render

__all__ = ["read_property_ack", "read_property_multiple_ack"]

Fields = dict[str, Any]
_DECIMAL = [str(i) for i in range(256)]
RESULT_CACHE = 4096
_results: dict[tuple[int, bytes], Fields] = {}


def _value(b: bytes, p: int, close: int, prop: int, e: Fields) -> int:
    """The single application-tagged primitive at b[p] followed by the closing tag `close`: its `values` and
    `value` into e; the offset after the closing tag, or -1 when the value is anything else."""
    h = b[p]
    num = h >> 4
    lvt = h & 7
    if h & 8 or num == 15 or lvt > 5:  # context tag, opening/closing tag, extended tag number, bad length code
        return -1
    if num == 1:  # Boolean: the value is in the length code, no content
        if lvt > 1:
            return -1
        s, n = p + 1, lvt
        end = s
    else:
        if lvt == 5:
            n = b[p + 1]
            if n > 253:
                return -1
            s = p + 2
        else:
            n = lvt
            s = p + 1
        end = s + n
    if b[end] != close:
        return -1
    if num == 4 and n == 4:  # Real: the commonest present value
        v = REAL.unpack_from(b, s)[0]
        t = f"{v:f}"
    elif (num == 9 or num == 2) and n == 1:  # a small enumerated or unsigned (units, event state, ...)
        v = b[s]
        names = VALUE_NAMES.get(prop)
        t = _DECIMAL[v] if names is None else names.get(v) or f"unknown-{v}"
    elif num == 8 and n == 2 and b[s] < 8:  # a bit string of one octet (status flags)
        t = _TF[b[s + 1]]
        v = t[: 8 - b[s]]
    else:
        probs: Problems = []
        v, t = render(b, (APP, num, s, n), probs)
        if probs:
            return -1
        if type(v) is int and (num == 2 or num == 9):
            names = VALUE_NAMES.get(prop)
            if names is not None:
                t = names.get(v) or f"unknown-{v}"
    e["values"] = [v]
    e["value"] = t
    return end + 1


def read_property_ack(b: bytes) -> Fields | None:
    """ReadProperty-ACK parameters ([0] object, [1] property, [2] index, [3] one primitive), else None."""
    try:
        if b[0] != 0x0C:
            return None
        oid = U32.unpack_from(b, 1)[0]
        h = b[5]
        if h == 0x19:
            prop = b[6]
            p = 7
        elif h == 0x1A:
            prop = (b[6] << 8) | b[7]
            p = 8
        else:
            return None
        f: Fields = {
            "object_type": object_type_name(oid >> 22),
            "instance_number": oid & 0x3FFFFF,
            "property": property_name(prop),
        }
        h = b[p]
        if h == 0x29:
            f["array_index"] = b[p + 1]
            p += 2
            h = b[p]
        elif h == 0x2A:
            f["array_index"] = (b[p + 1] << 8) | b[p + 2]
            p += 3
            h = b[p]
        if h != 0x3E:
            return None
        if _value(b, p + 1, 0x3F, prop, f) != len(b):
            return None
        return f
    except (IndexError, StructError):
        return None


def _end(b: bytes, p: int) -> int:
    """The offset just after the application-tagged primitive at b[p] (where its closing tag must be), else -1."""
    h = b[p]
    lvt = h & 7
    if h & 8 or h >= 0xF0 or lvt > 5:
        return -1
    if h >> 4 == 1:
        return p + 1 if lvt <= 1 else -1
    if lvt == 5:
        n = b[p + 1]
        return p + 2 + n if n <= 253 else -1
    return p + 1 + lvt


def _result(b: bytes, p: int, otype: str, instance: int) -> Fields | None:
    """One read-access result at b[p] (property, optional index, one primitive value) as a property entry."""
    h = b[p]
    if h == 0x29:
        prop = b[p + 1]
        p += 2
    else:  # 0x2A, checked by the caller
        prop = (b[p + 1] << 8) | b[p + 2]
        p += 3
    e: Fields = {"object_type": otype, "instance_number": instance, "property": property_name(prop)}
    h = b[p]
    if h == 0x39:
        e["array_index"] = b[p + 1]
        p += 2
    elif h == 0x3A:
        e["array_index"] = (b[p + 1] << 8) | b[p + 2]
        p += 3
    return e if _value(b, p + 1, 0x4F, prop, e) >= 0 else None


def read_property_multiple_ack(b: bytes) -> Fields | None:
    """ReadPropertyMultiple-ACK parameters (every result a property, optional index, one primitive), else None.

    Results repeat from one ACK to the next (status flags, units, names; a present value that did not change):
    each is kept by its object identifier and bytes (up to RESULT_CACHE of them) and shared between the ACKs
    that carry it, so read the entries and never modify them."""
    props: list[Fields] = []
    n = len(b)
    p = 0
    try:
        while p < n:
            if b[p] != 0x0C or b[p + 5] != 0x1E:  # [0] object identifier, then [1] the list of results
                return None
            oid = U32.unpack_from(b, p + 1)[0]
            otype = ""
            p += 6
            h = b[p]
            while h != 0x1F:
                q = p
                if h == 0x29:
                    p += 2
                elif h == 0x2A:
                    p += 3
                else:
                    return None
                h = b[p]
                if h == 0x39:
                    p += 2
                    h = b[p]
                elif h == 0x3A:
                    p += 3
                    h = b[p]
                if h != 0x4E:
                    return None
                end = _end(b, p + 1)
                if end < 0 or b[end] != 0x4F:
                    return None
                key = (oid, b[q:end])
                e = _results.get(key)
                if e is None:
                    if not otype:
                        otype = object_type_name(oid >> 22)
                    e = _result(b, q, otype, oid & 0x3FFFFF)
                    if e is None:
                        return None
                    if len(_results) >= RESULT_CACHE:
                        _results.clear()
                    _results[key] = e
                props.append(e)
                p = end + 1
                h = b[p]
            p += 1
    except (IndexError, StructError):
        return None
    if not props:
        return None
    return {"properties": props}
