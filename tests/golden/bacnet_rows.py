"""Per-frame BACnet tuples from tshark's field dumps and from our bacnet.jsonl / weird.jsonl rows, in one shape.

tshark (tests/traces/peers/tshark/**.tsv) writes one row per frame; a cell holds every value of its field in the
frame, comma-joined (an I-Have names two object identifiers, an object-list ACK hundreds). We decode one event per
BACnet message: one per frame, except a segmented message, which is one event when its last segment arrives.
Both sides become a `Frame`: its fields are tshark's columns as numbers, and ours are derived from the row's named
fields through the decoder's own name tables (an unknown name raises `KeyError`: the test must fail, not guess).
Rows are paired with frames by (timestamp in microseconds, sender, receiver); on BACnet/Ethernet (802.2 LLC) the
sender and receiver are MAC addresses and there are no ports.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from protocols.bacnet_enums import ABORT_REASONS, ERROR_CLASSES, ERROR_CODES, OBJECT_TYPES, PROPERTY_IDS, REJECT_REASONS
from protocols.bacnet_names import BVLC_FUNCTIONS, NETWORK_MESSAGES, PDU_TYPES

ObjectId = tuple[int, int]
Key = tuple[int, str, str]  # (ts in microseconds, sender, receiver)


class Frame(NamedTuple):
    """One BACnet frame as tshark and we can both describe it (numbers; tuples in the frame's order)."""

    src: str
    dst: str
    sport: int | None
    dport: int | None
    malformed: bool  # tshark: `_ws.malformed` set; ours: a weird record for this frame
    bvlc: int | None  # bvlc.function
    mesgtyp: int | None  # bacnet.mesgtyp (network-layer message type)
    dnet: tuple[int, ...]  # bacnet.dnet: the NPDU's DNET, then the networks a network message names
    snet: tuple[int, ...]  # bacnet.snet
    apdu_type: int | None  # bacapp.type
    invoke_id: int | None
    confirmed_service: int | None  # requests, simple/complex ACKs and errors
    unconfirmed_service: int | None
    objects: tuple[ObjectId, ...]  # bacapp.objectType with bacapp.instance_number
    properties: tuple[int, ...]  # bacapp.property_identifier
    vendor_ids: tuple[int, ...]
    error_class: tuple[int, ...]
    error_code: tuple[int, ...]
    reject_reason: int | None
    abort_reason: int | None


FIELDS = Frame._fields


def _reverse(table: dict[int, Any]) -> dict[Any, int]:
    return {name: code for code, name in table.items()}


_BVLC = {text: code for code, (text, _op) in BVLC_FUNCTIONS.items()}
_NETWORK = _reverse(NETWORK_MESSAGES)
_PDU = _reverse(PDU_TYPES)
_OBJECT = _reverse(OBJECT_TYPES)
_PROPERTY = _reverse(PROPERTY_IDS)
_ERROR_CLASS = _reverse(ERROR_CLASSES)
_ERROR_CODE = _reverse(ERROR_CODES)
_REJECT = _reverse(REJECT_REASONS)
_ABORT = _reverse(ABORT_REASONS)
_CONFIRMED_APDUS = frozenset({"CONFIRMED_REQUEST", "SIMPLE_ACK", "COMPLEX_ACK", "ERROR_PDU"})
_SPEC_OPS = frozenset({"read_property_multiple", "write_property_multiple"})
_BACNET_COLUMNS = ("bvlc.function", "bacnet.mesgtyp", "bacnet.dnet", "bacnet.snet", "bacapp.type")


def _code(table: dict[str, int], text: str) -> int:
    """The number of a name (`unknown-N` and proprietary numbers written as text included)."""
    if text in table:
        return table[text]
    number = text.removeprefix("unknown-")
    if number.isdigit():
        return int(number)
    raise KeyError(text)


def micros(ts: float | str) -> int:
    """A timestamp in whole microseconds (tshark's nanosecond text or our float seconds)."""
    if isinstance(ts, str):
        whole, _, frac = ts.partition(".")
        return int(whole) * 1_000_000 + int((frac + "000000")[:6])
    return round(ts * 1_000_000)


def _ints(cell: str) -> tuple[int, ...]:
    return tuple(int(v, 0) for v in cell.split(",")) if cell else ()


def _one(cell: str) -> int | None:
    values = _ints(cell)
    if len(values) > 1:
        raise ValueError(f"several values in a single-valued cell: {cell!r}")
    return values[0] if values else None


def tshark_frames(tsv: Path) -> list[tuple[int, Key, Frame]]:
    """Every frame of a dump that tshark decoded as BACnet: (frame number, pairing key, frame)."""
    out: list[tuple[int, Key, Frame]] = []
    with tsv.open(newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if not any(row[c] for c in _BACNET_COLUMNS):
                continue
            number = int(row["frame.number"])
            types, instances = _ints(row["bacapp.objectType"]), _ints(row["bacapp.instance_number"])
            if len(types) != len(instances):
                raise ValueError(f"{tsv.name} frame {number}: {len(types)} object types, {len(instances)} instances")
            ip = bool(row["ip.src"])
            src, dst = (row["ip.src"], row["ip.dst"]) if ip else (row["eth.src"], row["eth.dst"])
            frame = Frame(
                src=src,
                dst=dst,
                sport=int(row["udp.srcport"]) if ip else None,
                dport=int(row["udp.dstport"]) if ip else None,
                malformed=bool(row["_ws.malformed"]),
                bvlc=_one(row["bvlc.function"]),
                mesgtyp=_one(row["bacnet.mesgtyp"]),
                dnet=_ints(row["bacnet.dnet"]),
                snet=_ints(row["bacnet.snet"]),
                apdu_type=_one(row["bacapp.type"]),
                invoke_id=_one(row["bacapp.invoke_id"]),
                confirmed_service=_one(row["bacapp.confirmed_service"]),
                unconfirmed_service=_one(row["bacapp.unconfirmed_service"]),
                objects=tuple(zip(types, instances, strict=True)),
                properties=_ints(row["bacapp.property_identifier"]),
                vendor_ids=_ints(row["bacapp.vendor_identifier"]),
                error_class=_ints(row["bacapp.error_class"]),
                error_code=_ints(row["bacapp.error_code"]),
                reject_reason=_one(row["bacapp.reject_reason"]),
                abort_reason=_one(row["bacapp.abort_reason"]),
            )
            out.append((number, (micros(row["frame.time_epoch"]), src, dst), frame))
    return out


def _network_type(op: str) -> int:
    """The message type of a network-layer message from its op (`unknown-network-N` included)."""
    return int(op[16:]) if op.startswith("unknown-network-") else _NETWORK[op]


def _object(type_name: str, instance: int) -> ObjectId:
    return (_code(_OBJECT, type_name), instance)


def _value_objects(values: Iterable[Any]) -> list[ObjectId]:
    return [_object(v["object_type"], v["instance_number"]) for v in values if isinstance(v, dict)]


def _objects(r: dict[str, Any]) -> tuple[ObjectId, ...]:
    """Every object identifier of a message, in the order they stand in the APDU."""
    out: list[ObjectId] = []
    if "device_id_type" in r:  # I-Have
        out.append(_object(r["device_id_type"], r["device_id_number"]))
    if "initiating_device" in r:  # COV notifications
        out.append((_OBJECT["device"], r["initiating_device"]))
    if "monitored_object_type" in r:
        out.append(_object(r["monitored_object_type"], r["monitored_instance"]))
    if "object_type" in r and "instance_number" in r:
        out.append(_object(r["object_type"], r["instance_number"]))
    if "file_object" in r and r.get("pdu_type") == "CONFIRMED_REQUEST":
        out.append((_OBJECT["file"], r["file_object"]))
    out += _value_objects(r.get("values") or [])
    if r["op"] in _SPEC_OPS:  # one object per access specification, then its properties' object values
        last: ObjectId | None = None
        for p in r.get("properties") or []:
            obj = _object(p["object_type"], p["instance_number"])
            if obj != last:
                out.append(obj)
                last = obj
            out += _value_objects(p.get("values") or [])
    return tuple(out)


def _properties(r: dict[str, Any]) -> tuple[int, ...]:
    names = [r["property"]] if "property" in r else []
    names += [p["property"] for p in r.get("properties") or [] if "property" in p]
    return tuple(_code(_PROPERTY, n) for n in names)


def _errors(r: dict[str, Any], key: str, table: dict[str, int]) -> tuple[int, ...]:
    names = [r[key]] if key in r else []
    names += [p[key] for p in r.get("properties") or [] if key in p]
    return tuple(_code(table, n) for n in names)


def our_frame(r: dict[str, Any], malformed: bool = False) -> Frame:
    """One bacnet.jsonl row in tshark's shape (`malformed`: a weird was reported for the same frame)."""
    pdu = r.get("pdu_type")
    ip = r["proto"] == "udp"
    orig = r["is_orig"]
    sport, dport = (r["id.orig_p"], r["id.resp_p"]) if orig else (r["id.resp_p"], r["id.orig_p"])
    network = pdu == "NPDU"
    apdu = pdu is not None and not network
    return Frame(
        src=r["src"],
        dst=r["dst"],
        sport=sport if ip else None,
        dport=dport if ip else None,
        malformed=malformed,
        bvlc=_BVLC[r["bvlc_function"]] if "bvlc_function" in r else None,
        mesgtyp=_network_type(r["op"]) if network else None,
        dnet=((r["dnet"],) if "dnet" in r else ()) + (tuple(r.get("networks") or ()) if network else ()),
        snet=(r["snet"],) if "snet" in r else (),
        apdu_type=_PDU[pdu] if apdu else None,
        invoke_id=r.get("invoke_id"),
        confirmed_service=r.get("service_choice") if pdu in _CONFIRMED_APDUS else None,
        unconfirmed_service=r.get("service_choice") if pdu == "UNCONFIRMED_REQUEST" else None,
        objects=_objects(r) if apdu else (),
        properties=_properties(r) if apdu else (),
        vendor_ids=(r["vendor_id"],) if apdu and "vendor_id" in r else (),
        error_class=_errors(r, "error_class", _ERROR_CLASS) if apdu else (),
        error_code=_errors(r, "error_code", _ERROR_CODE) if apdu else (),
        reject_reason=_REJECT[r["reject_reason"]] if pdu == "REJECT_PDU" else None,
        abort_reason=_ABORT[r["abort_reason"]] if pdu == "ABORT_PDU" else None,
    )


def _bare(w: dict[str, Any]) -> Frame:
    """A frame we only reported as a weird: its endpoints and nothing decoded."""
    ip = w["proto"] == "udp"
    orig = w["src"] == w["id.orig_h"]
    sport, dport = (w["id.orig_p"], w["id.resp_p"]) if orig else (w["id.resp_p"], w["id.orig_p"])
    return Frame(w["src"], w["dst"], sport if ip else None, dport if ip else None, True,
                 None, None, (), (), None, None, None, None, (), (), (), (), (), None, None)  # fmt: skip


def our_frames(rows: Iterable[dict[str, Any]], weirds: Iterable[dict[str, Any]]) -> dict[Key, list[Frame]]:
    """Our BACnet events and weirds per pairing key (a frame with an event and a weird is one malformed frame)."""
    flagged: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    for w in weirds:
        if w.get("source") == "bacnet":
            flagged[(micros(w["ts"]), w["src"], w["dst"])].append(w)
    out: dict[Key, list[Frame]] = defaultdict(list)
    for r in rows:
        key = (micros(r["ts"]), r["src"], r["dst"])
        out[key].append(our_frame(r, malformed=key in flagged))
    for key, ws in flagged.items():
        if key not in out:
            out[key].append(_bare(ws[0]))
    return dict(out)


def differences(theirs: Frame, ours: Frame) -> dict[str, tuple[Any, Any]]:
    """The fields on which two frames differ: name -> (tshark's value, ours)."""
    return {f: (a, b) for f, a, b in zip(FIELDS, theirs, ours, strict=True) if a != b}
