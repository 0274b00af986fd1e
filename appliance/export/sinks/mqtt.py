"""The MQTT sink: publishes each record to a monitoring broker (a fleet-wide view of many sensors), QoS 1 by default.

This is a publishing connection of its own, to the broker the sink names; it has nothing to do with the read-only
session with the site's broker (appliance/broker.py), which never publishes. paho-mqtt keeps the connection and
reconnects by itself (1 s, doubling up to 60 s); the sink's worker publishes one record at a time and waits for the
broker's acknowledgement (PUBACK, or PUBCOMP at QoS 2) up to `timeout` seconds; a record published while the
broker is away is retried with the sink's backoff. QoS 1 is at-least-once: a record whose acknowledgement was lost
can arrive twice. The topic comes from a template with `{sensor}`, `{kind}` (alert, incident), `{severity}` and
`{detector}` (`otwatch/{sensor}/{kind}` by default); a `/`, `+` or `#` in a value becomes `_`.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from appliance.export.sinks.base import QueuedSink, Record, SinkError, log_stderr
from appliance.export.sinks.formats import dumps, ecs_document, json_document
from appliance.export.sinks.settings import MqttSinkSettings


def _level(value: str) -> str:
    return "".join("_" if ch in "/+#\x00" else ch for ch in value) or "_"


def topic_for(template: str, record: Record, sensor: str) -> str:
    """The topic of a record from the template (placeholders validated by the settings)."""
    detector = "incident" if record.kind == "incident" else str(record.row.get("detector", ""))
    return template.format(
        sensor=_level(sensor), kind=_level(record.kind), severity=_level(record.severity), detector=_level(detector)
    )


class MqttSink(QueuedSink):
    """Publishes records to one MQTT broker from its own thread (paho's network thread runs beside it)."""

    type = "mqtt"

    def __init__(
        self,
        name: str,
        settings: MqttSinkSettings,
        *,
        password: str | None,
        tls: ssl.SSLContext | None,
        version: str,
        log: Callable[[str], None] = log_stderr,
    ) -> None:
        self.settings = settings
        self._version = version
        self._up = threading.Event()
        v5 = settings.protocol == "5"
        client = self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else True,
        )
        if settings.username is not None:
            client.username_pw_set(settings.username, password)
        if tls is not None:
            client.tls_set_context(tls)
        client.reconnect_delay_set(1, 60)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        super().__init__(
            name, queue_size=settings.queue_size, max_retries=settings.max_retries,
            backoff_base=settings.backoff_base, backoff_max=settings.backoff_max, log=log, start=False,
        )  # fmt: skip
        if v5:
            client.connect_async(settings.host, settings.port, settings.keepalive, clean_start=True)
        else:
            client.connect_async(settings.host, settings.port, settings.keepalive)
        client.loop_start()
        self.start()

    @property
    def connected(self) -> bool:
        """Whether the broker accepted the session and it is up."""
        return self._up.is_set()

    def _on_connect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self._warn(f"sink {self.name}: broker {self.settings.host}:{self.settings.port} refused the session: "
                       f"{reason}")  # fmt: skip
            return
        self._up.set()

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, _reason: Any, _props: Any) -> None:
        self._up.clear()

    def payload(self, record: Record) -> bytes:
        """The message payload in the configured format."""
        s = self.settings
        if s.format == "ecs":
            return dumps(ecs_document(record, s.sensor, self._version))
        return dumps(json_document(record, s.sensor))

    def deliver(self, record: Record) -> None:
        """Publish and wait for the broker's acknowledgement (bounded by `timeout`)."""
        s = self.settings
        if not self._up.wait(s.timeout):
            raise SinkError(f"not connected to broker {s.host}:{s.port}")
        info = self._client.publish(topic_for(s.topic, record, s.sensor), self.payload(record), s.qos, s.retain)
        try:
            info.wait_for_publish(s.timeout)
        except (RuntimeError, ValueError) as exc:
            raise SinkError(f"publish failed: {exc}") from None
        if not info.is_published():
            raise SinkError(f"no acknowledgement from broker {s.host}:{s.port} within {s.timeout:g} s")

    def disconnect(self) -> None:
        """Send DISCONNECT and stop paho's thread."""
        self._client.disconnect()
        self._client.loop_stop()
