"""The sinks' Prometheus families (`otwatch_sink_*`), one series per sink labelled by its name and type.

Built fresh at each scrape from `SinkSet.health()`, by the OtwatchCollector (appliance/export/prometheus.py) when
sinks are configured.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from appliance.export.sinks.base import SinkHealth

LABELS = ["sink", "type"]


def sink_families() -> dict[str, CounterMetricFamily | GaugeMetricFamily]:
    """The families, empty (for describe() and to fill)."""
    c, g = CounterMetricFamily, GaugeMetricFamily
    return {
        "sent": c("otwatch_sink_sent", "Alerts and incidents a sink delivered (syslog: written to the socket; MQTT: "
                  "acknowledged by the broker; webhook: answered 2xx; jsonl: written).", labels=LABELS),
        "failed": c("otwatch_sink_failed", "Records a sink gave up on after every retry, or on an answer that a retry "
                    "would not change (e.g. HTTP 400).", labels=LABELS),
        "dropped": c("otwatch_sink_dropped", "Records a sink dropped without trying: its queue was full, or the "
                     "shutdown deadline came first.", labels=LABELS),
        "retries": c("otwatch_sink_retries", "Delivery attempts a sink repeated after a failure (with exponential "
                     "backoff).", labels=LABELS),
        "depth": g("otwatch_sink_queue_depth", "Records waiting in a sink's queue now.", labels=LABELS),
        "capacity": g("otwatch_sink_queue_capacity", "The size of a sink's queue (0: the sink writes at once, no "
                      "queue).", labels=LABELS),
        "connected": g("otwatch_sink_connected", "Whether a sink's receiver is reachable (1) or not (0): TCP/TLS "
                       "syslog and MQTT a connection up; UDP syslog, webhook and jsonl the last delivery "
                       "succeeded.", labels=LABELS),
    }  # fmt: skip


def sink_metrics(healths: Iterable[SinkHealth]) -> Iterator[Metric]:
    """The families filled from the sinks' health."""
    f = sink_families()
    for h in healths:
        labels = [h.name, h.type]
        f["sent"].add_metric(labels, h.sent)
        f["failed"].add_metric(labels, h.failed)
        f["dropped"].add_metric(labels, h.dropped)
        f["retries"].add_metric(labels, h.retries)
        f["depth"].add_metric(labels, h.queue_depth)
        f["capacity"].add_metric(labels, h.queue_capacity)
        f["connected"].add_metric(labels, 1 if h.connected else 0)
    return iter(f.values())
