"""BACnet decoder: BACnet/IP (BVLL over UDP 47808) and BACnet/Ethernet (802.2 LLC 0x82), NPDU and APDU framing.

Coverage. Every BVLC function is decoded: BVLC-Result (result code by ICSNPP's name), Write-BDT, Read-BDT,
Read-BDT-Ack (the table entries as `ip:port/mask` text), Forwarded-NPDU (its original source as `forwarded_from`),
Register-Foreign-Device (ttl), Read-FDT, Read-FDT-Ack (`ip:port ttl=N remaining=M`), Delete-FDT-Entry,
Distribute-Broadcast-To-Network, Original-Unicast-NPDU, Original-Broadcast-NPDU and Secure-BVLL (length only);
an unassigned function is reported as op `unknown-bvlc-N`. The NPDU header is decoded whole: version, control
octet (`npdu_control`, `network_priority`), DNET/DADR, SNET/SADR, hop count. Every network-layer message is named
(who_is_router_to_network ... network_number_is, else `unknown-network-N`) with its parameters: network numbers
(`networks`), performance index, reject reason, routing table entries, termination time, network-number flag,
vendor id of proprietary messages; the security messages (0x0A-0x11) are named and sized only. Every APDU type is
decoded: confirmed request (invoke id, max APDU and segments accepted, segmented-response-accepted), unconfirmed
request, simple ACK, complex ACK, segment ACK, error, reject and abort (reasons by name). Every confirmed service
0-33 and unconfirmed service 0-14 of ASHRAE 135-2020 is named, others are `unknown-N`; the service parameters of
requests, complex ACKs and errors are decoded by protocols/bacnet_values.py (its docstring says to what depth).
Segmented confirmed requests and complex ACKs are reassembled per flow (keyed by direction, routing addresses and
invoke id; at most 64 at once, 1 MiB and 4096 segments each) into one event when the last segment arrives.

Event shape. protocol "bacnet"; one event per BACnet message: per BVLC message without an NPDU, per network-layer
message, per APDU (a segmented one once, when complete). op: the service or message name in snake_case; an ACK,
error, reject or abort takes the op of the request it answers (reject and abort through the pending request with
that invoke id on the flow, else "reject"/"abort"); a segment ACK is "segment_ack". kind: request (confirmed and
unconfirmed requests, BVLC and network requests), response (ACKs, BVLC-Result 0, I-Am-Router-To-Network...),
exception (error, reject, abort, BVLC-Result NAK, Reject-Message-To-Network) or weird. src/dst: the IP (or MAC)
sender and receiver of the datagram. Fields, with ICSNPP's bacnet.log names and texts:
  bvlc_function      ICSNPP text (Original_Unicast_NPDU, ...); absent on BACnet/Ethernet
  pdu_type           CONFIRMED_REQUEST UNCONFIRMED_REQUEST SIMPLE_ACK COMPLEX_ACK SEGMENT_ACK ERROR_PDU REJECT_PDU
                     ABORT_PDU, or NPDU for a network-layer message; absent for BVLC-only messages
  pdu_service        ICSNPP's bacnet.log service text (read_property, i_am, ...; "reject", "abort"; the network
                     message name for NPDU)
  invoke_id, service_choice, result_code (error code, reject/abort reason or BVLC result text)
  forwarded_from, bvlc_result_code, bdt, fdt, ttl, bvll_data_length       BVLC details
  npdu_control, dnet, dadr, snet, sadr (hex), hop_count, network_priority  NPDU (addresses only when present)
  network_message, networks, performance_index, reject_reason, reject_reason_code, routing_table,
  termination_time, network_number_configured, vendor_id, network_data_length      network-layer messages
  max_apdu_accepted, max_segments_accepted (0 = unspecified, 65 = more than 64), segmented_response_accepted,
  segmented, sequence_number, more_follows, window_size, segments, negative_ack, server     segmentation
  reject_reason, abort_reason, abort_server, result ("SUCCESS", "ERROR", "REJECT", "ABORT" on the answer to a
  DeviceCommunicationControl or ReinitializeDevice), and the service fields of bacnet_values.

Weirds (kind "weird", op = name): bacnet_protocol_violation (the first datagram of a flow is not a BACnet
message, or 8 bad BVLC headers in a row: `failed` is set), bacnet_truncated_bvlc, bacnet_invalid_bvlc_type,
bacnet_bvlc_length_mismatch, bacnet_truncated_bvlc_message, bacnet_bvlc_extra_data, bacnet_invalid_bvlc_table,
bacnet_truncated_npdu, bacnet_invalid_npdu_version, bacnet_invalid_npdu_source, bacnet_truncated_network_message,
bacnet_network_message_extra_data, bacnet_truncated_apdu, bacnet_apdu_extra_data, bacnet_unknown_pdu_type,
bacnet_segment_without_start, bacnet_segment_out_of_order, bacnet_segment_overflow, bacnet_segment_table_full,
bacnet_incomplete_segmented_apdu (at close), and the service-level weirds of bacnet_values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from protocols.bacnet_enums import ABORT_REASONS, REJECT_REASONS
from protocols.bacnet_link import Route, bvlc_message, ip_port, network_message, npdu_header
from protocols.bacnet_logs import log_rows
from protocols.bacnet_names import (
    CONFIRMED_SERVICES,
    MAX_APDU,
    MAX_SEGMENTS,
    NETWORK_PRIORITIES,
    OP_CLASSES,
    PDU_TYPES,
    UNCONFIRMED_SERVICES,
    bvlc_function_text,
    network_message_text,
    service_text,
)
from protocols.bacnet_segments import Reassembler
from protocols.bacnet_values import decode_ack, decode_error, decode_request
from protocols.base import EXCEPTION, REQUEST, RESPONSE, FlowId, ProtocolEvent, unknown, weird

__all__ = ["BacnetDecoder", "BacnetEthernetDecoder"]

PROTO = "bacnet"
MAX_PENDING = 1024  # outstanding confirmed requests remembered per flow (oldest forgotten first)
MAX_BAD = 8  # bad BVLC headers in a row before the flow is given up
_DEVICE_CONTROL = frozenset({"device_communication_control", "reinitialize_device"})

_CONF_OP = [CONFIRMED_SERVICES.get(i) or unknown(i) for i in range(256)]
_UNCONF_OP = [UNCONFIRMED_SERVICES.get(i) or unknown(i) for i in range(256)]
_CONF_TEXT = [service_text(i, True) for i in range(256)]
_UNCONF_TEXT = [service_text(i, False) for i in range(256)]
_REJECT = [REJECT_REASONS.get(i) or unknown(i) for i in range(256)]
_ABORT = [ABORT_REASONS.get(i) or unknown(i) for i in range(256)]
_BVLC_TEXT = [bvlc_function_text(i) for i in range(256)]
_MAX_APDU = [MAX_APDU[i] if i < len(MAX_APDU) else None for i in range(16)]
_PRIORITY = [None, *NETWORK_PRIORITIES[1:]]
_APDU_MIN = (4, 2, 3, 3, 4, 3, 3, 3)  # shortest APDU of each type (unsegmented)
_RESULTS = ("", "", "SUCCESS", "", "", "ERROR", "REJECT", "ABORT")  # ICSNPP device-control result per type
_FIXED = (False, False, True, False, True, False, True, True)  # types with no service data

Fields = dict[str, Any]


def _flip(route: Route) -> Route:
    """The route of the answer to a message with this route: source and destination swapped."""
    if route is None:
        return None
    snet, sadr, dnet, dadr = route
    return (dnet, dadr, snet, sadr)


class _BacnetCore:
    """NPDU and APDU decoding shared by BACnet/IP and BACnet/Ethernet: pending requests, reassembly, events."""

    name: ClassVar[str] = PROTO
    op_classes: ClassVar[dict[str, str]] = OP_CLASSES
    # ICSNPP's detail logs (bacnet_discovery, bacnet_property, bacnet_device_control) split off each bacnet row
    log_rows: ClassVar[Callable[[dict[str, Any]], list[tuple[str, dict[str, Any]]]]] = staticmethod(log_rows)

    def __init__(self, flow: FlowId) -> None:
        self.flow = flow
        self.failed = False
        self._ends = {True: (flow.orig_h, flow.resp_h), False: (flow.resp_h, flow.orig_h)}
        self._seen = False  # the first message was checked
        self._bad = 0  # bad headers in a row
        self._pending: dict[tuple[bool, Route, int], str] = {}  # (requester side, route, invoke id) -> op
        self._segments = Reassembler()

    def gap(self, is_orig: bool, ts: float, length: int) -> list[ProtocolEvent]:
        """Datagrams have no gaps: nothing to do."""
        return []

    def close(self, ts: float) -> list[ProtocolEvent]:
        """Report segmented messages still incomplete, then forget the flow's state."""
        out = [self._weird(name, ts, is_orig, addl) for is_orig, name, addl in self._segments.leftovers()]
        self._pending.clear()
        return out

    # ---- internals -------------------------------------------------------------------------------------

    def _weird(self, name: str, ts: float, is_orig: bool, addl: str, **extra: Any) -> ProtocolEvent:
        return weird(self.flow, PROTO, name, ts, is_orig, addl, **extra)

    def _violation(self, why: str, is_orig: bool, ts: float) -> list[ProtocolEvent]:
        self.failed = True
        self._pending.clear()
        self._segments.clear()
        return [self._weird("bacnet_protocol_violation", ts, is_orig, why)]

    def _npdu(self, buf: bytes, pos: int, end: int, is_orig: bool, ts: float, f: Fields,
              out: list[ProtocolEvent]) -> None:
        """Decode the NPDU buf[pos:end]; `f` holds the BVLC fields so far and becomes the event's fields."""
        if end - pos >= 2 and buf[pos] == 1 and not buf[pos + 1] & 0x28:  # the common case: no routing
            ctrl = buf[pos + 1]
            p = pos + 2
            net: Fields | None = None
            route: Route = None
        else:
            ctrl, p, net, route, problems = npdu_header(buf, pos, end)
            for wname, addl in problems:
                out.append(self._weird(wname, ts, is_orig, addl))
            if p < 0:
                return
        if ctrl & 0x80:  # a network-layer message
            if p >= end:
                out.append(self._weird("bacnet_truncated_network_message", ts, is_orig, "message type missing"))
                return
            mtype = buf[p]
            op, kind, nf, problems = network_message(mtype, buf, p + 1, end)
            f["pdu_type"] = "NPDU"
            f["pdu_service"] = network_message_text(mtype)
            f["npdu_control"] = ctrl
            if net is not None or ctrl & 3:
                self._npci(f, ctrl, net)
            f.update(nf)
            src, dst = self._ends[is_orig]
            out.append(ProtocolEvent(ts, self.flow, PROTO, op, kind, is_orig, src, dst, f))
            for wname, addl in problems:
                out.append(self._weird(wname, ts, is_orig, addl))
            return
        n = end - p
        t = buf[p] >> 4 if n else -1
        if t > 7:
            out.append(self._weird("bacnet_unknown_pdu_type", ts, is_orig, f"PDU type {t}"))
        elif t < 0 or n < _APDU_MIN[t] or (buf[p] & 0x08 and ((t == 0 and n < 6) or (t == 3 and n < 5))):
            why = f"{PDU_TYPES[t]} of {n} bytes" if n else "NPDU without an APDU"
            out.append(self._weird("bacnet_truncated_apdu", ts, is_orig, why))
        else:
            self._apdu(buf, p, end, t, is_orig, ts, f, ctrl, net, route, out)

    @staticmethod
    def _npci(f: Fields, ctrl: int, net: Fields | None) -> None:
        """Add the routing fields and priority after npdu_control (the caller checked there is something)."""
        if net is not None:
            f.update(net)
        if ctrl & 3:
            f["network_priority"] = _PRIORITY[ctrl & 3]

    def _apdu(self, buf: bytes, p: int, end: int, t: int, is_orig: bool, ts: float, f: Fields, ctrl: int,
              net: Fields | None, route: Route, out: list[ProtocolEvent]) -> None:
        """Decode the APDU of type t at buf[p:end] (long enough for its header) into one event, none for a
        segment that does not complete a message."""
        b0 = buf[p]
        problems: list[tuple[str, str]] | None = None
        f["pdu_type"] = PDU_TYPES[t]
        if t == 1:  # Unconfirmed-Request: no invoke id
            svc = buf[p + 1]
            op = _UNCONF_OP[svc]
            kind = REQUEST
            f["pdu_service"] = _UNCONF_TEXT[svc]
            f["service_choice"] = svc
            f["npdu_control"] = ctrl
            if net is not None or ctrl & 3:
                self._npci(f, ctrl, net)
            fields, problems = decode_request(False, svc, buf[p + 2 : end])
            f.update(fields)
        elif t == 4:  # Segment-ACK
            op = "segment_ack"
            kind = RESPONSE
            f["invoke_id"] = buf[p + 1]
            f["npdu_control"] = ctrl
            if net is not None or ctrl & 3:
                self._npci(f, ctrl, net)
            f["sequence_number"] = buf[p + 2]
            f["window_size"] = buf[p + 3]
            f["negative_ack"] = bool(b0 & 0x02)
            f["server"] = bool(b0 & 0x01)
        elif t == 0:  # Confirmed-Request
            invoke = buf[p + 2]
            seg = b0 & 0x08
            svc = buf[p + 5] if seg else buf[p + 3]
            op = _CONF_OP[svc]
            kind = REQUEST
            f["pdu_service"] = _CONF_TEXT[svc]
            f["invoke_id"] = invoke
            f["service_choice"] = svc
            f["npdu_control"] = ctrl
            if net is not None or ctrl & 3:
                self._npci(f, ctrl, net)
            f["max_apdu_accepted"] = _MAX_APDU[buf[p + 1] & 0x0F]
            f["max_segments_accepted"] = MAX_SEGMENTS[(buf[p + 1] >> 4) & 0x07]
            f["segmented_response_accepted"] = bool(b0 & 0x02)
            pending = self._pending
            key = (is_orig, route, invoke)
            if len(pending) >= MAX_PENDING and key not in pending:
                del pending[next(iter(pending))]
            pending[key] = op
            if seg:
                data = self._data(buf, p + 6, end, b0, p + 3, is_orig, ts, f, route, out)
                if data is None:
                    return
            else:
                f["segmented"] = False
                data = buf[p + 4 : end]
            fields, problems = decode_request(True, svc, data)
            f.update(fields)
        else:  # the answers: Simple-ACK, Complex-ACK, Error, Reject, Abort
            invoke = buf[p + 1]
            kind = RESPONSE if t <= 3 else EXCEPTION
            if t <= 5:
                seg = b0 & 0x08 if t == 3 else 0
                svc = buf[p + 4] if seg else buf[p + 2]
                op = _CONF_OP[svc]
                f["pdu_service"] = _CONF_TEXT[svc]
                f["invoke_id"] = invoke
                if t == 5:
                    f["result_code"] = None  # placeholder: keeps ICSNPP's column order
                f["service_choice"] = svc
                f["npdu_control"] = ctrl
                if net is not None or ctrl & 3:
                    self._npci(f, ctrl, net)
                if t == 3:
                    if seg:
                        data = self._data(buf, p + 5, end, b0, p + 2, is_orig, ts, f, route, out)
                        if data is None:
                            return
                    else:
                        f["segmented"] = False
                        data = buf[p + 3 : end]
                    fields, problems = decode_ack(svc, data)
                    f.update(fields)
                elif t == 5:
                    fields, problems = decode_error(svc, buf[p + 3 : end])
                    f.update(fields)
                    code = f.get("error_code")
                    if code is None:
                        del f["result_code"]
                    else:
                        f["result_code"] = code
                self._pending.pop((not is_orig, _flip(route), invoke), "")
            else:  # Reject (6) or Abort (7): the op of the pending request they end
                server = t == 6 or bool(b0 & 0x01)
                side, rt = (not is_orig, _flip(route)) if server else (is_orig, route)  # whose request
                op = self._pending.pop((side, rt, invoke), "") or ("reject" if t == 6 else "abort")
                text = _REJECT[buf[p + 2]] if t == 6 else _ABORT[buf[p + 2]]
                f["pdu_service"] = "reject" if t == 6 else "abort"
                f["invoke_id"] = invoke
                f["result_code"] = text
                f["npdu_control"] = ctrl
                if net is not None or ctrl & 3:
                    self._npci(f, ctrl, net)
                if t == 6:
                    f["reject_reason"] = text
                else:
                    f["abort_reason"] = text
                    f["abort_server"] = server
                    self._segments.drop(invoke)
            if op in _DEVICE_CONTROL and t != 3:
                f["result"] = _RESULTS[t]
        if _FIXED[t] and end - p > _APDU_MIN[t]:
            surplus = ("bacnet_apdu_extra_data", f"{PDU_TYPES[t]}: {end - p - _APDU_MIN[t]} bytes after it")
            problems = [*(problems or ()), surplus]
        src, dst = self._ends[is_orig]
        out.append(ProtocolEvent(ts, self.flow, PROTO, op, kind, is_orig, src, dst, f))
        if problems:
            extra = {k: f[k] for k in ("invoke_id", "pdu_service") if k in f}  # weird rows: no unset values
            for wname, addl in problems:
                out.append(self._weird(wname, ts, is_orig, addl, **extra))

    def _data(self, buf: bytes, at: int, end: int, b0: int, seq_at: int, is_orig: bool, ts: float, f: Fields,
              route: Route, out: list[ProtocolEvent]) -> bytes | None:
        """A segment of a confirmed request or complex ACK (data at buf[at:end], sequence number at seq_at): the
        reassembled service data when it completes the message, else None."""
        seq = buf[seq_at]
        key = (is_orig, b0 >> 4, route, f["invoke_id"])
        done, problems = self._segments.add(key, seq, bool(b0 & 0x04), buf[at:end])
        for wname, addl in problems:
            out.append(self._weird(wname, ts, is_orig, addl, invoke_id=f["invoke_id"],
                                   pdu_service=f["pdu_service"]))
        if done is None:
            return None
        f["segmented"] = True
        f["sequence_number"] = seq
        f["more_follows"] = False
        f["window_size"] = buf[seq_at + 1]
        f["segments"] = done[1]
        return done[0]


class BacnetDecoder(_BacnetCore):
    """Decodes one BACnet/IP UDP flow (BVLL, NPDU, APDU) in both directions."""

    transport: ClassVar[str] = "udp"
    ports: ClassVar[frozenset[int]] = frozenset({47808})

    @classmethod
    def probe(cls, payload: bytes, is_orig: bool) -> bool:
        """True when the payload is one whole BVLC message: type 0x81, a known function, a consistent length."""
        n = len(payload)
        return n >= 4 and payload[0] == 0x81 and payload[1] <= 0x0C and (payload[2] << 8) | payload[3] == n

    def feed(self, data: bytes, is_orig: bool, ts: float) -> list[ProtocolEvent]:
        """Decode one UDP datagram into events (one per BACnet message, plus weirds)."""
        if self.failed or not data:
            return []
        n = len(data)
        if not self._seen:
            if not self.probe(data, is_orig):
                return self._violation(f"first datagram is not a BVLC message: {data[:8].hex()}", is_orig, ts)
            self._seen = True
        if n < 4 or data[0] != 0x81:
            name = "bacnet_truncated_bvlc" if n < 4 else "bacnet_invalid_bvlc_type"
            return self._bad_header(name, f"{n} bytes starting {data[:4].hex()}", is_orig, ts)
        out: list[ProtocolEvent] = []
        func = data[1]
        end = (data[2] << 8) | data[3]
        if end != n:
            if end < 4:
                return self._bad_header("bacnet_bvlc_length_mismatch", f"length field {end}", is_orig, ts)
            why = f"length field {end}, datagram {n} bytes"
            out.append(self._weird("bacnet_bvlc_length_mismatch", ts, is_orig, why))
            end = min(n, end)
        if self._bad:
            self._bad = 0
        if func == 0x0A or func == 0x0B or func == 0x09:
            self._npdu(data, 4, end, is_orig, ts, {"bvlc_function": _BVLC_TEXT[func]}, out)
        elif func == 0x04:
            if end < 10:
                why = f"Forwarded-NPDU of {end} bytes without its original source"
                out.append(self._weird("bacnet_truncated_bvlc_message", ts, is_orig, why))
            else:
                head = {"bvlc_function": _BVLC_TEXT[func], "forwarded_from": ip_port(data, 4)}
                self._npdu(data, 10, end, is_orig, ts, head, out)
        else:
            op, kind, fields, problems = bvlc_message(func, data, 4, end)
            f: Fields = {"bvlc_function": _BVLC_TEXT[func], **fields}
            src, dst = self._ends[is_orig]
            out.append(ProtocolEvent(ts, self.flow, PROTO, op, kind, is_orig, src, dst, f))
            for wname, addl in problems:
                out.append(self._weird(wname, ts, is_orig, addl, bvlc_function=f["bvlc_function"]))
        return out

    def _bad_header(self, name: str, why: str, is_orig: bool, ts: float) -> list[ProtocolEvent]:
        self._bad += 1
        if self._bad >= MAX_BAD:
            return self._violation(f"{self._bad} bad BVLC headers in a row; last: {why}", is_orig, ts)
        return [self._weird(name, ts, is_orig, why)]


class BacnetEthernetDecoder(_BacnetCore):
    """Decodes BACnet/Ethernet frames (802.2 LLC 0x82): each `feed` is one frame's NPDU and APDU."""

    transport: ClassVar[str] = "llc"
    ports: ClassVar[frozenset[int]] = frozenset({0x82})

    @classmethod
    def probe(cls, payload: bytes, is_orig: bool) -> bool:
        """True when the frame starts with an NPDU: version 1 and a control octet."""
        return len(payload) >= 2 and payload[0] == 1

    def feed(self, data: bytes, is_orig: bool, ts: float) -> list[ProtocolEvent]:
        """Decode one LLC frame's payload (starting at the NPDU) into events."""
        if self.failed or not data:
            return []
        if not self._seen:
            if not self.probe(data, is_orig):
                return self._violation(f"first frame is not an NPDU: {data[:8].hex()}", is_orig, ts)
            self._seen = True
        out: list[ProtocolEvent] = []
        self._npdu(data, 0, len(data), is_orig, ts, {}, out)
        return out
