"""Modbus request PDU bodies (client to server), one decoder per function code (see modbus_pdu.py)."""

from __future__ import annotations

from protocols.modbus_names import MEI_READ_DEVICE_ID
from protocols.modbus_pdu import (
    BYTE_COUNT,
    DEVICE_ID,
    FILE_RECORD,
    FILE_REF,
    QUANTITY,
    RW_HDR,
    U16,
    Fields,
    Problems,
    RequestDecoder,
    U16x2,
    bits,
    check_quantity,
    coil_value,
    diagnostics,
    extra,
    file_write,
    mask_write,
    mei_header,
    partial,
    registers,
    short,
    single_register,
)


def _rq_addr_qty(hi: int) -> RequestDecoder:
    def dec(buf: bytes, p: int, end: int, f: Fields) -> Problems:
        if end - p < 4:
            return partial(buf, p, end, f, ("address",), 4)
        f["address"], q = U16x2.unpack_from(buf, p)
        f["quantity"] = q
        problems = None if 1 <= q <= hi else [(QUANTITY, f"quantity {q} not in 1..{hi}")]
        return problems if end == p + 4 else extra(p + 4, end, problems)
    return dec



def _rq_single_coil(buf: bytes, p: int, end: int, f: Fields) -> Problems:
    if end - p < 4:
        return partial(buf, p, end, f, ("address",), 4)
    f["address"], value = U16x2.unpack_from(buf, p)
    f["quantity"] = 1
    f["request_values"] = [1 if value else 0]
    return extra(p + 4, end, coil_value(value))



def _rq_write_coils(buf: bytes, p: int, end: int, f: Fields) -> Problems:
    if end - p < 5:
        return partial(buf, p, end, f, ("address", "quantity"), 5)
    f["address"], q = U16x2.unpack_from(buf, p)
    bc = buf[p + 4]
    f["quantity"] = q
    f["byte_count"] = bc
    have = end - p - 5
    problems = check_quantity(q, 0x7B0, None)
    if bc != (q + 7) >> 3 or have != bc:
        problems = (problems or []) + [(BYTE_COUNT, f"quantity {q}, byte count {bc}, {have} data bytes")]
    f["request_values"] = bits(buf, p + 5, min(bc, have), q)
    return problems


def _rq_write_registers(buf: bytes, p: int, end: int, f: Fields) -> Problems:
    if end - p < 5:
        return partial(buf, p, end, f, ("address", "quantity"), 5)
    f["address"], q = U16x2.unpack_from(buf, p)
    bc = buf[p + 4]
    f["quantity"] = q
    f["byte_count"] = bc
    have = end - p - 5
    problems = check_quantity(q, 123, None)
    if bc != 2 * q or have != bc:
        problems = (problems or []) + [(BYTE_COUNT, f"quantity {q}, byte count {bc}, {have} data bytes")]
    f["request_values"] = registers(buf, p + 5, min(bc, have) >> 1)
    return problems



def _rq_file_read(buf: bytes, p: int, end: int, f: Fields) -> Problems:
    if end - p < 1:
        return short(1, 0)
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



_RW_KEYS = ("read_start_address", "read_quantity", "write_start_address", "write_quantity")


def _rq_read_write(buf: bytes, p: int, end: int, f: Fields) -> Problems:
    if end - p < 9:
        return partial(buf, p, end, f, _RW_KEYS, 9)
    ra, rq, wa, wq, bc = RW_HDR.unpack_from(buf, p)
    f["read_start_address"] = ra
    f["read_quantity"] = rq
    f["write_start_address"] = wa
    f["write_quantity"] = wq
    f["byte_count"] = bc
    have = end - p - 9
    problems = check_quantity(wq, 121, check_quantity(rq, 125, None))
    if bc != 2 * wq or have != bc:
        why = f"write quantity {wq}, byte count {bc}, {have} data bytes"
        problems = (problems or []) + [(BYTE_COUNT, why)]
    f["write_registers"] = registers(buf, p + 9, min(bc, have) >> 1)
    return problems


def _rq_fifo(buf: bytes, p: int, end: int, f: Fields) -> Problems:
    if end - p < 2:
        return short(2, end - p)
    f["address"] = U16.unpack_from(buf, p)[0]
    return None if end == p + 2 else extra(p + 2, end, None)


def _rq_empty(buf: bytes, p: int, end: int, f: Fields) -> Problems:
    return None if p == end else extra(p, end, None)


def _rq_mei(buf: bytes, p: int, end: int, f: Fields) -> Problems:
    if end - p < 1:
        return short(1, 0)
    if mei_header(buf, p, end, f) != MEI_READ_DEVICE_ID:
        return None
    if end - p < 3:
        return short(3, end - p)
    f["device_id_code"] = buf[p + 1]
    f["object_id_code"] = buf[p + 2]
    problems: Problems = None
    if not 1 <= buf[p + 1] <= 4:
        problems = [(DEVICE_ID, f"read device id code {buf[p + 1]}")]
    return extra(p + 3, end, problems)


def _rq_raw(buf: bytes, p: int, end: int, f: Fields) -> Problems:
    f["request_data"] = buf[p:end].hex()
    return None



REQUEST_DECODERS: dict[int, RequestDecoder] = {
    0x01: _rq_addr_qty(2000),
    0x02: _rq_addr_qty(2000),
    0x03: _rq_addr_qty(125),
    0x04: _rq_addr_qty(125),
    0x05: _rq_single_coil,
    0x06: single_register("request_values"),
    0x07: _rq_empty,
    0x08: diagnostics("request", True),
    0x0B: _rq_empty,
    0x0C: _rq_empty,
    0x0F: _rq_write_coils,
    0x10: _rq_write_registers,
    0x11: _rq_empty,
    0x14: _rq_file_read,
    0x15: file_write,
    0x16: mask_write,
    0x17: _rq_read_write,
    0x18: _rq_fifo,
    0x2B: _rq_mei,
}

RAW_REQUEST: RequestDecoder = _rq_raw
