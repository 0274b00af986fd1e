"""Polling channels against their learned timing: a channel (an edge and one operation: the SCADA server reading a
PLC's holding registers every 5 s) that goes silent, or whose period changes.

The baseline learns each channel's period (the median interval, when regular) and checks every channel every
`baseline.channels.check_every` seconds of packet time (`on_tick`): silent after max(10 periods, 300 s) without a
request; changed when the median of its last 8 intervals is off the period by more than half of it. A silent
master (a stopped SCADA server), a silenced or restarted device, a second poller or retries all show here. One
alert per edge: its silent or changed operations are listed together.
"""

from __future__ import annotations

from typing import ClassVar

from appliance.baseline import Baseline, Timing
from appliance.detectors.base import AlertContext, Note, notes_of
from appliance.detectors.learned import raise_fact
from appliance.model import Flow, ProtocolEvent


class OtTimingDetector:
    """Silent or changed polling channels."""

    name: ClassVar[str] = "ot_timing"
    notes: ClassVar[dict[str, Note]] = notes_of(
        Note("polling_silence", "medium", 55, ("T0814", "T0804"),
             "a polling channel learned as periodic sends nothing for many periods"),
        Note("polling_period_change", "medium", 45, ("T0814", "T0830"),
             "a polling channel's period moved away from the period learned"),
    )  # fmt: skip
    event_protocols: ClassVar[frozenset[str]] = frozenset()
    wants_flows: ClassVar[bool] = False

    def __init__(self, baseline: Baseline) -> None:
        self.baseline = baseline

    def on_event(self, ev: ProtocolEvent, ctx: AlertContext) -> None:
        """Not used: judged on packet time."""

    def on_flow(self, flow: Flow, ctx: AlertContext) -> None:
        """Not used: judged on packet time."""

    def on_tick(self, now: float, ctx: AlertContext) -> None:
        """Report the channels the baseline found silent or changed, one alert per edge and finding."""
        b = self.baseline
        b.tick(now)
        found = b.take_timing()
        if not found:
            return
        by_edge: dict[tuple[str, str, str, str], list[Timing]] = {}
        for t in found:
            ch = t.channel
            by_edge.setdefault((t.what, ch.src, ch.dst, ch.protocol), []).append(t)
        for (what, src, dst, protocol), items in by_edge.items():
            first = items[0]
            ch = first.channel
            ops = "; ".join(
                f"{t.channel.op_text()} (every {t.channel.period or 0:.3g} s"
                + (f", now every {t.observed:.3g} s)" if what == "period" else ")")
                for t in items[:8]
            )
            if what == "silence":
                note = "polling_silence"
                text = (f"{src} stopped polling {dst} over {protocol}: no request for {first.observed:.0f} s on "
                        f"{ops}, periodic in {b.learned_for()}")
            else:
                note = "polling_period_change"
                text = f"{src} polls {dst} over {protocol} at another rate: {ops}, as learned in {b.learned_for()}"
            raise_fact(
                self, ctx, b, note, (what, (ch.src, ch.dst, ch.protocol, *ch.op)), now, src,
                key=f"{src}/{dst}/{protocol}", assets=(src, dst), explanation=text,
                details={"protocol": protocol, "dst": dst, "operations": [t.channel.op_text() for t in items[:16]],
                         "period": ch.period, "observed": first.observed},
                remember={"observed": first.observed},
            )  # fmt: skip
