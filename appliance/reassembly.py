"""TCP for the FlowTable: sequence arithmetic, the segment state step, and per-direction stream reassembly.

Offsets are relative to a direction's initial sequence number (the SYN is offset 0, the first data byte 1) and are
unbounded Python ints, so 32-bit wraparound is handled once, in `unwrap`. Bytes at the next offset to deliver
(`Half.nxt`) go to the decoder at once; segments beyond it are held, sorted by start, and overlaps are trimmed
when delivered, so a byte is never delivered twice. A hole is given up (reported as a gap, `Half.nxt` moved past
it) when the held bytes pass their bound, when the peer acknowledges data past it, or when the connection ends.

`TcpStreams` is the TCP half of the FlowTable (`appliance.flows.FlowTable` derives from it and supplies
delivery, gaps, connection creation and timers); the hot path for established directions lives in
`FlowTable.process` and only falls back to these methods for the rare cases.
"""

from __future__ import annotations

from bisect import bisect_right

from appliance.conn_state import (
    CLOSED,
    INACTIVE,
    RESET,
    SYN_ACK_SENT,
    SYN_SENT,
    Conn,
    Half,
    tcp_history,
    tcp_transition,
    update_last_seq,
)
from appliance.model import Packet

__all__ = ["HALF_SPACE", "MASK", "TcpStreams", "buffer_segment", "pop_ready", "unwrap"]

MASK = 0xFFFFFFFF
HALF_SPACE = 0x80000000
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
DONE = 2  # Conn.dstate: nothing more to decode
TOO_FAR_ACK = 1 << 24  # an ACK this far past all data seen is not trusted to reveal a gap


def unwrap(seq: int, base: int, ref: int) -> int:
    """The relative offset of 32-bit `seq` (offset 0 at `base`), taken within 2**31 of the offset `ref`."""
    rel = (seq - base) & MASK
    return ref + ((rel - ref + HALF_SPACE) & MASK) - HALF_SPACE


def buffer_segment(half: Half, rel: int, data: bytes) -> int:
    """Hold a segment that starts beyond `half.nxt`; the number of bytes added (0 when already held)."""
    starts = half.ostarts
    odata = half.odata
    if starts is None or odata is None:
        starts = half.ostarts = []
        odata = half.odata = []
    i = bisect_right(starts, rel)
    n = len(data)
    if i and starts[i - 1] + len(odata[i - 1]) >= rel + n:
        return 0  # entirely inside a segment already held
    starts.insert(i, rel)
    odata.insert(i, data)
    half.obytes += n
    return n


def pop_ready(half: Half) -> list[bytes]:
    """Remove the held bytes that continue the stream at `half.nxt` (trimmed of overlaps) and advance it."""
    out: list[bytes] = []
    starts = half.ostarts
    odata = half.odata
    nxt = half.nxt
    if starts and odata:
        i = 0
        count = len(starts)
        freed = 0
        while i < count and starts[i] <= nxt:
            start = starts[i]
            data = odata[i]
            freed += len(data)
            end = start + len(data)
            if end > nxt:
                out.append(data[nxt - start:] if start < nxt else data)
                nxt = end
            i += 1
        if i:
            del starts[:i]
            del odata[:i]
            half.obytes -= freed
    if nxt == half.fin:
        nxt += 1  # the FIN takes one sequence number
    half.nxt = nxt
    return out


class TcpStreams:
    """The TCP segment handling of the FlowTable: endpoint states, connection reuse and stream reassembly."""

    max_ooo_bytes: int
    max_ooo_total: int
    ooo_total: int
    reused: int

    # supplied by the FlowTable
    def _deliver(self, half: Half, data: bytes, ts: float) -> None:
        raise NotImplementedError

    def _gap(self, half: Half, length: int, ts: float, closing: bool = False) -> None:
        raise NotImplementedError

    def _new_tcp(self, pkt: Packet, flags: int, ts: float) -> Half:
        raise NotImplementedError

    def _finish(self, conn: Conn, ts: float) -> None:
        raise NotImplementedError

    def _schedule(self, conn: Conn) -> None:
        raise NotImplementedError

    def _tcp_slow(self, half: Half | None, pkt: Packet, flags: int, ts: float) -> None:
        """A TCP segment that may change state: a new connection, SYN/FIN/RST, or a direction not yet open."""
        seq = pkt.seq
        if half is not None and flags & SYN and self._is_reuse(half.conn, flags, seq):
            self.reused += 1
            self._finish(half.conn, ts)
            half = None
        new = half is None
        if half is None:
            half = self._new_tcp(pkt, flags, ts)
        conn = half.conn
        peer = half.peer
        half.pkts += 1
        half.ip_bytes += pkt.ip_len
        if half.state < CLOSED or peer.state < CLOSED:
            conn.last_ts = ts  # as Zeek, packets after both sides closed do not extend the duration
        payload = pkt.payload
        n = len(payload)
        syn, fin, rst = flags & SYN, flags & FIN, flags & RST
        seg = (0 if rst else n) + (1 if syn else 0) + (1 if fin else 0)  # RST payload is not stream data
        state = half.state
        if state == INACTIVE or (syn and seq != half.base and (
                SYN_SENT <= state < CLOSED or (state == RESET and half.prev_state == INACTIVE))):
            self._init_seq(half, seq, syn, seg)  # a first segment, or a SYN that restarts the sequence space
        rel = unwrap(seq, half.base, half.last)
        tcp_history(half, flags, rel, n)
        ack = prev = -1
        if flags & ACK and peer.last and not rst:  # as Zeek, the ACK of a RST is not trusted
            ack = unwrap(pkt.ack, peer.base, peer.last)
            prev = peer.ack
            if ack > prev and not (pkt.ack == 0 and ack - prev > 1 << 20):
                peer.ack = ack
            else:
                ack = -1
        update_last_seq(half, flags, rel + seg, n)
        tcp_transition(half, flags, n)
        if ack > peer.nxt:
            self._ack_beyond(peer, ack, prev, ts)
        data_rel = rel + 1 if syn else rel
        if n and not rst:
            self._segment(half, data_rel, payload, ts)
        if fin:
            self._fin(half, data_rel + n)
        if conn.closed_at is None:
            os, rs = conn.orig.state, conn.resp.state
            if RESET in (os, rs) or (os == CLOSED and rs in (CLOSED, INACTIVE)) or (rs == CLOSED and os == INACTIVE):
                conn.closed_at = ts
                self._schedule(conn)
        if new:
            self._schedule(conn)

    @staticmethod
    def _is_reuse(conn: Conn, flags: int, seq: int) -> bool:
        """A SYN that starts a new connection on a tuple already tracked (Zeek's IsReuse)."""
        if flags & ACK:
            if conn.orig.state != INACTIVE:
                return False
            ref = conn.resp
        else:
            ref = conn.orig
        if conn.closed_at is not None:
            return True
        if not ref.last or seq == ref.base:
            return False
        # a SYN and SYN-ACK seen in reverse order (interleaved capture) is the same connection
        return not (not flags & ACK and ref.state == SYN_ACK_SENT and conn.resp.state == INACTIVE
                    and seq == conn.resp.base)

    def _init_seq(self, half: Half, seq: int, syn: int, seg: int) -> None:
        """Start a direction's sequence space at a SYN, or just before the first byte seen midstream."""
        if syn:
            half.base = seq & MASK
            half.last = seg
        else:
            half.base = (seq - 1) & MASK
            half.last = 1
        half.ack = 0
        half.nxt = 1
        half.fin = -1
        if half.ostarts:  # bytes held in an abandoned sequence space are dropped
            self.ooo_total -= half.obytes
            half.ostarts = half.odata = None
            half.obytes = 0

    @staticmethod
    def _fin(half: Half, fin_rel: int) -> None:
        """A FIN at relative offset `fin_rel`: the stream of this direction ends there."""
        if half.fin < 0 or fin_rel > half.fin:
            half.fin = fin_rel
        if half.nxt == fin_rel:
            half.nxt = fin_rel + 1

    def _segment(self, half: Half, rel: int, data: bytes, ts: float) -> None:
        """Payload at relative offset `rel`: trim what was delivered, deliver what is next, hold the rest."""
        nxt = half.nxt
        end = rel + len(data)
        if end <= nxt:
            return  # a retransmission of delivered (or given-up) bytes
        if rel < nxt:
            data = data[nxt - rel:]
            rel = nxt
        if rel == nxt:
            half.nxt = end
            if half.conn.dstate != DONE:
                self._deliver(half, data, ts)
            self._drain(half, ts)
            return
        self.ooo_total += buffer_segment(half, rel, data)
        if half.obytes > self.max_ooo_bytes or self.ooo_total > self.max_ooo_total:
            self._overflow(half, ts)

    def _drain(self, half: Half, ts: float) -> None:
        """Deliver the held segments that now continue the stream."""
        before = half.obytes
        chunks = pop_ready(half)
        self.ooo_total -= before - half.obytes
        for chunk in chunks:
            if half.conn.dstate == DONE:
                break
            self._deliver(half, chunk, ts)

    def _overflow(self, half: Half, ts: float) -> None:
        """The buffer bound was hit: give up holes, oldest first, until the held bytes fit again."""
        while half.ostarts and (half.obytes > self.max_ooo_bytes or self.ooo_total > self.max_ooo_total):
            first = half.ostarts[0]
            if first > half.nxt:
                self._gap(half, first - half.nxt, ts)
                half.nxt = first
            self._drain(half, ts)

    def _ack_beyond(self, half: Half, ack: int, prev: int, ts: float) -> None:
        """The peer acknowledged bytes of `half` up to `ack` that were not delivered: the holes are lost."""
        if ack - half.last > TOO_FAR_ACK:
            half.ack = prev  # a bogus acknowledgment, far past anything sent
            return
        if half.nxt == half.fin:
            half.nxt += 1
        limit = ack if half.fin < 0 or ack < half.fin else half.fin  # the FIN's sequence number is not data
        while half.nxt < limit:
            starts = half.ostarts
            stop = starts[0] if starts and starts[0] < limit else limit
            if stop > half.nxt:
                self._gap(half, stop - half.nxt, ts)
                half.nxt = stop
            self._drain(half, ts)

    def _close_holes(self, half: Half, ts: float) -> None:
        """The connection ends: give up every hole, delivering what was held behind them."""
        while half.ostarts:
            first = half.ostarts[0]
            if first > half.nxt:
                self._gap(half, first - half.nxt, ts, closing=True)
                half.nxt = first
            self._drain(half, ts)
        if half.fin > half.nxt:
            self._gap(half, half.fin - half.nxt, ts, closing=True)
            half.nxt = half.fin + 1
