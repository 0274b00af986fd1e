"""Modbus/TCP decoder: MBAP framing, every public function code, request/response pairing, weirds.

Coverage. Every ADU with a sane MBAP header (protocol id 0, length field 2..254, or 255..300 with one
modbus_oversized_adu weird: Schneider UMAS sends 255) becomes one event. Function codes are named as
Zeek's consts.zeek names them: READ_COILS (1), READ_DISCRETE_INPUTS (2),
READ_HOLDING_REGISTERS (3), READ_INPUT_REGISTERS (4), WRITE_SINGLE_COIL (5), WRITE_SINGLE_REGISTER (6),
READ_EXCEPTION_STATUS (7), DIAGNOSTICS (8), GET_COMM_EVENT_COUNTER (11), GET_COMM_EVENT_LOG (12),
WRITE_MULTIPLE_COILS (15), WRITE_MULTIPLE_REGISTERS (16), REPORT_SLAVE_ID (17), READ_FILE_RECORD (20),
WRITE_FILE_RECORD (21), MASK_WRITE_REGISTER (22), READ_WRITE_MULTIPLE_REGISTERS (23), READ_FIFO_QUEUE (24),
ENCAP_INTERFACE_TRANSPORT (43), OBJECT_MESSAGING (91), and the vendor codes PROGRAM_484 (9), POLL_484 (10),
PROGRAM_584_984 (13), POLL_584_984 (14), PROGRAM_884_U84 (18), RESET_COMM_LINK_884_U84 (19),
PROGRAM_CONCEPT (40), MULTIPLE_FUNCTION_CODES (41), PROGRAM_UNITY (90), FIRMWARE_REPLACEMENT (125),
PROGRAM_584_984_2 (126), REPORT_LOCAL_ADDRESS (127); any other code is `unknown-N`. The bodies of 1-8, 11,
12, 15-17, 20-24 and 43 (MEI 14 read device identification, MEI 13 CANopen) are decoded both ways; the
other codes (vendor ones included) are reported with their raw data. Exceptions carry Zeek's names:
ILLEGAL_FUNCTION, ILLEGAL_DATA_ADDRESS, ILLEGAL_DATA_VALUE, SLAVE_DEVICE_FAILURE, ACKNOWLEDGE,
SLAVE_DEVICE_BUSY, MEMORY_PARITY_ERROR, GATEWAY_PATH_UNAVAILABLE, GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND,
else `unknown-N`.

Event shape. protocol "modbus"; op = the lower-cased function name (`read_holding_registers`,
`unknown-100`), except FC 43 with MEI type 14: op `read_device_identification` (func stays
ENCAP_INTERFACE_TRANSPORT); an exception's op is its request's op (the code without the 0x80 bit).
kind = request (from the client), response, exception (a response with the 0x80 bit) or weird. The client
is the TCP originator, unless the originator uses port 502 and the responder does not (a flow picked up
the wrong way round). src/dst are the true sender and receiver. Fields of every message event:
  tid, unit, pid, len    MBAP transaction id, unit id, protocol id, length field (Zeek's ModbusHeaders.len)
  func                   Zeek's modbus.log func: the upper-case name; an exception's is NAME_EXCEPTION
  pdu_type               "REQ" from the client, "RESP" from the server (modbus.log pdu_type)
  exception              exception name, on exceptions only (modbus.log exception; absent = unset)
and on responses and exceptions:
  matched, request_ts    whether a request with the same tid and function was pending, and (if so) its time
  address, quantity      copied from the paired request when the response itself lacks them
  exception_code         (exceptions only) the raw exception code
Detail fields (CISA ICSNPP modbus_detailed, mask_write_register, read_write_multiple_registers and
read_device_identification names where ICSNPP has the concept):
  FC 1, 2     REQ address, quantity; RESP byte_count, response_values (0/1 per bit, cut at the request's
              quantity; all byte_count * 8 bits when unmatched)
  FC 3, 4     REQ address, quantity; RESP byte_count, response_values (register ints)
  FC 5        address, quantity (1), request_values / response_values ([0] or [1])
  FC 6        address, quantity (1), request_values / response_values ([value])
  FC 7        RESP exception_status (the status byte)
  FC 8        subfunction (int), request_subfunction_code / response_subfunction_code (sub-function
              name), request_data / response_data (hex)
  FC 11       RESP status, event_count
  FC 12       RESP byte_count, status, event_count, message_count, events (list of event bytes)
  FC 15       REQ address, quantity, byte_count, request_values (0/1, cut at quantity);
              RESP address, quantity
  FC 16       REQ address, quantity, byte_count, request_values (registers); RESP address, quantity
  FC 17       RESP byte_count, server_id (first byte), run_indicator_status (bool or None),
              identifier (text), response_data (hex)
  FC 20       REQ byte_count, references [{ref_type, file_num, record_num, record_len}];
              RESP byte_count, references [{file_len, ref_type, record_data (registers)}]
  FC 21       byte_count, references [{ref_type, file_num, record_num, record_len, record_data}]
  FC 22       address, and_mask, or_mask
  FC 23       REQ read_start_address, read_quantity, write_start_address, write_quantity, byte_count,
              write_registers; RESP byte_count, read_registers (+ the request's four address fields)
  FC 24       REQ address; RESP byte_count, fifo_count, response_values (registers)
  FC 43       mei_type ("READ-DEVICE-IDENTIFICATION", "CANOPEN-GENERAL-REFERENCE", unknown-N), mei_code (the
              number), mei_data (hex of the bytes after the MEI type, as Zeek's event data);
              MEI 14 REQ device_id_code (the read device id code), object_id_code; RESP device_id_code,
              conformity_level_code, conformity_level (ICSNPP text), more_follows (bool),
              next_object_id, number_of_objects, objects {name: text} with the names vendor_name,
              product_code, revision, vendor_url, product_name, model_name, user_application_name,
              or "0xNN" for reserved and private objects
  others      request_data / response_data (hex of the PDU after the function code)

Weirds (kind "weird", op = the weird name; fields name, addl, and tid/unit/func where known):
modbus_protocol_violation (the first bytes of a direction are no MBAP header, or 8 bad headers in a row:
`failed` is set and decoding stops), modbus_invalid_protocol_id and modbus_invalid_length (a bad header
mid-stream; the decoder skips to the next plausible header), modbus_resync (bytes skipped after a gap),
modbus_oversized_adu (a length field of 255..300, once per direction),
modbus_truncated_pdu, modbus_extra_data, modbus_byte_count_mismatch, modbus_invalid_quantity,
modbus_invalid_coil_value, modbus_invalid_file_record, modbus_invalid_device_identification,
modbus_diag_invalid_request_data and modbus_diag_unknown_request_subfunction (Zeek's names),
modbus_truncated_adu (a partial ADU at close), modbus_unmatched_request (a request never answered by
close, or replaced by a newer request with the same tid; at most 16 per flow, then one summary with count).
"""

from __future__ import annotations

from struct import Struct
from typing import ClassVar

from protocols.base import EXCEPTION, REQUEST, RESPONSE, FlowId, ProtocolEvent, unknown, weird
from protocols.modbus_names import EXCEPTION_NAMES, FUNCTION_NAMES, MEI_TYPES, OP_CLASSES
from protocols.modbus_pdu import EXTRA, TRUNCATED, Fields, Problems
from protocols.modbus_requests import RAW_REQUEST, REQUEST_DECODERS
from protocols.modbus_responses import RAW_RESPONSE, RESPONSE_DECODERS

__all__ = ["EXCEPTION_CODES", "FUNCTION_CODES", "ModbusDecoder"]

FUNCTION_CODES = FUNCTION_NAMES  # code -> Zeek name (consts.zeek function_codes)
EXCEPTION_CODES = EXCEPTION_NAMES  # code -> Zeek name (consts.zeek exception_codes)

PROTO = "modbus"
MBAP = Struct(">HHHBB")  # tid, pid, len, unit, function code
MAX_UNMATCHED_REPORTS = 16
MAX_PENDING = 1024
MAX_BAD_HEADERS = 8
MAX_LEN = 300  # MBAP length fields 255..300 (seen from Schneider UMAS) are decoded, with one weird
_START, _SYNC, _RESYNC = 0, 1, 2
_RDI_OP = "read_device_identification"
_RDI_MEI = MEI_TYPES[0x0E]


def _zeek_func(fc: int) -> str:
    """Zeek's Modbus::build_func: the name, NAME_EXCEPTION for 0x80|known code, else unknown-N."""
    if fc in FUNCTION_NAMES:
        return FUNCTION_NAMES[fc]
    if fc & 0x80 and fc & 0x7F in FUNCTION_NAMES:
        return FUNCTION_NAMES[fc & 0x7F] + "_EXCEPTION"
    return unknown(fc)


_FUNC = [_zeek_func(fc) for fc in range(256)]
_OP = [FUNCTION_NAMES[fc].lower() if fc in FUNCTION_NAMES else unknown(fc) for fc in range(256)]
_EXC = [EXCEPTION_NAMES.get(code) or unknown(code) for code in range(256)]
_RQ_DEC = [REQUEST_DECODERS.get(fc, RAW_REQUEST) for fc in range(256)]
_RS_DEC = [RESPONSE_DECODERS.get(fc, RAW_RESPONSE) for fc in range(256)]
# plausible function codes: named ones and the user-defined ranges 65-72 and 100-110
_PLAUSIBLE = frozenset(FUNCTION_NAMES) | frozenset(range(65, 73)) | frozenset(range(100, 111))
_OK_REQ = [fc in _PLAUSIBLE for fc in range(256)]
_OK_RESP = [fc & 0x7F in _PLAUSIBLE for fc in range(256)]


def _plausible(buf: bytes, i: int, client: bool) -> bool:
    """True when buf[i:] starts with a plausible MBAP header (the caller checked 8 bytes are there)."""
    _, pid, ln, _, fc = MBAP.unpack_from(buf, i)
    if pid or not 2 <= ln <= MAX_LEN:
        return False
    if client:
        return _OK_REQ[fc]
    return _OK_RESP[fc] and (fc < 0x80 or ln == 3)


def _find_header(buf: bytes, start: int, client: bool) -> int:
    """Offset of the next plausible MBAP header at or after `start` whose successor (if present) also has
    protocol id 0; -1 if none."""
    n = len(buf)
    i = buf.find(b"\x00\x00", start + 2) - 2
    while 0 <= i <= n - 8:
        if _plausible(buf, i, client):
            nxt = i + 6 + buf[i + 5] + (buf[i + 4] << 8)
            if nxt + 4 > n or (buf[nxt + 2] == 0 and buf[nxt + 3] == 0):
                return i
        i = buf.find(b"\x00\x00", i + 3) - 2
    return -1


class ModbusDecoder:
    """Decodes one Modbus/TCP connection: both directions, paired by transaction id."""

    name: ClassVar[str] = PROTO
    transport: ClassVar[str] = "tcp"
    ports: ClassVar[frozenset[int]] = frozenset({502})
    op_classes: ClassVar[dict[str, str]] = OP_CLASSES

    def __init__(self, flow: FlowId) -> None:
        self.flow = flow
        self.failed = False
        self._client_is_orig = not (flow.orig_p == 502 and flow.resp_p != 502)
        self._ends = {True: (flow.orig_h, flow.resp_h), False: (flow.resp_h, flow.orig_h)}
        self._buf = [b"", b""]  # per direction: 0 = originator, 1 = responder
        self._state = [_START, _START]
        self._skipped = [0, 0]
        self._oversized = [False, False]
        self._bad = 0
        self._pending: dict[int, tuple[float, int, str, Fields]] = {}
        self._lost: list[tuple[float, int, str, Fields]] = []
        self._lost_more = 0

    @classmethod
    def probe(cls, payload: bytes, is_orig: bool) -> bool:
        """True when the payload starts with a complete, self-consistent Modbus/TCP ADU."""
        n = len(payload)
        if n < 8 or not _plausible(payload, 0, is_orig):
            return False
        ln = (payload[4] << 8) | payload[5]
        fc = payload[7]
        if ln > 254 or (is_orig and 1 <= fc <= 6 and ln != 6):
            return False
        rest = n - 6 - ln  # bytes after the first ADU: the start of the next one, if any
        if rest < 0:
            return False
        if rest >= 8:
            return _plausible(payload, 6 + ln, is_orig)
        return rest < 4 or payload[n - rest + 2] == payload[n - rest + 3] == 0

    def feed(self, data: bytes, is_orig: bool, ts: float) -> list[ProtocolEvent]:
        """Decode the next in-order bytes of one direction into one event per complete ADU (plus weirds)."""
        if self.failed or not data:
            return []
        d = 0 if is_orig else 1
        buf = self._buf[d] + data if self._buf[d] else data
        n = len(buf)
        client = is_orig == self._client_is_orig
        out: list[ProtocolEvent] = []
        pos = 0
        state = self._state[d]
        if state != _SYNC:
            if n < 8:
                self._buf[d] = buf
                return out
            if state == _START:
                pid = (buf[2] << 8) | buf[3]
                if pid:
                    why = f"first bytes are not an MBAP header: protocol id {pid}"
                    return self._violation(why, is_orig, ts)
            else:
                pos = _find_header(buf, 0, client)
                if pos < 0:
                    keep = n - 7
                    self._skipped[d] += keep
                    self._buf[d] = buf[keep:]
                    return out
                skipped = self._skipped[d] + pos
                self._skipped[d] = 0
                if skipped:
                    why = f"skipped {skipped} bytes"
                    out.append(weird(self.flow, PROTO, "modbus_resync", ts, is_orig, why))
            self._state[d] = _SYNC
        while n - pos >= 8:
            tid, pid, ln, uid, fc = MBAP.unpack_from(buf, pos)
            if pid or ln < 2 or ln > MAX_LEN:
                self._bad += 1
                if self._bad >= MAX_BAD_HEADERS:
                    return out + self._violation(f"{self._bad} bad MBAP headers in a row", is_orig, ts)
                nxt = _find_header(buf, pos + 1, client)
                bad = "modbus_invalid_protocol_id" if pid else "modbus_invalid_length"
                what = f"protocol id {pid}" if pid else f"length field {ln}"
                skip = f"skipped {nxt - pos} bytes" if nxt >= 0 else "searching for the next header"
                out.append(weird(self.flow, PROTO, bad, ts, is_orig, f"{what}; {skip}", tid=tid, unit=uid))
                if nxt < 0:
                    self._state[d] = _RESYNC
                    keep = max(pos, n - 7)
                    self._skipped[d] = keep - pos
                    pos = keep
                    break
                pos = nxt
                continue
            end = pos + 6 + ln
            if end > n:
                break
            self._bad = 0
            if ln > 254 and not self._oversized[d]:
                self._oversized[d] = True
                why = f"length field {ln} > 254 (decoded anyway; reported once per direction)"
                out.append(weird(self.flow, PROTO, "modbus_oversized_adu", ts, is_orig, why, tid=tid,
                                 unit=uid))
            self._message(buf, pos, end, tid, uid, fc, ln, client, is_orig, ts, out)
            pos = end
        self._buf[d] = buf[pos:] if pos < n else b""
        return out

    def gap(self, is_orig: bool, ts: float, length: int) -> list[ProtocolEvent]:
        """Drop the direction's partial ADU and resynchronise on the next plausible MBAP header."""
        d = 0 if is_orig else 1
        self._buf[d] = b""
        self._skipped[d] = 0
        self._state[d] = _RESYNC
        return []

    def close(self, ts: float) -> list[ProtocolEvent]:
        """Report partial ADUs still buffered and requests never answered (capped), then forget them."""
        if self.failed:
            return []
        out: list[ProtocolEvent] = []
        for d, rest in enumerate(self._buf):
            if rest and self._state[d] == _SYNC:
                out.append(weird(self.flow, PROTO, "modbus_truncated_adu", ts, d == 0,
                                 f"{len(rest)} bytes of an incomplete ADU at close"))
            elif self._state[d] == _RESYNC and self._skipped[d] + len(rest):
                why = f"skipped {self._skipped[d] + len(rest)} bytes, no header found before close"
                out.append(weird(self.flow, PROTO, "modbus_resync", ts, d == 0, why))
        lost = self._lost + list(self._pending.values())
        more = self._lost_more + max(0, len(lost) - MAX_UNMATCHED_REPORTS)
        for rts, _fc, _op, f in lost[:MAX_UNMATCHED_REPORTS]:
            out.append(weird(self.flow, PROTO, "modbus_unmatched_request", ts, self._client_is_orig,
                             f"tid {f['tid']} {f['func']} never answered", tid=f["tid"], unit=f["unit"],
                             func=f["func"], request_ts=rts))
        if more:
            out.append(weird(self.flow, PROTO, "modbus_unmatched_request", ts, self._client_is_orig,
                             f"{more} more requests never answered", count=more))
        self._buf = [b"", b""]
        self._pending.clear()
        self._lost.clear()
        self._lost_more = 0
        return out

    # ---- internals -------------------------------------------------------------------------------------

    def _violation(self, why: str, is_orig: bool, ts: float) -> list[ProtocolEvent]:
        self.failed = True
        self._buf = [b"", b""]
        self._pending.clear()
        self._lost.clear()
        return [weird(self.flow, PROTO, "modbus_protocol_violation", ts, is_orig, why)]

    def _lose(self, req: tuple[float, int, str, Fields]) -> None:
        if len(self._lost) < MAX_UNMATCHED_REPORTS:
            self._lost.append(req)
        else:
            self._lost_more += 1

    def _message(self, buf: bytes, pos: int, end: int, tid: int, uid: int, fc: int, ln: int, client: bool,
                 is_orig: bool, ts: float, out: list[ProtocolEvent]) -> None:
        """Decode one complete ADU buf[pos:end] and append its event (and weirds) to `out`."""
        src, dst = self._ends[is_orig]
        p = pos + 8
        problems: Problems
        if client:
            f: Fields = {"tid": tid, "unit": uid, "func": _FUNC[fc], "pdu_type": "REQ", "len": ln, "pid": 0}
            problems = _RQ_DEC[fc](buf, p, end, f)
            op = _OP[fc]
            if fc == 0x2B and f.get("mei_type") == _RDI_MEI:
                op = _RDI_OP
            pending = self._pending
            old = pending.pop(tid, None)
            if old is not None:
                self._lose(old)
            elif len(pending) >= MAX_PENDING:
                self._lose(pending.pop(next(iter(pending))))
            pending[tid] = (ts, fc, op, f)
            out.append(ProtocolEvent(ts, self.flow, PROTO, op, REQUEST, is_orig, src, dst, f))
        else:
            base = fc & 0x7F
            req = self._pending.pop(tid, None)
            if req is not None and req[1] != base:
                self._pending[tid] = req
                req = None
            req_f = req[3] if req is not None else None
            if fc & 0x80:
                code = buf[p] if p < end else None
                f = {"tid": tid, "unit": uid, "func": _FUNC[fc], "pdu_type": "RESP",
                     "exception": None if code is None else _EXC[code], "len": ln, "pid": 0,
                     "exception_code": code}
                if code is None:
                    problems = [(TRUNCATED, "exception response without an exception code")]
                else:
                    problems = None if end == p + 1 else [(EXTRA, f"{end - p - 1} trailing bytes")]
                op = req[2] if req is not None else _OP[base]
                kind = EXCEPTION
            else:
                f = {"tid": tid, "unit": uid, "func": _FUNC[fc], "pdu_type": "RESP", "len": ln, "pid": 0}
                problems = _RS_DEC[fc](buf, p, end, f, req_f)
                op = _OP[fc]
                if fc == 0x2B and f.get("mei_type") == _RDI_MEI:
                    op = _RDI_OP
                kind = RESPONSE
            if req is not None and req_f is not None:
                f["matched"] = True
                f["request_ts"] = req[0]
                if "address" not in f and "address" in req_f:
                    f["address"] = req_f["address"]
                if "quantity" not in f and "quantity" in req_f:
                    f["quantity"] = req_f["quantity"]
            else:
                f["matched"] = False
            out.append(ProtocolEvent(ts, self.flow, PROTO, op, kind, is_orig, src, dst, f))
        if problems:
            func = f["func"]
            for wname, addl in problems:
                out.append(weird(self.flow, PROTO, wname, ts, is_orig, addl, tid=tid, unit=uid, func=func))
