"""`otwatch run` against a real mosquitto: the wire on `lo` and a read-only broker session see the same clients.

mosquitto 2 runs in the foreground on free ports of 127.0.0.1 (tests/mqttkit.py: a plain listener for
anonymous clients, a TLS listener that wants a client certificate and a user name/password, `log_dest topic`,
`sys_interval 1`). paho-mqtt clients bound to their own loopback addresses play cameras: JSON telemetry, JPEG
snapshots, a retained status, a last will. `otwatch run` captures `lo` and holds a session (plain MQTT 3.1.1, or TLS
with user name/password and MQTT 5, through a broker crash). Waits poll /metrics or paho callbacks with deadlines;
nothing sleeps a fixed time. Every process is stopped by its PID.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.mqttkit import (
    JPEG,
    PASSWORD,
    PROMTOOL,
    ROOT,
    USER,
    Camera,
    Mosquitto,
    Pki,
    free_port,
    make_pki,
    wait_for,
)
from tests.test_run_live import http_get

SESSION_ID = "otwatch-live"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """One PKI per test module."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def broker(tmp_path: Path, pki: Pki) -> Iterator[Mosquitto]:
    """A started Mosquitto, stopped by PID at the end."""
    server = Mosquitto(tmp_path, pki)
    server.start()
    yield server
    server.stop()


# ---------------------------------------------------------------------------------------------- otwatch run


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 when there are none)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        series, _, label_text = head.partition("{")
        if series != name or not all(f'{k}="{v}"' in label_text for k, v in labels.items()):
            continue
        total += float(value)
    return total


class Sensor:
    """`otwatch run` in a subprocess: capturing `lo` (unless told not to) and holding the broker session."""

    def __init__(self, work: Path, broker_section: dict[str, Any], *, capture: bool = True) -> None:
        self.work = work
        self.state, self.logs = work / "state", work / "logs"
        self.web = free_port()
        config = work / "otwatch.yml"
        config.write_text(json.dumps({"broker": broker_section}))  # JSON is YAML
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "appliance", "run", *(["--interface", "lo"] if capture else []),
             "--config", str(config), "--web.listen-address", f"127.0.0.1:{self.web}", "--state", str(self.state),
             "--log-dir", str(self.logs)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        wait_for(lambda: self.metrics() != "", "the sensor's /metrics")

    def metrics(self) -> str:
        """The current /metrics text ("" while it does not answer)."""
        return http_get(f"http://127.0.0.1:{self.web}/metrics") or ""

    def wait_metric(self, name: str, at_least: float, what: str, **labels: str) -> None:
        """Wait until a metric reaches a value."""
        wait_for(lambda: metric(self.metrics(), name, **labels) >= at_least, what)

    def wait_capture_past(self, moment: float) -> None:
        """Wait until the capture has handled a packet sent after `moment` (wall clock): every packet sent before it
        has been decoded too, whatever else shares `lo` (the scrapes themselves send packets)."""
        self.wait_metric("otwatch_last_packet_timestamp_seconds", moment, "the capture to catch up")

    def stop(self) -> str:
        """SIGTERM, wait for the exit, return stderr."""
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, err
        return err

    def rows(self, log: str) -> list[dict[str, Any]]:
        """The rows of one JSONL log."""
        path = self.logs / f"{log}.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def assets(self) -> dict[str, dict[str, Any]]:
        """`otwatch inventory --json`, by IP."""
        done = subprocess.run([sys.executable, "-m", "appliance", "inventory", "--state", str(self.state), "--json"],
                              capture_output=True, text=True, check=True, cwd=ROOT)  # fmt: skip
        return {a["ip"]: a for a in map(json.loads, done.stdout.splitlines())}


@pytest.fixture
def sensors() -> Iterator[list[Sensor]]:
    """Sensors a test starts; any still running at the end is killed by PID."""
    started: list[Sensor] = []
    yield started
    for sensor in started:
        if sensor.proc.poll() is None:
            sensor.proc.kill()
            sensor.proc.wait(timeout=10)


CAMERAS = {"cam-01": "127.0.0.11", "cam-02": "127.0.0.12", "probe": "127.0.0.13"}


def retained_state(server: Mosquitto) -> None:
    """Before the sensor starts: a gateway leaves a retained configuration (neither view sees the gateway itself)."""
    gateway = Camera("gw-00", "127.0.0.10", server.plain)
    gateway.publish("site/gw-00/config", b'{"device_id": "gw-00", "fw": "4.2"}', retain=True)
    gateway.leave()


def site_traffic(server: Mosquitto, sensor: Sensor) -> None:
    """Cameras and a probe while the sensor runs; returns once the sensor's session has received every message (7,
    the retained one included) and its capture decoded the last client's DISCONNECT."""
    sensor.wait_metric("otwatch_broker_session_up", 1, "the broker session")
    # the retained config arrives once the session's subscription is active
    sensor.wait_metric("otwatch_broker_messages_total", 1, "the retained state", type="data")

    probe = Camera("probe", CAMERAS["probe"], server.plain)
    probe.subscribe("$SYS/broker/log/N")
    cam1 = Camera("cam-01", CAMERAS["cam-01"], server.plain, username="alice")
    cam1.publish("site/telemetry", json.dumps({"device_id": "cam-01", "temp": 41.5, "fps": 25}).encode())
    cam1.publish("cams/cam-01/snapshot", JPEG)
    cam1.publish("cams/cam-01/status", b"online", retain=True)
    cam1.leave()
    cam2 = Camera("cam-02", CAMERAS["cam-02"], server.plain, v5=True, will=("cams/cam-02/status", b"offline"))
    cam2.subscribe("cams/cam-02/cmd")
    cam2.publish("cams/cam-02/snapshot", JPEG)
    cam2.die()
    # the broker logged cam-02's end (and sent its will) before the probe's last word: the session gets it first
    probe.wait_message(lambda t, p: b"Client cam-02 closed its connection" in p, "the broker's log of cam-02")
    probe.publish("site/probe/done", b"1")
    probe.leave()
    sensor.wait_metric("otwatch_broker_messages_total", 7, "7 data messages through the session", type="data")
    sensor.wait_capture_past(time.time())


def our_wire(sensor: Sensor, server: Mosquitto) -> list[dict[str, Any]]:
    """The wire's MQTT rows of connections to this test's broker (other tests may use MQTT on `lo` meanwhile)."""
    return [r for r in sensor.rows("mqtt") if r["id.resp_p"] in (server.plain, server.tls)]


def check_site(sensor: Sensor, server: Mosquitto, own_session_on_wire: bool) -> tuple[list[str], list[str]]:
    """What both views must show after site_traffic(); returns the client ids seen by the broker and by the wire."""
    rows = sensor.rows("mqtt_broker")
    assert rows[0]["op"] == "session_up" and rows[0]["dst"] == "127.0.0.1"
    connected = [r for r in rows if r["op"] == "client_connected"]
    by_broker = sorted(r["client_id"] for r in connected)
    assert set(by_broker) >= set(CAMERAS)
    for r in connected:
        if r["client_id"] in CAMERAS:
            assert r["src"] == CAMERAS[r["client_id"]] and r["dst"] == "127.0.0.1" and r["client_port"] > 0
    cam1 = next(r for r in connected if r["client_id"] == "cam-01")
    assert (cam1["username"], cam1["proto_level"], cam1["keep_alive"]) == ("alice", 4, 60)
    assert next(r for r in connected if r["client_id"] == "cam-02")["proto_level"] == 5
    gone = {r["client_id"]: r["reason"] for r in rows if r["op"] == "client_disconnected"}
    assert gone["cam-01"] == "disconnected" and gone["cam-02"] == "closed its connection"
    subscribed = [(r["client_id"], r["topic"], r["src"]) for r in rows if r["op"] == "client_subscribed"]
    assert ("cam-02", "cams/cam-02/cmd", "127.0.0.12") in subscribed

    pubs = {r["topic"]: r for r in rows if r["op"] == "publish"}
    assert pubs["site/gw-00/config"]["retain"] is True and pubs["site/gw-00/config"]["src"] == ""  # before us
    assert (pubs["site/telemetry"]["src"], pubs["site/telemetry"]["payload_type"]) == ("127.0.0.11", "json")
    for cam in ("cam-01", "cam-02"):
        snap = pubs[f"cams/{cam}/snapshot"]
        assert (snap["src"], snap["client_id"], snap["payload_type"]) == (CAMERAS[cam], cam, "jpeg")
        assert snap["payload_len"] == len(JPEG) and snap["payload"].startswith("\\xff\\xd8\\xff")
    will = pubs["cams/cam-02/status"]
    assert (will["payload"], will["src"], will["retain"]) == ("offline", "127.0.0.12", False)
    info = [r for r in rows if r["op"] == "broker_info"]
    assert info and info[0]["version"].startswith("mosquitto version") and info[0]["src"] == "127.0.0.1"

    wire = our_wire(sensor, server)
    by_wire = sorted({r["client_id"] for r in wire if r["op"] == "connect" and r["kind"] == "request"})
    expected_wire = set(by_broker) | ({SESSION_ID} if own_session_on_wire else set())
    assert set(by_wire) == expected_wire, (by_wire, by_broker)
    wire_snaps = [r for r in wire if r["op"] == "publish" and r.get("topic", "").endswith("/snapshot")
                  and r["kind"] == "request"]  # fmt: skip
    assert {r["src"] for r in wire_snaps} >= {CAMERAS["cam-01"], CAMERAS["cam-02"]}
    assert all(r["payload"] == pubs[r["topic"]]["payload"] for r in wire_snaps)  # both views read it alike
    return by_broker, by_wire


def check_inventory(sensor: Sensor, clients: dict[str, str]) -> None:
    """Each client's asset carries its MQTT client id."""
    assets = sensor.assets()
    for client_id, ip in clients.items():
        assert client_id in assets[ip]["mqtt_client_ids"], (client_id, assets.get(ip))


def test_plain_session_and_the_wire_see_the_same_clients(
    tmp_path: Path, broker: Mosquitto, sensors: list[Sensor]
) -> None:
    retained_state(broker)
    sensor = Sensor(tmp_path, {"host": "127.0.0.1", "port": broker.plain, "client_id": SESSION_ID})
    sensors.append(sensor)
    site_traffic(broker, sensor)
    scrape = sensor.metrics().encode()
    lint = subprocess.run([PROMTOOL, "check", "metrics"], input=scrape, capture_output=True, timeout=30)
    assert lint.returncode == 0, lint.stdout.decode() + lint.stderr.decode()
    assert metric(scrape.decode(), "otwatch_broker_session_reconnects_total") == 0
    err = sensor.stop()
    assert "broker session up with 127.0.0.1" in err
    by_broker, by_wire = check_site(sensor, broker, own_session_on_wire=True)
    ops = Counter(r["op"] for r in sensor.rows("mqtt_broker"))
    print(f"\nplain session: broker saw {by_broker}, wire saw {by_wire}; mqtt_broker events {dict(ops)}")
    assert sensor.rows("mqtt_broker")[-1]["op"] == "session_down"
    # read-only, as the wire shows it: our session (the only client on 127.0.0.1) never publishes, has no will
    ours = [r for r in our_wire(sensor, broker) if r["src"] == "127.0.0.1" and r["kind"] == "request"]
    assert {r["op"] for r in ours} <= {"connect", "subscribe", "puback", "pubrec", "pubcomp", "pingreq", "disconnect"}
    [connect] = [r for r in ours if r["op"] == "connect"]
    assert connect["client_id"] == SESSION_ID and "will_topic" not in connect and connect["clean_session"] is True
    assert {"#", "$SYS/#"} == {t for r in ours if r["op"] == "subscribe" for t in r["topics"]}
    check_inventory(sensor, CAMERAS)


def test_tls_session_with_password_comes_back_after_the_broker_is_killed(
    tmp_path: Path, pki: Pki, broker: Mosquitto, sensors: list[Sensor]
) -> None:
    secret = tmp_path / "otwatch.password"
    secret.write_text(PASSWORD + "\n")
    retained_state(broker)
    sensor = Sensor(tmp_path, {
        "host": "127.0.0.1", "port": broker.tls, "protocol": "5", "client_id": SESSION_ID, "username": USER,
        "password_file": str(secret), "reconnect_min_seconds": 1, "reconnect_max_seconds": 2,
        "tls": {"ca_file": str(pki.ca), "cert_file": str(pki.client_cert), "key_file": str(pki.client_key)},
    })  # fmt: skip
    sensors.append(sensor)
    site_traffic(broker, sensor)  # our session is TLS: not decoded on the wire

    broker.kill()
    broker.start()  # same ports, nothing retained: a fresh broker
    sensor.wait_metric("otwatch_broker_session_reconnects_total", 1, "the session to come back")
    sensor.wait_metric("otwatch_broker_session_up", 1, "the session up again")
    text = sensor.metrics()
    cam3 = Camera("cam-03", "127.0.0.14", broker.plain)
    cam3.publish("cams/cam-03/snapshot", JPEG)
    cam3.leave()
    sensor.wait_metric("otwatch_broker_messages_total", 8, "cam-03's snapshot through the new session", type="data")
    sensor.wait_capture_past(time.time())  # cam-03's packets decoded from the wire too
    err = sensor.stop()
    assert "broker session re-established" in err and PASSWORD not in err

    rows = sensor.rows("mqtt_broker")
    by_broker, by_wire = check_site(sensor, broker, own_session_on_wire=False)
    ops = Counter(r["op"] for r in rows)
    print(f"\nTLS session: broker saw {by_broker}, wire saw {by_wire}; mqtt_broker events {dict(ops)}")
    sessions = [(r["op"], r["reason"]) for r in rows if r["op"] in ("session_up", "session_down")]
    assert [op for op, _ in sessions] == ["session_up", "session_down", "session_up", "session_down"]
    assert sessions[1][1] == "connection lost" and sessions[2][1] == "reconnected"
    assert sessions[3][1] == "stopped"
    after = rows[rows.index(next(r for r in rows if r.get("reason") == "reconnected")) :]
    assert any(r["op"] == "client_connected" and r["client_id"] == "cam-03" for r in after)
    assert "otwatch_broker_connect_failures_total" in text and metric(text, "otwatch_broker_session_up") == 1
    # what was learnt before the broker died is still there, and what came after
    check_inventory(sensor, {**CAMERAS, "cam-03": "127.0.0.14"})
    assert all(PASSWORD not in p.read_text() for p in sensor.logs.glob("*.jsonl"))


def test_broker_only_run(tmp_path: Path, broker: Mosquitto, sensors: list[Sensor]) -> None:
    """No interface: the session alone; its events still reach the logs and the inventory."""
    sensor = Sensor(tmp_path, {"host": "127.0.0.1", "port": broker.plain, "client_id": SESSION_ID}, capture=False)
    sensors.append(sensor)
    # the retained $SYS values arrive once the session's subscriptions are active
    sensor.wait_metric("otwatch_broker_messages_total", 1, "the broker's $SYS values", type="sys")
    cam = Camera("cam-05", "127.0.0.15", broker.plain)
    cam.publish("cams/cam-05/snapshot", JPEG)
    cam.leave()
    sensor.wait_metric("otwatch_broker_messages_total", 1, "cam-05's snapshot", type="data")
    # mosquitto may deliver the log line of cam-05's CONNECT after its PUBLISH: wait until the session attributed
    # it (cam-05 is an asset only then), or the sensor, stopped now, would let the held publish go unattributed
    wait_for(lambda: 'ip="127.0.0.15"' in sensor.metrics(), "cam-05 in the inventory (its CONNECT log line)")
    assert metric(sensor.metrics(), "otwatch_packets_total") == 0
    err = sensor.stop()
    assert "otwatch: read-only session with broker 127.0.0.1:" in err and "stopped after 0 packets" in err
    rows = sensor.rows("mqtt_broker")
    assert [(r["op"], r["src"]) for r in rows if r["op"] in ("client_connected", "publish")] == [
        ("client_connected", "127.0.0.15"), ("publish", "127.0.0.15")
    ]  # fmt: skip
    assert sensor.rows("mqtt") == []  # nothing captured
    check_inventory(sensor, {"cam-05": "127.0.0.15"})
