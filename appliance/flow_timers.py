"""The FlowTable's timers: when a connection ends by packet time, the timer heap, expiry, eviction, and the report
of a UDP flow still unanswered `udp_attempt` s after its first datagram (`on_attempt`).

A layer of the FlowTable (appliance/flows.py) between the frame fast path and the table itself; the attributes it
reads are set by FlowTable.__init__.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heapify, heappop, heappush
from itertools import count

from appliance.conn_state import INACTIVE, SYN_ACK_SENT, SYN_SENT, Conn, flow_record
from appliance.flow_frames import FrameFastPath
from appliance.model import LLC, Flow

CHECK_EVERY = 1.0  # seconds of packet time between timer checks


class FlowTimers(FrameFastPath):
    """Deadlines of live connections in a heap, checked once per second of packet time."""

    tcp_idle: float
    udp_idle: float
    icmp_idle: float
    tcp_closed_linger: float
    tcp_attempt: float
    udp_attempt: float
    timed_out: int
    evicted: int
    _on_attempt: Callable[[Flow], None] | None
    _timers: list[tuple[float, int, Conn]]
    _lru: list[tuple[float, int, Conn]] | None
    _live: dict[int, Conn]
    _count: count[int]
    _clock: float
    _macs: dict[bytes, str | None]

    def expire(self, now: float) -> None:
        """End the connections whose timer (idle, attempt or close linger) ran out by packet time `now`."""
        if now > self._clock:
            self._clock = now
        heap = self._timers
        while heap and heap[0][0] <= now:
            deadline, _, conn = heappop(heap)
            if conn.done or deadline != conn.sched:
                continue  # finished already, or rescheduled since
            real = self._deadline(conn)
            if real <= now and self._unanswered_udp(conn) and real < conn.last_ts + self.udp_idle:
                conn.noticed = True  # the attempt deadline, not the end: report and keep the flow
                assert self._on_attempt is not None
                self._on_attempt(flow_record(conn, self._macs))
                real = conn.sched = self._deadline(conn)
                heappush(heap, (real, next(self._count), conn))
                continue
            if real <= now:
                if conn.closed_at is None:
                    self.timed_out += 1
                self._finish(conn, real)
            else:
                conn.sched = real
                heappush(heap, (real, next(self._count), conn))

    def _deadline(self, conn: Conn) -> float:
        """When a connection ends if nothing more happens."""
        if conn.proto == 6:
            if conn.closed_at is not None:
                return conn.closed_at + self.tcp_closed_linger
            state = conn.orig.state
            if state in (SYN_SENT, SYN_ACK_SENT) and conn.resp.state == INACTIVE:
                return conn.ts + self.tcp_attempt
            return conn.last_ts + self.tcp_idle
        if conn.proto == 17 or conn.proto == LLC:
            if self._unanswered_udp(conn):
                return min(conn.ts + self.udp_attempt, conn.last_ts + self.udp_idle)
            return conn.last_ts + self.udp_idle
        return conn.last_ts + self.icmp_idle

    def _unanswered_udp(self, conn: Conn) -> bool:
        """A UDP flow not answered and not reported yet, in a table that reports attempts."""
        return (conn.proto == 17 and not conn.noticed and conn.resp.pkts == 0
                and self._on_attempt is not None)  # fmt: skip

    def _schedule(self, conn: Conn) -> None:
        """Put the connection's deadline in the timer heap if it is earlier than the one already there."""
        deadline = self._deadline(conn)
        if deadline < conn.sched:
            conn.sched = deadline
            heappush(self._timers, (deadline, next(self._count), conn))

    def _tick(self, ts: float) -> None:
        self._next_check = ts + CHECK_EVERY
        self.expire(ts)

    def _evict(self, now: float) -> None:
        """End the least recently active connection to make room."""
        lru = self._lru
        if lru is None or len(lru) > 2 * len(self._live) + 64:
            lru = self._lru = [(c.last_ts, c.n, c) for c in self._live.values()]
            heapify(lru)
        while lru:
            last, n, conn = heappop(lru)
            if conn.done:
                continue
            if conn.last_ts > last:
                heappush(lru, (conn.last_ts, n, conn))  # active since: look again later
                continue
            self.evicted += 1
            self._finish(conn, now)
            return
