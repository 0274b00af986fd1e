"""The alert-burst meta-detector: three different alerts from one source within the hour raise one more."""

from __future__ import annotations

from appliance.alert import Alert
from appliance.detectors import build_detectors
from appliance.detectors.engine import DetectorEngine
from appliance.detectors.settings import DetectorSettings
from appliance.model import Flow, ProtocolEvent
from tests.detectors.test_recon import VPN, WORKSTATION, dns_query, http_request
from tests.detectors.test_scan import flow

T0 = 1_700_000_000.0


def chain(src: str, start: float) -> tuple[list[ProtocolEvent], list[Flow]]:
    """An intruder's first steps from `src`: an RDP scan, a PTR sweep, an Nmap probe (events, flows)."""
    flows = [flow(src, f"10.20.0.{i}", 3389, start + i) for i in range(1, 30)]
    events = [dns_query(src, start + 100 + i, f"10.20.1.{i}") for i in range(1, 40)]
    events.append(http_request(src, start + 200, "/nice%20ports%2C/Tri%6Eity.txt%2ebak"))
    return events, flows


def run(events: list[ProtocolEvent], flows: list[Flow]) -> list[Alert]:
    alerts: list[Alert] = []
    engine = DetectorEngine(build_detectors(DetectorSettings()), alerts.append)
    for f in flows:
        engine.on_flow(f)
    for ev in sorted(events, key=lambda e: e.ts):
        engine.on_event(ev)
    return alerts


def test_three_different_steps_from_one_source_raise_multiple_alerts() -> None:
    alerts = run(*chain(VPN, T0))
    assert [(a.detector, a.note) for a in alerts] == [
        ("scan", "rdp_scan"), ("dns_sweep", "reverse_dns_sweep"), ("recon_tools", "scanner_probe"),
        ("alert_burst", "multiple_alerts"),
    ]  # fmt: skip
    burst = alerts[-1]
    assert burst.ts == T0 + 200 and burst.src == VPN
    assert burst.details["alerts"] == ["scan/rdp_scan", "dns_sweep/reverse_dns_sweep", "recon_tools/scanner_probe"]
    assert {"T0846", "T1046", "T1018", "T0886", "T1021"} <= set(burst.details["techniques"])
    assert burst.explanation.startswith("10.8.0.23 raised 3 different alerts within 3600 s")


def test_steps_from_different_sources_or_hours_apart_do_not() -> None:
    events, flows = chain(VPN, T0)
    events = [e for e in events if e.protocol != "http"]
    late_events, _ = chain(VPN, T0 + 7200)
    other, _ = chain(WORKSTATION, T0)
    alerts = run(events + [e for e in late_events if e.protocol == "http"] + [e for e in other if e.protocol == "http"],
                 flows)  # fmt: skip
    assert [a.note for a in alerts if a.detector == "alert_burst"] == []
    assert len(alerts) == 4  # rdp scan, sweep, and the two Nmap probes: none of them a burst
