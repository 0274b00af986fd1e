"""The statistical baseline's findings: a device's feature window (messages, bytes, peers, ports, failed
connections, reads, writes, exceptions, operations, new facts, hour) that its IsolationForest finds more isolated
than the threshold learned from its benign windows (a quantile of their own scores plus a margin).

Windows are closed and scored by the baseline (`baseline.model.window` seconds, 900 by default); this detector
raises them and tells the baseline which devices other alerts named, so that their windows stay out of the
training data (models are retrained on windows that raised nothing). The alert carries `anomaly_score` (0-1).
"""

from __future__ import annotations

import time
from typing import ClassVar

from appliance.alert import Alert
from appliance.baseline import Baseline
from appliance.detectors.base import AlertContext, Note, notes_of
from appliance.detectors.learned import raise_fact
from appliance.model import Flow, ProtocolEvent


def _hhmm(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts))


class OtAnomalyDetector:
    """Anomalous feature windows of OT, BMS and IoT devices."""

    name: ClassVar[str] = "ot_anomaly"
    notes: ClassVar[dict[str, Note]] = notes_of(
        Note("statistical_anomaly", "medium", 50, ("T0846", "T0855"),
             "a device's traffic in a time window unlike its learned windows (IsolationForest score over the "
             "threshold learned from its benign windows)"),
    )  # fmt: skip
    event_protocols: ClassVar[frozenset[str]] = frozenset()
    wants_flows: ClassVar[bool] = False
    wants_alerts: ClassVar[bool] = True

    def __init__(self, baseline: Baseline) -> None:
        self.baseline = baseline

    def on_event(self, ev: ProtocolEvent, ctx: AlertContext) -> None:
        """Not used: windows are scored on packet time."""

    def on_flow(self, flow: Flow, ctx: AlertContext) -> None:
        """Not used: windows are scored on packet time."""

    def on_alert(self, alert: Alert, ctx: AlertContext) -> None:
        """Another alert named these devices: their current windows are not benign training data."""
        self.baseline.mark_alerted(alert.assets)

    def on_tick(self, now: float, ctx: AlertContext) -> None:
        """Raise the anomalous windows the baseline scored."""
        b = self.baseline
        b.tick(now)
        for a in b.take_anomalies():
            unusual = ", ".join(f"{name} {value:g} (learned {lo:g} to {hi:g})" for name, value, lo, hi in a.unusual[:6])
            when = f"{a.ip}: its traffic from {_hhmm(a.start)} to {_hhmm(a.end)[11:]} UTC"
            if a.reason == "forest":
                text = (f"{when} scored {a.forest_score:.2f}, above the threshold {a.threshold:.2f} set from "
                        f"{a.trained_on} benign windows ({a.model}); unusual: "
                        f"{unusual or 'the combination, no single feature'}")
            else:
                text = (f"{when} went far beyond the {a.trained_on} benign windows it was learned from ({a.model}): "
                        f"{unusual}; forest score {a.forest_score:.2f} (threshold {a.threshold:.2f})")
            raise_fact(
                self, ctx, b, "statistical_anomaly", ("anomaly", (a.ip, a.start)), a.end, a.ip, key=a.ip,
                assets=(a.ip,), explanation=text,
                details={"anomaly_score": round(a.score, 4), "forest_score": round(a.forest_score, 4),
                         "threshold": round(a.threshold, 4), "decided_by": a.reason, "model": a.model,
                         "window": [a.start, a.end], "unusual": [list(u) for u in a.unusual]},
                remember={"ip": a.ip, "vector": list(a.vector)},
            )  # fmt: skip
