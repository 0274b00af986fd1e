"""The SinkSet: filters (kinds, minimum severity), incidents, health; the `otwatch_sink_*` families in /metrics."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from sinkkit import make_alert

from appliance.export.prometheus import OtwatchCollector
from appliance.export.sinks.base import SinkHealth
from appliance.export.sinks.fanout import build_sinks
from appliance.export.sinks.settings import JsonlSinkSettings
from appliance.stats import PipelineStats
from tests.mqttkit import PROMTOOL


def _jsonl(path: Path, **kw: object) -> JsonlSinkSettings:
    return JsonlSinkSettings.model_validate({"type": "jsonl", "path": str(path), "sensor": "s", **kw})


def _kinds_and_severities(path: Path) -> list[tuple[str, str]]:
    docs = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [(d["kind"], d[d["kind"]]["severity"]) for d in docs]


def test_each_sink_gets_what_its_filter_takes(tmp_path: Path) -> None:
    paths = [tmp_path / f"{n}.jsonl" for n in ("all", "high", "incidents")]
    sinks = build_sinks([
        _jsonl(paths[0]),
        _jsonl(paths[1], min_severity="high", name="hi"),
        _jsonl(paths[2], include=["incidents"]),
    ], "0")  # fmt: skip
    for i, severity in enumerate(["low", "medium", "high", "critical"]):
        sinks.publish_alert(make_alert(i, severity))
    sinks.publish_incident({"incident_id": "I-1", "severity": "medium", "last_ts": 3.0, "actor": "10.0.0.1"})
    sinks.publish_incident({"incident_id": "I-2", "severity": "critical", "first_ts": 4.0})
    sinks.close(time.monotonic())
    alerts = [("alert", s) for s in ("low", "medium", "high", "critical")]
    assert _kinds_and_severities(paths[0]) == [*alerts, ("incident", "medium"), ("incident", "critical")]
    assert _kinds_and_severities(paths[1]) == [("alert", "high"), ("alert", "critical"), ("incident", "critical")]
    assert _kinds_and_severities(paths[2]) == [("incident", "medium"), ("incident", "critical")]
    assert [(h.name, h.type, h.sent) for h in sinks.health()] == [("jsonl-0", "jsonl", 6), ("hi", "jsonl", 3),
                                                                  ("jsonl-2", "jsonl", 2)]  # fmt: skip
    sinks.close(time.monotonic())  # idempotent


def test_an_empty_sinkset_takes_anything(tmp_path: Path) -> None:
    sinks = build_sinks([], "0")
    sinks.publish_alert(make_alert(1))
    sinks.publish_incident({"severity": "odd"})
    assert len(sinks) == 0 and sinks.health() == []


HEALTHS = [
    SinkHealth("siem", "syslog", sent=12, failed=1, dropped=3, retries=7, queue_depth=2, queue_capacity=1000,
               connected=True),
    SinkHealth("jsonl-1", "jsonl", sent=15, failed=0, dropped=0, retries=0, queue_depth=0, queue_capacity=0,
               connected=False),
]  # fmt: skip

EXPECTED = """\
# HELP otwatch_sink_sent_total Alerts and incidents a sink delivered (syslog: written to the socket; MQTT: \
acknowledged by the broker; webhook: answered 2xx; jsonl: written).
# TYPE otwatch_sink_sent_total counter
otwatch_sink_sent_total{sink="siem",type="syslog"} 12.0
otwatch_sink_sent_total{sink="jsonl-1",type="jsonl"} 15.0
# HELP otwatch_sink_failed_total Records a sink gave up on after every retry, or on an answer that a retry would \
not change (e.g. HTTP 400).
# TYPE otwatch_sink_failed_total counter
otwatch_sink_failed_total{sink="siem",type="syslog"} 1.0
otwatch_sink_failed_total{sink="jsonl-1",type="jsonl"} 0.0
# HELP otwatch_sink_dropped_total Records a sink dropped without trying: its queue was full, or the shutdown \
deadline came first.
# TYPE otwatch_sink_dropped_total counter
otwatch_sink_dropped_total{sink="siem",type="syslog"} 3.0
otwatch_sink_dropped_total{sink="jsonl-1",type="jsonl"} 0.0
# HELP otwatch_sink_retries_total Delivery attempts a sink repeated after a failure (with exponential backoff).
# TYPE otwatch_sink_retries_total counter
otwatch_sink_retries_total{sink="siem",type="syslog"} 7.0
otwatch_sink_retries_total{sink="jsonl-1",type="jsonl"} 0.0
# HELP otwatch_sink_queue_depth Records waiting in a sink's queue now.
# TYPE otwatch_sink_queue_depth gauge
otwatch_sink_queue_depth{sink="siem",type="syslog"} 2.0
otwatch_sink_queue_depth{sink="jsonl-1",type="jsonl"} 0.0
# HELP otwatch_sink_queue_capacity The size of a sink's queue (0: the sink writes at once, no queue).
# TYPE otwatch_sink_queue_capacity gauge
otwatch_sink_queue_capacity{sink="siem",type="syslog"} 1000.0
otwatch_sink_queue_capacity{sink="jsonl-1",type="jsonl"} 0.0
# HELP otwatch_sink_connected Whether a sink's receiver is reachable (1) or not (0): TCP/TLS syslog and MQTT a \
connection up; UDP syslog, webhook and jsonl the last delivery succeeded.
# TYPE otwatch_sink_connected gauge
otwatch_sink_connected{sink="siem",type="syslog"} 1.0
otwatch_sink_connected{sink="jsonl-1",type="jsonl"} 0.0
"""


def _scrape(healths: list[SinkHealth] | None) -> str:
    registry = CollectorRegistry()
    snapshot = PipelineStats().snapshot()
    registry.register(
        OtwatchCollector(
            lambda: snapshot, lambda: [], lambda p, o: "other", {"version": "0.1.0"},
            sinks_fn=(lambda: healths) if healths is not None else None,
        )
    )  # fmt: skip
    return generate_latest(registry).decode()


def test_sink_families_exactly() -> None:
    lines = [line for line in _scrape(HEALTHS).splitlines(keepends=True) if "otwatch_sink_" in line]
    assert "".join(lines) == EXPECTED


def test_no_sink_families_without_sinks() -> None:
    assert "otwatch_sink" not in _scrape(None)


def test_registration_reads_no_health() -> None:
    def boom() -> list[SinkHealth]:
        raise AssertionError("health read at registration")

    registry = CollectorRegistry()
    registry.register(OtwatchCollector(PipelineStats().snapshot, lambda: [], lambda p, o: "other", {}, sinks_fn=boom))
    assert "otwatch_sink_sent_total" in registry._names_to_collectors


def test_promtool_accepts_the_scrape_with_sinks() -> None:
    result = subprocess.run([PROMTOOL, "check", "metrics"], input=_scrape(HEALTHS).encode(), capture_output=True,
                            timeout=30)  # fmt: skip
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_the_row_is_taken_when_published(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    sinks = build_sinks([_jsonl(path)], "0")
    alert = make_alert(1)
    alert.details["later"] = ["x"]
    sinks.publish_alert(alert)
    alert.details["later"].append("y")  # a detector changing its details after raising: not forwarded
    sinks.close(time.monotonic())
    assert json.loads(path.read_text())["alert"]["details"]["later"] == ["x"]
