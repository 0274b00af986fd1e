"""The Prometheus Collector: fresh metric families from the pipeline's snapshots at every scrape.

Nothing here is updated per packet: the pipeline counts in plain dicts (`PipelineStats`), publishes immutable
snapshots, and `collect()` turns the latest ones into `*MetricFamily` objects. A vanished asset therefore
vanishes from the next scrape. Labels stay low-cardinality: protocol, operation class, kind, zone, category,
weird name, skip reason; never register addresses or free text. Per-asset series (`otwatch_asset_info`,
`otwatch_asset_last_seen_timestamp_seconds`) are capped at `max_asset_series` assets, most recently seen
first; the rest are counted in `otwatch_asset_series_dropped_total` (summed over scrapes: a rising rate means
the cap is biting). The broker session's families (`otwatch_broker_*`) appear only when a broker is configured
(`broker_fn` given), the alert sinks' (`otwatch_sink_*`, appliance/export/sinks/metrics.py) only when sinks are
(`sinks_fn` given).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from appliance.broker_health import BrokerHealth
from appliance.export.activity import ActivityFamilies, activity_families
from appliance.export.judge_metrics import JudgeSnapshot, build_judge_families, judge_families
from appliance.export.sinks.base import SinkHealth
from appliance.export.sinks.metrics import sink_families, sink_metrics
from appliance.model import Asset
from appliance.stats import StatsSnapshot

DEFAULT_MAX_ASSET_SERIES = 5000
MAX_LABEL_LEN = 64


def label_value(value: Any, default: str = "") -> str:
    """A bounded, printable label value: control characters dropped, at most MAX_LABEL_LEN characters."""
    if value is None:
        return default
    text = str(value)
    if not text.isprintable():
        text = "".join(ch for ch in text if ch.isprintable())
    return text[:MAX_LABEL_LEN].strip() or default


class OtwatchCollector(Collector):
    """Exports pipeline counters, protocol activity and the asset inventory as Prometheus families."""

    def __init__(
        self,
        stats_fn: Callable[[], StatsSnapshot],
        assets_fn: Callable[[], Sequence[Asset]],
        op_class_fn: Callable[[str, str], str],
        info: dict[str, str],
        *,
        max_asset_series: int = DEFAULT_MAX_ASSET_SERIES,
        clock: Callable[[], float] = time.perf_counter,
        broker_fn: Callable[[], BrokerHealth] | None = None,
        activity: ActivityFamilies | None = None,
        judge_fn: Callable[[], JudgeSnapshot] | None = None,
        sinks_fn: Callable[[], Sequence[SinkHealth]] | None = None,
    ) -> None:
        self._stats_fn = stats_fn
        self._sinks_fn = sinks_fn
        self._judge_fn = judge_fn
        self._activity = activity
        self._broker_fn = broker_fn
        self._assets_fn = assets_fn
        self._op_class_fn = op_class_fn
        self._info = {k: label_value(v) for k, v in sorted(info.items())}
        self.max_asset_series = max_asset_series
        self._clock = clock
        self._lock = threading.Lock()
        self._dropped_total = 0
        self._op_classes: dict[tuple[str, str], str] = {}

    def describe(self) -> Iterator[Metric]:
        """The families this collector yields, without samples: registering calls no snapshot function."""
        families = list(self._families().values())
        if self._broker_fn is not None:
            families.extend(self._broker_families().values())
        if self._activity is not None:
            families.extend(activity_families().values())
        if self._judge_fn is not None:
            families.extend(judge_families().values())
        if self._sinks_fn is not None:
            families.extend(sink_families().values())
        return iter(families)

    def _op_class(self, protocol: str, op: str) -> str:
        key = (protocol, op)
        klass = self._op_classes.get(key)
        if klass is None:
            klass = self._op_classes[key] = label_value(self._op_class_fn(protocol, op), "other")
        return klass

    @staticmethod
    def _families() -> dict[str, Any]:
        c, g = CounterMetricFamily, GaugeMetricFamily
        return {
            "packets": c("otwatch_packets", "Packets read from the capture.", labels=[]),
            "bytes": c("otwatch_bytes", "Bytes (original wire length) of the packets read.", labels=[]),
            "skipped": c(
                "otwatch_capture_skipped", "Frames not decoded, by reason (link type, ethertype...).",
                labels=["reason"],
            ),
            "drops": c("otwatch_capture_drops", "Packets the kernel or capture library dropped.", labels=[]),
            "flows_live": g("otwatch_flows_live", "Connections tracked in the flow table now.", labels=[]),
            "flows_total": c("otwatch_flows", "Connections seen since start.", labels=[]),
            "flows_evicted": c(
                "otwatch_flows_evicted", "Connections evicted early because the flow table was full.",
                labels=[],
            ),
            "events": c(
                "otwatch_protocol_events", "Decoded protocol messages by protocol, operation class and kind.",
                labels=["protocol", "op_class", "kind"],
            ),
            "weird": c(
                "otwatch_weird", "Malformed or unexpected protocol data, by protocol and weird name.",
                labels=["protocol", "name"],
            ),
            "alerts": c(
                "otwatch_alerts", "Alerts raised (repeats inside the suppression interval not counted), by detector, "
                "note and severity.", labels=["detector", "note", "severity"],
            ),
            "assets": g(
                "otwatch_assets",
                "Known assets by zone, category and protocol (counted once per protocol spoken).",
                labels=["zone", "category", "protocol"],
            ),
            "asset_info": InfoMetricFamily(
                "otwatch_asset", "Identity of each known asset (value 1).",
                labels=["asset_id", "ip", "mac", "vendor", "model", "firmware", "category", "zone"],
            ),
            "dropped": c(
                "otwatch_asset_series_dropped",
                "Assets left out of per-asset series by the cap, summed over scrapes.", labels=[],
            ),
            "last_seen": g(
                "otwatch_asset_last_seen_timestamp_seconds", "Packet time each asset was last seen sending.",
                labels=["asset_id"],
            ),
            "asset_protocols": g(
                "otwatch_asset_protocol", "Protocols each asset was seen speaking (value 1), per-asset cap applies.",
                labels=["asset_id", "protocol"],
            ),
            "asset_peers": g(
                "otwatch_asset_peers", "Distinct peers each asset exchanged traffic with (as kept by the inventory).",
                labels=["asset_id"],
            ),
            "asset_alerts": g(
                "otwatch_asset_alerts", "Alerts that named each asset (as actor or target), by severity.",
                labels=["asset_id", "severity"],
            ),
            "last_packet": g(
                "otwatch_last_packet_timestamp_seconds", "Packet time of the newest packet read.", labels=[]
            ),
            "build": InfoMetricFamily("otwatch_build", "otwatch build information.", labels=[]),
            "scrape": g("otwatch_scrape_duration_seconds", "Time this collector took to build the scrape.",
                        labels=[]),
        }

    @staticmethod
    def _broker_families() -> dict[str, Any]:
        c, g = CounterMetricFamily, GaugeMetricFamily
        return {
            "up": g("otwatch_broker_session_up", "Whether the MQTT broker session is established (1) or not (0).",
                    labels=[]),
            "reconnects": c(
                "otwatch_broker_session_reconnects",
                "MQTT broker sessions established again after one was lost.", labels=[],
            ),
            "failures": c(
                "otwatch_broker_connect_failures",
                "MQTT broker connection attempts that failed (TCP/TLS, or the broker refused the CONNECT).",
                labels=[],
            ),
            "messages": c(
                "otwatch_broker_messages", "Messages received from the MQTT broker, $SYS topics (sys) or other (data).",
                labels=["type"],
            ),
            "last_message": g(
                "otwatch_broker_last_message_timestamp_seconds",
                "Wall-clock time of the newest message from the MQTT broker (0 before the first).", labels=[],
            ),
        }

    def _add_broker(self, broker_fn: Callable[[], BrokerHealth]) -> Iterator[Metric]:
        health = broker_fn()
        f = self._broker_families()
        f["up"].add_metric([], 1 if health.up else 0)
        f["reconnects"].add_metric([], health.reconnects)
        f["failures"].add_metric([], health.connect_failures)
        f["messages"].add_metric(["data"], health.messages_data)
        f["messages"].add_metric(["sys"], health.messages_sys)
        f["last_message"].add_metric([], health.last_message_ts)
        return iter(f.values())

    def collect(self) -> Iterator[Metric]:
        """Build every family from the current stats and asset snapshots."""
        start = self._clock()
        stats = self._stats_fn()
        assets = self._assets_fn()
        f = self._families()
        f["packets"].add_metric([], stats.packets)
        f["bytes"].add_metric([], stats.bytes)
        for reason, n in sorted(stats.skipped.items()):
            f["skipped"].add_metric([label_value(reason, "unknown")], n)
        f["drops"].add_metric([], stats.capture_drops)
        f["flows_live"].add_metric([], stats.flows_live)
        f["flows_total"].add_metric([], stats.flows_total)
        f["flows_evicted"].add_metric([], stats.flows_evicted)
        events: Counter[tuple[str, str, str]] = Counter()
        for (protocol, op, kind), n in stats.events.items():
            events[(label_value(protocol), self._op_class(protocol, op), label_value(kind))] += n
        for labels, n in sorted(events.items()):
            f["events"].add_metric(list(labels), n)
        weird: Counter[tuple[str, str]] = Counter()
        for (protocol, name), n in stats.weird.items():
            weird[(label_value(protocol), label_value(name, "unknown"))] += n
        for labels2, n in sorted(weird.items()):
            f["weird"].add_metric(list(labels2), n)
        for (detector, note, severity), n in sorted(stats.alerts.items()):
            f["alerts"].add_metric([label_value(detector), label_value(note), label_value(severity)], n)
        kept = self._add_assets(f, assets, stats.asset_alerts)
        f["last_packet"].add_metric([], stats.last_packet_ts)
        f["build"].add_metric([], self._info)
        yield from (fam for key, fam in f.items() if key != "scrape")
        if self._broker_fn is not None:
            yield from self._add_broker(self._broker_fn)
        if self._judge_fn is not None:
            yield from build_judge_families(self._judge_fn(), kept, assets).values()
        if self._sinks_fn is not None:
            yield from sink_metrics(self._sinks_fn())
        if self._activity is not None:
            with self._lock:  # the activity builder's caches are shared by concurrent scrapes
                activity = self._activity.build(
                    stats.requests, stats.requests_overflow, stats.alerts, assets, stats.last_packet_ts
                )
            yield from activity.values()
        f["scrape"].add_metric([], max(0.0, self._clock() - start))
        yield f["scrape"]

    def _add_assets(
        self, f: dict[str, Any], assets: Sequence[Asset], asset_alerts: Mapping[tuple[str, str], int]
    ) -> list[Asset]:
        alerts_by_ip: dict[str, list[tuple[str, int]]] = {}
        for (ip, severity), n in asset_alerts.items():
            alerts_by_ip.setdefault(ip, []).append((severity, n))
        groups: Counter[tuple[str, str, str]] = Counter()
        for a in assets:
            zone = label_value(a.zone, "unknown")
            category = label_value(a.category, "unknown")
            for protocol in a.protocols or ("none",):
                groups[(zone, category, label_value(protocol, "none"))] += 1
        for labels, n in sorted(groups.items()):
            f["assets"].add_metric(list(labels), n)
        cap = max(0, self.max_asset_series)
        if len(assets) > cap:
            kept = sorted(assets, key=lambda a: (-a.last_seen, a.asset_id))[:cap]
            with self._lock:
                self._dropped_total += len(assets) - cap
        else:
            kept = list(assets)
        with self._lock:
            f["dropped"].add_metric([], self._dropped_total)
        for a in sorted(kept, key=lambda a: a.asset_id):
            vendor = a.vendor or a.mac_vendor
            f["asset_info"].add_metric(
                [
                    label_value(a.asset_id), label_value(a.ip), label_value(a.mac),
                    label_value(vendor.value if vendor else None),
                    label_value(a.model.value if a.model else None),
                    label_value(a.firmware.value if a.firmware else None),
                    label_value(a.category, "unknown"), label_value(a.zone, "unknown"),
                ],
                {},
            )
            f["last_seen"].add_metric([label_value(a.asset_id)], a.last_seen)
            for protocol in sorted(set(a.protocols)):
                f["asset_protocols"].add_metric([label_value(a.asset_id), label_value(protocol, "none")], 1)
            f["asset_peers"].add_metric([label_value(a.asset_id)], len(a.peers))
            for severity, n in sorted(alerts_by_ip.get(a.ip, ())):
                f["asset_alerts"].add_metric([label_value(a.asset_id), label_value(severity)], n)
        return kept
