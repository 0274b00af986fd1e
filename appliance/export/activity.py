"""Activity families of the scrape: requests between zones, writes and commands into OT, alerts by technique, and
assets new in the last day.

Built from the pipeline's `StatsSnapshot.requests` ((src, dst, protocol, op) -> requests) at scrape time: the
addresses are resolved to zone names here, the operations to their class, and only zone names, domains, protocols,
operation classes, techniques and severities become labels (all bounded by the config and the decoders' tables).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily

from appliance.model import Asset
from appliance.zones import Zone

OT_DOMAINS = frozenset({"OT", "BMS"})
WRITE_CLASSES = frozenset({"write", "command"})
NEW_ASSET_WINDOW = 86400.0  # seconds of packet time: "new in the last day"
_ZONE_CACHE_MAX = 200_000

ZoneFn = Callable[[str], Zone | None]


def activity_families() -> dict[str, Any]:
    """The activity families, without samples (for `describe()`)."""
    c, g = CounterMetricFamily, GaugeMetricFamily
    return {
        "zone_requests": c(
            "otwatch_zone_requests",
            "Protocol requests by source zone, destination zone, protocol and operation class "
            "(zone 'unknown' for an address outside every configured zone).",
            labels=["src_zone", "dst_zone", "protocol", "op_class"],
        ),
        "zone_crossings": c(
            "otwatch_zone_crossings",
            "Protocol requests from one zone into another, by source and destination zone and protocol.",
            labels=["src_zone", "dst_zone", "protocol"],
        ),
        "ot_writes": c(
            "otwatch_ot_writes",
            "Writes and commands to devices in OT or BMS zones, by source zone and domain, destination zone, "
            "protocol and operation class (write or command).",
            labels=["src_zone", "src_domain", "dst_zone", "protocol", "op_class"],
        ),
        "request_overflow": c(
            "otwatch_request_keys_overflow",
            "Requests not attributed to zones because the table of distinct (source, destination, protocol, "
            "operation) keys was full.",
            labels=[],
        ),
        "alert_techniques": c(
            "otwatch_alert_techniques",
            "Alerts raised, by ATT&CK technique id and severity (an alert with several techniques counts once for "
            "each).",
            labels=["technique", "severity"],
        ),
        "assets_new": g(
            "otwatch_assets_new",
            "Assets first seen in the last day of packet time, by zone and category.",
            labels=["zone", "category"],
        ),
    }


class ActivityFamilies:
    """Turns a stats snapshot and the asset list into the activity families; caches zone lookups across scrapes."""

    def __init__(
        self,
        zone_fn: ZoneFn,
        op_class_fn: Callable[[str, str], str],
        note_techniques: Mapping[tuple[str, str], tuple[str, ...]],
    ) -> None:
        self._zone_fn = zone_fn
        self._op_class_fn = op_class_fn
        self._note_techniques = dict(note_techniques)
        self._zones: dict[str, tuple[str, str]] = {}
        self._classes: dict[tuple[str, str], str] = {}

    def _zone(self, ip: str) -> tuple[str, str]:
        hit = self._zones.get(ip)
        if hit is None:
            zone = self._zone_fn(ip) if ip else None
            hit = (zone.name, zone.domain) if zone is not None else ("unknown", "unknown")
            if len(self._zones) >= _ZONE_CACHE_MAX:
                self._zones.clear()
            self._zones[ip] = hit
        return hit

    def _class(self, protocol: str, op: str) -> str:
        key = (protocol, op)
        klass = self._classes.get(key)
        if klass is None:
            klass = self._classes[key] = self._op_class_fn(protocol, op) or "other"
        return klass

    def build(
        self,
        requests: Mapping[tuple[str, str, str, str], int],
        overflow: int,
        alerts: Mapping[tuple[str, str, str], int],
        assets: Sequence[Asset],
        now: float,
    ) -> dict[str, Any]:
        """Every activity family with its samples; `now` is the newest packet time (for "new in the last day")."""
        f = activity_families()
        by_zone: Counter[tuple[str, str, str, str]] = Counter()
        crossings: Counter[tuple[str, str, str]] = Counter()
        writes: Counter[tuple[str, str, str, str, str]] = Counter()
        for (src, dst, protocol, op), n in requests.items():
            src_zone, src_domain = self._zone(src)
            dst_zone, dst_domain = self._zone(dst)
            klass = self._class(protocol, op)
            by_zone[(src_zone, dst_zone, protocol, klass)] += n
            if src_zone != dst_zone:
                crossings[(src_zone, dst_zone, protocol)] += n
            if klass in WRITE_CLASSES and dst_domain in OT_DOMAINS:
                writes[(src_zone, src_domain, dst_zone, protocol, klass)] += n
        for labels4, n in sorted(by_zone.items()):
            f["zone_requests"].add_metric(list(labels4), n)
        for labels3, n in sorted(crossings.items()):
            f["zone_crossings"].add_metric(list(labels3), n)
        for labels5, n in sorted(writes.items()):
            f["ot_writes"].add_metric(list(labels5), n)
        f["request_overflow"].add_metric([], overflow)
        techniques: Counter[tuple[str, str]] = Counter()
        for (detector, note, severity), n in alerts.items():
            for technique in self._note_techniques.get((detector, note), ()):
                techniques[(technique, severity)] += n
        for labels2, n in sorted(techniques.items()):
            f["alert_techniques"].add_metric(list(labels2), n)
        fresh: Counter[tuple[str, str]] = Counter()
        for a in assets:
            if now and a.first_seen >= now - NEW_ASSET_WINDOW:
                fresh[(a.zone or "unknown", a.category or "unknown")] += 1
        for labels2, n in sorted(fresh.items()):
            f["assets_new"].add_metric(list(labels2), n)
        return f


def note_techniques() -> dict[tuple[str, str], tuple[str, ...]]:
    """The ATT&CK ids of every registered detector's notes, by (detector, note)."""
    from appliance.detectors import DETECTORS

    return {(d.name, note.name): note.techniques for d in DETECTORS for note in d.notes.values()}
