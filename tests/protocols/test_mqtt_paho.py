"""The MQTT decoder on real sessions: a paho-mqtt 2.2 client (3.1.1 and 5.0) and a mosquitto broker on 127.0.0.1,
with a relay between them that records each direction's bytes in the order they pass; the recording is decoded.

Skipped when mosquitto or paho-mqtt is missing. Waits are on paho's callbacks (threading events, bounded), and on
mosquitto accepting connections (polled, as tests/test_run_live.py does).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from protocols.base import FlowId, ProtocolEvent
from protocols.mqtt import MqttDecoder
from protocols.mqtt_logs import log_rows

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
assert Path(MOSQUITTO).exists(), "mosquitto is missing: `make test` installs it (Debian package mosquitto)"
PASSWORD = "Kx7!paho-secret"
WAIT = 10.0


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[int]:
    """A mosquitto broker on 127.0.0.1 (its port), stopped by PID at the end."""
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nlog_dest stderr\nuser root\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + WAIT
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "mosquitto did not start"
                time.sleep(0.02)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=WAIT)


class Relay:
    """Accepts one connection and relays it to the broker, recording (from the client, bytes) as they pass."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.chunks: list[tuple[bool, bytes]] = []
        self.client_port = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        conn, addr = self.server.accept()
        self.client_port = addr[1]
        up = socket.create_connection(("127.0.0.1", self.upstream))
        for src, dst, from_client in ((conn, up, True), (up, conn, False)):
            t = threading.Thread(target=self._pump, args=(src, dst, from_client), daemon=True)
            t.start()
            self._threads.append(t)

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
                return
            with self._lock:  # recorded before it is forwarded: an answer is always recorded after its request
                self.chunks.append((from_client, data))
            dst.sendall(data)

    def finish(self) -> list[tuple[bool, bytes]]:
        """Wait for both directions to end; the recording."""
        for t in self._threads:
            t.join(WAIT)
        self.server.close()
        return self.chunks


def session(port: int, protocol: Any) -> None:
    """A paho client: CONNECT (user, password, will), SUBSCRIBE, PUBLISH QoS 0/1/2 (echoed back), UNSUBSCRIBE."""
    v5 = protocol == mqtt.MQTTv5
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"paho-{protocol}", protocol=protocol)
    client.username_pw_set("operator", PASSWORD)
    client.will_set("plant/paho/status", b"offline", qos=1, retain=True)
    events = {name: threading.Event() for name in ("connect", "subscribe", "unsubscribe", "messages")}
    received: list[str] = []

    def on_message(c: Any, u: Any, msg: Any) -> None:
        received.append(msg.topic)
        if len(received) == 3:
            events["messages"].set()

    client.on_connect = lambda *a: events["connect"].set()
    client.on_subscribe = lambda *a: events["subscribe"].set()
    client.on_unsubscribe = lambda *a: events["unsubscribe"].set()
    client.on_message = on_message
    kwargs: dict[str, Any] = {"clean_start": True} if v5 else {}
    client.connect("127.0.0.1", port, keepalive=30, **kwargs)
    client.loop_start()
    try:
        assert events["connect"].wait(WAIT)
        client.subscribe([("plant/paho/#", 2), ("plant/other", 0)])
        assert events["subscribe"].wait(WAIT)
        props = None
        if v5:
            props = mqtt.Properties(mqtt.PacketTypes.PUBLISH)
            props.UserProperty = ("site", "dc1")
            props.MessageExpiryInterval = 60
        for qos in (0, 1, 2):
            info = client.publish(f"plant/paho/q{qos}", f'{{"qos": {qos}}}'.encode(), qos=qos, properties=props)
            info.wait_for_publish(WAIT)
        assert events["messages"].wait(WAIT)
        client.unsubscribe("plant/paho/#")
        assert events["unsubscribe"].wait(WAIT)
    finally:
        client.disconnect()
        client.loop_stop()


def decode(chunks: list[tuple[bool, bytes]], client_port: int, broker_port: int) -> list[ProtocolEvent]:
    """The recording fed to a decoder, chunk by chunk as it passed the relay."""
    dec = MqttDecoder(FlowId("Cpaho", "127.0.0.1", client_port, "127.0.0.1", broker_port, "tcp"))
    events: list[ProtocolEvent] = []
    for i, (from_client, data) in enumerate(chunks):
        events += dec.feed(data, from_client, float(i))
    return events + dec.close(float(len(chunks)))


@pytest.mark.parametrize("level", [4, 5])
def test_paho_session_through_mosquitto(broker: int, level: int) -> None:
    relay = Relay(broker)
    session(relay.port, mqtt.MQTTv311 if level == 4 else mqtt.MQTTv5)
    events = decode(relay.finish(), relay.client_port, relay.port)
    assert [e for e in events if e.kind in ("weird", "notice")] == []
    ops = [(e.op, e.fields.get("from_client", e.kind == "request")) for e in events]
    for needed in [("connect", True), ("connack", False), ("subscribe", True), ("suback", False),
                   ("publish", True), ("puback", False), ("pubrec", False), ("pubrel", True), ("pubcomp", False),
                   ("publish", False), ("puback", True), ("pubrec", True), ("pubrel", False), ("pubcomp", True),
                   ("unsubscribe", True), ("unsuback", False), ("disconnect", True)]:  # fmt: skip
        assert needed in ops, needed
    connect = events[0].fields
    assert (connect["client_id"], connect["username"], connect["password_sent"], connect["proto_level"]) == (
        f"paho-{4 if level == 4 else 5}", "operator", True, level)
    assert (connect["will_topic"], connect["will_qos"], connect["will_retain"], connect["will_payload"]) == (
        "plant/paho/status", 1, True, "offline")
    suback = next(e.fields for e in events if e.op == "suback")
    assert (suback["topics"], suback["qos_levels"], suback["granted_qos"]) == (["plant/paho/#", "plant/other"],
                                                                              [2, 0], [2, 0])
    sent = {e.fields["topic"]: e.fields for e in events if e.op == "publish" and e.fields["from_client"]}
    echoed = {e.fields["topic"]: e.fields for e in events if e.op == "publish" and not e.fields["from_client"]}
    assert set(sent) == set(echoed) == {"plant/paho/q0", "plant/paho/q1", "plant/paho/q2"}
    for qos in (0, 1, 2):
        assert sent[f"plant/paho/q{qos}"]["qos"] == qos and sent[f"plant/paho/q{qos}"]["payload"] == f'{{"qos": {qos}}}'
        if level == 5:
            assert sent[f"plant/paho/q{qos}"]["properties"]["user_property"] == [["site", "dc1"]]
    rows = [r for e in events for r in log_rows({"op": e.op, "kind": e.kind, "ts": e.ts, **e.fields})]
    published = [r for log, r in rows if log == "mqtt_publish"]
    assert len(published) == 6 and {r["status"] for r in published} == {"ok"}
    assert sum(log == "mqtt_connect" for log, _ in rows) == sum(log == "mqtt_subscribe" for log, _ in rows) - 1 == 1
    assert PASSWORD not in repr([e.fields for e in events]) and PASSWORD not in repr(rows)
