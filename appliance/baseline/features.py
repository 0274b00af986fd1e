"""Feature windows: what each device did in a fixed window of packet time, as one vector for the statistical model.

Windows are aligned to multiples of `window` seconds. A device's vector: messages sent and received (decoded
protocol messages), packets and bytes (from its finished connections, a long connection credited with the share
of one window in its duration), distinct peers and server ports, failed connections, reads, writes, exceptions,
distinct operations, new facts (edges, operations, points never seen before), and when: the hour of day and
whether it is a workday (the hour of week, in a form that generalises from a few days of learning).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

FEATURES = ("msgs_out", "msgs_in", "packets", "bytes", "peers", "ports", "failed", "reads", "writes", "exceptions",
            "operations", "new_facts", "hour", "workday")  # fmt: skip
FAILED_STATES = frozenset({"S0", "REJ", "RSTOS0", "RSTRH", "SH", "SHR"})
MAX_DISTINCT = 4096  # peers, ports or operations counted per device and window


class DeviceStats:
    """One device's counters in the current window (mutated in place; reset when the window closes)."""

    __slots__ = ("alerted", "bytes", "exceptions", "failed", "msgs_in", "msgs_out", "new_facts", "ops", "packets",
                 "peers", "ports", "reads", "writes")  # fmt: skip

    def __init__(self) -> None:
        self.msgs_out = self.msgs_in = self.failed = self.reads = self.writes = self.exceptions = 0
        self.new_facts = 0
        self.packets = 0.0
        self.bytes = 0.0
        self.peers: set[str] = set()
        self.ports: set[int] = set()
        self.ops: set[str] = set()
        self.alerted = False  # an alert named the device in this window: not a benign training window

    def add_peer(self, peer: str) -> None:
        """A peer of the device in this window."""
        if len(self.peers) < MAX_DISTINCT:
            self.peers.add(peer)

    def add_port(self, port: int) -> None:
        """A server port the device used or served in this window."""
        if len(self.ports) < MAX_DISTINCT:
            self.ports.add(port)

    def add_op(self, op: str) -> None:
        """An operation the device sent or received in this window."""
        if len(self.ops) < MAX_DISTINCT:
            self.ops.add(op)

    def active(self) -> bool:
        """True when anything was counted."""
        return bool(self.msgs_out or self.msgs_in or self.packets or self.failed)

    def vector(self, hour: int, workday: bool) -> list[float]:
        """The feature vector, in FEATURES order."""
        return [float(self.msgs_out), float(self.msgs_in), round(self.packets, 3), round(self.bytes, 3),
                float(len(self.peers)), float(len(self.ports)), float(self.failed), float(self.reads),
                float(self.writes), float(self.exceptions), float(len(self.ops)), float(self.new_facts), float(hour),
                1.0 if workday else 0.0]  # fmt: skip

    def reset(self) -> None:
        """Start the next window."""
        self.msgs_out = self.msgs_in = self.failed = self.reads = self.writes = self.exceptions = 0
        self.new_facts = 0
        self.packets = 0.0
        self.bytes = 0.0
        self.peers.clear()
        self.ports.clear()
        self.ops.clear()
        self.alerted = False


@dataclass(frozen=True, slots=True)
class ClosedWindow:
    """One device's finished window: its start (packet time), vector, and whether an alert named it."""

    ip: str
    start: float
    vector: tuple[float, ...]
    alerted: bool


def when(ts: float, workdays: frozenset[int] = frozenset(range(5))) -> tuple[int, bool]:
    """The UTC hour of day and whether the day is a workday (Monday = 0)."""
    t = time.gmtime(ts)
    return t.tm_hour, t.tm_wday in workdays


class Windows:
    """The current window's counters of every tracked device, closed and reset at each window boundary."""

    def __init__(self, window: float, max_devices: int) -> None:
        self.window = window
        self.max_devices = max_devices
        self.index: int | None = None  # the current window: floor(ts / window)
        self.stats: dict[str, DeviceStats] = {}
        self.capped = 0  # devices not tracked because max_devices were

    def stats_for(self, ip: str) -> DeviceStats | None:
        """The device's counters, created on first use (None when the cap is reached)."""
        st = self.stats.get(ip)
        if st is None:
            if len(self.stats) >= self.max_devices:
                self.capped += 1
                return None
            st = self.stats[ip] = DeviceStats()
        return st

    def roll(self, ts: float) -> list[ClosedWindow]:
        """Close the current window when `ts` is past it: every device's vector (empty list otherwise)."""
        index = int(ts // self.window)
        if self.index is None:
            self.index = index
            return []
        if index <= self.index:
            return []
        start = self.index * self.window
        hour, workday = when(start)
        out = []
        for ip, st in self.stats.items():
            out.append(ClosedWindow(ip, start, tuple(st.vector(hour, workday)), st.alerted))
            st.reset()
        self.index = index
        return out

    def credit_flow(self, st: DeviceStats, packets: int, nbytes: int, duration: float) -> None:
        """Count a finished connection's packets and bytes, a long one for one window's share of it."""
        share = min(1.0, self.window / duration) if duration > self.window else 1.0
        st.packets += packets * share
        st.bytes += nbytes * share
