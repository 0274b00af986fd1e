"""Modbus PDU body decoders: one small function per function code and direction, filling an event's fields.

Each request decoder is `f(buf, p, end, fields) -> problems` and each response decoder is
`f(buf, p, end, fields, req_fields) -> problems`, where `buf[p:end]` is the PDU data after the function code,
`fields` the event's field dict (filled in place), `req_fields` the paired request's fields (or None) and
`problems` None or a list of `(weird_name, addl)` pairs. They never raise on any input: every read is bounds-checked
against `end` first. The field names are documented in protocols/modbus.py.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from struct import Struct
from typing import Any

from protocols.modbus_names import (
    CONFORMITY_LEVELS,
    DEVICE_ID_OBJECTS,
    DIAG_SUBFUNCTIONS,
    MEI_READ_DEVICE_ID,
    MEI_TYPES,
)

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
_bits_of = _BITS.__getitem__

TRUNCATED = "modbus_truncated_pdu"
EXTRA = "modbus_extra_data"
BYTE_COUNT = "modbus_byte_count_mismatch"
QUANTITY = "modbus_invalid_quantity"
COIL_VALUE = "modbus_invalid_coil_value"
FILE_RECORD = "modbus_invalid_file_record"
DEVICE_ID = "modbus_invalid_device_identification"
DIAG_DATA = "modbus_diag_invalid_request_data"  # Zeek's name
DIAG_SUB = "modbus_diag_unknown_request_subfunction"  # Zeek's name


def registers(buf: bytes, p: int, count: int) -> list[int]:
    """`count` big-endian 16-bit registers starting at buf[p] (the caller checked the bounds)."""
    st = _REGS[count] if count < 128 else Struct(f">{count}H")
    return list(st.unpack_from(buf, p))


def bits(buf: bytes, p: int, nbytes: int, limit: int) -> list[int]:
    """Coil/input bits (LSB first) of `nbytes` bytes at buf[p], as 0/1 ints, at most `limit` of them."""
    need = (limit + 7) >> 3
    if need < nbytes:
        nbytes = need
    out = list(chain.from_iterable(map(_bits_of, buf[p:p + nbytes])))
    if len(out) > limit:
        del out[limit:]
    return out


def _short(need: int, have: int) -> Problems:
    return [(TRUNCATED, f"need {need} data bytes, have {have}")]


def _extra(p: int, end: int, problems: Problems) -> Problems:
    """Note trailing bytes after the decoded body."""
    if p < end:
        problems = (problems or []) + [(EXTRA, f"{end - p} trailing bytes")]
    return problems


def _quantity(q: int, hi: int, problems: Problems) -> Problems:
    if not 1 <= q <= hi:
        problems = (problems or []) + [(QUANTITY, f"quantity {q} not in 1..{hi}")]
    return problems


# ---- requests -------------------------------------------------------------------------------------------------

def _rq_addr_qty(hi: int) -> RequestDecoder:
    def dec(buf: bytes, p: int, end: int, f: Fields) -> Problems:
        if end - p < 4:
            return _short(4, end - p)
        f["address"], q = U16x2.unpack_from(buf, p)
        f["quantity"] = q
        problems = None if 1 <= q <= hi else [(QUANTITY, f"quantity {q} not in 1..{hi}")]
        return problems if end == p + 4 else _extra(p + 4, end, problems)
    return dec


def _coil_value(value: int) -> Problems:
    if value == 0xFF00 or value == 0:
        return None
    return [(COIL_VALUE, f"0x{value:04x}")]


def _rq_single_coil(buf: bytes, p: int, end: int, f: Fields) -> Problems:
    if end - p < 4:
        return _short(4, end - p)
    f["address"], value = U16x2.unpack_from(buf, p)
    f["quantity"] = 1
    f["request_values"] = [1 if value else 0]
    return _extra(p + 4, end, _coil_value(value))


def _rs_single_coil(buf: bytes, p: int, end: int, f: Fields, req: Fields | None) -> Problems:
    if end - p < 4:
        return _short(4, end - p)
    f["address"], value = U16x2.unpack_from(buf, p)
    f["quantity"] = 1
    f["response_values"] = [1 if value else 0]
    return _extra(p + 4, end, _coil_value(value))


def _single_register(key: str) -> Callable[..., Problems]:
    def dec(buf: bytes, p: int, end: int, f: Fields, req: Fields | None = None) -> Problems:
        if end - p < 4:
            return _short(4, end - p)
        f["address"], value = U16x2.unpack_from(buf, p)
        f["quantity"] = 1
        f[key] = [value]
        return None if end == p + 4 else _extra(p + 4, end, None)
    return dec


def _rq_write_coils(buf: bytes, p: int, end: int, f: Fields) -> Problems:
    if end - p < 5:
        return _short(5, end - p)
    f["address"], q = U16x2.unpack_from(buf, p)
    bc = buf[p + 4]
    f["quantity"] = q
    f["byte_count"] = bc
    have = end - p - 5
    problems = _quantity(q, 0x7B0, None)
    if bc != (q + 7) >> 3 or have != bc:
        problems = (problems or []) + [(BYTE_COUNT, f"quantity {q}, byte count {bc}, {have} data bytes")]
    f["request_values"] = bits(buf, p + 5, min(bc, have), q)
    return problems


def _rq_write_registers(buf: bytes, p: int, end: int, f: Fields) -> Problems:
    if end - p < 5:
        return _short(5, end - p)
    f["address"], q = U16x2.unpack_from(buf, p)
    bc = buf[p + 4]
    f["quantity"] = q
    f["byte_count"] = bc
    have = end - p - 5
    problems = _quantity(q, 123, None)
    if bc != 2 * q or have != bc:
        problems = (problems or []) + [(BYTE_COUNT, f"quantity {q}, byte count {bc}, {have} data bytes")]
    f["request_values"] = registers(buf, p + 5, min(bc, have) >> 1)
    return problems


def _diagnostics(prefix: str, check: bool) -> Callable[..., Problems]:
    code_key = prefix + "_subfunction_code"
    data_key = prefix + "_data"

    def dec(buf: bytes, p: int, end: int, f: Fields, req: Fields | None = None) -> Problems:
        if end - p < 2:
            return _short(2, end - p)
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


def _rq_file_read(buf: bytes, p: int, end: int, f: Fields) -> Problems:
    if end - p < 1:
        return _short(1, 0)
    bc = buf[p]
    f["byte_count"] = bc
    have = end - p - 1
    problems: Problems = None
    if have != bc or bc % 7 or not 0x07 <= bc <= 0xF5:
        problems = [(BYTE_COUNT, f"byte count {bc}, {have} data bytes")]
    refs = []
    q = p + 1
    stop = p + 1 + min(bc, have)
    while q + 7 <= stop:
        ref_type, file_num, record_num, record_len = FILE_REF.unpack_from(buf, q)
        refs.append({"ref_type": ref_type, "file_num": file_num, "record_num": record_num,
                     "record_len": record_len})
        if ref_type != 6:
            problems = (problems or []) + [(FILE_RECORD, f"reference type {ref_type}")]
        q += 7
    f["references"] = refs
    return problems


def _file_write(buf: bytes, p: int, end: int, f: Fields, req: Fields | None = None) -> Problems:
    if end - p < 1:
        return _short(1, 0)
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
            problems = (problems or []) + [(FILE_RECORD, f"record length {record_len}, {n} registers present")]
        if ref_type != 6:
            problems = (problems or []) + [(FILE_RECORD, f"reference type {ref_type}")]
        refs.append({"ref_type": ref_type, "file_num": file_num, "record_num": record_num,
                     "record_len": record_len, "record_data": registers(buf, q, n)})
        q += 2 * n
    if q < stop:
        problems = (problems or []) + [(FILE_RECORD, f"{stop - q} bytes left after the last record")]
    f["references"] = refs
    return problems


def _mask_write(buf: bytes, p: int, end: int, f: Fields, req: Fields | None = None) -> Problems:
    if end - p < 6:
        return _short(6, end - p)
    f["address"], f["and_mask"], f["or_mask"] = U16x3.unpack_from(buf, p)
    return None if end == p + 6 else _extra(p + 6, end, None)


def _rq_read_write(buf: bytes, p: int, end: int, f: Fields) -> Problems:
    if end - p < 9:
        return _short(9, end - p)
    ra, rq, wa, wq, bc = RW_HDR.unpack_from(buf, p)
    f["read_start_address"] = ra
    f["read_quantity"] = rq
    f["write_start_address"] = wa
    f["write_quantity"] = wq
    f["byte_count"] = bc
    have = end - p - 9
    problems = _quantity(wq, 121, _quantity(rq, 125, None))
    if bc != 2 * wq or have != bc:
        problems = (problems or []) + [(BYTE_COUNT, f"write quantity {wq}, byte count {bc}, {have} data bytes")]
    f["write_registers"] = registers(buf, p + 9, min(bc, have) >> 1)
    return problems


def _rq_fifo(buf: bytes, p: int, end: int, f: Fields) -> Problems:
    if end - p < 2:
        return _short(2, end - p)
    f["address"] = U16.unpack_from(buf, p)[0]
    return None if end == p + 2 else _extra(p + 2, end, None)


def _rq_empty(buf: bytes, p: int, end: int, f: Fields) -> Problems:
    return None if p == end else _extra(p, end, None)


def _rq_mei(buf: bytes, p: int, end: int, f: Fields) -> Problems:
    if end - p < 1:
        return _short(1, 0)
    mei = buf[p]
    f["mei_type"] = MEI_TYPES.get(mei) or f"unknown-{mei}"
    if mei != MEI_READ_DEVICE_ID:
        f["request_data"] = buf[p + 1:end].hex()
        return None
    if end - p < 3:
        return _short(3, end - p)
    f["device_id_code"] = buf[p + 1]
    f["object_id_code"] = buf[p + 2]
    problems: Problems = None
    if not 1 <= buf[p + 1] <= 4:
        problems = [(DEVICE_ID, f"read device id code {buf[p + 1]}")]
    return _extra(p + 3, end, problems)


def _rq_raw(buf: bytes, p: int, end: int, f: Fields) -> Problems:
    f["request_data"] = buf[p:end].hex()
    return None


# ---- responses ------------------------------------------------------------------------------------------------

def _rs_read_bits(buf: bytes, p: int, end: int, f: Fields, req: Fields | None) -> Problems:
    if end - p < 1:
        return _short(1, 0)
    bc = buf[p]
    have = end - p - 1
    problems: Problems = None
    if have != bc:
        problems = [(BYTE_COUNT, f"byte count {bc}, {have} data bytes")]
    n = min(bc, have)
    q = req.get("quantity") if req is not None else None
    if q is None:
        f["response_values"] = bits(buf, p + 1, n, n * 8)
    else:
        f["response_values"] = bits(buf, p + 1, n, q)
        if bc != (q + 7) >> 3:
            problems = (problems or []) + [(BYTE_COUNT, f"byte count {bc} for quantity {q}")]
    return problems


def _rs_read_registers(buf: bytes, p: int, end: int, f: Fields, req: Fields | None) -> Problems:
    if end - p < 1:
        return _short(1, 0)
    bc = buf[p]
    have = end - p - 1
    problems: Problems = None
    if have != bc or bc & 1:
        problems = [(BYTE_COUNT, f"byte count {bc}, {have} data bytes")]
    f["response_values"] = registers(buf, p + 1, min(bc, have) >> 1)
    if req is not None:
        q = req.get("quantity")
        if q is not None and bc != 2 * q:
            problems = (problems or []) + [(BYTE_COUNT, f"byte count {bc} for quantity {q}")]
    return problems


def _rs_exception_status(buf: bytes, p: int, end: int, f: Fields, req: Fields | None) -> Problems:
    if end - p < 1:
        return _short(1, 0)
    f["exception_status"] = buf[p]
    return _extra(p + 1, end, None)


def _rs_event_counter(buf: bytes, p: int, end: int, f: Fields, req: Fields | None) -> Problems:
    if end - p < 4:
        return _short(4, end - p)
    f["status"], f["event_count"] = U16x2.unpack_from(buf, p)
    return _extra(p + 4, end, None)


def _rs_event_log(buf: bytes, p: int, end: int, f: Fields, req: Fields | None) -> Problems:
    if end - p < 7:
        return _short(7, end - p)
    bc = buf[p]
    f["byte_count"] = bc
    f["status"], f["event_count"], f["message_count"] = U16x3.unpack_from(buf, p + 1)
    have = end - p - 1
    problems: Problems = None
    if have != bc or bc < 6:
        problems = [(BYTE_COUNT, f"byte count {bc}, {have} data bytes")]
    f["events"] = list(buf[p + 7:p + 1 + max(6, min(bc, have))])
    return problems


def _rs_write_multiple(buf: bytes, p: int, end: int, f: Fields, req: Fields | None) -> Problems:
    if end - p < 4:
        return _short(4, end - p)
    f["address"], f["quantity"] = U16x2.unpack_from(buf, p)
    return None if end == p + 4 else _extra(p + 4, end, None)


def _rs_report_id(buf: bytes, p: int, end: int, f: Fields, req: Fields | None) -> Problems:
    if end - p < 1:
        return _short(1, 0)
    bc = buf[p]
    have = end - p - 1
    problems: Problems = None
    if have != bc or bc < 1:
        problems = [(BYTE_COUNT, f"byte count {bc}, {have} data bytes")]
    data = buf[p + 1:p + 1 + min(bc, have)]
    f["byte_count"] = bc
    f["response_data"] = data.hex()
    if not data:
        return problems
    f["server_id"] = data[0]
    # The run indicator (0x00 off, 0xFF on) follows a device-specific server id: the second byte on most
    # devices (libmodbus), the last byte on others (pymodbus). The identifier text is what remains.
    if len(data) >= 2 and data[1] in (0x00, 0xFF):
        run, ident = data[1], data[2:]
    elif data[-1] in (0x00, 0xFF):
        run, ident = data[-1], data[:-1]
    else:
        run, ident = None, data
    f["run_indicator_status"] = None if run is None else run == 0xFF
    f["identifier"] = ident.decode("utf-8", "backslashreplace")
    return problems


def _rs_file_read(buf: bytes, p: int, end: int, f: Fields, req: Fields | None) -> Problems:
    if end - p < 1:
        return _short(1, 0)
    bc = buf[p]
    f["byte_count"] = bc
    have = end - p - 1
    problems: Problems = None
    if have != bc:
        problems = [(BYTE_COUNT, f"byte count {bc}, {have} data bytes")]
    refs = []
    q = p + 1
    stop = p + 1 + min(bc, have)
    while q + 2 <= stop:
        file_len, ref_type = buf[q], buf[q + 1]
        q += 2
        n = min(max(file_len - 1, 0), stop - q) >> 1
        if file_len < 1 or 2 * n != file_len - 1 or ref_type != 6:
            problems = (problems or []) + [(FILE_RECORD, f"file response length {file_len}, type {ref_type}")]
        refs.append({"file_len": file_len, "ref_type": ref_type, "record_data": registers(buf, q, n)})
        q += max(file_len - 1, 0)
    if q < stop:
        problems = (problems or []) + [(FILE_RECORD, f"{stop - q} bytes left after the last record")]
    f["references"] = refs
    return problems


def _rs_read_write(buf: bytes, p: int, end: int, f: Fields, req: Fields | None) -> Problems:
    if end - p < 1:
        return _short(1, 0)
    bc = buf[p]
    have = end - p - 1
    problems: Problems = None
    if have != bc or bc & 1:
        problems = [(BYTE_COUNT, f"byte count {bc}, {have} data bytes")]
    f["byte_count"] = bc
    f["read_registers"] = registers(buf, p + 1, min(bc, have) >> 1)
    if req is not None:
        for key in ("read_start_address", "read_quantity", "write_start_address", "write_quantity"):
            if key in req:
                f[key] = req[key]
        q = req.get("read_quantity")
        if q is not None and bc != 2 * q:
            problems = (problems or []) + [(BYTE_COUNT, f"byte count {bc} for read quantity {q}")]
    return problems


def _rs_fifo(buf: bytes, p: int, end: int, f: Fields, req: Fields | None) -> Problems:
    if end - p < 4:
        return _short(4, end - p)
    bc, count = U16x2.unpack_from(buf, p)
    f["byte_count"] = bc
    f["fifo_count"] = count
    have = end - p - 2
    problems: Problems = None
    if have != bc or bc != 2 + 2 * count:
        problems = [(BYTE_COUNT, f"byte count {bc}, fifo count {count}, {have} data bytes")]
    if count > 31:
        problems = (problems or []) + [(QUANTITY, f"fifo count {count} > 31")]
    f["response_values"] = registers(buf, p + 4, min(count, (end - p - 4) >> 1))
    return problems


def _rs_mei(buf: bytes, p: int, end: int, f: Fields, req: Fields | None) -> Problems:
    if end - p < 1:
        return _short(1, 0)
    mei = buf[p]
    f["mei_type"] = MEI_TYPES.get(mei) or f"unknown-{mei}"
    if mei != MEI_READ_DEVICE_ID:
        f["response_data"] = buf[p + 1:end].hex()
        return None
    if end - p < 7:
        return _short(7, end - p)
    code, level, more, next_id, count = buf[p + 1:p + 6]
    f["device_id_code"] = code
    f["conformity_level_code"] = level
    f["conformity_level"] = CONFORMITY_LEVELS.get(level, "Unknown")
    f["more_follows"] = more == 0xFF
    f["next_object_id"] = next_id
    f["number_of_objects"] = count
    problems: Problems = None
    if more not in (0x00, 0xFF):
        problems = [(DEVICE_ID, f"more follows 0x{more:02x}")]
    objects: dict[str, str] = {}
    q = p + 6
    seen = 0
    while q + 2 <= end and seen < count:
        oid, olen = buf[q], buf[q + 1]
        q += 2
        if q + olen > end:
            problems = (problems or []) + [(DEVICE_ID, f"object 0x{oid:02x} length {olen} past the PDU end")]
        name = DEVICE_ID_OBJECTS.get(oid) or f"0x{oid:02x}"
        objects.setdefault(name, buf[q:q + olen].decode("utf-8", "backslashreplace"))
        q += olen
        seen += 1
    if seen != count:
        problems = (problems or []) + [(DEVICE_ID, f"{seen} of {count} objects present")]
    elif q < end:
        problems = (problems or []) + [(EXTRA, f"{end - q} trailing bytes")]
    f["objects"] = objects
    return problems


def _rs_raw(buf: bytes, p: int, end: int, f: Fields, req: Fields | None) -> Problems:
    f["response_data"] = buf[p:end].hex()
    return None


REQUEST_DECODERS: dict[int, RequestDecoder] = {
    0x01: _rq_addr_qty(2000),
    0x02: _rq_addr_qty(2000),
    0x03: _rq_addr_qty(125),
    0x04: _rq_addr_qty(125),
    0x05: _rq_single_coil,
    0x06: _single_register("request_values"),
    0x07: _rq_empty,
    0x08: _diagnostics("request", True),
    0x0B: _rq_empty,
    0x0C: _rq_empty,
    0x0F: _rq_write_coils,
    0x10: _rq_write_registers,
    0x11: _rq_empty,
    0x14: _rq_file_read,
    0x15: _file_write,
    0x16: _mask_write,
    0x17: _rq_read_write,
    0x18: _rq_fifo,
    0x2B: _rq_mei,
}

RESPONSE_DECODERS: dict[int, ResponseDecoder] = {
    0x01: _rs_read_bits,
    0x02: _rs_read_bits,
    0x03: _rs_read_registers,
    0x04: _rs_read_registers,
    0x05: _rs_single_coil,
    0x06: _single_register("response_values"),
    0x07: _rs_exception_status,
    0x08: _diagnostics("response", False),
    0x0B: _rs_event_counter,
    0x0C: _rs_event_log,
    0x0F: _rs_write_multiple,
    0x10: _rs_write_multiple,
    0x11: _rs_report_id,
    0x14: _rs_file_read,
    0x15: _file_write,
    0x16: _mask_write,
    0x17: _rs_read_write,
    0x18: _rs_fifo,
    0x2B: _rs_mei,
}

RAW_REQUEST: RequestDecoder = _rq_raw
RAW_RESPONSE: ResponseDecoder = _rs_raw
