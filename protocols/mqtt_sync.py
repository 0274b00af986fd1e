"""MQTT framing checks: the fixed header, and whether an offset plausibly starts a control packet.

Used on the first bytes of each direction (a flow picked up midstream may start inside a packet) and to
resynchronise after a gap or after several malformed packets in a row. A candidate is plausible when its first
byte names a packet type with the flags the specification requires, its remaining length is well formed and
fits the type, and the body bytes at hand agree with the type (a CONNECT names MQTT or MQIsdp, a PUBLISH topic fits
the packet and holds no wildcard or NUL, packet identifiers are not zero, ...). When resynchronising, the packet
must also be followed by another plausible header (or end exactly where the bytes at hand end).

FramingMixin holds the MqttDecoder's side of it: the search itself (a resynchronisation is reported as a
mqtt_resync weird with the bytes skipped), the gathering of packets longer than a segment, the per-name cap on
weirds, and giving a flow up (mqtt_protocol_violation) when it does not look like MQTT.
"""

from __future__ import annotations

import re
from typing import Any

from protocols.base import FlowId, ProtocolEvent, weird

__all__ = ["ACCEPT", "HEADER_OK", "REJECT", "RESYNC", "RESYNC_WINDOW", "START", "SYNC", "WAIT", "FramingMixin",
           "find_header", "fixed_header", "midstream", "verdict"]

PROTO = "mqtt"
ACCEPT, REJECT, WAIT = 0, 1, 2
START, SYNC, RESYNC = 0, 1, 2  # a direction's state: nothing decoded yet, in step with the packets, searching
MAX_BAD = 4  # malformed packets in a row before resynchronising
MAX_RESYNC_BYTES = 1 << 16
MAX_SEARCHES = 16
MAX_WEIRDS = 16
_FOREIGN = (b"\x16\x03", b"GET ", b"POST", b"HTTP", b"PUT ", b"HEAD")
RESYNC_WINDOW = 65536  # a candidate packet up to this size is waited for; a longer one is taken on its start


def _flags_ok(b0: int) -> bool:
    ptype, flags = b0 >> 4, b0 & 15
    if ptype == 0:
        return False
    if ptype == 3:
        return flags & 6 != 6
    if ptype in (6, 8, 10):
        return flags == 2
    return flags == 0


HEADER_OK = [_flags_ok(b) for b in range(256)]
_CANDIDATE = re.compile(b"[" + b"".join(re.escape(bytes([b])) for b in range(256) if HEADER_OK[b]) + b"]")
_MIN_LENGTH = (0, 10, 2, 2, 2, 2, 2, 2, 5, 3, 4, 2, 0, 0, 0, 0)  # shortest remaining length per type


def fixed_header(buf: bytes, i: int, n: int) -> tuple[int, int]:
    """The remaining length at buf[i+1:n] and the offset of the body: (length, body); body is -1 when the
    length is not complete yet, -2 when it is malformed (a fifth length byte)."""
    value = shift = 0
    for j in range(i + 1, min(i + 5, n)):
        b = buf[j]
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, j + 1
        shift += 7
    return 0, (-2 if n >= i + 5 else -1)


def _length_ok(ptype: int, rl: int, version: int | None) -> bool:
    if rl < _MIN_LENGTH[ptype]:
        return False
    if ptype == 12 or ptype == 13:
        return rl == 0
    if version is not None and version < 5:
        if 4 <= ptype <= 7 or ptype == 2 or ptype == 11:
            return rl == 2
        if ptype == 14:
            return rl == 0
        if ptype == 15:
            return False
    return True


def _body_ok(buf: bytes, p: int, stop: int, b0: int, rl: int, version: int | None, strict: bool) -> bool:
    """The body bytes buf[p:stop] (possibly fewer than the packet holds) agree with the packet type; the protocol
    name and level of a CONNECT are only checked when `strict` (a CONNECT of an unknown version is still one)."""
    ptype = b0 >> 4
    have = stop - p
    if ptype == 1:
        if have < 2 or not strict:
            return True
        if buf[p] or buf[p + 1] not in (4, 6):
            return False
        name_len = buf[p + 1]
        if have >= 2 + name_len and buf[p + 2 : p + 2 + name_len] not in (b"MQTT", b"MQIsdp"):
            return False
        return not (have >= 3 + name_len and not 3 <= buf[p + 2 + name_len] <= 5)
    if ptype == 2:
        return have < 1 or buf[p] <= 1
    if ptype == 3:
        if have < 2:
            return True
        topic_len = (buf[p] << 8) | buf[p + 1]
        tail = 4 if b0 & 6 else 2
        if topic_len + tail > rl:
            return False
        topic = buf[p + 2 : min(stop, p + 2 + topic_len)]
        if b"#" in topic or b"+" in topic or b"\x00" in topic:
            return False
        q = p + 2 + topic_len
        return not (tail == 4 and q + 2 <= stop and buf[q] == 0 and buf[q + 1] == 0)
    if 4 <= ptype <= 11:
        if have >= 2 and buf[p] == 0 and buf[p + 1] == 0:
            return False
        if ptype == 9 and have >= 3 and (version is None or version < 5):
            return all(c in (0, 1, 2, 0x80) for c in buf[p + 2 : stop])
    return True


def verdict(buf: bytes, i: int, n: int, version: int | None, successor: bool) -> int:
    """Whether buf[i:n] plausibly starts a control packet: ACCEPT, REJECT, or WAIT (more bytes needed to tell)."""
    b0 = buf[i]
    if not HEADER_OK[b0]:
        return REJECT
    if n - i < 2:
        return WAIT
    rl, body = fixed_header(buf, i, n)
    if body < 0:
        return WAIT if body == -1 else REJECT
    ptype = b0 >> 4
    end = body + rl
    if not _length_ok(ptype, rl, version) or not _body_ok(buf, body, min(end, n), b0, rl, version, successor):
        return REJECT
    if not successor or end == n:
        return ACCEPT
    if end > n:
        return WAIT if end - i <= RESYNC_WINDOW else ACCEPT
    nxt = verdict(buf, end, n, version, False)
    return REJECT if nxt == REJECT else ACCEPT


def _printable_topic(buf: bytes, p: int, stop: int) -> bool:
    """The MQTT string at buf[p:stop] is a non-empty topic of printable UTF-8."""
    if p + 2 > stop:
        return False
    q = p + 2 + ((buf[p] << 8) | buf[p + 1])
    if q > stop or q == p + 2:
        return False
    try:
        topic = buf[p + 2 : q].decode("utf-8")
    except UnicodeDecodeError:
        return False
    return topic.isprintable()


def midstream(buf: bytes) -> bool:
    """Whether a segment of a flow picked up midstream is MQTT: whole plausible packets that fill it exactly, one of
    them a PUBLISH, SUBSCRIBE or UNSUBSCRIBE with a printable topic (a lone ping or acknowledgement is too short to
    tell MQTT from chance)."""
    n = len(buf)
    i = 0
    named = False
    while i < n:
        if verdict(buf, i, n, None, False) != ACCEPT:
            return False
        rl, body = fixed_header(buf, i, n)
        end = body + rl
        if end > n:
            return False
        ptype = buf[i] >> 4
        if ptype == 3 or ptype == 8 or ptype == 10:
            named = named or _printable_topic(buf, body if ptype == 3 else body + 2, end)
        i = end
    return named


def find_header(buf: bytes, start: int, n: int, version: int | None) -> tuple[int, int]:
    """The first offset at or after `start` where a resynchronisation can happen: (offset, ACCEPT or WAIT), or
    (-1, REJECT) when no offset before the last byte qualifies."""
    search = _CANDIDATE.search
    m = search(buf, start)
    while m is not None:
        i = m.start()
        v = verdict(buf, i, n, version, True)
        if v != REJECT:
            return i, v
        m = search(buf, i + 1)
    return -1, REJECT


class FramingMixin:
    """Where packets start: the first bytes of each direction, resynchronisation, gathering, capped weirds.

    A mixin of protocols/mqtt.py's MqttDecoder, which owns the state declared here.
    """

    flow: FlowId
    failed: bool
    version: int | None
    _buf: list[bytes]
    _parts: list[list[bytes]]
    _have: list[int]
    _need: list[int]
    _total: list[int]
    _state: list[int]
    _skipped: list[int]
    _budget: int
    _searches: int
    _trusted: bool
    _bad: list[int]
    _pubs: list[dict[int, list[Any]]]
    _subs: dict[int, tuple[float, str, dict[str, Any]]]
    _aliases: list[dict[int, str]]
    _wcount: dict[str, int]

    def _weird(self, out: list[ProtocolEvent], name: str, ts: float, is_orig: bool, addl: str, **extra: Any) -> None:
        """A weird, unless this flow already reported MAX_WEIRDS of that name (then only counted)."""
        count = self._wcount.get(name, 0) + 1
        self._wcount[name] = count
        if count <= MAX_WEIRDS:
            out.append(weird(self.flow, PROTO, name, ts, is_orig, addl, **extra))

    def _violation(self, why: str, is_orig: bool, ts: float, out: list[ProtocolEvent]) -> int:
        """Not MQTT: report it, forget the flow's state and decode no more."""
        self.failed = True
        self._buf = [b"", b""]
        self._parts = [[], []]
        self._need = [0, 0]
        self._pubs = [{}, {}]
        self._subs = {}
        self._aliases = [{}, {}]
        out.append(weird(self.flow, PROTO, "mqtt_protocol_violation", ts, is_orig, why))
        return -1

    def _find(self, buf: bytes, pos: int, n: int, d: int, is_orig: bool, ts: float, out: list[ProtocolEvent]) -> int:
        """Where decoding can start in buf[pos:]: the offset, or -1 (bytes kept for later, or the flow given up)."""
        if self._state[d] == START:
            v = verdict(buf, pos, n, self.version, False)
            if v == ACCEPT:
                self._state[d] = SYNC
                return pos
            if v == WAIT:
                self._buf[d] = buf[pos:]
                return -1
            if buf.startswith(_FOREIGN, pos):
                return self._violation("the first bytes are TLS or HTTP, not MQTT", is_orig, ts, out)
            self._state[d] = RESYNC
        i, v = find_header(buf, pos, n, self.version)
        keep = i if i >= 0 else max(pos, n - 1)
        self._skipped[d] += keep - pos
        self._budget -= keep - pos
        if self._budget < 0:
            why = f"{MAX_RESYNC_BYTES - self._budget} bytes skipped without finding an MQTT packet"
            return self._violation(why, is_orig, ts, out)
        if i < 0 or v == WAIT:
            self._buf[d] = buf[keep:]
            return -1
        if self._skipped[d]:
            self._weird(out, "mqtt_resync", ts, is_orig, f"skipped {self._skipped[d]} bytes")
        self._skipped[d] = 0
        self._state[d] = SYNC
        self._bad[d] = MAX_BAD - 1  # a wrong guess shows at once: one malformed packet searches again
        if self._trusted:
            self._budget = MAX_RESYNC_BYTES  # per search once the flow showed a CONNECT or CONNACK
        return i

    def _wait(self, buf: bytes, pos: int, n: int, d: int, need: int, total: int) -> None:
        """Keep the start of a packet that is not complete yet; decode it once `need` bytes of it are here."""
        self._parts[d] = [buf[pos:] if pos else buf]
        self._have[d] = n - pos
        self._need[d] = need
        self._total[d] = total

    def _resync_from(self, d: int, pos: int, is_orig: bool, ts: float, out: list[ProtocolEvent]) -> int:
        """Look for a packet from `pos` on, after malformed packets; give the flow up after too many such searches."""
        self._searches += 1
        if self._searches > MAX_SEARCHES:
            return self._violation(f"{MAX_SEARCHES} searches for a packet after malformed ones", is_orig, ts, out)
        self._state[d] = RESYNC
        self._bad[d] = 0
        self._skipped[d] = 0
        return pos
