"""The broker session's health in /metrics: exact families, only when a broker is configured, promtool-clean."""

from __future__ import annotations

import subprocess
from types import MappingProxyType

from prometheus_client import CollectorRegistry, generate_latest

from appliance.broker_health import BrokerHealth
from appliance.export.prometheus import OtwatchCollector
from appliance.stats import StatsSnapshot
from tests.mqttkit import PROMTOOL

HEALTH = BrokerHealth(
    up=True, reconnects=2, connect_failures=5, messages_sys=1200, messages_data=345, last_message_ts=1_700_000_123.5
)

EXPECTED = """\
# HELP otwatch_broker_session_up Whether the MQTT broker session is established (1) or not (0).
# TYPE otwatch_broker_session_up gauge
otwatch_broker_session_up 1.0
# HELP otwatch_broker_session_reconnects_total MQTT broker sessions established again after one was lost.
# TYPE otwatch_broker_session_reconnects_total counter
otwatch_broker_session_reconnects_total 2.0
# HELP otwatch_broker_connect_failures_total MQTT broker connection attempts that failed (TCP/TLS, or the broker \
refused the CONNECT).
# TYPE otwatch_broker_connect_failures_total counter
otwatch_broker_connect_failures_total 5.0
# HELP otwatch_broker_messages_total Messages received from the MQTT broker, $SYS topics (sys) or other (data).
# TYPE otwatch_broker_messages_total counter
otwatch_broker_messages_total{type="data"} 345.0
otwatch_broker_messages_total{type="sys"} 1200.0
# HELP otwatch_broker_last_message_timestamp_seconds Wall-clock time of the newest message from the MQTT broker \
(0 before the first).
# TYPE otwatch_broker_last_message_timestamp_seconds gauge
otwatch_broker_last_message_timestamp_seconds 1.7000001235e+09
"""


def _stats() -> StatsSnapshot:
    return StatsSnapshot(
        packets=10, bytes=1000, skipped=MappingProxyType({}),
        events=MappingProxyType({("mqtt_broker", "client_connected", "notice"): 3}), weird=MappingProxyType({}),
        alerts=MappingProxyType({}),
        flows_total=0, flows_live=0, flows_evicted=0, capture_drops=0, first_packet_ts=0.0, last_packet_ts=0.0,
        truncated=None,
    )  # fmt: skip


def _scrape(health: BrokerHealth | None) -> str:
    registry = CollectorRegistry()
    registry.register(
        OtwatchCollector(
            _stats, lambda: [], lambda p, o: "other", {"version": "0.1.0"},
            broker_fn=(lambda: health) if health is not None else None,
        )
    )  # fmt: skip
    return generate_latest(registry).decode()


def test_broker_families_exactly() -> None:
    text = _scrape(HEALTH)
    start = text.index("# HELP otwatch_broker_session_up")
    end = text.index("# HELP otwatch_scrape_duration_seconds")
    assert text[start:end] == EXPECTED


def test_no_broker_families_without_a_broker() -> None:
    text = _scrape(None)
    assert "otwatch_broker" not in text
    assert "otwatch_packets_total 10.0" in text


def test_a_session_that_never_came_up() -> None:
    text = _scrape(BrokerHealth(False, 0, 1, 0, 0, 0.0))
    assert "otwatch_broker_session_up 0.0" in text
    assert "otwatch_broker_last_message_timestamp_seconds 0.0" in text
    assert "otwatch_broker_connect_failures_total 1.0" in text


def test_registration_describes_the_broker_families_without_reading_health() -> None:
    def boom() -> BrokerHealth:
        raise AssertionError("health read at registration")

    registry = CollectorRegistry()
    registry.register(OtwatchCollector(_stats, lambda: [], lambda p, o: "other", {}, broker_fn=boom))
    assert "otwatch_broker_session_up" in registry._names_to_collectors


def test_promtool_accepts_the_scrape_with_a_broker() -> None:
    result = subprocess.run([PROMTOOL, "check", "metrics"], input=_scrape(HEALTH).encode(), capture_output=True,
                            timeout=30)  # fmt: skip
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
