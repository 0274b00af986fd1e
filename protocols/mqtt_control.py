"""The MqttDecoder's per-packet work besides PUBLISH: acknowledgements, CONNECT/CONNACK, SUBSCRIBE/UNSUBSCRIBE and
their answers, pings, DISCONNECT, AUTH; transaction pairing, topic aliases, capped weirds and close-time notices.

A mixin of protocols/mqtt.py's MqttDecoder (which owns the state declared here); see that module's docstring for
the events and weirds.
"""

from __future__ import annotations

from typing import Any

from protocols.base import EXCEPTION, NOTICE, REQUEST, RESPONSE, ProtocolEvent, weird
from protocols.mqtt_names import PACKET_TYPES
from protocols.mqtt_packets import (
    INVALID_FLAGS,
    MALFORMED,
    Fields,
    Problems,
    parse_connack,
    parse_connect,
    parse_id_only,
    parse_props,
    parse_reason,
    parse_suback,
    parse_subscribe,
    parse_unsuback,
    parse_unsubscribe,
)
from protocols.mqtt_payload import payload_type
from protocols.mqtt_sync import FramingMixin

__all__ = ["UNASSIGNED", "ControlMixin", "PendingPublish"]

PROTO = "mqtt"
UNASSIGNED = "mqtt_unassigned_msg_type"
PendingPublish = list[Any]  # [ts, publish fields, PUBREC seen, PUBREL seen]
MAX_PENDING = 1024
MAX_INCOMPLETE = 64
MAX_ALIASES = 1024
_OPS = ["unassigned", *(PACKET_TYPES[t] for t in range(1, 16))]
_NAMES = [op.upper() for op in _OPS]
_BAD = frozenset({MALFORMED, INVALID_FLAGS, UNASSIGNED})
_CONNECT_COPY = ("proto_name", "proto_version", "client_id", "will_topic", "will_payload", "username")
_PUBLISH_COPY = ("from_client", "qos", "retain", "topic", "payload", "payload_len")


class ControlMixin(FramingMixin):
    """Per-packet handlers and transaction bookkeeping of the MqttDecoder."""

    _cap: int
    _peek: int
    _ends: dict[bool, tuple[str, str]]
    _client_is_orig: bool
    _connect: tuple[float, Fields] | None
    _connect_seen: bool
    _intro_done: bool
    _trusted: bool
    _lost: list[tuple[str, float, bool, Fields]]
    _lost_more: int

    def _problems(self, out: list[ProtocolEvent], problems: Problems, ts: float, is_orig: bool, op: str,
                  cut: bool) -> bool:
        """Report a parser's problems (malformed ones are expected and dropped when the packet was `cut`);
        True when one makes the packet malformed."""
        bad = False
        for name, addl in problems or ():
            if name in _BAD:
                if cut:
                    continue
                bad = True
            self._weird(out, name, ts, is_orig, addl, msg_type=op)
        return bad

    def _ack(self, buf: bytes, p: int, stop: int, ptype: int, b0: int, client: bool, is_orig: bool, d: int,
             ts: float, out: list[ProtocolEvent]) -> bool:
        """PUBACK, PUBREC, PUBREL or PUBCOMP: its event, paired with the PUBLISH of its packet identifier."""
        bad = False
        op = _OPS[ptype]
        if b0 & 15 != (2 if ptype == 6 else 0):
            self._weird(out, INVALID_FLAGS, ts, is_orig, f"{_NAMES[ptype]} header flags {b0 & 15:#x}", msg_type=op)
            bad = True
        if self.version is None and stop - p > 2:
            self.version = 5
        f, problems = parse_id_only(buf, p, stop, ptype, self.version == 5, _NAMES[ptype])
        pid = f.get("packet_id")
        if pid is not None:
            table = self._pubs[d if ptype == 6 else 1 - d]
            entry = table.pop(pid, None) if ptype == 4 or ptype == 7 else table.get(pid)
            if entry is None:
                f["matched"] = False
                addl = f"{_NAMES[ptype]} for packet identifier {pid} without its PUBLISH"
                self._weird(out, "mqtt_missing_publish", ts, is_orig, addl, msg_type=op, packet_id=pid)
            else:
                pf = entry[1]
                f["matched"] = True
                f["request_ts"] = entry[0]
                if ptype == 5:
                    entry[2] = True
                    f["topic"] = pf.get("topic")
                elif ptype == 6:
                    entry[3] = True
                    f["topic"] = pf.get("topic")
                else:
                    qos = pf["qos"]
                    done = qos == 1 if ptype == 4 else qos == 2 and entry[2] and entry[3]
                    for key in _PUBLISH_COPY:
                        f[key] = pf.get(key)
                    f["status"] = "ok" if done else "incomplete_qos"
        kind = REQUEST if client else EXCEPTION if f.get("reason_code", 0) >= 0x80 else RESPONSE
        src, dst = self._ends[is_orig]
        out.append(ProtocolEvent(ts, self.flow, PROTO, op, kind, is_orig, src, dst, f))
        if problems:
            bad = self._problems(out, problems, ts, is_orig, op, False) or bad
        return bad

    def _control(self, buf: bytes, p: int, stop: int, end: int, b0: int, client: bool, is_orig: bool, d: int,
                 ts: float, out: list[ProtocolEvent]) -> bool:
        """Any packet but PUBLISH and the four acknowledgements: its event (and weirds); True when malformed."""
        ptype = b0 >> 4
        rl = end - p
        if ptype == 0:
            self._weird(out, UNASSIGNED, ts, is_orig, f"message type 0 with {rl} bytes", length=rl)
            return True
        op = _OPS[ptype]
        bad = False
        if b0 & 15 != (2 if ptype == 8 or ptype == 10 else 0):
            self._weird(out, INVALID_FLAGS, ts, is_orig, f"{_NAMES[ptype]} header flags {b0 & 15:#x}", msg_type=op)
            bad = True
        v5 = self.version == 5
        kind = REQUEST if client else RESPONSE
        problems: Problems = None
        f: Fields
        if ptype == 12 or ptype == 13:
            f = {}
            if rl:
                problems = [(MALFORMED, f"{_NAMES[ptype]} with {rl} bytes")]
        elif ptype == 1:
            f, problems, level = parse_connect(buf, p, stop, self._cap)
            self._trusted = self._trusted or not problems
            if self._connect_seen:
                self._weird(out, "mqtt_double_connect", ts, is_orig, "a second CONNECT on the connection")
            self._connect_seen = True
            if level in (3, 4, 5):
                self.version = level
            self._connect = (ts, f)
        elif ptype == 2:
            if self.version is None:
                self.version = 5 if rl > 2 else 4
                v5 = rl > 2
            f, problems = parse_connack(buf, p, stop, v5)
            self._trusted = self._trusted or not problems
            self._answer_connect(f, ts, is_orig, out)
            if not client and f.get("return_code"):
                kind = EXCEPTION
        elif ptype == 8 or ptype == 10:
            parse = parse_subscribe if ptype == 8 else parse_unsubscribe
            f, problems = parse(buf, p, stop, v5)
            if "packet_id" in f:
                self._request(f, op, ts, is_orig, out)
        elif ptype == 9 or ptype == 11:
            if ptype == 11 and self.version is None and rl > 2:
                self.version = 5
                v5 = True
            f, problems = (parse_suback if ptype == 9 else parse_unsuback)(buf, p, stop, v5)
            codes = f.get("granted_qos") or f.get("reason_codes") or ()
            if not client and any(c >= 0x80 for c in codes):
                kind = EXCEPTION
            if "packet_id" in f:
                self._answer(f, ptype, ts, is_orig, out)
        else:  # DISCONNECT, AUTH
            if self.version is None and (rl or ptype == 15):
                self.version = 5
                v5 = True
            if ptype == 15 and not v5:
                self._weird(out, UNASSIGNED, ts, is_orig, f"AUTH in MQTT level {self.version}", msg_type=op)
                bad = True
            if v5:
                f, problems = parse_reason(buf, p, stop, ptype, _NAMES[ptype])
                if not client and f["reason_code"] >= 0x80:
                    kind = EXCEPTION
            else:
                f = {}
                if rl:
                    problems = [(MALFORMED, f"{_NAMES[ptype]} with {rl} bytes")]
        src, dst = self._ends[is_orig]
        out.append(ProtocolEvent(ts, self.flow, PROTO, op, kind, is_orig, src, dst, f))
        if problems:
            bad = self._problems(out, problems, ts, is_orig, op, stop != end) or bad
        return bad

    def _answer_connect(self, f: Fields, ts: float, is_orig: bool, out: list[ProtocolEvent]) -> None:
        """Pair a CONNACK with the pending CONNECT: copy the fields Zeek's mqtt_connect row needs."""
        pending, self._connect = self._connect, None
        self._intro_done = True
        if pending is None:
            f["matched"] = False
            self._weird(out, "mqtt_missing_connect", ts, is_orig, "CONNACK without a CONNECT")
            return
        f["matched"] = True
        f["request_ts"] = pending[0]
        connect = pending[1]
        for key in _CONNECT_COPY:
            if key in connect:
                f[key] = connect[key]

    def _request(self, f: Fields, op: str, ts: float, is_orig: bool, out: list[ProtocolEvent]) -> None:
        """Remember a SUBSCRIBE or UNSUBSCRIBE until its answer."""
        pid = f["packet_id"]
        if not pid:
            self._weird(out, "mqtt_missing_msg_id", ts, is_orig, f"{op.upper()} with packet identifier 0")
        subs = self._subs
        if pid not in subs and len(subs) >= MAX_PENDING:
            old = subs.pop(next(iter(subs)))
            self._lose(old[1], old[0], self._client_is_orig, old[2])
            self._weird(out, "mqtt_too_many_transactions", ts, is_orig, f"over {MAX_PENDING} unanswered requests")
        subs[pid] = (ts, op, f)

    def _answer(self, f: Fields, ptype: int, ts: float, is_orig: bool, out: list[ProtocolEvent]) -> None:
        """Pair a SUBACK or UNSUBACK with its request."""
        pid = f["packet_id"]
        want = "subscribe" if ptype == 9 else "unsubscribe"
        pending = self._subs.get(pid)
        if pending is None or pending[1] != want:
            f["matched"] = False
            addl = f"{_NAMES[ptype]} for packet identifier {pid} without its {want.upper()}"
            self._weird(out, f"mqtt_missing_{want}", ts, is_orig, addl, packet_id=pid)
            return
        del self._subs[pid]
        f["matched"] = True
        f["request_ts"] = pending[0]
        request = pending[2]
        f["topics"] = request.get("topics")
        if ptype == 9:
            f["qos_levels"] = request.get("qos_levels")

    def _alias(self, f: Fields, alias: int, d: int, is_orig: bool, ts: float, out: list[ProtocolEvent]) -> None:
        """Resolve or learn a v5 topic alias of this direction."""
        aliases = self._aliases[d]
        if f.get("topic"):
            if alias and (alias in aliases or len(aliases) < MAX_ALIASES):
                aliases[alias] = f["topic"]
            return
        topic = aliases.get(alias)
        if topic is None:
            self._weird(out, "mqtt_unknown_topic_alias", ts, is_orig, f"topic alias {alias} was never set")
        else:
            f["topic"] = topic

    def _unintroduced(self, ptype: int, is_orig: bool, ts: float, out: list[ProtocolEvent]) -> None:
        """The first packet before the CONNECT/CONNACK exchange completed (reported once per flow)."""
        self._intro_done = True
        if self._connect_seen:
            addl = f"{_NAMES[ptype]} before the CONNACK"
        else:
            addl = f"{_NAMES[ptype]} on a connection whose CONNECT was not seen (or picked up midstream)"
        self._weird(out, "mqtt_unintroduced_message", ts, is_orig, addl, msg_type=_OPS[ptype])

    def _lose(self, op: str, ts: float, is_orig: bool, f: Fields) -> None:
        if len(self._lost) < MAX_INCOMPLETE:
            self._lost.append((op, ts, is_orig, f))
        else:
            self._lost_more += 1

    def _lose_publish(self, table: dict[int, PendingPublish], ts: float, is_orig: bool,
                      out: list[ProtocolEvent]) -> None:
        """Drop the oldest unanswered PUBLISH of a full table (reported as incomplete at close)."""
        old = table.pop(next(iter(table)))
        self._lose("publish", old[0], is_orig, old[1])
        self._weird(out, "mqtt_too_many_transactions", ts, is_orig, f"over {MAX_PENDING} unanswered PUBLISH")

    def _incomplete(self, ts: float, out: list[ProtocolEvent]) -> None:
        """One notice per transaction never completed (Zeek's incomplete_qos rows and unacknowledged requests)."""
        for d in (0, 1):
            for rts, pf, _, _ in self._pubs[d].values():
                self._lose("publish", rts, d == 0, pf)
        for rts, op, rf in self._subs.values():
            self._lose(op, rts, self._client_is_orig, rf)
        for op, rts, is_orig, rf in self._lost:
            f = dict(rf)
            f["request_ts"] = rts
            if op == "publish":
                f["status"] = "incomplete_qos"
            else:
                f["ack"] = False
            src, dst = self._ends[is_orig]
            out.append(ProtocolEvent(ts, self.flow, PROTO, op, NOTICE, is_orig, src, dst, f))
        if self._lost_more:
            addl = f"{self._lost_more} more transactions never completed"
            out.append(weird(self.flow, PROTO, "mqtt_incomplete_transactions", ts, self._client_is_orig, addl,
                             count=self._lost_more))

    def _publish(self, buf: bytes, p: int, stop: int, end: int, b0: int, client: bool, is_orig: bool, d: int,
                 ts: float, out: list[ProtocolEvent]) -> bool:
        """One PUBLISH in buf[p:end] (read up to `stop`, where an oversized one is cut): its event and weirds."""
        qos = (b0 >> 1) & 3
        f: dict[str, Any] = {"from_client": client, "qos": qos, "retain": bool(b0 & 1), "dup": bool(b0 & 8)}
        src, dst = self._ends[is_orig]
        kind = REQUEST if client else RESPONSE
        out.append(ProtocolEvent(ts, self.flow, PROTO, "publish", kind, is_orig, src, dst, f))
        q = p + 2 + ((buf[p] << 8) | buf[p + 1]) if stop - p >= 2 else stop + 1
        if q > stop:
            if stop == end:
                self._weird(out, MALFORMED, ts, is_orig, "PUBLISH topic beyond the packet", msg_type="publish")
                return True
            f["topic"] = buf[p + 2 : stop].decode("utf-8", "backslashreplace")  # cut: its oversized weird says so
            f["payload_len"] = end - q
            return False
        topic = f["topic"] = buf[p + 2 : q].decode("utf-8", "backslashreplace")
        pid = 0
        if qos:
            if q + 2 > stop:
                self._weird(out, MALFORMED, ts, is_orig, "PUBLISH without its packet identifier", msg_type="publish")
                return True
            pid = f["packet_id"] = (buf[q] << 8) | buf[q + 1]
            q += 2
        if self.version == 5:
            props, q, why = parse_props(buf, q, stop)
            if props:
                f["properties"] = props
                if "topic_alias" in props:
                    self._alias(f, props["topic_alias"], d, is_orig, ts, out)
                    topic = f["topic"] or "?"  # an unknown alias is reported by _alias
            if why:
                self._weird(out, MALFORMED, ts, is_orig, f"PUBLISH: {why}", msg_type="publish")
                return True
        f["payload_len"] = end - q
        raw = buf[q : min(q + self._peek, stop)]
        f["payload"] = raw[: self._cap].decode("utf-8", "backslashreplace")
        if raw or q == end:  # an oversized PUBLISH cut before its payload shows nothing to classify
            f["payload_type"] = payload_type(raw)
        if not topic:
            self._weird(out, MALFORMED, ts, is_orig, "PUBLISH without a topic name", msg_type="publish")
        if qos:
            if qos == 3:
                self._weird(out, "mqtt_invalid_qos_level", ts, is_orig, "PUBLISH with QoS 3", packet_id=pid)
                return False
            if not pid:
                self._weird(out, "mqtt_missing_msg_id", ts, is_orig, "PUBLISH with packet identifier 0")
            table = self._pubs[d]
            if pid not in table and len(table) >= MAX_PENDING:
                self._lose_publish(table, ts, is_orig, out)
            entry: PendingPublish = [ts, f, False, False]
            table[pid] = entry
        return False
