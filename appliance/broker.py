"""The read-only MQTT broker session: paho-mqtt subscribes to the site broker, its view becomes pipeline events.

The session never publishes and sets no will: it connects (MQTT 3.1.1 or 5, TLS and user name/password when
configured), subscribes to its topic filters (`#` and `$SYS/#` by default) and hands every event of its
`BrokerView` to `submit` (Pipeline.submit: thread-safe; the pipeline thread logs them to mqtt_broker.jsonl and
feeds the inventory). When the broker goes away paho reconnects by itself, waiting `reconnect_min_seconds`, then
twice as long each failed attempt up to `reconnect_max_seconds`. `health()` is read by the metrics exporter.

Threads: paho's network thread runs the callbacks, and a small housekeeping thread (the view is touched by both,
under `_lock`) lets held publishes go when their time is up (broker_view.HOLD_SECONDS) and emits `broker_info` once
a $SYS burst has been quiet for QUIET_SECONDS (mosquitto republishes its changed counters every sys_interval
seconds, one message each).
"""

from __future__ import annotations

import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from appliance.broker_health import BrokerHealth
from appliance.broker_view import SYS, BrokerView
from appliance.capture.live import TICK
from appliance.config import BrokerConfig
from appliance.model import ProtocolEvent
from appliance.secret_file import read_secret_file
from appliance.secret_file import why as _why

__all__ = ["BrokerSession", "BrokerSettings", "BrokerSetupError", "TickSource", "prepare"]

QUIET_SECONDS = 0.25
Submit = Callable[[ProtocolEvent], None]


class BrokerSetupError(ValueError):
    """A broker setting that cannot be used; the message starts with the config key (`broker.password_file: ...`)."""


class _EncryptedKey(Exception):
    pass


def _no_passphrase() -> str:
    raise _EncryptedKey


@dataclass(frozen=True)
class BrokerSettings:
    """Everything the session needs, checked and read at start (the password never appears in repr)."""

    host: str
    port: int
    protocol: str
    client_id: str
    username: str | None
    password: str | None = field(repr=False)
    tls: ssl.SSLContext | None
    keepalive: int
    reconnect_min_seconds: int
    reconnect_max_seconds: int
    topics: tuple[str, ...]
    qos: int

    @property
    def address(self) -> str:
        """The broker as `host:port` (`[v6]:port` for an IPv6 literal)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _tls_context(cfg: BrokerConfig) -> ssl.SSLContext | None:
    tls = cfg.tls
    if tls is None:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the certificate and the host name
    if tls.ca_file is None:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:  # the site's CA alone: a certificate from any public CA is not the site broker's
        try:
            ctx.load_verify_locations(cafile=str(tls.ca_file))
        except (OSError, ValueError) as exc:
            raise BrokerSetupError(f"broker.tls.ca_file: cannot use {tls.ca_file} as a CA file: {_why(exc)}") from None
    if tls.cert_file is not None:
        key = "broker.tls.key_file" if tls.key_file is not None else "broker.tls.cert_file"
        for name, path in (("broker.tls.cert_file", tls.cert_file), ("broker.tls.key_file", tls.key_file)):
            if path is not None and not path.is_file():
                raise BrokerSetupError(f"{name}: {path} is not a readable file")
        try:
            ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None, _no_passphrase)
        except _EncryptedKey:
            raise BrokerSetupError(f"{key}: the key is encrypted; give an unencrypted key file") from None
        except (OSError, ValueError) as exc:
            raise BrokerSetupError(f"{key}: cannot use the client certificate and key: {_why(exc)}") from None
    if tls.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _password(cfg: BrokerConfig) -> str | None:
    path = cfg.password_file
    if path is None:
        return None
    return read_secret_file(path, "broker.password_file", BrokerSetupError)


def prepare(cfg: BrokerConfig) -> BrokerSettings:
    """Read the password file and build the TLS context; BrokerSetupError names the key of a file that fails."""
    return BrokerSettings(
        host=cfg.host,
        port=cfg.port,
        protocol=cfg.protocol,
        client_id=cfg.client_id,
        username=cfg.username,
        password=_password(cfg),
        tls=_tls_context(cfg),
        keepalive=cfg.keepalive,
        reconnect_min_seconds=cfg.reconnect_min_seconds,
        reconnect_max_seconds=cfg.reconnect_max_seconds,
        topics=tuple(cfg.topics),
        qos=cfg.qos,
    )


def _stderr(message: str) -> None:
    print(f"otwatch: {message}", file=sys.stderr, flush=True)


class BrokerSession:
    """A read-only, self-reconnecting session with one MQTT broker; its events go to `submit`."""

    def __init__(
        self,
        settings: BrokerSettings,
        submit: Submit,
        *,
        clock: Callable[[], float] = time.time,
        log: Callable[[str], None] = _stderr,
    ) -> None:
        self.settings = settings
        self._submit = submit
        self._clock = clock
        self._log = log
        self.view = BrokerView(settings.address, settings.protocol, settings.client_id)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._up = False
        self._sessions = 0
        self._failures = 0
        self._failing = False  # a failure was reported since the last session: report the next one silently
        self._stopping = False
        self._sys = self._data = 0
        self._last_message = 0.0
        self._last_sys = 0.0
        self._housekeeper: threading.Thread | None = None
        v5 = settings.protocol == "5"
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else True,
        )
        client = self._client
        if settings.username is not None:
            client.username_pw_set(settings.username, settings.password)
        if settings.tls is not None:
            client.tls_set_context(settings.tls)
        client.reconnect_delay_set(settings.reconnect_min_seconds, settings.reconnect_max_seconds)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe

    # ------------------------------------------------------------------ control (any thread)

    def start(self) -> None:
        """Connect in the background (the broker need not be up yet) and start the housekeeping thread."""
        s = self.settings
        if s.protocol == "5":
            self._client.connect_async(s.host, s.port, s.keepalive, clean_start=True)
        else:
            self._client.connect_async(s.host, s.port, s.keepalive)
        self._client.loop_start()
        self._housekeeper = threading.Thread(target=self._housekeeping, name="otwatch-broker", daemon=True)
        self._housekeeper.start()

    def stop(self) -> None:
        """Disconnect cleanly (session_down "stopped"), stop paho's thread and the housekeeping thread."""
        self._stopping = True
        self._stop.set()
        if self._housekeeper is not None:
            self._housekeeper.join()
        self._client.disconnect()
        self._client.loop_stop()
        with self._lock:
            if self._up:  # the DISCONNECT could not be sent: the callback never came
                self._down("stopped")

    def health(self) -> BrokerHealth:
        """The session's health now."""
        with self._lock:
            return BrokerHealth(
                up=self._up,
                reconnects=max(0, self._sessions - 1),
                connect_failures=self._failures,
                messages_sys=self._sys,
                messages_data=self._data,
                last_message_ts=self._last_message,
            )

    def _housekeeping(self) -> None:
        while not self._stop.wait(QUIET_SECONDS):
            with self._lock:
                view = self.view
                now = self._clock()
                if view.held:
                    self._emit(view.release(now))
                if view.sys.dirty and time.monotonic() - self._last_sys >= QUIET_SECONDS:
                    self._emit(view.flush(now))

    # ------------------------------------------------------------------ paho callbacks (paho's thread)

    def _emit(self, events: list[ProtocolEvent]) -> None:
        for ev in events:
            self._submit(ev)

    def _down(self, reason: str) -> None:
        self._up = False
        self._emit(self.view.session_down(self._clock(), reason))

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            with self._lock:
                self._failures += 1
                report = not self._failing
                self._failing = True
            if report:
                self._log(f"broker {self.settings.address} refused the session: {reason}; retrying with backoff")
            return
        getpeername = getattr(client.socket(), "getpeername", None)
        try:
            peer = getpeername()[0] if getpeername is not None else self.settings.host
        except OSError:
            peer = self.settings.host
        with self._lock:
            self._up = True
            self._sessions += 1
            self._failing = False
            again = self._sessions > 1
            self._emit([self.view.session_up(self._clock(), str(peer), "reconnected" if again else "connected")])
        s = self.settings
        if s.protocol == "5":
            client.subscribe([(t, SubscribeOptions(qos=s.qos)) for t in s.topics])
        else:
            client.subscribe([(t, s.qos) for t in s.topics])
        self._log(f"broker session {'re-established' if again else 'up'} with {s.address} (MQTT {s.protocol})")

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        with self._lock:
            self._failures += 1
            report = not self._failing
            self._failing = True
        if report:
            self._log(f"cannot connect to broker {self.settings.address} (TCP or TLS); retrying with backoff")

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, flags: Any, reason: Any, _props: Any) -> None:
        with self._lock:
            if not self._up:
                return
            if self._stopping:
                why = "stopped"
            elif flags.is_disconnect_packet_from_server:
                why = f"broker sent DISCONNECT: {reason}"
            else:  # paho's reason for a lost connection is a generic one it made up: say what happened
                why = "connection lost"
            self._down(why)
        if not self._stopping:
            self._log(f"broker session with {self.settings.address} down ({why}); reconnecting")

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, _mid: int, codes: list[Any], _props: Any) -> None:
        refused = [t for t, code in zip(self.settings.topics, codes, strict=False) if code.is_failure]
        if refused:
            self._log(f"broker {self.settings.address} refused the subscription to {', '.join(refused)}")

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        now = self._clock()
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # a broker relaying a topic that is not UTF-8: keep it readable
            topic = bytes(msg._topic).decode("utf-8", "backslashreplace")
        with self._lock:
            if topic.startswith(SYS):
                self._sys += 1
                self._last_sys = time.monotonic()
            else:
                self._data += 1
            self._last_message = now
            try:
                events = self.view.message(now, topic, bytes(msg.payload), msg.qos, bool(msg.retain))
            except Exception as exc:  # a bug of ours must not end paho's network thread (and the session)
                self._log(f"broker message on {topic!r} not understood: {exc!r}")
                return
            self._emit(events)


class TickSource:
    """Frames for a broker-only run: a TICK every `interval` seconds (the pipeline drains its inbox at each one)."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self._stop = threading.Event()

    def __iter__(self) -> Iterator[tuple[int, float, bytes, int]]:
        """Yield `(TICK, wall time, b"", 0)` until stop()."""
        while not self._stop.wait(self.interval):
            yield TICK, time.time(), b"", 0

    def stop(self) -> None:
        """End the iteration (any thread)."""
        self._stop.set()

    def close(self) -> None:
        """Same as stop(): nothing to release."""
        self.stop()
