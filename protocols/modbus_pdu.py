"""Shared pieces of the Modbus PDU body decoders: bounded register/bit readers, weird names, common bodies.

A request decoder is `f(buf, p, end, fields) -> problems`, a response decoder `f(buf, p, end, fields, req)`:
`buf[p:end]` is the PDU data after the function code, `fields` the event's dict (filled in place), `req` the
paired request's fields or None, `problems` None or a list of `(weird_name, addl)`. They never raise: every
read is bounds-checked against `end` first. The field names are documented in protocols/modbus.py.
"""

from __future__ import annotations

from collections.abc import Callable
from struct import Struct
from typing import Any

from protocols.modbus_names import DIAG_SUBFUNCTIONS, MEI_TYPES

Problems = list[tuple[str, str]] | None
Fields = dict[str, Any]
RequestDecoder = Callable[[bytes, int, int, Fields], Problems]
ResponseDecoder = Callable[[bytes, int, int, Fields, Fields | None], Problems]

U16 = Struct(">H")
U16x2 = Struct(">HH")
U16x3 = Struct(">HHH")
RW_HDR = Struct(">HHHHB")  # FC23 request: read addr, read qty, write addr, write qty, byte count
FILE_REF = Struct(">BHHH")  # FC20/21 sub-request: reference type, file, record, record length
_REGS = [Struct(f">{n}H") for n in range(128)]
_BITS = [tuple((byte >> i) & 1 for i in range(8)) for byte in range(256)]
_TO01 = bytes.maketrans(b"01", b"\x00\x01")

TRUNCATED = "modbus_truncated_pdu"
EXTRA = "modbus_extra_data"
BYTE_COUNT = "modbus_byte_count_mismatch"
QUANTITY = "modbus_invalid_quantity"
COIL_VALUE = "modbus_invalid_coil_value"
FILE_RECORD = "modbus_invalid_file_record"
DEVICE_ID = "modbus_invalid_device_identification"
DIAG_DATA = "modbus_diag_invalid_request_data"  # Zeek's name
DIAG_SUB = "modbus_diag_unknown_request_subfunction"  # Zeek's name


def mei_header(buf: bytes, p: int, end: int, f: dict[str, Any]) -> int:
    """Record an FC43 PDU's MEI type (name, number, and the bytes after it as hex); returns the number."""
    mei = buf[p]
    f["mei_type"] = MEI_TYPES.get(mei) or f"unknown-{mei}"
    f["mei_code"] = mei
    f["mei_data"] = buf[p + 1 : end].hex()
    return mei


def registers(buf: bytes, p: int, count: int) -> list[int]:
    """`count` big-endian 16-bit registers starting at buf[p] (the caller checked the bounds)."""
    st = _REGS[count] if count < 128 else Struct(f">{count}H")
    return list(st.unpack_from(buf, p))


def bits(buf: bytes, p: int, nbytes: int, limit: int) -> list[int]:
    """Coil/input bits (LSB first) of `nbytes` bytes at buf[p], as 0/1 ints, at most `limit` of them."""
    need = (limit + 7) >> 3
    if need < nbytes:
        nbytes = need
    if nbytes <= 1:
        return list(_BITS[buf[p]][:limit]) if nbytes == 1 else []
    # one big little-endian int: its binary digits, reversed, are the bits in coil order
    digits = format(int.from_bytes(buf[p:p + nbytes], "little"), "b").zfill(nbytes << 3)[::-1]
    return list(digits[:limit].encode().translate(_TO01))


def short(need: int, have: int) -> Problems:
    """A truncated-PDU problem."""
    return [(TRUNCATED, f"need {need} data bytes, have {have}")]


def partial(buf: bytes, p: int, end: int, f: Fields, keys: tuple[str, ...], need: int) -> Problems:
    """A truncated PDU: fill the leading 16-bit fields `keys` that are present, and report the shortfall."""
    for i, key in enumerate(keys):
        if p + 2 * i + 2 > end:
            break
        f[key] = U16.unpack_from(buf, p + 2 * i)[0]
    return [(TRUNCATED, f"need {need} data bytes, have {end - p}")]


def extra(p: int, end: int, problems: Problems) -> Problems:
    """Note trailing bytes after the decoded body."""
    if p < end:
        problems = (problems or []) + [(EXTRA, f"{end - p} trailing bytes")]
    return problems


def check_quantity(q: int, hi: int, problems: Problems) -> Problems:
    """Add a problem when quantity `q` is outside 1..hi."""
    if not 1 <= q <= hi:
        problems = (problems or []) + [(QUANTITY, f"quantity {q} not in 1..{hi}")]
    return problems



def coil_value(value: int) -> Problems:
    """A problem unless a single-coil value is 0x0000 or 0xFF00."""
    if value == 0xFF00 or value == 0:
        return None
    return [(COIL_VALUE, f"0x{value:04x}")]



def single_register(key: str) -> Callable[..., Problems]:
    """FC 6 body (both directions): address and the value, stored under `key`."""
    def dec(buf: bytes, p: int, end: int, f: Fields, req: Fields | None = None) -> Problems:
        if end - p < 4:
            return partial(buf, p, end, f, ("address",), 4)
        f["address"], value = U16x2.unpack_from(buf, p)
        f["quantity"] = 1
        f[key] = [value]
        return None if end == p + 4 else extra(p + 4, end, None)
    return dec



def diagnostics(prefix: str, check: bool) -> Callable[..., Problems]:
    """FC 8 body: sub-function and data; `check` applies Zeek's request data rules."""
    code_key = prefix + "_subfunction_code"
    data_key = prefix + "_data"

    def dec(buf: bytes, p: int, end: int, f: Fields, req: Fields | None = None) -> Problems:
        if end - p < 2:
            return short(2, end - p)
        sub = U16.unpack_from(buf, p)[0]
        data = buf[p + 2:end]
        f["subfunction"] = sub
        f[code_key] = DIAG_SUBFUNCTIONS.get(sub) or f"unknown-{sub}"
        f[data_key] = data.hex()
        if not check:
            return None
        problems: Problems = None
        n = len(data)
        if n < 2 or n & 1 or (sub != 0 and n != 2):
            problems = [(DIAG_DATA, data.hex())]
        if sub not in DIAG_SUBFUNCTIONS:
            problems = (problems or []) + [(DIAG_SUB, str(sub))]
        return problems
    return dec



def file_write(buf: bytes, p: int, end: int, f: Fields, req: Fields | None = None) -> Problems:
    """FC 21 body (request, and the response that echoes it): the file record references with their data."""
    if end - p < 1:
        return short(1, 0)
    bc = buf[p]
    f["byte_count"] = bc
    have = end - p - 1
    problems: Problems = None
    if have != bc:
        problems = [(BYTE_COUNT, f"byte count {bc}, {have} data bytes")]
    refs = []
    q = p + 1
    stop = p + 1 + min(bc, have)
    while q + 7 <= stop:
        ref_type, file_num, record_num, record_len = FILE_REF.unpack_from(buf, q)
        q += 7
        n = min(record_len, (stop - q) >> 1)
        if n != record_len:
            why = f"record length {record_len}, {n} registers present"
            problems = (problems or []) + [(FILE_RECORD, why)]
        if ref_type != 6:
            problems = (problems or []) + [(FILE_RECORD, f"reference type {ref_type}")]
        refs.append({"ref_type": ref_type, "file_num": file_num, "record_num": record_num,
                     "record_len": record_len, "record_data": registers(buf, q, n)})
        q += 2 * n
    if q < stop:
        problems = (problems or []) + [(FILE_RECORD, f"{stop - q} bytes left after the last record")]
    f["references"] = refs
    return problems



def mask_write(buf: bytes, p: int, end: int, f: Fields, req: Fields | None = None) -> Problems:
    """FC 22 body (both directions): address, AND mask, OR mask."""
    if end - p < 6:
        return partial(buf, p, end, f, ("address", "and_mask"), 6)
    f["address"], f["and_mask"], f["or_mask"] = U16x3.unpack_from(buf, p)
    return None if end == p + 6 else extra(p + 6, end, None)
