"""Every panel query of every dashboard, run by a real Prometheus scraping real otwatch processes, returns data.

Two targets: `otwatch replay --serve` of a simulated day of the small site with the VPN intrusion continued into OT
(inventory, zone crossings, writes into OT, alerts, incidents, risk, learning), and `otwatch run` holding a read-only
session with a mosquitto on loopback (the broker session panel). Prometheus (Debian's package) scrapes both every
second; each query goes through its HTTP API with Grafana's variables replaced as Grafana would. `promtool check
metrics` passes on both expositions. Everything is started here and stopped by PID.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.export.test_dashboards import concrete, panel_queries
from tests.mqttkit import Mosquitto, make_pki
from tests.test_run_live import free_port, http_get, wait_for

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "simulators" / "profiles" / "site-small.yml"
SCENARIO = ROOT / "simulators" / "profiles" / "scenarios" / "vpn-intrusion-ot.yml"
PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"


def _otwatch(*args: str) -> list[str]:
    return [sys.executable, "-m", "appliance", *args]


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def query(port: int, expr: str) -> list[dict[str, Any]]:
    """An instant query through Prometheus's HTTP API; its result vector (an error fails the test)."""
    text = http_get(f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert text is not None, f"Prometheus did not answer {expr!r}"
    body = json.loads(text)
    assert body["status"] == "success", (expr, body)
    result = body["data"]["result"]
    return result if isinstance(result, list) else [result]


class Site:
    """The two otwatch targets, mosquitto, and Prometheus scraping them."""

    def __init__(self, work: Path) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        sim = work / "sim"
        subprocess.run(_otwatch("simulate", "--profile", str(PROFILE), "--days", "1", "--seed", "5", "--scenario",
                                str(SCENARIO), "--at", "0@07:50", "--out", str(sim)),
                       check=True, capture_output=True, text=True, cwd=ROOT, timeout=300)  # fmt: skip
        self.replay_port, self.broker_port, self.prom_port = free_port(), free_port(), free_port()
        self.procs.append(subprocess.Popen(
            _otwatch("replay", str(sim / "site.pcap"), "--config", str(sim / "zones.yml"), "--out", str(work / "logs"),
                     "--state", str(work / "state"), "--no-progress", "--serve", f"127.0.0.1:{self.replay_port}"),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        ))  # fmt: skip
        (work / "mqtt").mkdir()
        self.mosquitto = Mosquitto(work / "mqtt", make_pki(work / "pki"))
        self.mosquitto.start()
        config = work / "broker.yml"
        config.write_text(json.dumps({"broker": {"host": "127.0.0.1", "port": self.mosquitto.plain}}))
        self.procs.append(subprocess.Popen(
            _otwatch("run", "--config", str(config), "--web.listen-address", f"127.0.0.1:{self.broker_port}",
                     "--state", str(work / "broker-state"), "--log-dir", str(work / "broker-logs")),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        ))  # fmt: skip
        prom_config = work / "prometheus.yml"
        prom_config.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": "otwatch-replay", "static_configs": [{"targets": [f"127.0.0.1:{self.replay_port}"]}]},
                {"job_name": "otwatch-broker", "static_configs": [{"targets": [f"127.0.0.1:{self.broker_port}"]}]},
            ],
        }))  # fmt: skip
        self.procs.append(subprocess.Popen(
            [PROMETHEUS, f"--config.file={prom_config}", f"--storage.tsdb.path={work / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.prom_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
        ))  # fmt: skip

    def metrics(self, port: int) -> str:
        """A target's /metrics text ("" while it does not answer)."""
        return http_get(f"http://127.0.0.1:{port}/metrics") or ""

    def stop(self) -> None:
        """Stop every process by PID, then mosquitto."""
        for proc in reversed(self.procs):
            _stop(proc)
        self.mosquitto.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    s = Site(tmp_path_factory.mktemp("panels"))
    try:
        # the replay serves once it has read the whole day; the broker session once it is subscribed
        wait_for(lambda: "otwatch_asset_info{" in s.metrics(s.replay_port), "the replay's metrics", 240)
        wait_for(lambda: "otwatch_broker_session_up 1.0" in s.metrics(s.broker_port), "the broker session", 30)
        # enough samples for rate() over Grafana's $__rate_interval: three successful scrapes of both targets
        wait_for(lambda: len(query(s.prom_port, "count_over_time(otwatch_build_info[1m]) >= 3")) == 2,
                 "three scrapes of each target", 60)  # fmt: skip
        yield s
    finally:
        s.stop()


def test_every_panel_query_returns_data_from_prometheus(site: Site) -> None:
    riskiest = query(site.prom_port, "topk(1, otwatch_asset_risk_score)")
    assert riskiest, "no asset has a risk score"
    asset = riskiest[0]["metric"]["asset_id"]
    empty = []
    queries = panel_queries()
    assert len(queries) >= 25
    for uid, title, expr in queries:
        if not query(site.prom_port, concrete(expr, asset=asset).replace("[1m]", "[30s]")):
            empty.append(f"{uid} / {title}: {expr}")
    assert empty == []


def test_the_expositions_pass_promtool_check_metrics(site: Site) -> None:
    for port in (site.replay_port, site.broker_port):
        text = site.metrics(port)
        done = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_attack_shows_in_the_site_metrics(site: Site) -> None:
    writes = query(site.prom_port, 'sum by (src_zone, dst_zone, protocol) (otwatch_ot_writes_total{src_domain="VPN"})')
    protocols = {r["metric"]["protocol"] for r in writes if float(r["value"][1]) > 0}
    assert {"modbus", "bacnet"} <= protocols, writes
    critical = query(site.prom_port, 'sum(otwatch_alerts_total{severity="critical"})')
    assert critical and float(critical[0]["value"][1]) >= 1
