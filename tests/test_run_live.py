"""`otwatch run` for real: live capture on `lo`, a pymodbus PLC and client, /metrics scraped, SIGTERM flushes."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pymodbus.client import ModbusTcpClient

PLC_PORT_NOTE = "a non-standard port, so the Modbus decoder is chosen by probe(), not by port"


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    """Poll a condition until it holds (bounded): fail naming what never happened."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def http_get(url: str) -> str | None:
    """The body of a GET, or None while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return str(response.read().decode())
    except OSError:
        return None


def can_connect(port: int) -> bool:
    """True once something accepts TCP connections on 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; each is stopped by PID at the end."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def modbus_events(metrics: str) -> float:
    """The sum of otwatch_protocol_events_total samples for Modbus in an exposition."""
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("otwatch_protocol_events_total{") and 'protocol="modbus"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


AS_NOBODY_WITH_CAP_NET_RAW = [
    "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=+net_raw", "--ambient-caps=+net_raw",
]  # fmt: skip


@pytest.mark.parametrize("user", ["root", "nobody+CAP_NET_RAW"])
def test_run_on_loopback_decodes_serves_metrics_and_flushes_on_sigterm(
    tmp_path: Path, processes: list[subprocess.Popen[str]], user: str
) -> None:
    web_port, plc_port = free_port(), free_port()
    work = Path(tempfile.mkdtemp(prefix="otwatch-run-"))  # reachable by the unprivileged user, unlike tmp_path
    work.chmod(0o777)
    state, logs = work / "state", work / "logs"
    prefix: list[str] = []
    if user != "root":
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv is missing: `make test` installs it (Debian package util-linux)"
        prefix = [setpriv, *AS_NOBODY_WITH_CAP_NET_RAW]
    sensor = subprocess.Popen(
        [*prefix, sys.executable, "-m", "appliance", "run", "--interface", "lo", "--web.listen-address",
         f"127.0.0.1:{web_port}", "--state", str(state), "--log-dir", str(logs)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    processes.append(sensor)
    metrics_url = f"http://127.0.0.1:{web_port}/metrics"
    wait_for(lambda: http_get(f"http://127.0.0.1:{web_port}/-/ready") is not None, "the sensor's /-/ready")

    plc = subprocess.Popen(
        [sys.executable, "-m", "simulators.plc", "--port", str(plc_port), "--vendor", "Schneider Electric",
         "--product-code", "BMX P34 2020", "--revision", "v3.10"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    processes.append(plc)
    wait_for(lambda: can_connect(plc_port), "the simulated PLC to listen")

    client = ModbusTcpClient("127.0.0.1", port=plc_port)  # PLC_PORT_NOTE
    assert client.connect()
    for address in range(5):
        assert not client.read_holding_registers(address * 10, count=10, device_id=1).isError()
    identity = client.read_device_information(read_code=1, object_id=0, device_id=1)
    assert identity.information[0] == b"Schneider Electric"
    client.close()

    # 5 reads + 1 identification, each a request and a response: 12 Modbus events (the scrape is live)
    wait_for(lambda: modbus_events(http_get(metrics_url) or "") >= 12, "12 Modbus events in /metrics")
    metrics = http_get(metrics_url) or ""
    assert "otwatch_packets_total" in metrics and "otwatch_build_info" in metrics

    sensor.send_signal(signal.SIGTERM)
    _, err = sensor.communicate(timeout=30)
    assert sensor.returncode == 0, err
    assert "stopped after" in err

    rows = [json.loads(line) for line in (logs / "modbus.jsonl").read_text().splitlines()]
    reads = [r for r in rows if r["op"] == "read_holding_registers" and r["kind"] == "request"]
    assert [(r["address"], r["quantity"]) for r in reads] == [(0, 10), (10, 10), (20, 10), (30, 10), (40, 10)]
    assert all(r["id.resp_p"] == plc_port for r in reads)
    ident = next(r for r in rows if r["op"] == "read_device_identification" and r["kind"] == "response")
    assert ident["objects.vendor_name"] == "Schneider Electric"
    conn = [json.loads(line) for line in (logs / "conn.jsonl").read_text().splitlines()]
    assert any(c["id.resp_p"] == plc_port and c.get("service") == "modbus" for c in conn)

    inventory = subprocess.run(
        [sys.executable, "-m", "appliance", "inventory", "--state", str(state), "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assets = [json.loads(line) for line in inventory.stdout.splitlines()]
    plc_asset = next(a for a in assets if a["ip"] == "127.0.0.1")
    assert plc_asset["vendor"]["value"] == "Schneider Electric"
    assert plc_asset["vendor"]["source"] == "modbus/fc43"
    shutil.rmtree(work)


def alerts_metric(metrics: str, note: str) -> float:
    """The otwatch_alerts_total samples of one note in an exposition."""
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
        if line.startswith("otwatch_alerts_total{") and f'note="{note}"' in line
    )  # fmt: skip


def test_run_raises_a_live_alert_into_alerts_jsonl_and_the_metric(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    """An RDP scan of 30 loopback addresses (nothing listens: each SYN is answered by RST) raises rdp_scan live."""
    web_port = free_port()
    state, logs = tmp_path / "state", tmp_path / "logs"
    sensor = subprocess.Popen(
        [sys.executable, "-m", "appliance", "run", "--interface", "lo", "--web.listen-address",
         f"127.0.0.1:{web_port}", "--state", str(state), "--log-dir", str(logs)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    processes.append(sensor)
    metrics_url = f"http://127.0.0.1:{web_port}/metrics"
    wait_for(lambda: http_get(f"http://127.0.0.1:{web_port}/-/ready") is not None, "the sensor's /-/ready")
    targets = [f"127.0.9.{i}" for i in range(1, 31)]
    for target in targets:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((target, 3389), timeout=2).close()
    wait_for(lambda: alerts_metric(http_get(metrics_url) or "", "rdp_scan") >= 1, "an rdp_scan alert in /metrics")
    sensor.send_signal(signal.SIGTERM)
    _, err = sensor.communicate(timeout=30)
    assert sensor.returncode == 0, err
    rows = [json.loads(line) for line in (logs / "alerts.jsonl").read_text().splitlines()]
    scans = [r for r in rows if r["note"] == "rdp_scan"]
    assert len(scans) == 1 and scans[0]["src"] == "127.0.0.1"
    assert scans[0]["techniques"] == ["T0846", "T1046"] and set(scans[0]["assets"][1:]) <= set(targets)
    assert scans[0]["explanation"].startswith("127.0.0.1 made failed TCP connections to 25 hosts on port 3389")
