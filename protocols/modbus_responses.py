"""Modbus response PDU bodies (server to client), one decoder per function code (see modbus_pdu.py)."""

from __future__ import annotations

from protocols.modbus_names import CONFORMITY_LEVELS, DEVICE_ID_OBJECTS, MEI_READ_DEVICE_ID
from protocols.modbus_pdu import (
    BYTE_COUNT,
    DEVICE_ID,
    EXTRA,
    FILE_RECORD,
    QUANTITY,
    Fields,
    Problems,
    ResponseDecoder,
    U16x2,
    U16x3,
    bits,
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


def _rs_single_coil(buf: bytes, p: int, end: int, f: Fields, req: Fields | None) -> Problems:
    if end - p < 4:
        return partial(buf, p, end, f, ("address",), 4)
    f["address"], value = U16x2.unpack_from(buf, p)
    f["quantity"] = 1
    f["response_values"] = [1 if value else 0]
    return extra(p + 4, end, coil_value(value))



def _rs_read_bits(buf: bytes, p: int, end: int, f: Fields, req: Fields | None) -> Problems:
    if end - p < 1:
        return short(1, 0)
    bc = buf[p]
    f["byte_count"] = bc
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
        return short(1, 0)
    bc = buf[p]
    f["byte_count"] = bc
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
        return short(1, 0)
    f["exception_status"] = buf[p]
    return extra(p + 1, end, None)


def _rs_event_counter(buf: bytes, p: int, end: int, f: Fields, req: Fields | None) -> Problems:
    if end - p < 4:
        return short(4, end - p)
    f["status"], f["event_count"] = U16x2.unpack_from(buf, p)
    return extra(p + 4, end, None)


def _rs_event_log(buf: bytes, p: int, end: int, f: Fields, req: Fields | None) -> Problems:
    if end - p < 7:
        return short(7, end - p)
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
        return partial(buf, p, end, f, ("address", "quantity"), 4)
    f["address"], f["quantity"] = U16x2.unpack_from(buf, p)
    return None if end == p + 4 else extra(p + 4, end, None)


def _rs_report_id(buf: bytes, p: int, end: int, f: Fields, req: Fields | None) -> Problems:
    if end - p < 1:
        return short(1, 0)
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
        return short(1, 0)
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
        return short(4, end - p)
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
        return short(1, 0)
    if mei_header(buf, p, end, f) != MEI_READ_DEVICE_ID:
        return None
    if end - p < 7:
        return short(7, end - p)
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



RESPONSE_DECODERS: dict[int, ResponseDecoder] = {
    0x01: _rs_read_bits,
    0x02: _rs_read_bits,
    0x03: _rs_read_registers,
    0x04: _rs_read_registers,
    0x05: _rs_single_coil,
    0x06: single_register("response_values"),
    0x07: _rs_exception_status,
    0x08: diagnostics("response", False),
    0x0B: _rs_event_counter,
    0x0C: _rs_event_log,
    0x0F: _rs_write_multiple,
    0x10: _rs_write_multiple,
    0x11: _rs_report_id,
    0x14: _rs_file_read,
    0x15: file_write,
    0x16: mask_write,
    0x17: _rs_read_write,
    0x18: _rs_fifo,
    0x2B: _rs_mei,
}

RAW_RESPONSE: ResponseDecoder = _rs_raw
