"""Polling channels: one edge and one operation (SCADA -> PLC read_holding_registers unit 1), timed in packet time.

A channel is also the baseline's fast path: once every fact of its requests is known, a request of the channel
costs one dict lookup, a few attribute updates and one deque append. Its period is the median of the last
inter-arrival times when they are regular enough (ChannelSettings); a channel without a period (an operator's
occasional reads) is never judged on timing.
"""

from __future__ import annotations

from collections import deque
from statistics import median
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appliance.baseline.features import DeviceStats
    from appliance.baseline.settings import ChannelSettings

SAMPLES = 64  # inter-arrival times kept per channel
RECENT = 8  # the last intervals whose median is compared with the period
MIN_GAP = 0.01  # requests closer than this (a burst, a retransmission) are one arrival


class Channel:
    """One (src, dst, protocol, operation) channel: known or not, last time, inter-arrival samples, period."""

    __slots__ = ("changed", "count", "dst", "dst_stats", "fast", "fixed", "known", "last", "op", "period",
                 "protocol", "read", "samples", "silent", "src", "src_stats", "timed", "tried", "window",
                 "write")  # fmt: skip

    def __init__(self, src: str, dst: str, protocol: str, op: tuple[str, ...], ts: float) -> None:
        self.src, self.dst, self.protocol, self.op = src, dst, protocol, op
        self.known = False  # every fact of its requests is known: the fast path applies
        self.fast: Any = None  # the evaluation the fast path returns (made once, by the baseline)
        self.last = ts
        self.count = 1
        self.samples: deque[float] = deque(maxlen=SAMPLES)
        self.period: float | None = None
        self.fixed = False  # the period is judged (learned before protection, or once after it)
        self.tried = 0  # the request count when a period was last looked for
        self.silent = False  # reported silent; cleared by the next request
        self.changed = False  # reported with another period; cleared when back to normal
        self.read = False
        self.write = False
        self.timed = False  # a polling channel whose timing is judged (ChannelSettings.protocols)
        self.window = -1  # the feature window this channel was last counted in
        self.src_stats: DeviceStats | None = None
        self.dst_stats: DeviceStats | None = None

    def hit(self, ts: float, window: int) -> None:
        """One request of the channel at packet time `ts`, counted in feature window `window`."""
        dt = ts - self.last
        if dt >= MIN_GAP:
            self.samples.append(dt)
            self.last = ts
        self.count += 1
        self.silent = False
        st, ds = self.src_stats, self.dst_stats
        if st is not None:
            st.msgs_out += 1
            if self.read:
                st.reads += 1
            elif self.write:
                st.writes += 1
        if ds is not None:
            ds.msgs_in += 1
        if self.window != window:  # its first request in this window: a peer and an operation of both ends
            self.window = window
            op = "/".join(self.op)
            if st is not None:
                st.add_peer(self.dst)
                st.add_op(op)
            if ds is not None:
                ds.add_peer(self.src)
                ds.add_op(op)

    def op_text(self) -> str:
        """The operation in words: `read_holding_registers unit 1`."""
        return op_text(self.protocol, self.op)

    def learn_period(self, settings: ChannelSettings) -> None:
        """Set the period from the samples when they are many and regular enough (else no period)."""
        if len(self.samples) < settings.min_samples:
            return
        values = list(self.samples)
        mid = median(values)
        if mid <= 0:
            self.period = None
            return
        slack = max(settings.tolerance * mid, 0.5)
        regular = sum(1 for v in values if abs(v - mid) <= slack) / len(values)
        self.period = mid if regular >= settings.regularity else None

    def recent_period(self) -> float | None:
        """The median of the last RECENT intervals (None with fewer)."""
        if len(self.samples) < RECENT:
            return None
        return median(list(self.samples)[-RECENT:])

    def silence_limit(self, settings: ChannelSettings) -> float | None:
        """Seconds without a request after which the channel is silent (None without a period)."""
        if self.period is None:
            return None
        return max(settings.silence_factor * self.period, settings.min_silence)

    def to_dict(self) -> dict[str, Any]:
        """The learned timing to save."""
        return {"period": self.period, "fixed": self.fixed, "last": self.last, "count": self.count,
                "samples": [round(v, 6) for v in self.samples]}  # fmt: skip

    def restore(self, data: dict[str, Any]) -> None:
        """Resume the learned timing."""
        period = data.get("period")
        self.period = float(period) if period is not None else None
        self.fixed = bool(data.get("fixed", False))
        self.last = float(data.get("last", self.last))
        self.count = int(data.get("count", self.count))
        self.samples.extend(float(v) for v in data.get("samples", ()))


def op_text(protocol: str, op: tuple[str, ...]) -> str:
    """An operation key in words."""
    if not op:
        return ""
    head, rest = op[0], [p for p in op[1:] if p]
    if protocol == "modbus" and rest:
        return f"{head} unit {rest[0]}"
    if protocol == "bacnet" and len(op) >= 4 and op[3]:
        return f"{head} {' '.join(p for p in op[1:3] if p)} priority {op[3]}".rstrip()
    return " ".join([head, *rest])
