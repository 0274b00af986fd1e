"""Reverse DNS sweeps and recon-tool signatures in HTTP: the attack's steps raise, benign look-alikes stay quiet."""

from __future__ import annotations

from typing import Any

from appliance.alert import Alert
from appliance.detectors.dns_sweep import DnsSweepDetector, covering_network, ptr_address
from appliance.detectors.engine import DetectorEngine
from appliance.detectors.recon_tools import ReconToolDetector, match_request
from appliance.model import FlowId, ProtocolEvent

VPN, WORKSTATION, RESOLVER, WEB = "10.8.0.23", "10.1.0.40", "10.1.0.2", "10.20.0.80"
T0 = 1_700_000_000.0


def dns_query(src: str, ts: float, address: str, qtype: str = "PTR") -> ProtocolEvent:
    fid = FlowId(f"D{ts}", src, 53000, RESOLVER, 53, "udp")
    name = ".".join(reversed(address.split("."))) + ".in-addr.arpa"
    fields: dict[str, Any] = {"trans_id": 1, "query": name, "qtype": 12 if qtype == "PTR" else 1, "qtype_name": qtype}
    if qtype == "PTR":
        fields["ptr_address"] = address
    return ProtocolEvent(ts, fid, "dns", "query", "request", True, src, RESOLVER, fields)


def http_request(src: str, ts: float, uri: str, agent: str = "Mozilla/5.0") -> ProtocolEvent:
    fid = FlowId(f"H{ts}", src, 41000, WEB, 9401, "tcp")
    fields = {"method": "GET", "host": WEB, "uri": uri, "user_agent": agent, "version": "1.0"}
    return ProtocolEvent(ts, fid, "http", "request", "request", True, src, WEB, fields)


def run(events: list[ProtocolEvent]) -> list[Alert]:
    alerts: list[Alert] = []
    engine = DetectorEngine([DnsSweepDetector(), ReconToolDetector()], alerts.append)
    for ev in events:
        engine.on_event(ev)
    return alerts


def test_a_ptr_sweep_of_a_range_raises_with_the_range_in_words() -> None:
    events = [dns_query(VPN, T0 + i * 0.2, f"10.20.{i // 250}.{i % 250 + 1}") for i in range(312)]
    alerts = run(events)
    assert [a.note for a in alerts] == ["reverse_dns_sweep"]
    a = alerts[0]
    assert a.ts == T0 + 24 * 0.2 and a.techniques == ("T0846", "T1018")
    assert a.explanation == (
        "10.8.0.23 made PTR queries for 25 distinct addresses in 10.20.0.0/27 within 300 s (threshold 25 in one /24) "
        "to 10.1.0.2"
    )
    assert a.details["first"] == "10.20.0.1" and len(a.uids) == 20


def test_a_workstation_resolving_a_handful_of_ptrs_and_many_a_records_stays_quiet() -> None:
    events = [dns_query(WORKSTATION, T0 + i, f"10.20.0.{i % 6 + 1}") for i in range(200)]  # the same 6, repeated
    events += [dns_query(WORKSTATION, T0 + 300 + i, f"10.30.0.{i}", qtype="A") for i in range(100)]
    assert run(events) == []


def test_ptr_address_and_covering_network() -> None:
    assert ptr_address({"qtype_name": "PTR", "ptr_address": "10.1.2.3"}) == "10.1.2.3"
    assert ptr_address({"qtype": 12, "ptr_address": "10.1.2.3"}) == "10.1.2.3"
    assert ptr_address({"qtype_name": "A", "ptr_address": "10.1.2.3"}) is None
    assert covering_network(["10.20.0.5", "10.20.255.7"]) == "10.20.0.0/16"
    assert covering_network(["10.20.0.5", "fe80::1"]) == ""


def test_nmap_service_probe_raises_once_per_source_and_tool() -> None:
    events = [http_request(VPN, T0, "/nice%20ports%2C/Tri%6Eity.txt%2ebak")]
    nse = "Mozilla/5.0 (compatible; Nmap Scripting Engine)"
    events += [http_request(VPN, T0 + 1, "/nmaplowercheck1700000001", nse)]
    alerts = run(events)
    assert [(a.note, a.details["tool"]) for a in alerts] == [("scanner_probe", "nmap")]
    assert alerts[0].explanation == (
        "10.8.0.23 sent an HTTP GET to 10.20.0.80 with nmap's signature: URI '/nice ports,/Trinity.txt.bak'"
    )
    assert alerts[0].uids == (events[0].uid,)


def test_vulnerability_scanners_by_user_agent_and_ordinary_browsers_quiet() -> None:
    alerts = run([
        http_request(VPN, T0, "/", "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000001)"),
        http_request(WORKSTATION, T0, "/index.html", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0"),
        http_request(WORKSTATION, T0, "/api/ports?nice=1", "curl/8.5.0"),
    ])  # fmt: skip
    assert [(a.src, a.note, a.details["tool"]) for a in alerts] == [(VPN, "vulnerability_scanner", "nikto")]
    assert match_request("/", "Fuzz Faster U Fool v2.1") == ("ffuf", "vulnerability_scanner",
                                                             "User-Agent 'Fuzz Faster U Fool v2.1'")  # fmt: skip


def test_scattered_ptr_lookups_need_the_total_threshold() -> None:
    scattered = [dns_query(WORKSTATION, T0 + i, f"10.{i}.{i * 7 % 250}.{i % 200 + 1}") for i in range(60)]
    assert run(scattered) == []  # 60 addresses in 60 different /24s: a busy server's clients, not a sweep
    random_order = [dns_query(VPN, T0 + i * 0.1, f"10.20.{i * 37 % 256}.{i * 11 % 250 + 1}") for i in range(100)]
    alerts = run(random_order)
    assert [a.note for a in alerts] == ["reverse_dns_sweep"] and "threshold 100 in all" in alerts[0].explanation
