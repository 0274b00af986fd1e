"""MQTT decoder: MQTT 3.1 (MQIsdp), 3.1.1 and 5.0 over TCP, every control packet, per-flow pairing, weirds.

Coverage. Every control packet becomes one event, op = its type in snake case: CONNECT (1) `connect`, CONNACK (2)
`connack`, PUBLISH (3) `publish`, PUBACK (4) `puback`, PUBREC (5) `pubrec`, PUBREL (6) `pubrel`, PUBCOMP (7)
`pubcomp`, SUBSCRIBE (8) `subscribe`, SUBACK (9) `suback`, UNSUBSCRIBE (10) `unsubscribe`, UNSUBACK (11)
`unsuback`, PINGREQ (12) `pingreq`, PINGRESP (13) `pingresp`, DISCONNECT (14) `disconnect`, AUTH (15) `auth`.
TCP 1883 is claimed by port; `probe()` recognises a CONNECT (protocol name MQTT or MQIsdp) on any other port, and
a flow picked up midstream by a segment made of whole plausible packets of which one is a PUBLISH, SUBSCRIBE or
UNSUBSCRIBE naming a printable topic (mqtt_sync.midstream).
Several packets per segment, packets split across segments (long ones gathered without quadratic copying) and
flows picked up midstream (resynchronisation on a plausible fixed header, protocols/mqtt_sync.py) are handled.
The protocol level comes from the CONNECT; without one (midstream) a 5.0 session is inferred from a CONNACK,
acknowledgement, UNSUBACK or DISCONNECT longer than 3.1.1 allows, or an AUTH, and until then packets are read as
3.1.1 (a 5.0 PUBLISH would then show its property length as the first payload byte).

Event shape. protocol "mqtt"; kind = request when the MQTT client sent it, response when the broker did, exception
for a broker's refusal (CONNACK code not 0, a SUBACK/UNSUBACK code >= 0x80, a v5 PUBACK/PUBREC/PUBREL/PUBCOMP/
DISCONNECT/AUTH reason >= 0x80), notice for a transaction still incomplete at close, weird for anomalies. The
client is the originator unless the originator uses port 1883 or 8883 and the responder does not, or the
originator's port is below 32768 and the responder's is not (a flow picked up from the broker's side); the first
packet only a client or only a broker sends (CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ / CONNACK, SUBACK, UNSUBACK,
PINGRESP) settles it. src/dst are the true sender and receiver. Fields (Zeek's mqtt_* log names where Zeek has one):
  connect      proto_name, proto_level (int), proto_version (Zeek text: 3.1, 3.1.1, 5.0, unknown-version-N),
               client_id, empty_client_id (bool), clean_session, keep_alive (s), will_topic, will_qos, will_retain,
               will_payload_len, will_payload (preview), will_properties (v5), username, password_sent (bool; the
               password itself is skipped by its length, never read), properties (v5)
  connack      session_present, return_code, connect_status (Zeek's text for 3.x; the v5 reason name), reason_code
               and reason (v5), properties (v5), matched, and from the paired CONNECT: request_ts, proto_name,
               proto_version, client_id, will_topic, will_payload, username
  publish      from_client, qos, retain, dup, topic (a v5 topic alias resolved per direction), packet_id (QoS > 0),
               payload_len, payload (the first `payload_cap` bytes as text, Zeek's MQTT::max_payload_size,
               default 100), payload_type (empty, jpeg, png, gif, json, text or binary, from the first bytes:
               protocols/mqtt_payload.py; not in Zeek's mqtt_publish log), properties (v5), truncated (over
               max_message_size)
  puback pubrec pubrel pubcomp   packet_id, reason_code and reason (v5; 0 when omitted), properties (v5),
               matched, and when paired with the PUBLISH of that id: request_ts, topic; the PUBACK of a QoS 1 and
               the PUBCOMP of a QoS 2 PUBLISH end its transaction and carry from_client, qos, retain, payload,
               payload_len and status (Zeek's `ok`, or `incomplete_qos` when a step was not seen)
  subscribe    packet_id, topics, qos_levels, subscription_options (v5, when options beyond QoS are set),
               properties (v5)
  suback       packet_id, granted_qos (every code), reasons, properties (v5), matched, request_ts, topics,
               qos_levels
  unsubscribe  packet_id, topics, properties (v5)
  unsuback     packet_id, reason_codes and reasons (v5), properties (v5), matched, request_ts, topics
  pingreq pingresp   no fields
  disconnect auth    reason_code and reason (v5), properties (v5)
v5 properties use Suricata's names (receive_maximum, topic_alias, ...); user_property and subscription_identifier
are lists; authentication_data is written as "<redacted>". Reason names follow the MQTT 5.0 specification.
At close, each PUBLISH (QoS 1/2), SUBSCRIBE or UNSUBSCRIBE still unanswered (at most 64, then a count) gives a
notice event with op publish/subscribe/unsubscribe, its fields, request_ts and status `incomplete_qos` or
ack False, so that protocols/mqtt_logs.py can write Zeek's row for it.
Operation classes (mqtt_names.OP_CLASSES): publish, puback, pubrec, pubrel, pubcomp -> write; subscribe, suback
-> read; connect, connack, disconnect, auth, unsubscribe, unsuback, pingreq, pingresp -> other.

Weirds (kind "weird", op = name; Suricata's MQTT anomaly names with the mqtt_ prefix where Suricata has one):
mqtt_malformed_traffic (a packet that does not parse: a property or string length beyond the packet, a 5-byte
remaining length, extra bytes, missing parts), mqtt_invalid_qos_level (QoS 3 in a PUBLISH, will or subscription),
mqtt_unassigned_msg_type (type 0; AUTH before 5.0), mqtt_missing_connect (CONNACK without CONNECT),
mqtt_missing_publish (PUBACK/PUBREC/PUBREL/PUBCOMP without its PUBLISH), mqtt_missing_subscribe,
mqtt_missing_unsubscribe, mqtt_double_connect (a second CONNECT), mqtt_unintroduced_message (a packet before the
CONNECT/CONNACK exchange completed, or on a flow whose CONNECT was not seen: once per flow),
mqtt_missing_msg_id (packet identifier 0), mqtt_too_many_transactions (more than 1024 unanswered PUBLISH per
direction or SUBSCRIBE/UNSUBSCRIBE: the oldest is dropped), mqtt_invalid_protocol_version, and ours:
mqtt_invalid_flags (reserved header or CONNECT flags), mqtt_unknown_topic_alias, mqtt_oversized_message (remaining
length beyond max_message_size, default 1 MiB as Suricata's max-msg-length: decoded from its first bytes, the rest
skipped), mqtt_resync (bytes skipped to find a packet), mqtt_truncated_message (a partial packet at close),
mqtt_protocol_violation (not MQTT: TLS or HTTP bytes first, 64 KiB skipped in searches for a packet (in one
search once a well-formed CONNECT or CONNACK was seen), or a 17th search forced by malformed packets; `failed` set),
mqtt_incomplete_transactions (the count of unanswered transactions beyond the 64 reported at close).
Each weird name is reported at most 16 times per flow; the rest are counted in one weird at close.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from protocols.base import EXCEPTION, REQUEST, RESPONSE, WEIRD, FlowId, ProtocolEvent, weird
from protocols.mqtt_control import MAX_PENDING, ControlMixin
from protocols.mqtt_logs import log_lines, log_rows
from protocols.mqtt_names import OP_CLASSES, PACKET_TYPES, reason_text
from protocols.mqtt_packets import MALFORMED
from protocols.mqtt_payload import PEEK, payload_type
from protocols.mqtt_sync import MAX_BAD, MAX_RESYNC_BYTES, MAX_WEIRDS, RESYNC, START, SYNC, fixed_header, midstream

__all__ = ["PACKET_TYPES", "MqttDecoder"]

PROTO = "mqtt"
BROKER_PORTS = frozenset({1883, 8883})
EPHEMERAL = 32768  # the lowest ephemeral port of Linux: a client's port is usually at or above it, a broker's below
_ACK_REASONS = [reason_text(code, 4) for code in range(256)]
_ROLE_OF = {1: True, 8: True, 10: True, 12: True, 2: False, 9: False, 11: False, 13: False}  # sent by the client?


class MqttDecoder(ControlMixin):
    """Decodes one MQTT connection: both directions, transactions paired by packet identifier."""

    name: ClassVar[str] = PROTO
    transport: ClassVar[str] = "tcp"
    ports: ClassVar[frozenset[int]] = frozenset({1883})
    op_classes: ClassVar[dict[str, str]] = OP_CLASSES
    payload_cap: ClassVar[int] = 100
    max_message_size: ClassVar[int] = 1 << 20
    # Zeek's mqtt_connect, mqtt_publish and mqtt_subscribe logs split off each mqtt row
    log_rows: ClassVar[Callable[[dict[str, Any]], list[tuple[str, dict[str, Any]]]]] = staticmethod(log_rows)
    # the same rows already encoded for the everyday events (the JSONL writer tries it first)
    log_lines: ClassVar[Callable[[ProtocolEvent], list[tuple[str, bytes, int]] | None]] = staticmethod(log_lines)

    def __init__(self, flow: FlowId, *, payload_cap: int | None = None, max_message_size: int | None = None) -> None:
        self.flow = flow
        self._cap = self.payload_cap if payload_cap is None else max(0, payload_cap)
        self._peek = max(self._cap, PEEK)  # payload bytes looked at: the preview, and at least PEEK for the type
        self._whole = self._peek == self._cap
        self._max = self.max_message_size if max_message_size is None else max(16, max_message_size)
        self._ends = {True: (flow.orig_h, flow.resp_h), False: (flow.resp_h, flow.orig_h)}
        self._reset()

    def _reset(self) -> None:
        """The state of a fresh connection."""
        flow = self.flow
        self.failed = False
        orig_p, resp_p = flow.orig_p, flow.resp_p
        self._client_is_orig = not ((orig_p in BROKER_PORTS and resp_p not in BROKER_PORTS)
                                    or (orig_p < EPHEMERAL <= resp_p and resp_p not in BROKER_PORTS))
        self._roles_known = False
        self.version: int | None = None  # protocol level: from the CONNECT, or inferred
        self._buf = [b"", b""]  # per direction (0 originator, 1 responder): bytes of an unfinished header
        self._parts: list[list[bytes]] = [[], []]  # chunks of an unfinished packet of known length
        self._have = [0, 0]
        self._need = [0, 0]  # bytes wanted from the packet start before decoding (0: none pending)
        self._total = [0, 0]  # the whole length of that packet
        self._skip = [0, 0]  # bytes of an oversized packet still to skip
        self._state = [START, START]
        self._skipped = [0, 0]
        self._budget = MAX_RESYNC_BYTES
        self._searches = 0  # resynchronisations forced by malformed packets (not by gaps)
        self._trusted = False  # a well-formed CONNECT or CONNACK was seen
        self._bad = [0, 0]
        self._connect = None
        self._connect_seen = False
        self._intro_done = False  # CONNACK seen, or the unintroduced weird reported
        self._pubs = [{}, {}]  # by the sender's direction: packet id -> pending PUBLISH
        self._subs = {}
        self._aliases = [{}, {}]
        self._wcount = {}
        self._lost = []
        self._lost_more = 0

    @classmethod
    def probe(cls, payload: bytes, is_orig: bool) -> bool:
        """True when the payload starts with an MQTT CONNECT (protocol name MQTT or MQIsdp, level 3 to 5), or is
        made of whole MQTT packets naming a topic (a flow picked up midstream)."""
        n = len(payload)
        if n < 12 or payload[0] != 0x10:
            return n >= 5 and midstream(payload)
        rl, body = fixed_header(payload, 0, n)
        if body < 0 or rl < 10 or n < body + 9:
            return False
        if payload[body : body + 6] == b"\x00\x04MQTT":
            return payload[body + 6] in (4, 5)
        return payload[body : body + 8] == b"\x00\x06MQIsdp" and n > body + 8 and payload[body + 8] == 3

    def feed(self, data: bytes, is_orig: bool, ts: float) -> list[ProtocolEvent]:
        """Decode the next in-order bytes of one direction into one event per complete control packet."""
        if self.failed or not data:
            return []
        d = 0 if is_orig else 1
        skip = self._skip[d]
        if skip:
            if len(data) <= skip:
                self._skip[d] = skip - len(data)
                return []
            self._skip[d] = 0
            data = data[skip:]
        if self._need[d]:
            parts = self._parts[d]
            parts.append(data)
            have = self._have[d] + len(data)
            if have < self._need[d]:
                self._have[d] = have
                return []
            buf = b"".join(parts)
            parts.clear()
            self._need[d] = self._have[d] = self._total[d] = 0
        else:
            buf = self._buf[d]
            if buf:
                buf += data
                self._buf[d] = b""
            else:
                buf = data
        out: list[ProtocolEvent] = []
        n = len(buf)
        pos = 0
        if self._state[d] == SYNC:
            pos = self._frames(buf, 0, n, d, is_orig, ts, out)
        while pos >= 0:
            if self._state[d] != SYNC:
                pos = self._find(buf, pos, n, d, is_orig, ts, out)
                if pos < 0:
                    break
            pos = self._frames(buf, pos, n, d, is_orig, ts, out)
        return out

    def gap(self, is_orig: bool, ts: float, length: int) -> list[ProtocolEvent]:
        """Skip `length` lost bytes: still in sync when they end inside the packet being read, else resynchronise."""
        d = 0 if is_orig else 1
        left = self._skip[d] or (self._total[d] - self._have[d] if self._need[d] else 0)
        self._buf[d] = b""
        self._parts[d] = []
        self._need[d] = self._have[d] = self._total[d] = 0
        if self._state[d] == SYNC and 0 < length <= left:
            self._skip[d] = left - length
            return []
        self._skip[d] = 0
        self._skipped[d] = 0
        self._state[d] = RESYNC
        return []

    def close(self, ts: float) -> list[ProtocolEvent]:
        """Report partial packets, unanswered transactions (as notices) and suppressed weirds, then forget them."""
        if self.failed:
            return []
        out: list[ProtocolEvent] = []
        for d in (0, 1):
            rest = self._have[d] if self._need[d] else len(self._buf[d])
            if rest and self._state[d] == SYNC:
                addl = f"{rest} bytes of an incomplete MQTT packet at close"
                self._weird(out, "mqtt_truncated_message", ts, d == 0, addl)
            elif self._state[d] == RESYNC and self._skipped[d] + rest:
                addl = f"skipped {self._skipped[d] + rest} bytes, no packet found before close"
                self._weird(out, "mqtt_resync", ts, d == 0, addl)
        self._incomplete(ts, out)
        for name, count in self._wcount.items():
            if count > MAX_WEIRDS:
                more = count - MAX_WEIRDS
                addl = f"{more} more not reported"
                out.append(weird(self.flow, PROTO, name, ts, self._client_is_orig, addl, count=more))
        self._reset()
        return out

    def _frames(self, buf: bytes, pos: int, n: int, d: int, is_orig: bool, ts: float,
                out: list[ProtocolEvent]) -> int:
        """Decode the packets of buf[pos:n]; -1 when done (the rest kept), else an offset to resynchronise from."""
        client = is_orig == self._client_is_orig
        limit = self._max
        bad_run = self._bad[d]
        while n - pos >= 2:
            b0 = buf[pos]
            rl = buf[pos + 1]
            if rl < 0x80:
                body = pos + 2
            elif n - pos > 2 and buf[pos + 2] < 0x80:
                rl = (rl & 0x7F) | (buf[pos + 2] << 7)
                body = pos + 3
            else:
                rl, body = fixed_header(buf, pos, n)
                if body < 0:
                    if body == -1:
                        break
                    self._weird(out, MALFORMED, ts, is_orig, "remaining length longer than 4 bytes")
                    return self._resync_from(d, pos + 1, is_orig, ts, out)
            end = body + rl
            if end > n or rl > limit:
                if rl <= limit:
                    self._wait(buf, pos, n, d, end - pos, end - pos)
                    self._bad[d] = bad_run
                    return -1
                stop = body + limit
                if stop > n:
                    self._wait(buf, pos, n, d, stop - pos, end - pos)
                    self._bad[d] = bad_run
                    return -1
            else:
                stop = end
            ptype = b0 >> 4
            if not self._intro_done and ptype != 1 and ptype != 2 and ptype != 15:
                self._unintroduced(ptype, is_orig, ts, out)
            if ptype == 3 and stop == end and rl >= 2:
                # the common PUBLISH, decoded here: a topic, a packet id (QoS 1, 2), no v5 property but an empty set
                qos = (b0 >> 1) & 3
                q = body + 2 + ((buf[body] << 8) | buf[body + 1])
                version = self.version
                tail = q + 2 if qos else q
                if q > body + 2 and qos != 3 and (tail < end and buf[tail] == 0 if version == 5 else tail <= end):
                    f = {"from_client": client, "qos": qos, "retain": bool(b0 & 1), "dup": bool(b0 & 8),
                         "topic": buf[body + 2 : q].decode("utf-8", "backslashreplace")}  # fmt: skip
                    if qos:
                        pid = f["packet_id"] = (buf[q] << 8) | buf[q + 1]
                        table = self._pubs[d]
                        if not pid or (pid not in table and len(table) >= MAX_PENDING):
                            if not pid:
                                self._weird(out, "mqtt_missing_msg_id", ts, is_orig, "PUBLISH with packet identifier 0")
                            else:
                                self._lose_publish(table, ts, is_orig, out)
                        table[pid] = [ts, f, False, False]
                    if version == 5:
                        tail += 1
                    f["payload_len"] = end - tail
                    cut = tail + self._peek
                    raw = buf[tail : cut if cut < end else end]
                    f["payload"] = (raw if self._whole else raw[: self._cap]).decode("utf-8", "backslashreplace")
                    f["payload_type"] = payload_type(raw)
                    src, dst = self._ends[is_orig]
                    kind = REQUEST if client else RESPONSE
                    out.append(ProtocolEvent(ts, self.flow, PROTO, "publish", kind, is_orig, src, dst, f))
                    bad_run = 0
                    pos = end
                    continue
            elif b0 == 0x40 and (rl == 2 or (rl == 3 and self.version == 5)):
                # the common PUBACK of a pending QoS 1 PUBLISH (no v5 property): the publish's columns, status ok
                pid = (buf[body] << 8) | buf[body + 1]
                table = self._pubs[1 - d]
                entry = table.get(pid)
                if entry is not None and entry[1]["qos"] == 1:
                    del table[pid]
                    pf = entry[1]
                    if self.version == 5:
                        code = buf[body + 2] if rl == 3 else 0
                        f = {"packet_id": pid, "reason_code": code, "reason": _ACK_REASONS[code], "matched": True,
                             "request_ts": entry[0], "from_client": pf["from_client"], "qos": 1,
                             "retain": pf["retain"], "topic": pf["topic"], "payload": pf["payload"],
                             "payload_len": pf["payload_len"], "status": "ok"}  # fmt: skip
                        kind = REQUEST if client else EXCEPTION if code >= 0x80 else RESPONSE
                    else:
                        f = {"packet_id": pid, "matched": True, "request_ts": entry[0],
                             "from_client": pf["from_client"], "qos": 1, "retain": pf["retain"], "topic": pf["topic"],
                             "payload": pf["payload"], "payload_len": pf["payload_len"], "status": "ok"}  # fmt: skip
                        kind = REQUEST if client else RESPONSE
                    src, dst = self._ends[is_orig]
                    out.append(ProtocolEvent(ts, self.flow, PROTO, "puback", kind, is_orig, src, dst, f))
                    bad_run = 0
                    pos = end
                    continue
            elif rl == 0 and (b0 == 0xC0 or b0 == 0xD0):
                if not self._roles_known:
                    self._roles_known = True
                    self._client_is_orig = is_orig == (b0 == 0xC0)
                    client = is_orig == self._client_is_orig
                src, dst = self._ends[is_orig]
                op = "pingreq" if b0 == 0xC0 else "pingresp"
                out.append(ProtocolEvent(ts, self.flow, PROTO, op, REQUEST if client else RESPONSE, is_orig, src, dst,
                                         {}))
                bad_run = 0
                pos = end
                continue
            mark = len(out)
            if stop != end:
                what = PACKET_TYPES.get(ptype, "unassigned").upper()
                addl = f"{what} of {end - pos} bytes over the {limit}-byte limit: decoded from its start"
                self._weird(out, "mqtt_oversized_message", ts, is_orig, addl, length=end - pos)
            if ptype == 3:
                bad = self._publish(buf, body, stop, end, b0, client, is_orig, d, ts, out)
            elif 4 <= ptype <= 7:
                bad = self._ack(buf, body, stop, ptype, b0, client, is_orig, d, ts, out)
            else:
                if not self._roles_known and ptype in _ROLE_OF:
                    self._roles_known = True
                    self._client_is_orig = is_orig == _ROLE_OF[ptype]
                    client = is_orig == self._client_is_orig
                bad = self._control(buf, body, stop, end, b0, client, is_orig, d, ts, out)
            if stop != end:
                for ev in out[mark:]:
                    if ev.kind != WEIRD:
                        ev.fields["truncated"] = True
                        break
                if end > n:
                    self._skip[d] = end - n
                    self._bad[d] = bad_run
                    return -1
            if bad:
                bad_run += 1
                if bad_run >= MAX_BAD:
                    return self._resync_from(d, pos + 1, is_orig, ts, out)
            else:
                bad_run = 0
            pos = end
        self._bad[d] = bad_run
        if pos < n:
            self._buf[d] = buf[pos:]
        return -1
