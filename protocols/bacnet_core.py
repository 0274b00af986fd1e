"""The NPDU and APDU decoding that BACnet/IP and BACnet/Ethernet share (see protocols/bacnet.py for what is decoded).

`BacnetCore` holds a flow's pending confirmed requests and its segment reassembly, decodes one NPDU with its
network-layer message or APDU along the general, step-by-step path, and builds the events; protocols/bacnet.py
adds the link layers (BVLL over UDP, 802.2 LLC) and the fast path for the everyday messages. The name tables
(`CONF_OP`, `CONF_TEXT`, ...) are shared with that fast path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from protocols.bacnet_enums import ABORT_REASONS, REJECT_REASONS
from protocols.bacnet_lines import log_lines
from protocols.bacnet_link import Route, network_message, npdu_header
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
from protocols.bacnet_values import ACK, CONFIRMED, ERROR, UNCONFIRMED, decode_shared
from protocols.base import EXCEPTION, REQUEST, RESPONSE, FlowId, ProtocolEvent, unknown, weird

__all__ = ["BVLC_TEXT", "CONF_OP", "CONF_TEXT", "MAX_APDU_ACCEPTED", "MAX_PENDING", "PROTO", "UNCONF_OP",
           "UNCONF_TEXT", "BacnetCore"]

PROTO = "bacnet"
MAX_PENDING = 1024  # outstanding confirmed requests remembered per flow (oldest forgotten first)
_DEVICE_CONTROL = frozenset({"device_communication_control", "reinitialize_device"})

CONF_OP = [CONFIRMED_SERVICES.get(i) or unknown(i) for i in range(256)]
UNCONF_OP = [UNCONFIRMED_SERVICES.get(i) or unknown(i) for i in range(256)]
CONF_TEXT = [service_text(i, True) for i in range(256)]
UNCONF_TEXT = [service_text(i, False) for i in range(256)]
_REJECT = [REJECT_REASONS.get(i) or unknown(i) for i in range(256)]
_ABORT = [ABORT_REASONS.get(i) or unknown(i) for i in range(256)]
BVLC_TEXT = [bvlc_function_text(i) for i in range(256)]
MAX_APDU_ACCEPTED = [MAX_APDU[i] if i < len(MAX_APDU) else None for i in range(16)]
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


class BacnetCore:
    """NPDU and APDU decoding shared by BACnet/IP and BACnet/Ethernet: pending requests, reassembly, events."""

    name: ClassVar[str] = PROTO
    op_classes: ClassVar[dict[str, str]] = OP_CLASSES
    # ICSNPP's detail logs (bacnet_discovery, bacnet_property, bacnet_device_control) split off each bacnet row
    log_rows: ClassVar[Callable[[dict[str, Any]], list[tuple[str, dict[str, Any]]]]] = staticmethod(log_rows)
    log_lines: ClassVar[Callable[[ProtocolEvent], list[tuple[str, bytes, int]] | None]] = staticmethod(log_lines)

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
            op = UNCONF_OP[svc]
            kind = REQUEST
            f["pdu_service"] = UNCONF_TEXT[svc]
            f["service_choice"] = svc
            f["npdu_control"] = ctrl
            if net is not None or ctrl & 3:
                self._npci(f, ctrl, net)
            fields, problems = decode_shared(UNCONFIRMED, svc, buf[p + 2 : end])
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
            op = CONF_OP[svc]
            kind = REQUEST
            f["pdu_service"] = CONF_TEXT[svc]
            f["invoke_id"] = invoke
            f["service_choice"] = svc
            f["npdu_control"] = ctrl
            if net is not None or ctrl & 3:
                self._npci(f, ctrl, net)
            f["max_apdu_accepted"] = MAX_APDU_ACCEPTED[buf[p + 1] & 0x0F]
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
            fields, problems = decode_shared(CONFIRMED, svc, data)
            f.update(fields)
        else:  # the answers: Simple-ACK, Complex-ACK, Error, Reject, Abort
            invoke = buf[p + 1]
            kind = RESPONSE if t <= 3 else EXCEPTION
            if t <= 5:
                seg = b0 & 0x08 if t == 3 else 0
                svc = buf[p + 4] if seg else buf[p + 2]
                op = CONF_OP[svc]
                f["pdu_service"] = CONF_TEXT[svc]
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
                    fields, problems = decode_shared(ACK, svc, data)
                    f.update(fields)
                elif t == 5:
                    fields, problems = decode_shared(ERROR, svc, buf[p + 3 : end])
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
