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

Speed. The everyday message (an Original-Unicast- or Original-Broadcast-NPDU without routing or priority that
carries an unsegmented confirmed request, unconfirmed request or complex ACK whose parameters decode cleanly) is
decoded in one step (`BacnetDecoder._plain`); anything else takes the general path of protocols/bacnet_core.py,
which the fast path must match field for field (tests/protocols/test_bacnet_fastpath.py). Service parameters are
memoised by content (bacnet_values.decode_shared), so the events of repeated messages share their decoded values:
an event's fields are read-only. The ICSNPP detail rows come encoded from protocols/bacnet_lines.py.
"""

from __future__ import annotations

from typing import ClassVar

from protocols.bacnet_core import (
    BVLC_TEXT,
    CONF_OP,
    CONF_TEXT,
    MAX_APDU_ACCEPTED,
    MAX_PENDING,
    PROTO,
    UNCONF_OP,
    UNCONF_TEXT,
    BacnetCore,
)
from protocols.bacnet_link import bvlc_message, ip_port
from protocols.bacnet_names import MAX_SEGMENTS
from protocols.bacnet_values import ACK, CONFIRMED, UNCONFIRMED, decode_shared, memo_get
from protocols.base import REQUEST, RESPONSE, ProtocolEvent

__all__ = ["MAX_PENDING", "BacnetDecoder", "BacnetEthernetDecoder"]

MAX_BAD = 8  # bad BVLC headers in a row before the flow is given up
Fields = dict[str, object]


class BacnetDecoder(BacnetCore):
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
        if (n >= 8 and data[0] == 0x81 and (data[1] == 0x0A or data[1] == 0x0B) and (data[2] << 8) | data[3] == n
                and data[4] == 1 and not data[5] & 0xAB and self._seen and not self._bad):
            # an original unicast or broadcast NPDU with an APDU, no routing, normal priority: the everyday case
            done = self._plain(data, n, is_orig, ts)
            if done is not None:
                return done
        return self._datagram(data, n, is_orig, ts)

    def _datagram(self, data: bytes, n: int, is_orig: bool, ts: float) -> list[ProtocolEvent]:
        """The general path of `feed`: any datagram, checked step by step (the fast path's reference)."""
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
            self._npdu(data, 4, end, is_orig, ts, {"bvlc_function": BVLC_TEXT[func]}, out)
        elif func == 0x04:
            if end < 10:
                why = f"Forwarded-NPDU of {end} bytes without its original source"
                out.append(self._weird("bacnet_truncated_bvlc_message", ts, is_orig, why))
            else:
                head = {"bvlc_function": BVLC_TEXT[func], "forwarded_from": ip_port(data, 4)}
                self._npdu(data, 10, end, is_orig, ts, head, out)
        else:
            op, kind, fields, problems = bvlc_message(func, data, 4, end)
            f: Fields = {"bvlc_function": BVLC_TEXT[func], **fields}
            src, dst = self._ends[is_orig]
            out.append(ProtocolEvent(ts, self.flow, PROTO, op, kind, is_orig, src, dst, f))
            for wname, addl in problems:
                out.append(self._weird(wname, ts, is_orig, addl, bvlc_function=f["bvlc_function"]))
        return out

    def _plain(self, b: bytes, n: int, is_orig: bool, ts: float) -> list[ProtocolEvent] | None:
        """The event of an unsegmented confirmed request, unconfirmed request or complex ACK whose parameters
        decode without a problem, built in one go (the same fields, in the same order, as the general path);
        None for anything else, which then takes the general path."""
        b0 = b[6]
        t = b0 >> 4
        if t == 0:
            if b0 & 0x08 or n < 10:
                return None
            svc = b[9]
            data = b[10:]
            fields, problems = memo_get((CONFIRMED, svc, data)) or decode_shared(CONFIRMED, svc, data)
            if problems:
                return None
            invoke = b[8]
            op = CONF_OP[svc]
            pending = self._pending
            key = (is_orig, None, invoke)
            if len(pending) >= MAX_PENDING and key not in pending:
                del pending[next(iter(pending))]
            pending[key] = op
            mx = b[7]
            f = {"bvlc_function": BVLC_TEXT[b[1]], "pdu_type": "CONFIRMED_REQUEST", "pdu_service": CONF_TEXT[svc],
                 "invoke_id": invoke, "service_choice": svc, "npdu_control": b[5],
                 "max_apdu_accepted": MAX_APDU_ACCEPTED[mx & 0x0F],
                 "max_segments_accepted": MAX_SEGMENTS[(mx >> 4) & 0x07],
                 "segmented_response_accepted": bool(b0 & 0x02), "segmented": False, **fields}
            src, dst = self._ends[is_orig]
            return [ProtocolEvent(ts, self.flow, PROTO, op, REQUEST, is_orig, src, dst, f)]
        if t == 3:
            if b0 & 0x08 or n < 9:
                return None
            svc = b[8]
            data = b[9:]
            fields, problems = memo_get((ACK, svc, data)) or decode_shared(ACK, svc, data)
            if problems:
                return None
            invoke = b[7]
            f = {"bvlc_function": BVLC_TEXT[b[1]], "pdu_type": "COMPLEX_ACK", "pdu_service": CONF_TEXT[svc],
                 "invoke_id": invoke, "service_choice": svc, "npdu_control": b[5], "segmented": False, **fields}
            pending = self._pending
            if pending:
                pending.pop((not is_orig, None, invoke), None)
            src, dst = self._ends[is_orig]
            return [ProtocolEvent(ts, self.flow, PROTO, CONF_OP[svc], RESPONSE, is_orig, src, dst, f)]
        if t == 1:
            svc = b[7]
            data = b[8:]
            fields, problems = memo_get((UNCONFIRMED, svc, data)) or decode_shared(UNCONFIRMED, svc, data)
            if problems:
                return None
            f = {"bvlc_function": BVLC_TEXT[b[1]], "pdu_type": "UNCONFIRMED_REQUEST",
                 "pdu_service": UNCONF_TEXT[svc], "service_choice": svc, "npdu_control": b[5], **fields}
            src, dst = self._ends[is_orig]
            return [ProtocolEvent(ts, self.flow, PROTO, UNCONF_OP[svc], REQUEST, is_orig, src, dst, f)]
        return None

    def _bad_header(self, name: str, why: str, is_orig: bool, ts: float) -> list[ProtocolEvent]:
        self._bad += 1
        if self._bad >= MAX_BAD:
            return self._violation(f"{self._bad} bad BVLC headers in a row; last: {why}", is_orig, ts)
        return [self._weird(name, ts, is_orig, why)]


class BacnetEthernetDecoder(BacnetCore):
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
