"""DNS, DHCP and HTTP through the real sensor pipeline (appliance.pipeline.Pipeline) into JSONL logs.

The registry (protocols.DECODERS) is the lead's to change: the test hands the Pipeline a registry with these
decoders by replacing the name the pipeline module reads, which is configuration, not a stand-in component.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import appliance.pipeline
from appliance.capture.pcapfile import PcapReader
from appliance.config import Config
from appliance.pipeline import Pipeline
from protocols.dhcp import DhcpDecoder
from protocols.dns import DnsDecoder, DnsTcpDecoder
from protocols.http import HttpDecoder
from simulators.itgen.dns_http import write_pcap


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_scenario_through_the_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(appliance.pipeline, "DECODERS", [DnsDecoder, DnsTcpDecoder, DhcpDecoder, HttpDecoder])
    pcap = tmp_path / "dns_http.pcap"
    write_pcap(pcap, seed=7)
    logs = tmp_path / "logs"
    pipeline = Pipeline(Config(), logs)
    with PcapReader(pcap) as reader:
        pipeline.run(reader)
    pipeline.finish()
    dns = _rows(logs / "dns.jsonl")
    sweep = [r for r in dns if r["op"] == "response" and r.get("ptr_address", "").startswith("10.20.0.")]
    assert len(sweep) == 24 and {r["rcode_name"] for r in sweep} == {"NOERROR", "NXDOMAIN"}
    assert all(r["id.resp_p"] == 53 and r["src"] == "10.20.0.10" and r["qtype_name"] == "PTR" for r in sweep)
    lost = [r for r in dns if r["kind"] == "notice"]
    assert sorted(r["query"] for r in lost) == ["lost.corp.example", "slow.corp.example"]
    cname = next(r for r in dns if r.get("query") == "intranet.corp.example" and r["op"] == "response")
    assert cname["answers"] == ["web01.corp.example", "10.20.0.80"] and cname["TTLs"] == [300.0, 300.0]
    assert cname["rtt"] > 0 and cname["proto"] == "udp"
    assert {r["proto"] for r in dns if r.get("query") == "dc1.corp.example"} == {"tcp"}
    assert {r["query"] for r in dns if r["id.resp_p"] in (5353, 5355)} == {"_printer._tcp.local", "fileserver"}
    dhcp = _rows(logs / "dhcp.jsonl")
    assert [r["op"] for r in dhcp] == ["discover", "offer", "request", "ack", "inform", "release"]
    assert {r.get("host_name") for r in dhcp} == {"WS-ATTACKER", None}
    ack = dhcp[3]
    assert (ack["assigned_addr"], ack["lease_time"], ack["mac"]) == ("10.30.0.77", 86400.0, "02:aa:00:00:00:77")
    http = _rows(logs / "http.jsonl")
    assert [r["uri"] for r in http if r["op"] == "request"][:4] == ["/index.html", "/app.js", "/logo.png", "/health"]
    probe = [r for r in http if r.get("uri_unescaped") == "/nice ports,/Trinity.txt.bak"]
    assert [(r["kind"], r.get("status_code")) for r in probe] == [("request", None), ("exception", 400)]
    assert len([r for r in http if r["id.resp_p"] == 9401 and r["kind"] == "exception"]) == 3
    assert not (logs / "weird.jsonl").exists() or not [
        r for r in _rows(logs / "weird.jsonl") if r.get("source") in ("dns", "dhcp", "http")]
    assert pipeline.stats.events[("dns", "query", "notice")] == 2
