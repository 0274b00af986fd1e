"""`make demo`'s main path, shortened: the live site, the sensor, the chain; it prints the alerts as they arrive,
the inventory by zone with vendors and models, how to read /metrics, and stops everything it started."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTES = ("hostname_change", "ad_enumeration", "large_directory_read", "multiple_alerts", "scanner_probe",
         "address_scan", "rdp_scan", "udp_enumeration", "reverse_dns_sweep", "default_credentials", "bruteforce",
         "success_after_failures")  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def test_the_demo_runs_the_chain_live_prints_what_matters_and_cleans_up(tmp_path: Path) -> None:
    web = f"127.0.0.1:{free_port()}"
    done = subprocess.run(
        [sys.executable, "-m", "simulators.demo", "--learn", "8", "--pause", "1", "--out", str(tmp_path), "--web", web],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, done.stderr[-3000:]
    for note in NOTES:
        assert f"/{note} [" in out, note
    assert "Schneider Electric" in out and "Johnson Controls" in out and "mosquitto" in out
    assert "== inventory: assets by zone and category" in out and "ot-control" in out
    assert f"curl http://{web}/metrics" in out
    assert out.rstrip().endswith("everything started was stopped")
    assert not listening("127.50.1.11", 502) and not listening("127.70.1.10", 1883)  # nothing left behind
    assert not listening("127.0.0.1", int(web.rsplit(":", 1)[1]))
