"""The FlowTable: packets in, connection records (Zeek's conn.log) and decoded protocol events out.

- One connection per 5-tuple, both directions. The originator sends the first packet, except (Zeek's likely
  server port heuristic) when the first packet is midstream from a likely server port (below 1024 or a port a
  decoder registers) or is a SYN-ACK towards a port that is not one: then the roles flip (history `^`). ICMP
  messages are keyed by (type, answer type) so that a request and its reply share one flow.
- TCP is reassembled per direction (appliance/reassembly.py): in-order bytes go to the decoder at once,
  out-of-order segments wait (at most `max_ooo_bytes` per direction, `max_ooo_total` for the table),
  retransmissions and overlaps are trimmed. A hole is given up, reported to the decoder (`gap`) and counted in
  missed_bytes when the buffer bound is hit, when the peer acknowledges data past it, or when the flow ends.
- A decoder is chosen on the first payload: by the responder port, else by each decoder's `probe()` in registry
  order, retried on the next payloads (`probe_limit` per direction). A decoder that sets `failed` (or raises)
  is fed no more. Events from `feed`/`gap`/`close` go to `on_event` in order; a connection's service is the
  decoder name once it produced an event that is not a weird.
- Connections end by packet time: a TCP attempt (SYN, no answer) `tcp_attempt` s after its first packet, a
  closed TCP connection (FIN both ways, a RST, or a FIN with a silent peer) `tcp_closed_linger` s after the close
  (late ACKs still join it), others after `tcp_idle`/`udp_idle`/`icmp_idle` s without packets; timers are
  checked once per second of packet time. A SYN on a closed 5-tuple (or with another initial sequence) starts a
  new connection. Beyond `max_flows` live connections the least recently active one is evicted.
- The pipeline hands Ethernet frames to `frame` first (appliance/flow_frames.py): a frame of a known IPv4
  connection that changes no state is accounted from its bytes, without a Packet; anything else comes back to
  the Dissector and `process`, with the same result.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from heapq import heappush
from itertools import count

from appliance.conn_state import (
    H_ACK,
    H_DATA,
    Conn,
    Half,
    check_history,
    flip_roles,
    flow_record,
    icmp_ports,
    new_uid,
    note_gap,
    note_rxmit,
)
from appliance.flow_timers import FlowTimers
from appliance.model import LLC, TRANSPORT_NAMES, Flow, FlowId, Packet, ProtocolEvent
from appliance.reassembly import DONE, HALF_SPACE, MASK
from protocols.base import WEIRD, Decoder, DecoderFactory, weird

__all__ = ["FlowTable"]

_SYN, _ACK = 0x02, 0x10
_NONE: frozenset[int] = frozenset()


class FlowTable(FlowTimers):
    """Live connections by 5-tuple: TCP reassembly, decoder dispatch, timeouts and conn records."""

    def __init__(
        self,
        decoders: Sequence[DecoderFactory],
        on_event: Callable[[ProtocolEvent], None],
        on_flow: Callable[[Flow], None],
        *,
        max_flows: int = 200_000,
        tcp_idle: float = 300.0,
        udp_idle: float = 60.0,
        icmp_idle: float = 60.0,
        tcp_closed_linger: float = 5.0,
        tcp_attempt: float = 5.0,
        udp_attempt: float = 5.0,
        on_attempt: Callable[[Flow], None] | None = None,
        max_ooo_bytes: int = 256 * 1024,
        max_ooo_total: int = 64 * 1024 * 1024,
        probe_limit: int = 4,
        uid_seed: int = 0,
    ) -> None:
        self._on_event = on_event
        self._on_flow = on_flow
        self.max_flows = max(1, max_flows)
        self.tcp_idle = tcp_idle
        self.udp_idle = udp_idle
        self.icmp_idle = icmp_idle
        self.tcp_closed_linger = tcp_closed_linger
        self.tcp_attempt = tcp_attempt
        self.udp_attempt = udp_attempt
        # told, once, of a UDP flow still unanswered `udp_attempt` s after its first datagram (the conn record so
        # far; the flow lives on to its idle timeout): scans are judged in seconds, not at the 60 s timeout
        self._on_attempt = on_attempt
        self.max_ooo_bytes = max_ooo_bytes
        self.max_ooo_total = max_ooo_total
        self.probe_limit = max(1, probe_limit)
        self._rng = random.Random(uid_seed)
        self._halves: dict[tuple[str, int, str, int, int], Half] = {}
        self._fast_tcp: dict[bytes, Half] = {}  # the same halves by raw IPv4 frame bytes (appliance.flow_frames)
        self._fast_udp: dict[bytes, Half] = {}
        self._live: dict[int, Conn] = {}
        self._timers: list[tuple[float, int, Conn]] = []
        self._lru: list[tuple[float, int, Conn]] | None = None
        self._count = count()
        self._next_check = float("-inf")
        self._clock = float("-inf")
        self.ooo_total = 0
        self.total = 0
        self.evicted = 0
        self.timed_out = 0
        self.reused = 0
        self.decoder_errors = 0
        self._macs: dict[bytes, str | None] = {}
        self._by_port: dict[tuple[str, int], DecoderFactory] = {}
        self._probers: dict[str, list[DecoderFactory]] = {}
        self._likely: dict[str, frozenset[int]] = {}
        for factory in decoders:
            self._probers.setdefault(factory.transport, []).append(factory)
            for port in factory.ports:
                self._by_port.setdefault((factory.transport, port), factory)
        for transport, factories in self._probers.items():
            self._likely[transport] = frozenset(p for f in factories for p in f.ports)

    @property
    def live(self) -> int:
        """Connections currently tracked."""
        return len(self._live)

    def process(self, pkt: Packet) -> None:
        """Account one dissected packet to its connection (the hot path)."""
        ts = pkt.ts
        if ts >= self._next_check:
            self._tick(ts)
        proto = pkt.proto
        if proto == 6:
            flags = pkt.tcp_flags
            half = self._halves.get((pkt.src, pkt.sport, pkt.dst, pkt.dport, 6))
            if half is None or flags & 7 or not half.fast:
                self._tcp_slow(half, pkt, flags, ts)
                return
            # an established direction, no SYN/FIN/RST: no state change, only counters and sequence space
            conn = half.conn
            conn.last_ts = ts
            half.pkts += 1
            half.ip_bytes += pkt.ip_len
            payload = pkt.payload
            n = len(payload)
            if n:
                if not half.hseen & H_DATA:
                    check_history(half, H_DATA, "D")
            elif flags & _ACK and not half.hseen & H_ACK:
                check_history(half, H_ACK, "A")
            if flags & _ACK:
                peer = half.peer
                if peer.last:  # the peer's sequence space is known
                    ref = peer.last
                    ack = ref + ((((pkt.ack - peer.base) & MASK) - ref + HALF_SPACE) & MASK) - HALF_SPACE
                    prev = peer.ack
                    if ack > prev:
                        peer.ack = ack
                        if ack > peer.nxt:
                            self._ack_beyond(peer, ack, prev, ts)
            last = half.last
            rel = last + ((((pkt.seq - half.base) & MASK) - last + HALF_SPACE) & MASK) - HALF_SPACE
            end = rel + n
            if end > last:
                half.last = end
            elif n:
                note_rxmit(half)
            if n:
                if rel == half.nxt and not half.ostarts:
                    half.nxt = end
                    if conn.dstate != DONE:
                        self._deliver(half, payload, ts)
                else:
                    self._segment(half, rel, payload, ts)
        elif proto == 17 or proto == LLC:  # a BACnet/Ethernet LLC frame is a datagram between two MACs
            half = self._halves.get((pkt.src, pkt.sport, pkt.dst, pkt.dport, proto))
            if half is None:
                flip = proto == 17 and flip_roles(None, pkt.sport, pkt.dport, self._likely.get("udp", _NONE))
                half = self._new_conn(pkt, ts, pkt.sport, pkt.dport, flip)
            conn = half.conn
            conn.last_ts = ts
            half.pkts += 1
            half.ip_bytes += pkt.ip_len
            payload = pkt.payload
            half.bytes += len(payload)
            if not half.hseen:
                check_history(half, H_DATA, "D")
            if payload and conn.dstate != DONE:
                self._deliver(half, payload, ts)
        elif proto == 1 or proto == 58:
            sport, dport = icmp_ports(proto, pkt.sport, pkt.dport)
            half = self._halves.get((pkt.src, sport, pkt.dst, dport, proto))
            if half is None:
                half = self._new_conn(pkt, ts, sport, dport, False)
            conn = half.conn
            conn.last_ts = ts
            half.pkts += 1
            half.ip_bytes += pkt.ip_len
            half.bytes += len(pkt.payload)
            if pkt.payload and conn.dstate != DONE:
                self._deliver(half, pkt.payload, ts)

    def flush(self, now: float | None = None) -> None:
        """End of input: close every live connection (decoders closed, conn records out), oldest first."""
        conns = list(self._live.values())
        end = now if now is not None else max([self._clock, *(c.last_ts for c in conns)])
        for conn in conns:
            self._finish(conn, end)
        self._timers.clear()
        self._lru = None

    # --- helpers for TcpStreams and the hot path -------------------------------------------------------

    def _new_tcp(self, pkt: Packet, flags: int, ts: float) -> Half:
        """A new TCP connection for its first segment."""
        flip = flip_roles(flags, pkt.sport, pkt.dport, self._likely.get("tcp", _NONE))
        return self._new_conn(pkt, ts, pkt.sport, pkt.dport, flip)

    def _gap(self, half: Half, length: int, ts: float, closing: bool = False) -> None:
        """`length` bytes of one direction are lost: count them and tell the decoder."""
        conn = half.conn
        conn.missed += length
        if not closing:
            note_gap(half)
        dec = conn.decoder
        if dec is not None:
            try:
                events = dec.gap(half.is_orig, ts, length)
            except Exception as exc:  # a decoder bug must not stop the sensor
                self._crash(conn, half, exc, ts)
                return
            if events:
                self._emit(conn, events)
            if dec.failed:
                conn.decoder = None
                conn.dstate = DONE

    # --- connections, decoders, timers ----------------------------------------------------------------------

    def _new_conn(self, pkt: Packet, ts: float, sport: int, dport: int, flip: bool) -> Half:
        """Create and register a connection for a packet (from sport to dport); the half it was sent by."""
        if len(self._live) >= self.max_flows:
            self._evict(ts)
        proto = pkt.proto
        pname = TRANSPORT_NAMES.get(proto, str(proto))
        src, dst = pkt.src, pkt.dst
        uid = new_uid(self._rng)
        fid = FlowId(uid, dst, dport, src, sport, pname) if flip else FlowId(uid, src, sport, dst, dport, pname)
        n = next(self._count)
        conn = Conn(n, fid, proto, ts)
        sender = conn.resp if flip else conn.orig
        self._halves[(src, sport, dst, dport, proto)] = sender
        self._halves[(dst, dport, src, sport, proto)] = sender.peer
        if proto == 6 or proto == 17:
            self._index_raw(sender, proto, src, sport, dst, dport)
        if flip:
            conn.hist = "^"
            conn.orig_mac, conn.resp_mac = pkt.dst_mac, pkt.src_mac
        else:
            conn.orig_mac, conn.resp_mac = pkt.src_mac, pkt.dst_mac
        conn.vlans = pkt.vlans
        if pname not in self._probers:
            conn.dstate = DONE
        self._live[n] = conn
        self.total += 1
        if proto != 6:
            self._schedule(conn)  # TCP is scheduled once its first segment set the endpoint states
        if self._lru is not None:
            heappush(self._lru, (ts, n, conn))
        return sender

    def _deliver(self, half: Half, data: bytes, ts: float) -> None:
        """In-order bytes (or a datagram) of one direction to the decoder, choosing one first if needed."""
        conn = half.conn
        dec = conn.decoder
        if dec is None:
            dec = self._dispatch(conn, half, data, ts)
            if dec is None:
                return
        try:
            events = dec.feed(data, half.is_orig, ts)
        except Exception as exc:  # a decoder bug must not stop the sensor
            self._crash(conn, half, exc, ts)
            return
        if events:
            self._emit(conn, events)
        if dec.failed:
            conn.decoder = None
            conn.dstate = DONE

    def _dispatch(self, conn: Conn, half: Half, data: bytes, ts: float) -> Decoder | None:
        """The decoder for a connection: by responder port, then originator port, else the first probe() to accept.

        The originator's port counts too: a device that opens a connection *from* its server port (a PLC pushing
        unsolicited replies from 502 in the DigitalBond trace) still speaks that protocol, as tshark and Arkime
        decode it.
        """
        fid = conn.fid
        by_port = self._by_port
        factory = by_port.get((fid.proto, fid.resp_p)) or by_port.get((fid.proto, fid.orig_p))
        if factory is None:
            for candidate in self._probers.get(fid.proto, ()):
                try:
                    matched = candidate.probe(data, half.is_orig)
                except Exception:
                    matched = False
                if matched:
                    factory = candidate
                    break
            else:
                half.probes += 1
                if half.probes >= self.probe_limit:
                    conn.dstate = DONE
                return None
        try:
            dec = factory(fid)
        except Exception as exc:
            self._events([weird(fid, factory.name, "decoder_error", ts, half.is_orig, addl=repr(exc)[:200])])
            self.decoder_errors += 1
            conn.dstate = DONE
            return None
        conn.decoder = dec
        conn.dname = factory.name
        conn.dstate = 1
        return dec

    def _emit(self, conn: Conn, events: Iterable[ProtocolEvent]) -> None:
        """Pass a decoder's events on; the first one that is not a weird confirms the service."""
        if conn.service is None:
            for ev in events:
                if ev.kind != WEIRD and conn.service is None:
                    conn.service = conn.dname
                self._on_event(ev)
        else:
            on_event = self._on_event
            for ev in events:
                on_event(ev)

    def _events(self, events: Iterable[ProtocolEvent]) -> None:
        """Pass events on that no decoder produced (the FlowTable's own weirds)."""
        for ev in events:
            self._on_event(ev)

    def _crash(self, conn: Conn, half: Half, exc: Exception, ts: float) -> None:
        """A decoder raised: report it as a weird and stop decoding the connection."""
        name = conn.dname or "unknown"
        self.decoder_errors += 1
        conn.decoder = None
        conn.dstate = DONE
        addl = f"{type(exc).__name__}: {exc}"[:200]
        self._events([weird(conn.fid, name, "decoder_error", ts, half.is_orig, addl=addl)])

    def _finish(self, conn: Conn, ts: float) -> None:
        """End a connection: give up its holes, close its decoder, emit its conn record."""
        if conn.done:
            return
        conn.done = True
        fid = conn.fid
        self._halves.pop((fid.orig_h, fid.orig_p, fid.resp_h, fid.resp_p, conn.proto), None)
        self._halves.pop((fid.resp_h, fid.resp_p, fid.orig_h, fid.orig_p, conn.proto), None)
        if conn.raw is not None:
            self._unindex_raw(conn)
        del self._live[conn.n]
        for half in (conn.orig, conn.resp):
            self._close_holes(half, ts)
        dec = conn.decoder
        if dec is not None:
            conn.decoder = None
            try:
                events = dec.close(ts)
            except Exception as exc:
                self._crash(conn, conn.orig, exc, ts)
                events = []
            if events:
                self._emit(conn, events)
        self._on_flow(flow_record(conn, self._macs))
        for half in (conn.orig, conn.resp):  # break the Conn <-> Half cycles: freed at once, not by the GC
            del half.conn, half.peer

