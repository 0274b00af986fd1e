"""The MQTT sink against a real mosquitto on loopback: a paho subscriber receives the published alerts (QoS 1, topic
template), over the plain listener and over TLS with a client certificate and a password file."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from sinkkit import Subscriber, client_tls, make_alert

from appliance.export.sinks.base import Record
from appliance.export.sinks.fanout import SinkSet, build_sink
from appliance.export.sinks.mqtt import topic_for
from appliance.export.sinks.settings import MqttSinkSettings
from tests.mqttkit import PASSWORD, USER, Mosquitto, Pki
from tests.test_run_live import wait_for


def _sinkset(logs: list[str], **settings: Any) -> SinkSet:
    cfg = MqttSinkSettings.model_validate({"type": "mqtt", "host": "127.0.0.1", "sensor": "edge/1",
                                           "backoff_base": 0.01, "backoff_max": 0.05, **settings})  # fmt: skip
    return SinkSet([(cfg, build_sink(cfg, 0, "0.1.0", logs.append))])


def test_topic_template() -> None:
    alert = make_alert(1, "critical")
    rec = Record("alert", alert.ts, alert.severity, alert.to_dict())
    assert topic_for("otwatch/{sensor}/{kind}", rec, "edge/1") == "otwatch/edge_1/alert"
    assert topic_for("a/{severity}/{detector}/{sensor}", rec, "s+#") == "a/critical/scan/s__"
    inc = Record("incident", 1.0, "high", {"incident_id": "I-1"})
    assert topic_for("x/{kind}/{detector}", inc, "s") == "x/incident/incident"


def test_alerts_and_incidents_reach_a_subscriber(mosquitto: Mosquitto) -> None:
    sub = Subscriber(mosquitto.plain, "otwatch/#")
    logs: list[str] = []
    incident = {"incident_id": "I-7", "actor": "10.8.0.23", "severity": "high", "last_ts": 9.0}
    sinks = _sinkset(logs, port=mosquitto.plain, topic="otwatch/{sensor}/{kind}/{severity}")
    try:
        alerts = [make_alert(i, sev) for i, sev in enumerate(["low", "high", "critical"])]
        for a in alerts:
            sinks.publish_alert(a)
        sinks.publish_incident(dict(incident))
        got = sub.wait(4)
        sinks.close(time.monotonic() + 5)
    finally:
        sub.close()
    assert [t for t, _p, _q in got] == ["otwatch/edge_1/alert/low", "otwatch/edge_1/alert/high",
                                        "otwatch/edge_1/alert/critical", "otwatch/edge_1/incident/high"]  # fmt: skip
    assert {q for _t, _p, q in got} == {1}
    docs = [json.loads(p) for _t, p, _q in got]
    assert [d["alert"]["explanation"] for d in docs[:3]] == [a.explanation for a in alerts]
    assert docs[3] == {"kind": "incident", "sensor": "edge/1", "incident": incident}
    health = sinks.health()[0]
    assert (health.sent, health.failed, health.dropped, health.type) == (4, 0, 0, "mqtt")


def test_tls_client_certificate_and_password_file(mosquitto: Mosquitto, pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    sub = Subscriber(mosquitto.plain, "fleet/#")
    logs: list[str] = []
    sinks = _sinkset(logs, port=mosquitto.tls, topic="fleet/{sensor}", format="ecs", protocol=5, username=USER,
                     password_file=str(tmp_path / "pw"),
                     tls=client_tls(pki))  # fmt: skip
    try:
        sinks.publish_alert(make_alert(5))
        got = sub.wait(1)
        wait_for(lambda: sinks.health()[0].connected, "connected")
        sinks.close(time.monotonic() + 5)
    finally:
        sub.close()
    doc = json.loads(got[0][1])
    assert got[0][0] == "fleet/edge_1" and doc["event"]["dataset"] == "otwatch.alert"
    assert doc["message"] == make_alert(5).explanation and sinks.health()[0].sent == 1
    assert all(PASSWORD not in line for line in logs)


def test_a_wrong_password_is_refused_and_counted(mosquitto: Mosquitto, pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("wrong")
    logs: list[str] = []
    sinks = _sinkset(logs, port=mosquitto.tls, username=USER, password_file=str(tmp_path / "pw"), max_retries=1,
                     timeout=0.5,
                     tls=client_tls(pki))  # fmt: skip
    try:
        sinks.publish_alert(make_alert(1))
        wait_for(lambda: sinks.health()[0].failed == 1, "the record fails")
    finally:
        sinks.close(time.monotonic() + 2)
    health = sinks.health()[0]
    assert (health.sent, health.connected, health.retries) == (0, False, 1)
    assert any("refused the session" in line for line in logs) and all("wrong" not in line for line in logs)


@pytest.mark.parametrize("topic", ["a/#", "a/+/b", "", "a/{nope}", "a/{sensor"])
def test_bad_topic_templates(topic: str) -> None:
    with pytest.raises(ValueError, match="topic"):
        MqttSinkSettings.model_validate({"type": "mqtt", "host": "h", "topic": topic})
