"""DetectorEngine: runs the detectors on events, flows and packet time; suppresses repeats; hands alerts to a sink.

Events reach only the detectors that asked for their protocol (`event_protocols`), so an event no detector wants
costs one dict lookup. A detector that raises an exception is counted in `errors` and keeps running (its own state
may be off; the pipeline is not). Suppression (Zeek's notice suppression): an alert whose key (detector/note/key)
was raised less than `suppress` seconds of packet time ago is counted in `suppressed`, not raised again.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, cast

from appliance.alert import Alert
from appliance.detectors.base import Detector, InventoryView, MetaDetector
from appliance.model import Flow, ProtocolEvent

TICK_EVERY = 1.0  # seconds of packet time between on_tick calls
MAX_KEYS = 100_000  # suppression keys kept; older ones are dropped first when full


class DetectorEngine:
    """The detectors of one pipeline and their suppression state (pipeline thread only)."""

    def __init__(
        self,
        detectors: Iterable[Detector],
        sink: Callable[[Alert], None],
        *,
        suppress: float = 3600.0,
        inventory: InventoryView | None = None,
    ) -> None:
        self.detectors = list(detectors)
        self.inventory = inventory
        self.sink = sink
        self.suppress = suppress
        self.raised: Counter[tuple[str, str, str]] = Counter()  # (detector, note, severity)
        self.suppressed: Counter[tuple[str, str]] = Counter()  # (detector, note)
        self.errors: Counter[str] = Counter()  # detector -> exceptions
        self._last: dict[str, float] = {}  # suppression key -> ts of the last raised alert
        self._by_protocol: dict[str, list[Detector]] = {}
        for d in self.detectors:
            for protocol in getattr(d, "event_protocols", ()):
                self._by_protocol.setdefault(protocol, []).append(d)
        self._flow_detectors = [d for d in self.detectors if getattr(d, "wants_flows", False)]
        # detectors that see every event (whatever its protocol), after the protocol-specific ones
        self._all_events = [d for d in self.detectors if getattr(d, "all_events", False)]
        for d in self._all_events:
            for wanted in self._by_protocol.values():
                if d in wanted:
                    wanted.remove(d)
        self._alert_detectors = [cast(MetaDetector, d) for d in self.detectors if getattr(d, "wants_alerts", False)]
        self._next_tick = 0.0

    def fresh(self, detector: Detector, note: str, key: str, ts: float) -> bool:
        """True when `note` about `key` would be raised now; False (and the repeat counted) when it is suppressed.
        Detectors ask before building an alert's explanation and evidence, which repeats would waste."""
        last = self._last.get(f"{detector.name}/{note}/{key}")
        if last is not None and ts - last < self.suppress:
            self.suppressed[(detector.name, note)] += 1
            return False
        return True

    def alert(
        self,
        detector: Detector,
        note: str,
        ts: float,
        src: str,
        *,
        assets: tuple[str, ...] = (),
        uids: tuple[str, ...] = (),
        explanation: str,
        key: str = "",
        details: dict[str, Any] | None = None,
    ) -> Alert | None:
        """Raise `note` of `detector` now (None when a repeat inside the suppression interval)."""
        spec = detector.notes[note]
        full_key = f"{detector.name}/{note}/{key or src}"
        last = self._last.get(full_key)
        if last is not None and ts - last < self.suppress:
            self.suppressed[(detector.name, note)] += 1
            return None
        if len(self._last) >= MAX_KEYS:
            for old in list(self._last)[: MAX_KEYS // 10]:
                del self._last[old]
        self._last.pop(full_key, None)
        self._last[full_key] = ts
        alert = Alert(
            ts, detector.name, note, spec.severity, spec.score, spec.techniques, src, assets or (src,), uids,
            explanation, full_key, details or {},
        )  # fmt: skip
        self.raised[(detector.name, note, spec.severity)] += 1
        self.sink(alert)
        for meta in self._alert_detectors:  # meta-detectors read alerts (never their own)
            if meta is not detector:
                try:
                    meta.on_alert(alert, self)
                except Exception as exc:
                    self._crash(meta, exc)
        return alert

    def on_event(self, ev: ProtocolEvent) -> None:
        """Hand one event to the detectors that want its protocol."""
        wanted = self._by_protocol.get(ev.protocol)
        if wanted is not None:
            for d in wanted:
                try:
                    d.on_event(ev, self)
                except Exception as exc:  # a detector bug must not stop the sensor
                    self._crash(d, exc)
        for d in self._all_events:
            try:
                d.on_event(ev, self)
            except Exception as exc:
                self._crash(d, exc)
        if ev.ts >= self._next_tick:
            self.tick(ev.ts)

    def on_flow(self, flow: Flow) -> None:
        """Hand one finished connection record to the detectors that want flows."""
        for d in self._flow_detectors:
            try:
                d.on_flow(flow, self)
            except Exception as exc:
                self._crash(d, exc)
        end = flow.ts + flow.duration
        if end >= self._next_tick:
            self.tick(end)

    def tick(self, now: float) -> None:
        """Packet time has reached `now`: let the detectors close their windows (at most every TICK_EVERY s)."""
        if now < self._next_tick:
            return
        self._next_tick = now + TICK_EVERY
        for d in self.detectors:
            try:
                d.on_tick(now, self)
            except Exception as exc:
                self._crash(d, exc)

    def _crash(self, detector: Detector, exc: Exception) -> None:
        self.errors[detector.name] += 1
        if self.errors[detector.name] == 1:
            print(f"otwatch: detector {detector.name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
