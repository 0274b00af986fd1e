"""Many different alerts from one device in a short time: a meta-detector that reads the other detectors' alerts.

One scan is recon; a scan, a PTR sweep and a brute force from the same address within the hour is someone working
through a network (Defender for IoT's "multiple lateral movement" idea). Counts distinct (detector, note) pairs
raised with the same source within a window of packet time; thresholds in `detectors.alert_burst`.
"""

from __future__ import annotations

from typing import ClassVar

from appliance.alert import Alert
from appliance.detectors.base import AlertContext, Note, notes_of
from appliance.detectors.settings import AlertBurstSettings
from appliance.detectors.windows import DistinctWindow
from appliance.model import Flow, ProtocolEvent


class AlertBurstDetector:
    """Distinct alert kinds per source in a sliding window."""

    name: ClassVar[str] = "alert_burst"
    notes: ClassVar[dict[str, Note]] = notes_of(
        Note(
            "multiple_alerts", "high", 80, ("T0886", "T1021"),
            "several different alerts from one device in a short time (lateral movement in progress)",
        ),
    )  # fmt: skip
    event_protocols: ClassVar[frozenset[str]] = frozenset()
    wants_flows: ClassVar[bool] = False
    wants_alerts: ClassVar[bool] = True

    def __init__(self, settings: AlertBurstSettings | None = None) -> None:
        s = self.settings = settings or AlertBurstSettings()
        self._kinds = DistinctWindow(s.window, s.max_sources, 64)
        self._alerts: dict[str, list[Alert]] = {}  # source -> its alerts in the window (bounded)

    def on_alert(self, alert: Alert, ctx: AlertContext) -> None:
        """Count one alert by its source; raise when the source reaches the threshold of distinct kinds."""
        if not alert.src:
            return
        s = self.settings
        kind = f"{alert.detector}/{alert.note}"
        n = self._kinds.add(alert.src, kind, alert.ts, alert.key)
        kept = self._alerts.setdefault(alert.src, [])
        kept[:] = [*[a for a in kept if a.ts >= alert.ts - s.window][-63:], alert]
        if n < s.distinct_alerts:
            return
        kinds = self._kinds.items(alert.src)
        techniques = tuple(sorted({t for a in kept for t in a.techniques} | {"T0886", "T1021"}))
        assets = tuple(dict.fromkeys(x for a in kept for x in a.assets))[:20]
        uids = tuple(dict.fromkeys(u for a in kept for u in a.uids))[:20]
        ctx.alert(
            self, "multiple_alerts", alert.ts, alert.src, assets=assets, uids=uids,
            explanation=(
                f"{alert.src} raised {n} different alerts within {s.window:g} s ({', '.join(kinds)}; "
                f"threshold {s.distinct_alerts})"
            ),
            details={"alerts": kinds, "techniques": list(techniques)},
        )  # fmt: skip

    def on_event(self, ev: ProtocolEvent, ctx: AlertContext) -> None:
        """Not used: reads alerts."""

    def on_flow(self, flow: Flow, ctx: AlertContext) -> None:
        """Not used: reads alerts."""

    def on_tick(self, now: float, ctx: AlertContext) -> None:
        """Forget sources whose alerts all left the window."""
        self._kinds.expire(now)
        horizon = now - self.settings.window
        for src in [k for k, v in self._alerts.items() if not v or v[-1].ts < horizon]:
            del self._alerts[src]
