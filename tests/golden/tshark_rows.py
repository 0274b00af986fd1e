"""Per-ADU Modbus tuples from tshark's field dumps and from our modbus.jsonl rows, in one comparable shape.

tshark (tests/traces/peers/tshark/**.tsv) writes one row per frame; a frame carrying several ADUs gives
comma-joined values in each cell, one value per ADU that has the field. Transaction id, unit id and function
code are in every ADU; the reference number and the bit/word count only in some function codes, so their
values are handed out, in order, to the ADUs whose function code carries them (`_CARRIES`, observed on every
single-ADU frame of the corpus). A frame whose counts do not fit that table raises `ValueError`: the dump
changed shape and the test must fail rather than guess.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from protocols.modbus import FUNCTION_CODES

MODBUS_PORT = 502
_REF, _WORDS, _BITS = "modbus.reference_num", "modbus.word_cnt", "modbus.bit_cnt"
# (is_response, function code) -> the tshark fields the ADU carries, besides tid, unit, function, exception
_CARRIES: dict[tuple[bool, int], tuple[str, ...]] = {
    **{(False, fc): (_REF, _BITS) for fc in (1, 2, 15)},
    **{(False, fc): (_REF, _WORDS) for fc in (3, 4, 16)},
    **{(False, fc): (_REF,) for fc in (5, 6, 22, 24)},
    **{(True, fc): (_REF,) for fc in (5, 6)},
    (True, 15): (_REF, _BITS),
    (True, 16): (_REF, _WORDS),
}
_CODE_OF = {name: code for code, name in FUNCTION_CODES.items()}


class Adu(NamedTuple):
    """One Modbus ADU as both sides can describe it (ref and count only where tshark shows them)."""

    src: str
    sport: int
    dst: str
    dport: int
    tid: int
    unit: int
    fc: int  # without the 0x80 exception bit
    exception: int | None
    ref: int | None
    qty: int | None  # the bit or word count


def _carried(response: bool, fc: int, exception: int | None) -> tuple[str, ...]:
    """The optional tshark fields an ADU with this direction, function and exception carries."""
    return () if exception is not None else _CARRIES.get((response, fc), ())


def _ints(cell: str) -> list[int]:
    return [int(v) for v in cell.split(",")] if cell else []


def tshark_adus(tsv: Path) -> list[tuple[int, Adu]]:
    """Every Modbus ADU of a tshark dump, with the number of the frame that completed it."""
    out: list[tuple[int, Adu]] = []
    with tsv.open(newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            tids = _ints(row["mbtcp.trans_id"])
            if not tids:
                continue
            frame = int(row["frame.number"])
            units, fcs = _ints(row["mbtcp.unit_id"]), _ints(row["modbus.func_code"])
            excs = _ints(row["modbus.exception_code"])
            if not len(units) == len(fcs) == len(tids):
                raise ValueError(f"{tsv.name} frame {frame}: {len(tids)} tids, {len(units)} units, {len(fcs)} fcs")
            if len(excs) not in (0, len(tids)):  # no frame of the corpus mixes exceptions and other ADUs
                raise ValueError(f"{tsv.name} frame {frame}: {len(excs)} exception codes for {len(tids)} ADUs")
            sport, dport = int(row["tcp.srcport"]), int(row["tcp.dstport"])
            response = sport == MODBUS_PORT and dport != MODBUS_PORT  # how tshark's mbtcp dissector decides
            values = {key: iter(_ints(row[key])) for key in (_REF, _WORDS, _BITS)}
            need = {key: 0 for key in values}
            adus: list[Adu] = []
            for i, (tid, unit, fc) in enumerate(zip(tids, units, fcs, strict=True)):
                exc = excs[i] if excs else None
                got: dict[str, int | None] = {key: None for key in values}
                for key in _carried(response, fc, exc):
                    need[key] += 1
                    got[key] = next(values[key], None)
                count = got[_WORDS] if got[_WORDS] is not None else got[_BITS]
                adus.append(Adu(row["ip.src"], sport, row["ip.dst"], dport, tid, unit, fc, exc, got[_REF], count))
            for key in values:
                if need[key] != len(_ints(row[key])):
                    raise ValueError(f"{tsv.name} frame {frame}: {key} does not fit the ADUs' function codes")
            out.extend((frame, adu) for adu in adus)
    return out


def func_code(func: str) -> int:
    """The function code (without the 0x80 bit) of a modbus.log func name: NAME, NAME_EXCEPTION, unknown-N."""
    if func.startswith("unknown-"):
        return int(func[8:]) & 0x7F
    return _CODE_OF[func] if func in _CODE_OF else _CODE_OF[func.removesuffix("_EXCEPTION")]


def our_adus(rows: Iterable[dict]) -> list[Adu]:
    """Our modbus.jsonl message rows (weirds left out) in tshark's shape."""
    out: list[Adu] = []
    for r in rows:
        if r["kind"] == "weird":
            continue
        orig = r["is_orig"]
        sport, dport = (r["id.orig_p"], r["id.resp_p"]) if orig else (r["id.resp_p"], r["id.orig_p"])
        fc = func_code(r["func"])
        exc = r.get("exception_code") if r["kind"] == "exception" else None
        carried = _carried(r["kind"] != "request", fc, exc)
        ref = r.get("address") if _REF in carried else None
        count = r.get("quantity") if _WORDS in carried or _BITS in carried else None
        out.append(Adu(r["src"], sport, r["dst"], dport, r["tid"], r["unit"], fc, exc, ref, count))
    return out
