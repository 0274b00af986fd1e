"""End to end: `otwatch replay` of the attack-chain capture with a config whose sinks point at receivers in this
test (UDP syslog with CEF, TCP syslog with ECS, TLS syslog with CEF, mosquitto, a webhook that fails its first
requests, a rotated JSON-lines file) delivers every alert of alerts.jsonl, and every incident update of
incidents.jsonl, to each of them."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from sinkkit import Subscriber, SyslogTcp, SyslogUdp, Webhook, parse_cef

from simulators.itgen.chain import write_chain
from tests.mqttkit import Mosquitto, Pki


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _jsonl_files(path: Path) -> list[Path]:
    rotated = sorted(path.parent.glob(f"{path.name}.*"), key=lambda p: -int(p.suffix[1:]))
    return [*rotated, path]


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeded attack-chain capture (simulators/itgen/chain.py)."""
    path = tmp_path_factory.mktemp("chain") / "chain.pcap"
    write_chain(path, seed=1)
    return path


def test_replay_delivers_every_alert_to_every_sink(chain: Path, tmp_path: Path, mosquitto: Mosquitto,
                                                   pki: Pki) -> None:  # fmt: skip
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    udp, tcp, tcps, hook = SyslogUdp(), SyslogTcp(), SyslogTcp(tls), Webhook(fail_first=2)
    sub = Subscriber(mosquitto.plain, "otwatch/#")
    fwd = tmp_path / "fwd" / "alerts.jsonl"
    fast = {"backoff_base": 0.01, "backoff_max": 0.05}
    config = {"sinks": [
        {"type": "syslog", "name": "udp", "host": "127.0.0.1", "port": udp.port, "format": "cef", **fast},
        {"type": "syslog", "name": "tcp", "host": "127.0.0.1", "port": tcp.port, "protocol": "tcp", "format": "ecs"},
        {"type": "syslog", "name": "tls", "host": "127.0.0.1", "port": tcps.port, "protocol": "tcp",
         "tls": {"ca_file": str(pki.ca)}},
        {"type": "mqtt", "host": "127.0.0.1", "port": mosquitto.plain, "sensor": "edge-1", **fast},
        {"type": "webhook", "url": hook.url, **fast},
        {"type": "jsonl", "path": str(fwd), "max_bytes": 16384, "keep": 100},
    ]}  # fmt: skip
    cfg = tmp_path / "otwatch.yml"
    cfg.write_text(yaml.safe_dump(config))
    out = tmp_path / "logs"
    cmd = [sys.executable, "-m", "appliance", "replay", str(chain), "--out", str(out), "--state", str(tmp_path / "st"),
           "--config", str(cfg), "--json", "--no-progress"]  # fmt: skip
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
        assert done.returncode == 0, done.stderr
        alerts, incidents = _rows(out / "alerts.jsonl"), _rows(out / "incidents.jsonl")
        n = len(alerts) + len(incidents)
        assert len(alerts) >= 10 and incidents, "the chain raises alerts and incidents"
        summary = json.loads(done.stdout)
        assert summary["sinks"] == {
            name: {"sent": n, "failed": 0, "dropped": 0} for name in ("udp", "tcp", "tls", "mqtt-3", "webhook-4",
                                                                       "jsonl-5")
        }  # fmt: skip
        got_udp, got_tcp, got_tls = udp.wait(n), tcp.wait(n), tcps.wait(n)
        bodies, messages = hook.wait(n), sub.wait(n)
    finally:
        for receiver in (udp, tcp, tcps, hook, sub):
            receiver.close()

    def split(docs: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
        return [d["alert"] for d in docs if d["kind"] == "alert"], [d["incident"] for d in docs if d["kind"] != "alert"]

    # the JSON sinks: the rows themselves, in order
    assert split(bodies) == (alerts, incidents) and hook.requests == n + 2
    assert split([json.loads(p) for _t, p, _q in messages]) == (alerts, incidents)
    assert {topic for topic, _p, _q in messages} == {"otwatch/edge-1/alert", "otwatch/edge-1/incident"}
    files = _jsonl_files(fwd)
    assert len(files) > 1  # rotated, no line lost or split
    assert split([r for f in files for r in _rows(f)]) == (alerts, incidents)
    # syslog with CEF, UDP and TLS: every alert's explanation, time and signature
    for got in (got_udp, got_tls):
        cef = [parse_cef(m.msg) for m in got if m.msgid == "alert"]
        assert [(h[3], e["msg"], int(e["rt"])) for h, e in cef] == [
            (f"{a['detector']}/{a['note']}", a["explanation"][:1023], round(a["ts"] * 1000)) for a in alerts
        ]
        assert sum(m.msgid == "incident" for m in got) == len(incidents)
        assert [int(m.sd["meta"]["sequenceId"]) for m in got] == list(range(1, n + 1))
    # syslog with ECS over TCP: the alert rows under otwatch.alert
    ecs = [json.loads(m.msg) for m in got_tcp]
    assert [d["otwatch"]["alert"] for d in ecs if d["otwatch"]["kind"] == "alert"] == alerts
    assert [d["otwatch"]["incident"]["version"] for d in ecs if d["otwatch"]["kind"] == "incident"] == [
        i["version"] for i in incidents
    ]


@pytest.mark.parametrize(
    ("sink", "message"),
    [
        ({"type": "webhook", "url": "http://127.0.0.1:9/x", "bearer_token_file": "/nonexistent/token"},
         "sinks.0.bearer_token_file: cannot read /nonexistent/token"),
        ({"type": "syslog", "host": "127.0.0.1", "port": 70000}, "sinks.0.port: Input should be less than or equal"),
    ],
)  # fmt: skip
def test_a_sink_that_cannot_be_used_stops_the_replay_naming_its_key(
    chain: Path, tmp_path: Path, sink: dict[str, Any], message: str
) -> None:
    cfg = tmp_path / "otwatch.yml"
    cfg.write_text(yaml.safe_dump({"sinks": [sink]}))
    cmd = [sys.executable, "-m", "appliance", "replay", str(chain), "--out", str(tmp_path / "out"), "--state",
           str(tmp_path / "st"), "--config", str(cfg), "--no-progress"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not (tmp_path / "out" / "alerts.jsonl").exists()
