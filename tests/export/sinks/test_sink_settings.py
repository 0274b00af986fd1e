"""The `sinks:` config section: defaults, filters, and bad keys named by their path in the YAML file."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import ConfigError, load_config
from appliance.export.sinks.settings import (
    JsonlSinkSettings,
    MqttSinkSettings,
    SyslogSinkSettings,
    WebhookSinkSettings,
    sink_name,
)

GOOD = """
sinks:
  - {type: jsonl, path: /tmp/x/alerts.jsonl, max_bytes: 1000, keep: 3}
  - type: syslog
    name: siem
    host: siem.example
    protocol: tcp
    format: ecs
    tls: {ca_file: /etc/otwatch/ca.pem}
    min_severity: high
  - {type: mqtt, host: fleet.example, protocol: 5, topic: "fleet/{sensor}/{severity}", include: [incidents]}
  - {type: webhook, url: "https://soar.example/hook", bearer_token_file: /etc/otwatch/token, max_retries: 2}
"""


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "otwatch.yml"
    path.write_text(text)
    return load_config(path)


def _problems(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    return str(err.value)


def test_a_good_config(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, GOOD))
    jsonl, syslog, mqtt, webhook = config.sinks
    assert isinstance(jsonl, JsonlSinkSettings) and jsonl.max_bytes == 1000 and jsonl.format == "json"
    assert isinstance(syslog, SyslogSinkSettings) and syslog.port == 6514 and syslog.facility_code == 16
    assert isinstance(mqtt, MqttSinkSettings) and mqtt.protocol == "5" and mqtt.qos == 1 and mqtt.port == 1883
    assert isinstance(webhook, WebhookSinkSettings) and webhook.max_retries == 2
    assert [sink_name(s, i) for i, s in enumerate(config.sinks)] == ["jsonl-0", "siem", "mqtt-2", "webhook-3"]
    assert not syslog.wants("alert", "medium") and syslog.wants("alert", "critical")
    assert syslog.wants("incident", "high")
    assert not mqtt.wants("alert", "critical") and mqtt.wants("incident", "low")
    assert load_config(None).sinks == []


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "otwatch.yml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sinks: [{type: syslog, host: h, port: 99999}]", "sinks.0.port: Input should be less than or equal to 65535"),
        ("sinks: [{type: jsonl, path: /x}, {type: syslog, hots: h}]", "sinks.1.hots: unknown key"),
        ("sinks: [{type: syslog, hots: h}]", "sinks.0.host: Field required"),
        ("sinks: [{type: kafka}]", "sinks.0.type: Input should be 'jsonl', 'syslog', 'mqtt' or 'webhook'"),
        ("sinks: [{host: h}]", "sinks.0.type: Field required"),
        ("sinks: [3]", "sinks.0: a sink is a mapping with a type"),
        ("sinks: [{type: syslog, host: h, tls: {}}]", "sinks.0.tls: TLS needs protocol: tcp"),
        ("sinks: [{type: syslog, host: h, facility: local9}]", "sinks.0.facility: a facility number 0-23"),
        ("sinks: [{type: syslog, host: h, protocol: tcp, tls: {key_file: /k}}]", "sinks.0.tls.key_file: a client key"),
        ("sinks: [{type: webhook, url: 'https://u:p@h/x'}]", "sinks.0.url: no credentials in the URL"),
        ("sinks: [{type: webhook, url: 'ftp://h/x'}]", "sinks.0.url: an http:// or https:// URL"),
        ("sinks: [{type: webhook, url: 'http://h/', headers: {Authorization: x}}]", "no Authorization header"),
        ("sinks: [{type: webhook, url: 'http://h/', tls: {}}]", "tls settings need an https:// url"),
        ("sinks: [{type: mqtt, host: h, password_file: /p}]", "sinks.0.password_file: a password needs username"),
        ("sinks: [{type: mqtt, host: h, qos: 0}]", "sinks.0.qos: Input should be 1 or 2"),
        ("sinks: [{type: jsonl, path: /x, include: []}]", "sinks.0.include: forward at least one"),
        ("sinks: [{type: jsonl, path: /x, min_severity: severe}]", "sinks.0.min_severity: Input should be 'low'"),
        ("sinks: [{type: jsonl, path: /x, name: 'a b'}]", "sinks.0.name: 1-64 letters"),
        ("sinks: [{type: jsonl, path: /x, backoff_base: 5, backoff_max: 1}]", "sinks.0.backoff_max: must be at least"),
        ("sinks: [{type: jsonl, path: /x, name: a}, {type: jsonl, path: /y, name: a}]", "two sinks are named 'a'"),
    ],
)
def test_bad_keys_are_named_by_their_path(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in _problems(tmp_path, text)


def test_secrets_are_paths_never_values(tmp_path: Path) -> None:
    text = "sinks: [{type: mqtt, host: h, username: u, password: hunter2}]"
    problems = _problems(tmp_path, text)
    assert "sinks.0.password: unknown key" in problems and "hunter2" not in problems
