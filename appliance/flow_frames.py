"""The FlowTable's frame fast path: an Ethernet/IPv4 frame of a known connection, handled without a `Packet`.

Most frames of a capture belong to a connection already tracked and need no state change: a TCP segment without
SYN, FIN or RST on an established direction, or a UDP datagram. For those, `FrameFastPath.frame` reads the few
header fields it needs straight from the frame and finds the connection by the raw address and port bytes
(`frame[26:38]`: source and destination IPv4 address, source and destination port), an index kept beside the
FlowTable's text-keyed one for every IPv4 TCP and UDP connection. Anything else (another link or network layer,
IP options, fragments, a new connection, a segment that may change state, a malformed header) is left to the
Dissector and `FlowTable.process`, which give exactly the same result; the fast path only skips building the
`Packet` and the address text.
"""

from __future__ import annotations

from socket import inet_aton
from struct import Struct

from appliance.conn_state import H_ACK, H_DATA, Conn, Half, check_history, note_rxmit
from appliance.reassembly import DONE, HALF_SPACE, MASK, TcpStreams

__all__ = ["FrameFastPath", "raw_key"]

# Ethernet + IPv4 (no options) + the TCP header fields the hot path needs: ethertype, version/IHL, total length,
# flags/fragment offset, protocol, then (TCP) sequence, acknowledgment, data offset and flags
_FRAME = Struct("!12xHBxHxxHxB14xIIBB")
_PORTS = Struct("!HH")
_ACK = 0x10


def raw_key(src: str, sport: int, dst: str, dport: int) -> bytes | None:
    """The frame bytes 26..37 of an IPv4 packet from src:sport to dst:dport; None when an address is no IPv4."""
    if ":" in src or ":" in dst:
        return None
    try:
        return inet_aton(src) + inet_aton(dst) + _PORTS.pack(sport, dport)
    except OSError:
        return None


class FrameFastPath(TcpStreams):
    """The FlowTable's base for the per-frame fast path and the raw-key index it reads (TCP handling below it)."""

    _next_check: float
    _fast_tcp: dict[bytes, Half]
    _fast_udp: dict[bytes, Half]

    def _tick(self, ts: float) -> None:
        raise NotImplementedError

    def _index_raw(self, sender: Half, proto: int, src: str, sport: int, dst: str, dport: int) -> None:
        """Index a new IPv4 TCP or UDP connection by raw frame bytes, as `_halves` has it: `sender` sent the
        first packet, from src:sport to dst:dport."""
        if proto == 6:
            index = self._fast_tcp
        elif proto == 17:
            index = self._fast_udp
        else:
            return
        key = raw_key(src, sport, dst, dport)
        if key is None:
            return
        index[key] = sender
        index[key[4:8] + key[0:4] + key[10:12] + key[8:10]] = sender.peer
        sender.conn.raw = key

    def _unindex_raw(self, conn: Conn) -> None:
        """Forget a finished connection's raw keys."""
        key = conn.raw
        if key is None:
            return
        index = self._fast_tcp if conn.proto == 6 else self._fast_udp
        index.pop(key, None)
        index.pop(key[4:8] + key[0:4] + key[10:12] + key[8:10], None)

    def frame(self, ts: float, data: bytes) -> bool:
        """Account an Ethernet frame to its connection if the fast path applies; False: dissect and `process` it."""
        n = len(data)
        if n < 54:
            return False
        etype, vihl, total, frag, proto, seq, acknum, doff, flags = _FRAME.unpack_from(data)
        if etype != 0x0800 or vihl != 0x45 or total < 20 or frag & 0x3FFF:
            return False
        end = 14 + total
        if end > n:
            end = n
        if proto == 6:
            doff = 34 + ((doff >> 4) << 2)
            if doff < 54 or doff > end:
                return False
            if ts >= self._next_check:
                self._tick(ts)
            half = self._fast_tcp.get(data[26:38])
            if half is None or flags & 7 or not half.fast:
                return False
            # as FlowTable.process for an established direction: counters and sequence space
            conn = half.conn
            conn.last_ts = ts
            half.pkts += 1
            half.ip_bytes += total
            size = end - doff
            if size:
                if not half.hseen & H_DATA:
                    check_history(half, H_DATA, "D")
            elif flags & _ACK and not half.hseen & H_ACK:
                check_history(half, H_ACK, "A")
            if flags & _ACK:
                peer = half.peer
                if peer.last:  # the peer's sequence space is known
                    ref = peer.last
                    ack = ref + ((((acknum - peer.base) & MASK) - ref + HALF_SPACE) & MASK) - HALF_SPACE
                    prev = peer.ack
                    if ack > prev:
                        peer.ack = ack
                        if ack > peer.nxt:
                            self._ack_beyond(peer, ack, prev, ts)
            last = half.last
            rel = last + ((((seq - half.base) & MASK) - last + HALF_SPACE) & MASK) - HALF_SPACE
            stop = rel + size
            if stop > last:
                half.last = stop
            elif size:
                note_rxmit(half)
            if size:
                if rel == half.nxt and not half.ostarts:
                    half.nxt = stop
                    if conn.dstate != DONE:
                        self._deliver(half, data[doff:end], ts)
                else:
                    self._segment(half, rel, data[doff:end], ts)
            return True
        if proto == 17:
            if end < 42:
                return False
            ulen = (data[38] << 8) | data[39]
            stop = 34 + ulen if ulen >= 8 else end
            if stop > end:
                stop = end
            if ts >= self._next_check:
                self._tick(ts)
            half = self._fast_udp.get(data[26:38])
            if half is None:
                return False
            conn = half.conn
            conn.last_ts = ts
            half.pkts += 1
            half.ip_bytes += total
            payload = data[42:stop]
            half.bytes += len(payload)
            if not half.hseen:
                check_history(half, H_DATA, "D")
            if payload and conn.dstate != DONE:
                self._deliver(half, payload, ts)
            return True
        return False
