"""The scan detector: address/RDP/SMB/port scans and UDP enumeration from failed attempts; busy servers stay quiet."""

from __future__ import annotations

from appliance.alert import Alert
from appliance.detectors.engine import DetectorEngine
from appliance.detectors.scan import ScanDetector
from appliance.detectors.settings import ScanSettings
from appliance.model import Flow, FlowId

ATTACKER, BACKUP = "10.8.0.23", "10.1.0.50"
T0 = 1_700_000_000.0


def flow(src: str, dst: str, port: int, ts: float, state: str = "S0", proto: str = "tcp", uid: str = "") -> Flow:
    answered = state not in ("S0", "REJ") or (proto == "udp" and state == "SF")
    resp_pkts = 1 if state == "REJ" or answered else 0
    return Flow(
        FlowId(uid or f"C{int(ts * 1000) % 10**9}{port}", src, 50000, dst, port, proto), ts, 0.0, None, 0,
        100 if answered else 0, state, 0, "S" if state == "S0" else "Sr", 1, 60, resp_pkts, 40 * resp_pkts, None, None,
    )  # fmt: skip


def run(flows: list[Flow], settings: ScanSettings | None = None) -> tuple[list[Alert], DetectorEngine]:
    alerts: list[Alert] = []
    engine = DetectorEngine([ScanDetector(settings)], alerts.append)
    for f in flows:
        engine.on_flow(f)
    return alerts, engine


def test_rdp_scan_of_many_hosts_raises_once_with_evidence() -> None:
    flows = [flow(ATTACKER, f"10.20.0.{i}", 3389, T0 + i) for i in range(1, 41)]
    alerts, engine = run(flows)
    assert [(a.note, a.ts) for a in alerts] == [("rdp_scan", T0 + 25)]  # at the 25th distinct host
    a = alerts[0]
    assert a.src == ATTACKER and a.assets[0] == ATTACKER and "10.20.0.1" in a.assets
    assert a.techniques == ("T0846", "T1046") and a.severity == "high"
    assert a.explanation.startswith("10.8.0.23 made failed TCP connections to 25 hosts on port 3389 within 300 s")
    assert len(a.uids) == 20 and a.uids[0] == flows[0].id.uid
    assert engine.suppressed[("scan", "rdp_scan")] == 15  # hosts 26..40: counted, not raised again


def test_smb_and_other_ports_get_their_own_notes() -> None:
    flows = [flow(ATTACKER, f"10.20.1.{i}", 445, T0 + i) for i in range(30)]
    flows += [flow(ATTACKER, f"10.20.2.{i}", 9401, T0 + 40 + i, state="REJ") for i in range(30)]
    alerts, _ = run(flows)
    assert [(a.note, a.details["port"]) for a in alerts] == [("smb_scan", 445), ("address_scan", 9401)]


def test_port_scan_of_one_host() -> None:
    flows = [flow(ATTACKER, "10.20.0.9", port, T0 + n * 0.01, state="REJ") for n, port in enumerate(range(20, 60))]
    alerts, _ = run(flows)
    assert [a.note for a in alerts] == ["port_scan"]
    assert alerts[0].assets == (ATTACKER, "10.20.0.9") and alerts[0].details["ports"][:3] == [20, 21, 22]


def test_udp_enumeration() -> None:
    flows = [flow(ATTACKER, f"10.20.0.{h}", p, T0 + h + p / 1000, proto="udp") for h in range(5) for p in (161, 137,
             1900, 5353, 47808, 623)]  # fmt: skip
    alerts, _ = run(flows)
    assert [a.note for a in alerts] == ["udp_enumeration"]
    assert alerts[0].details["hosts"] == 5 and 47808 in alerts[0].details["ports"]


def test_a_backup_server_connecting_to_many_hosts_successfully_stays_quiet() -> None:
    flows = [flow(BACKUP, f"10.20.0.{i}", 445, T0 + i, state="SF") for i in range(1, 200)]
    flows += [flow(BACKUP, f"10.20.3.{i}", 161, T0 + i, state="SF", proto="udp") for i in range(1, 100)]
    alerts, _ = run(flows)
    assert alerts == []


def test_few_failures_or_failures_spread_beyond_the_window_stay_quiet() -> None:
    few = [flow(ATTACKER, f"10.20.0.{i}", 3389, T0 + i) for i in range(24)]
    slow = [flow(ATTACKER, f"10.21.0.{i}", 22, T0 + 1000 + 20 * i) for i in range(40)]  # 15 per 300 s at most
    alerts, _ = run(few + slow)
    assert alerts == []


def test_thresholds_come_from_the_settings() -> None:
    flows = [flow(ATTACKER, f"10.20.0.{i}", 502, T0 + i) for i in range(5)]
    alerts, _ = run(flows, ScanSettings(address_scan_hosts=5))
    assert [a.note for a in alerts] == ["address_scan"]


def test_one_way_udp_services_and_broadcasts_are_not_unanswered_probes() -> None:
    flows = [flow(BACKUP, f"10.20.0.{i}", 514, T0 + i, proto="udp") for i in range(1, 40)]  # syslog to many
    flows += [flow(BACKUP, f"10.20.{i}.255", 47808, T0 + i, proto="udp") for i in range(40)]  # Who-Is broadcasts
    flows += [flow(BACKUP, "239.255.255.250", 1900 + i, T0 + i, proto="udp") for i in range(40)]  # multicast
    alerts, _ = run(flows)
    assert alerts == []
