"""The SinkSet: hands each alert and incident to every sink that wants it, never blocking the caller.

`build_sinks(config.sinks)` reads the secrets and TLS files (SinkSetupError names the key of one that fails) and
starts the sinks; the pipeline calls `publish_alert(alert)` (and the incident store `publish_incident(row)`) on its
thread; `close(deadline)` flushes every sink's queue until the deadline (time.monotonic()); `health()` feeds the
Prometheus families (`otwatch_sink_*`, appliance/export/sinks/metrics.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import orjson

from appliance.alert import Alert
from appliance.export.sinks.base import Record, SinkHealth, SinkSetupError, log_stderr
from appliance.export.sinks.credentials import read_secret, tls_context
from appliance.export.sinks.formats import dumps
from appliance.export.sinks.jsonl_file import JsonlFileSink
from appliance.export.sinks.mqtt import MqttSink
from appliance.export.sinks.settings import (
    JsonlSinkSettings,
    MqttSinkSettings,
    SinkBase,
    SyslogSinkSettings,
    WebhookSinkSettings,
    sink_name,
)
from appliance.export.sinks.syslog import SyslogSink
from appliance.export.sinks.webhook import WebhookSink, basic_authorization


class Sink(Protocol):
    """What the SinkSet needs of a sink."""

    name: str
    type: str

    def submit(self, record: Record) -> None:
        """Take a record without blocking."""

    def close(self, deadline: float) -> None:
        """Flush until the deadline, then stop."""

    def health(self) -> SinkHealth:
        """The sink's counters now."""


class SinkSet:
    """Every configured sink, each with its filter (kinds and minimum severity)."""

    def __init__(self, routes: Sequence[tuple[SinkBase, Sink]]) -> None:
        self._routes = list(routes)
        self._closed = False

    def __len__(self) -> int:
        return len(self._routes)

    @property
    def sinks(self) -> list[Sink]:
        """The sinks, in config order."""
        return [sink for _settings, sink in self._routes]

    def publish(self, record: Record) -> None:
        """Hand a record to every sink whose filter takes it (non-blocking); its row must not change afterwards."""
        for settings, sink in self._routes:
            if settings.wants(record.kind, record.severity):
                sink.submit(record)

    def _publish(self, kind: str, ts: float, severity: str, row: dict[str, Any]) -> None:
        if not any(settings.wants(kind, severity) for settings, _sink in self._routes):
            return
        # a copy taken now, on the caller's thread: the sinks encode it later on theirs, and a detector may still
        # change a list it put in an alert's details
        self.publish(Record(kind, ts, severity, orjson.loads(dumps(row))))

    def publish_alert(self, alert: Alert) -> None:
        """Forward a detector's alert (its alerts.jsonl row, as it is now)."""
        if self._routes:
            self._publish("alert", alert.ts, alert.severity, alert.to_dict())

    def publish_incident(self, row: dict[str, Any]) -> None:
        """Forward an incident row (as the incident store writes it): `severity`, and `last_ts` or `ts`, are read."""
        if not self._routes:
            return
        ts = row.get("last_ts", row.get("ts", row.get("first_ts", 0.0)))
        self._publish("incident", float(ts) if isinstance(ts, int | float) else 0.0, str(row.get("severity", "")), row)

    def close(self, deadline: float) -> None:
        """Flush every sink until `deadline` (a time.monotonic() instant), then stop them (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for _settings, sink in self._routes:
            sink.close(deadline)

    def health(self) -> list[SinkHealth]:
        """Each sink's counters now, in config order."""
        return [sink.health() for _settings, sink in self._routes]


def _tls(settings: Any, key: str) -> Any:
    tls = getattr(settings, "tls", None)
    return tls_context(tls, f"{key}.tls") if tls is not None else None


def build_sink(settings: SinkBase, index: int, version: str, log: Callable[[str], None] = log_stderr) -> Sink:
    """Make and start one sink (secrets read now; SinkSetupError names `sinks.<index>.<key>`)."""
    name, key = sink_name(settings, index), f"sinks.{index}"
    if isinstance(settings, JsonlSinkSettings):
        return JsonlFileSink(name, settings, version=version, log=log)
    if isinstance(settings, SyslogSinkSettings):
        return SyslogSink(name, settings, tls=_tls(settings, key), version=version, log=log)
    if isinstance(settings, MqttSinkSettings):
        password = (
            read_secret(settings.password_file, f"{key}.password_file") if settings.password_file is not None else None
        )
        return MqttSink(name, settings, password=password, tls=_tls(settings, key), version=version, log=log)
    if isinstance(settings, WebhookSinkSettings):
        authorization = None
        if settings.bearer_token_file is not None:
            authorization = "Bearer " + read_secret(settings.bearer_token_file, f"{key}.bearer_token_file")
        elif settings.username is not None and settings.password_file is not None:
            password = read_secret(settings.password_file, f"{key}.password_file")
            authorization = basic_authorization(settings.username, password)
        return WebhookSink(name, settings, authorization=authorization, tls=_tls(settings, key), version=version,
                           log=log)  # fmt: skip
    raise SinkSetupError(f"{key}.type: no sink of type {type(settings).__name__}")


def build_sinks(configs: Sequence[SinkBase], version: str, log: Callable[[str], None] = log_stderr) -> SinkSet:
    """Make and start every configured sink; on a setup error the ones already started are stopped again."""
    routes: list[tuple[SinkBase, Sink]] = []
    try:
        for i, settings in enumerate(configs):
            routes.append((settings, build_sink(settings, i, version, log)))
    except SinkSetupError:
        SinkSet(routes).close(time.monotonic())
        raise
    return SinkSet(routes)
