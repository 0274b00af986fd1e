"""ICSNPP's BACnet detail rows already encoded as JSON lines, for the everyday messages: the JSONL writer's hot path.

`log_lines(event)` gives, for one BACnet event whose bacnet.jsonl row is exactly its base and its fields (no field
unset, nested or named as a base column: the JSONL writer checks that before calling it), exactly the bytes that
encoding each row of protocols/bacnet_logs.py `log_rows(row)` as the JSONL writer does gives (compact JSON with
the keys in order, as orjson writes it, one line each, newline ended); or None for an event it leaves to
`log_rows` (one with routing columns or a Forwarded-NPDU, an error, a device-control message, an odd value).
It is cheaper because the pieces repeat: the leading columns of a flow direction (all but `ts`) and the
object/property columns of each property entry are encoded once and kept, in bounded caches; only `ts`, the
invoke id and the values are new in each line. tests/protocols/test_bacnet_fastpath.py checks the lines against
`log_rows` on every event of the test traces and of a seeded mixed capture.
"""

from __future__ import annotations

from typing import Any

import orjson

from protocols.bacnet_logs import DISCOVERY, PROPERTY, PROPERTY_SERVICE, discovery_columns
from protocols.base import FlowId, ProtocolEvent

__all__ = ["log_lines"]

Lines = list[tuple[str, bytes, int]]

CACHE_ENTRIES = 4096  # per cache (property lists: a quarter); a full cache is emptied and fills again
_dumps = orjson.dumps
_END = b"}\n"
_VALUE = b',"value":'
_PRIORITY = b',"priority":'
_INVOKE = [b',"invoke_id":' + str(i).encode() for i in range(256)]
_PROPERTY_SERVICE: dict[tuple[str, Any], bytes] = {  # (op, pdu_type) -> the encoded pdu_service column
    key: b',"pdu_service":' + _dumps(text)
    for key, text in PROPERTY_SERVICE.items()
    if key[0] != "read_range"  # (ReadRange rows are left to log_rows)
}
_MULTIPLE = frozenset({"read_property_multiple", "write_property_multiple"})
_DISCOVERY_OPS = frozenset({"who_is", "i_am", "who_has", "i_have"})
_ENTRY_COLUMNS = ("object_type", "instance_number", "property", "array_index")

_heads: dict[tuple[int, bool, str, str], tuple[FlowId, bytes]] = {}
_entries: dict[tuple[Any, ...], bytes] = {}
_lists: dict[int, tuple[list[Any], list[bytes]]] = {}
_entry_tails: dict[int, tuple[dict[str, Any], list[bytes]]] = {}


def _members(columns: dict[str, Any]) -> bytes:
    """The encoded members of `columns` with a leading comma (`,"a":1,"b":2`), b"" for none."""
    if not columns:
        return b""
    return b"," + _dumps(columns)[1:-1]


def _head(ev: ProtocolEvent) -> bytes | None:
    """The leading columns of every detail line of the event (from `{"ts":` to `destination_p`), None when one of
    them is unset (log_rows leaves it out)."""
    flow = ev.flow
    is_orig = ev.is_orig
    key = (id(flow), is_orig, ev.src, ev.dst)
    kept = _heads.get(key)
    if kept is not None and kept[0] is flow:  # (the flow is kept with it: its id is not reused meanwhile)
        rest = kept[1]
    else:
        if flow is None:
            return None
        is_orig = bool(is_orig)
        orig_p, resp_p = flow.orig_p, flow.resp_p
        columns = {
            "uid": flow.uid, "id.orig_h": flow.orig_h, "id.orig_p": orig_p, "id.resp_h": flow.resp_h,
            "id.resp_p": resp_p, "is_orig": is_orig, "source_h": ev.src, "source_p": orig_p if is_orig else resp_p,
            "destination_h": ev.dst, "destination_p": resp_p if is_orig else orig_p,
        }  # fmt: skip
        if None in columns.values():
            return None
        rest = _members(columns)
        if len(_heads) >= CACHE_ENTRIES:
            _heads.clear()
        _heads[key] = (flow, rest)
    if ev.ts is None:
        return None
    return b"".join((b'{"ts":', _dumps(ev.ts), rest))


def _entry(get: Any) -> bytes:
    """The object/property columns of one property entry (unset ones left out), encoded."""
    key = (get("object_type"), get("instance_number"), get("property"), get("array_index"))
    ot, instance, prop, index = key
    if (type(ot) is not str or type(instance) is not int or type(prop) is not str
            or (index is not None and type(index) is not int)) and not _plain_key(key):
        return _entry_members(key)  # (True or 1.0 would find the text of 1: such keys are not kept)
    part = _entries.get(key)
    if part is None:
        part = _entry_members(key)
        if len(_entries) >= CACHE_ENTRIES:
            _entries.clear()
        _entries[key] = part
    return part


def _plain_key(key: tuple[Any, ...]) -> bool:
    """True when every column of an entry key is unset or of its plain type (str, int, str, int)."""
    return all(value is None or type(value) is kind for value, kind in zip(key, (str, int, str, int), strict=True))


def _entry_members(key: tuple[Any, ...]) -> bytes:
    return _members({name: value for name, value in zip(_ENTRY_COLUMNS, key, strict=True) if value is not None})


def _tail(entry: dict[str, Any]) -> list[bytes] | None:
    """One property entry's lines after pdu_service (`,"object_type":...}` and its newline), one per primitive
    value; None for an odd value."""
    get = entry.get
    part = _entry(get)
    priority = get("priority")
    end = _END if priority is None else _PRIORITY + _dumps(priority) + _END
    value = get("value")
    if type(value) is str:
        return [b"".join((part, _VALUE, _dumps(value), end))]
    if value is None:
        return [part + end]
    if type(value) is list:
        texts = value or (None,)
        return [part + end if text is None else b"".join((part, _VALUE, _dumps(text), end)) for text in texts]
    return None


def _tails(entries: list[Any], keep: bool = False) -> list[bytes] | None:
    """Every line's columns after pdu_service, with a leading b"" (so that `pre.join` puts `pre` before each);
    None for an odd value. With `keep`, each entry's lines are kept while the entry is (the ACK decoder shares
    the entries of results that repeat)."""
    out = [b""]
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        if keep:
            kept = _entry_tails.get(id(entry))
            if kept is not None and kept[0] is entry:  # (the entry is kept with it: its id is not reused meanwhile)
                out.extend(kept[1])
                continue
        tail = _tail(entry)
        if tail is None:
            return None
        if keep:
            if len(_entry_tails) >= CACHE_ENTRIES:
                _entry_tails.clear()
            _entry_tails[id(entry)] = (entry, tail)
        out.extend(tail)
    return out


def _shared_tails(entries: list[Any]) -> list[bytes] | None:
    """_tails of a property list, kept while the list is: the decoder shares one list between repeated messages
    (a front end polling the same objects), whose lines then differ only in ts and invoke id."""
    kept = _lists.get(id(entries))
    if kept is not None and kept[0] is entries:  # (the list is kept with it: its id is not reused meanwhile)
        return kept[1]
    tails = _tails(entries, keep=True)
    if tails is not None:
        if len(_lists) >= CACHE_ENTRIES // 4:
            _lists.clear()
        _lists[id(entries)] = (entries, tails)
    return tails


def _property_lines(ev: ProtocolEvent, service: bytes, tails: list[bytes] | None) -> Lines | None:
    """The property lines: the leading columns, invoke id and pdu_service before each tail."""
    if tails is None:
        return None
    if len(tails) == 1:
        return []
    head = _head(ev)
    invoke = ev.fields.get("invoke_id")
    if head is None or (invoke is not None and (type(invoke) is not int or not 0 <= invoke < 256)):
        return None
    pre = head + service if invoke is None else b"".join((head, _INVOKE[invoke], service))
    return [(PROPERTY, pre.join(tails), len(tails) - 1)]


def log_lines(ev: ProtocolEvent) -> list[tuple[str, bytes, int]] | None:
    """The encoded ICSNPP detail lines (log name, lines, how many) of one plain BACnet event, or None: use
    `log_rows`."""
    f = ev.fields
    if ev.kind == "weird":
        return []
    if "snet" in f or "dnet" in f or "forwarded_from" in f:
        return None
    op = ev.op
    pdu_type = f.get("pdu_type")
    try:
        service = _PROPERTY_SERVICE.get((op, pdu_type))
        if service is not None:
            if op in _MULTIPLE:
                props = f.get("properties")
                return _property_lines(ev, service, _shared_tails(props) if isinstance(props, list) else [b""])
            get = f.get
            value = get("value")
            invoke = get("invoke_id")
            if get("priority") is None and type(invoke) is int and 0 <= invoke < 256:
                # the everyday ReadProperty request or ACK: one line, with one text or none
                if type(value) is str:
                    head = _head(ev)
                    if head is None:
                        return None
                    line = b"".join((head, _INVOKE[invoke], service, _entry(get), _VALUE, _dumps(value), _END))
                    return [(PROPERTY, line, 1)]
                if value is None:
                    head = _head(ev)
                    if head is None:
                        return None
                    return [(PROPERTY, b"".join((head, _INVOKE[invoke], service, _entry(get), _END)), 1)]
            return _property_lines(ev, service, _tails([f]))
        if op in _DISCOVERY_OPS and pdu_type == "UNCONFIRMED_REQUEST":
            head = _head(ev)
            if head is None:
                return None
            return [(DISCOVERY, b"".join((head, _members(discovery_columns(f, op)), _END)), 1)]
    except (orjson.JSONEncodeError, TypeError):  # an odd value (unhashable, no plain JSON): the general path
        return None
    return None
