"""Modbus/TCP test vectors generated with pymodbus 3.16: real ADUs built by its PDU classes and socket framer.

Nothing here is typed in by hand: every request and response is a pymodbus PDU object, framed by
`FramerSocket.buildFrame`, with seeded pseudo-random addresses, quantities and values. `decode` turns the same
bytes back into pymodbus PDU objects so that tests can compare the decoder's fields with pymodbus's reading.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from typing import Any

from pymodbus.framer import FramerSocket
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU
from pymodbus.pdu import bit_message as bit
from pymodbus.pdu import file_message as fil
from pymodbus.pdu import mei_message as mei
from pymodbus.pdu import other_message as other
from pymodbus.pdu import register_message as reg

from protocols.modbus_names import DEVICE_ID_OBJECTS

_REQ_FRAMER = FramerSocket(DecodePDU(is_server=True))
_RESP_FRAMER = FramerSocket(DecodePDU(is_server=False))


@dataclass(frozen=True)
class Vector:
    """One request/response exchange: the pymodbus objects and the ADU bytes they frame to."""

    name: str
    fc: int
    request: Any  # a pymodbus PDU object (each class has its own attributes)
    response: Any
    request_adu: bytes
    response_adu: bytes


def frame(pdu: ModbusPDU, tid: int, unit: int) -> bytes:
    """The Modbus/TCP ADU of a pymodbus PDU (MBAP header from pymodbus's socket framer)."""
    pdu.transaction_id = tid
    pdu.dev_id = unit
    return _REQ_FRAMER.buildFrame(pdu)


def decode(adu: bytes, request: bool) -> ModbusPDU | None:
    """pymodbus's own reading of one ADU (None when it cannot decode it)."""
    framer = _REQ_FRAMER if request else _RESP_FRAMER
    try:
        _, pdu = framer.handleFrame(adu, 0, 0)
    except Exception:  # pymodbus raises ModbusIOException on codes it does not know
        return None
    return pdu


def exception_adu(fc: int, code: int, tid: int, unit: int) -> bytes:
    """An exception response ADU for function `fc` with exception `code`, framed by pymodbus."""
    return frame(ExceptionResponse(fc, code), tid, unit)


def _regs(rng: random.Random, n: int) -> list[int]:
    return [rng.randrange(0x10000) for _ in range(n)]


def _bits(rng: random.Random, n: int) -> list[bool]:
    return [rng.random() < 0.5 for _ in range(n)]


def _pairs(rng: random.Random) -> list[tuple[str, Any, Any]]:
    """(name, request, response) for every function code pymodbus supports, several sizes each."""
    out: list[tuple[str, Any, Any]] = []

    def add(name: str, request: Any, response: Any) -> None:
        out.append((name, request, response))

    def addr(count: int = 1) -> int:
        return rng.randrange(0x10000 - count + 1)

    for count in (1, 7, 8, 9, 256, 2000):
        bits = _bits(rng, count)
        add(f"read_coils_{count}", bit.ReadCoilsRequest(address=addr(count), count=count),
            bit.ReadCoilsResponse(bits=bits))
        add(f"read_discrete_inputs_{count}", bit.ReadDiscreteInputsRequest(address=addr(count), count=count),
            bit.ReadDiscreteInputsResponse(bits=bits))
    for count in (1, 2, 64, 125):
        add(f"read_holding_registers_{count}",
            reg.ReadHoldingRegistersRequest(address=addr(count), count=count),
            reg.ReadHoldingRegistersResponse(registers=_regs(rng, count)))
        add(f"read_input_registers_{count}", reg.ReadInputRegistersRequest(address=addr(count), count=count),
            reg.ReadInputRegistersResponse(registers=_regs(rng, count)))
    for value in (True, False):
        address = addr()
        add(f"write_single_coil_{value}", bit.WriteSingleCoilRequest(address=address, bits=[value]),
            bit.WriteSingleCoilResponse(address=address, bits=[value]))
    address, word = addr(), rng.randrange(0x10000)
    add("write_single_register", reg.WriteSingleRegisterRequest(address=address, registers=[word]),
        reg.WriteSingleRegisterResponse(address=address, registers=[word]))
    add("read_exception_status", other.ReadExceptionStatusRequest(),
        other.ReadExceptionStatusResponse(status=rng.randrange(256)))
    diag_classes: dict[int, tuple[Any, Any]] = dict(DecodePDU.pdu_sub_table[0x08])
    for sub, (rq, rs) in sorted(diag_classes.items()):
        if sub == 0x00:
            payload = bytes(rng.randrange(256) for _ in range(6))
            add("diagnostics_0", rq(message=payload), rs(message=payload))
        elif sub == 0x04:  # force listen only mode: the server never answers; pymodbus's response has no data
            add("diagnostics_4", rq(message=0), rs())
        else:
            add(f"diagnostics_{sub}", rq(message=0), rs(message=rng.randrange(0x10000)))
    add("get_comm_event_counter", other.GetCommEventCounterRequest(),
        other.GetCommEventCounterResponse(count=rng.randrange(0x10000), status=True))
    add("get_comm_event_log", other.GetCommEventLogRequest(),
        other.GetCommEventLogResponse(status=False, message_count=rng.randrange(0x10000),
                                      event_count=rng.randrange(0x10000),
                                      events=[rng.randrange(256) for _ in range(5)]))
    for count in (1, 9, 1968):
        address = addr(count)
        add(f"write_multiple_coils_{count}",
            bit.WriteMultipleCoilsRequest(address=address, bits=_bits(rng, count)),
            bit.WriteMultipleCoilsResponse(address=address, count=count))
    for count in (1, 123):
        address = addr(count)
        add(f"write_multiple_registers_{count}",
            reg.WriteMultipleRegistersRequest(address=address, registers=_regs(rng, count)),
            reg.WriteMultipleRegistersResponse(address=address, count=count))
    add("report_slave_id", other.ReportDeviceIdRequest(),
        other.ReportDeviceIdResponse(identifier=b"PLC-otwatch-7", status=True))
    # pymodbus takes record_length in bytes and stores it in registers; its FC20 request decoder fails on an
    # odd register count (it rebuilds FileRecord from the wire count as if it were bytes), hence even counts
    records = [fil.FileRecord(file_number=rng.randrange(1, 0x10000), record_number=rng.randrange(0x2710),
                              record_length=2 * n) for n in (2, 4)]
    answers = [fil.FileRecord(record_data=bytes(rng.randrange(256) for _ in range(2 * r.record_length)))
               for r in records]
    add("read_file_record", fil.ReadFileRecordRequest(records=records),
        fil.ReadFileRecordResponse(records=answers))
    writes = [fil.FileRecord(file_number=rng.randrange(1, 0x10000), record_number=rng.randrange(0x2710),
                             record_data=bytes(rng.randrange(256) for _ in range(2 * n))) for n in (1, 4)]
    add("write_file_record", fil.WriteFileRecordRequest(records=writes),
        fil.WriteFileRecordResponse(records=writes))
    address, and_mask, or_mask = addr(), rng.randrange(0x10000), rng.randrange(0x10000)
    add("mask_write_register", reg.MaskWriteRegisterRequest(address, and_mask, or_mask),
        reg.MaskWriteRegisterResponse(address, and_mask, or_mask))
    for read_count, write_count in ((1, 1), (125, 121)):
        add(f"read_write_multiple_registers_{read_count}",
            reg.ReadWriteMultipleRegistersRequest(read_address=addr(read_count), read_count=read_count,
                                                  write_address=addr(write_count),
                                                  write_registers=_regs(rng, write_count)),
            reg.ReadWriteMultipleRegistersResponse(registers=_regs(rng, read_count)))
    add("read_fifo_queue", fil.ReadFifoQueueRequest(address=addr()),
        fil.ReadFifoQueueResponse(values=_regs(rng, 31)))
    information = {0x00: b"Schneider Electric", 0x01: b"BMX P34 2020", 0x02: b"v3.10", 0x03: b"www.se.com",
                   0x04: b"Modicon M340", 0x05: b"BMXP342020", 0x06: b"pump station 4",
                   0x80: b"rack 2 slot 1", 0xA5: b"\x01\x02\xfe"}
    for read_code, object_id in ((0x01, 0x00), (0x03, 0x00), (0x04, 0x80)):
        add(f"read_device_identification_{read_code}",
            mei.ReadDeviceInformationRequest(read_code=read_code, object_id=object_id),
            mei.ReadDeviceInformationResponse(read_code=read_code, information=information))
    return out


def vectors(seed: int = 502) -> list[Vector]:
    """All generated exchanges, framed with distinct transaction ids and unit ids."""
    rng = random.Random(seed)
    out = []
    for i, (name, request, response) in enumerate(_pairs(rng)):
        tid = (i * 7919 + 1) & 0xFFFF
        unit = rng.randrange(256)
        out.append(
            Vector(
                name,
                request.function_code,
                request,
                response,
                frame(request, tid, unit),
                frame(response, tid, unit),
            )
        )
    return out


# ---- the fields the decoder must report, from pymodbus's decoding of the same bytes ----


def _words(data: bytes) -> list[int]:
    return list(struct.unpack(f">{len(data) // 2}H", data))


def _diag_data(message: Any) -> str:
    if isinstance(message, bytes):
        return message.hex()
    if isinstance(message, int):
        return struct.pack(">H", message).hex()
    return b"".join(struct.pack(">H", m) for m in (message or [])).hex()


def expected_request(v: Vector, pdu: Any) -> dict[str, Any]:
    """The fields the decoder must report for the request pymodbus decoded as `pdu`."""
    fc = v.fc
    if fc in (1, 2, 3, 4):
        return {"address": pdu.address, "quantity": pdu.count}
    if fc == 5:
        return {"address": pdu.address, "request_values": [int(pdu.bits[0])]}
    if fc == 6:
        return {"address": pdu.address, "request_values": list(pdu.registers)}
    if fc == 8:
        return {"subfunction": pdu.sub_function_code, "request_data": _diag_data(pdu.message)}
    if fc == 15:
        return {
            "address": pdu.address,
            "quantity": pdu.count,
            "byte_count": pdu.byte_count,
            "request_values": [int(b) for b in pdu.bits],
        }
    if fc == 16:
        return {
            "address": pdu.address,
            "quantity": pdu.count,
            "byte_count": pdu.byte_count,
            "request_values": list(pdu.registers),
        }
    if fc == 20:  # pymodbus's FC20 request decoder halves record_length: compare with the object it encoded
        return {
            "references": [
                {
                    "ref_type": 6,
                    "file_num": r.file_number,
                    "record_num": r.record_number,
                    "record_len": r.record_length,
                }
                for r in v.request.records
            ]
        }
    if fc == 21:
        return {
            "references": [
                {
                    "ref_type": 6,
                    "file_num": r.file_number,
                    "record_num": r.record_number,
                    "record_len": r.record_length,
                    "record_data": _words(r.record_data),
                }
                for r in pdu.records
            ]
        }
    if fc == 22:
        return {"address": pdu.address, "and_mask": pdu.and_mask, "or_mask": pdu.or_mask}
    if fc == 23:
        return {
            "read_start_address": pdu.read_address,
            "read_quantity": pdu.read_count,
            "write_start_address": pdu.write_address,
            "write_quantity": pdu.write_count,
            "write_registers": list(pdu.write_registers),
        }
    if fc == 24:
        return {"address": pdu.address}
    if fc == 43:
        return {
            "mei_type": "READ-DEVICE-IDENTIFICATION",
            "device_id_code": pdu.read_code,
            "object_id_code": pdu.object_id,
        }
    return {}  # 7, 11, 12, 17: no request body


def expected_response(v: Vector, req: Any, pdu: Any) -> dict[str, Any]:
    """The fields the decoder must report for the response pymodbus decoded as `pdu` (request `req`)."""
    fc = v.fc
    if fc in (1, 2):
        return {
            "response_values": [int(b) for b in pdu.bits[: req.count]],
            "address": req.address,
            "quantity": req.count,
        }
    if fc in (3, 4):
        return {"response_values": list(pdu.registers), "address": req.address, "quantity": req.count}
    if fc == 5:
        return {"address": pdu.address, "response_values": [int(pdu.bits[0])]}
    if fc == 6:
        return {"address": pdu.address, "response_values": list(pdu.registers)}
    if fc == 7:
        return {"exception_status": pdu.status}
    if fc == 8:
        return {"subfunction": pdu.sub_function_code, "response_data": _diag_data(pdu.message)}
    if fc == 11:
        return {"status": 0 if pdu.status else 0xFFFF, "event_count": pdu.count}
    if fc == 12:
        return {
            "status": 0 if pdu.status else 0xFFFF,
            "event_count": pdu.event_count,
            "message_count": pdu.message_count,
            "events": list(pdu.events),
        }
    if fc in (15, 16):
        return {"address": pdu.address, "quantity": pdu.count}
    if fc == 17:
        return {"identifier": pdu.identifier.decode(), "run_indicator_status": pdu.status}
    if fc == 20:
        return {
            "references": [
                {"file_len": len(r.record_data) + 1, "ref_type": 6, "record_data": _words(r.record_data)}
                for r in pdu.records
            ]
        }
    if fc == 21:
        return expected_request(v, pdu)
    if fc == 22:
        return {"address": pdu.address, "and_mask": pdu.and_mask, "or_mask": pdu.or_mask}
    if fc == 23:
        return {
            "read_registers": list(pdu.registers),
            "read_start_address": req.read_address,
            "read_quantity": req.read_count,
            "write_start_address": req.write_address,
        }
    if fc == 24:
        return {"response_values": list(pdu.values), "fifo_count": len(pdu.values)}
    if fc == 43:
        objects = {
            DEVICE_ID_OBJECTS.get(oid, f"0x{oid:02x}"): value.decode("utf-8", "backslashreplace")
            for oid, value in pdu.information.items()
        }
        return {
            "device_id_code": pdu.read_code,
            "conformity_level_code": pdu.conformity,
            "more_follows": pdu.more_follows == 0xFF,
            "next_object_id": pdu.next_object_id,
            "number_of_objects": pdu.number_of_objects,
            "objects": objects,
        }
    raise AssertionError(f"no expectation for FC {fc}")
