"""BrokerSession in-process against a real mosquitto: a broker that is not up yet, a crash, a refused password."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.broker import BrokerSession, prepare
from appliance.config import BrokerConfig
from appliance.model import ProtocolEvent
from tests.mqttkit import USER, Camera, Mosquitto, Pki, make_pki, wait_for


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """One PKI per test module."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def server(tmp_path: Path, pki: Pki) -> Iterator[Mosquitto]:
    """A mosquitto that the test starts itself (stopped by PID at the end)."""
    broker = Mosquitto(tmp_path, pki)
    yield broker
    broker.stop()


class Recorder:
    """The session's submit target and log: what it said, in order (list.append is atomic)."""

    def __init__(self) -> None:
        self.events: list[ProtocolEvent] = []
        self.lines: list[str] = []

    def ops(self, *ops: str) -> list[tuple[str, str]]:
        """(op, reason) of the events with these ops."""
        return [(e.op, e.fields.get("reason", "")) for e in list(self.events) if e.op in ops]


def test_a_broker_not_up_yet_then_a_crash_then_back(server: Mosquitto) -> None:
    rec = Recorder()
    cfg = BrokerConfig(host="127.0.0.1", port=server.plain, client_id="otwatch-session-test",
                       reconnect_min_seconds=1, reconnect_max_seconds=1)  # fmt: skip
    session = BrokerSession(prepare(cfg), rec.events.append, log=rec.lines.append)
    session.start()
    try:
        wait_for(lambda: session.health().connect_failures >= 2, "two refused TCP connections")
        assert not session.health().up and rec.events == []
        server.start()
        wait_for(lambda: session.health().up, "the first session")
        assert session.health().reconnects == 0  # a first session is no reconnection
        cam = Camera("cam-07", "127.0.0.17", server.plain)
        cam.publish("cams/cam-07/snapshot", b"\xff\xd8\xff\xe0")
        cam.leave()
        wait_for(lambda: any(e.op == "publish" and e.src == "127.0.0.17" for e in list(rec.events)), "cam-07")
        server.kill()
        wait_for(lambda: not session.health().up, "the session to see the crash")
        server.start()
        wait_for(lambda: session.health().up, "the session back")
        assert session.health().reconnects == 1
    finally:
        session.stop()
    assert rec.ops("session_up", "session_down") == [
        ("session_up", "connected"), ("session_down", "connection lost"),
        ("session_up", "reconnected"), ("session_down", "stopped"),
    ]  # fmt: skip
    connected = [e for e in rec.events if e.op == "client_connected"]
    assert [(e.src, e.fields["client_id"]) for e in connected] == [("127.0.0.17", "cam-07")]
    failures = [line for line in rec.lines if line.startswith("cannot connect")]  # once a streak, not per attempt
    assert failures[0] == f"cannot connect to broker 127.0.0.1:{server.plain} (TCP or TLS); retrying with backoff"
    assert len(failures) <= 2  # before the first session, and maybe once after the crash
    health = session.health()
    assert not health.up and health.messages_data >= 1 and health.messages_sys > 0 and health.last_message_ts > 0


def test_a_refused_password_is_reported_once_and_retried(tmp_path: Path, server: Mosquitto, pki: Pki) -> None:
    server.start()
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    rec = Recorder()
    cfg = BrokerConfig.model_validate({
        "host": "127.0.0.1", "port": server.tls, "protocol": "5", "username": USER, "password_file": wrong,
        "reconnect_min_seconds": 1, "reconnect_max_seconds": 1,
        "tls": {"ca_file": pki.ca, "cert_file": pki.client_cert, "key_file": pki.client_key},
    })  # fmt: skip
    session = BrokerSession(prepare(cfg), rec.events.append, log=rec.lines.append)
    session.start()
    try:
        wait_for(lambda: session.health().connect_failures >= 2, "two refused CONNECTs")
    finally:
        session.stop()
    assert rec.events == [] and not session.health().up
    assert rec.lines == [f"broker 127.0.0.1:{server.tls} refused the session: Not authorized; "
                         "retrying with backoff"]  # fmt: skip
    assert all("not-the-password" not in line for line in rec.lines)


def test_the_wrong_ca_is_a_failed_connection_not_a_session(tmp_path: Path, server: Mosquitto) -> None:
    server.start()
    other = make_pki(tmp_path / "other-pki")  # a CA that did not sign the broker's certificate
    rec = Recorder()
    cfg = BrokerConfig.model_validate({
        "host": "127.0.0.1", "port": server.tls, "reconnect_min_seconds": 1, "reconnect_max_seconds": 1,
        "tls": {"ca_file": other.ca, "cert_file": other.client_cert, "key_file": other.client_key},
    })  # fmt: skip
    session = BrokerSession(prepare(cfg), rec.events.append, log=rec.lines.append)
    session.start()
    try:
        wait_for(lambda: session.health().connect_failures >= 1, "a failed TLS handshake")
    finally:
        session.stop()
    assert rec.events == [] and rec.lines[0].startswith("cannot connect to broker")
