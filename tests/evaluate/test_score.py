"""Scoring against ground truth: step windows (never into the next step), time to detect from the first alert,
technique-matched credit, incidents by timeline key, false alerts per device-day on quiet and novelty days; and
the pcap cut of the runner."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from appliance.capture.pcapfile import PcapReader
from appliance.evaluate.runner import split_pcap
from appliance.evaluate.score import DAY, latest_incidents, score_benign, score_steps
from simulators.site import load_profile, load_scenario, simulate

T = 1_717_372_800.0
ACTOR = "10.8.0.23"


def _step(name: str, start: float, end: float, techniques: tuple[str, ...]) -> dict[str, Any]:
    return {"scenario": "chain", "step": name, "actor_ip": ACTOR, "techniques": list(techniques), "t_start": start,
            "t_end": end}  # fmt: skip


def _alert(ts: float, note: str, techniques: tuple[str, ...], src: str = ACTOR, key: str = "") -> dict[str, Any]:
    return {"ts": ts, "detector": "d", "note": note, "techniques": list(techniques), "src": src, "assets": [src],
            "key": key or note}  # fmt: skip


def test_steps_are_credited_inside_their_window_only() -> None:
    steps = [
        _step("scan", T + 100, T + 110, ("T1046",)),
        _step("register_scan", T + 200, T + 211, ("T0861",)),
        _step("write", T + 300, T + 303, ("T0836",)),
    ]
    alerts = [
        _alert(T + 104, "it_to_ot", ("T0886",)),
        _alert(T + 105, "address_scan", ("T1046",), key="k-scan"),
        _alert(T + 301, "it_to_ot_write", ("T0836", "T0855"), key="k-write"),
        _alert(T + 302, "other_actor", ("T0836",), src="10.0.0.9"),
    ]
    incidents = [{"incident_id": "I1", "version": 1, "phases": ["it_recon"], "timeline": [{"key": "k-scan",
                  "ts": T + 105}]}, {"incident_id": "I1", "version": 2, "phases": ["it_recon", "impair"],
                  "timeline": [{"key": "k-scan", "ts": T + 105}, {"key": "k-write", "ts": T + 301}]}]  # fmt: skip
    scores = {s.step: s for s in score_steps(steps, alerts, latest_incidents(incidents))}
    scan = scores["scan"]
    assert scan.detected and scan.note == "d/address_scan" and scan.technique_match
    assert scan.ttd == 4.0  # the first alert of the window (it_to_ot), not the credited one
    assert scan.incident == "I1" and scan.phases == ("it_recon", "impair")  # the last version of the incident
    # the write's alert comes after the register scan's end but inside the next step: it is not the scan's
    assert not scores["register_scan"].detected
    write = scores["write"]
    assert write.detected and write.ttd == 1.0 and write.alert_techniques == ("T0836", "T0855")


def test_benign_days_split_into_quiet_and_novelty() -> None:
    truth = {"first_ts": T, "days": 4, "hosts": [{"ip": f"10.0.0.{i}"} for i in range(50)],
             "steps": [{"scenario": "benign", "step": "camera_onboarded", "t_start": T + 3 * DAY + 600}]}  # fmt: skip
    alerts = [
        _alert(T + 0.5 * DAY, "learning_day_alert", ()),  # before the test days: not counted
        _alert(T + 2.2 * DAY, "quiet", ()),
        _alert(T + 3.1 * DAY, "new_device", ()),
        _alert(T + 3.2 * DAY, "new_device", ()),
    ]
    incidents = [{"incident_id": "I9", "first_ts": T + 3.1 * DAY}, {"incident_id": "I0", "first_ts": T + 10}]
    b = score_benign(truth, alerts, incidents, first_test_day=2)
    assert (b.quiet_days, b.novelty_days, b.quiet_alerts, b.novelty_alerts) == (1, 1, 1, 2)
    assert b.quiet_rate == 1 / 50 and b.novelty_rate == 2 / 50
    assert b.false_incidents == 1 and b.incidents_per_site_day == 0.5
    assert b.alerts_by_note == {"d/new_device": 2, "d/quiet": 1}


def test_split_pcap_cuts_at_a_packet_time(tmp_path: Path) -> None:
    src = tmp_path / "in.pcap"
    frame = bytes(12) + b"\x08\x00" + bytes(46)  # an Ethernet frame with an empty IPv4 ethertype payload
    records = [struct.pack("<IIII", int(T) + i, 250_000, len(frame), len(frame)) + frame for i in range(10)]
    src.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + b"".join(records))
    before, after = split_pcap(src, T + 6.5, tmp_path / "a.pcap", tmp_path / "b.pcap")
    assert (before, after) == (7, 3)
    with PcapReader(tmp_path / "b.pcap") as reader:
        assert [round(ts - T, 2) for _linktype, ts, _frame, _wirelen in reader] == [7.25, 8.25, 9.25]
    assert split_pcap(src, T + 6.5, None, tmp_path / "c.pcap") == (7, 3)  # the part before left out
    assert (tmp_path / "c.pcap").read_bytes() == (tmp_path / "b.pcap").read_bytes()


def test_single_action_steps_are_timed_from_their_decisive_frame() -> None:
    step = {**_step("write", T + 300, T + 303, ("T0836",)), "t_action": T + 301.0}
    # the actor's earlier pivot alert was suppressed: the first alert in the window is the write's, 1 s into the step
    scores = score_steps([step], [_alert(T + 301.004, "it_to_ot_write", ("T0836",))], [])
    assert scores[0].ttd is not None and round(scores[0].ttd, 3) == 1.004
    assert scores[0].ttd_action is not None and round(scores[0].ttd_action, 3) == 0.004


def test_the_simulator_records_the_decisive_frame_of_single_action_steps(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2] / "simulators" / "profiles"
    scenario = load_scenario(root / "scenarios" / "ot-modbus-setpoint-write.yml", day=0)
    simulate(load_profile(root / "site-small.yml"), 1, 2, tmp_path, [scenario])
    row = next(r for r in json.loads((tmp_path / "truth.json").read_text())["steps"] if r["scenario"] != "benign")
    # read, then the write one second later (pace 1), then a read back
    assert row["t_start"] < row["t_action"] < row["t_end"] and 0.9 < row["t_action"] - row["t_start"] < 1.1


def test_a_kind_of_benign_day_not_measured_fails_its_target() -> None:
    from appliance.evaluate.report import checks
    from appliance.evaluate.runner import EvalResult
    from appliance.evaluate.score import BenignScore

    def benign(quiet: int, novelty: int, incidents: int = 0) -> dict[str, tuple[bool, str]]:
        result = EvalResult(benign=BenignScore(50, quiet, novelty, 0, 3 * novelty, incidents))
        return {c.name.split(" (")[0]: (c.ok, c.figure) for c in checks(result)}

    both = benign(1, 1)
    assert both["false alerts per device-day, quiet days"] == (True, "0.000 (0 alerts, 50 devices x 1 days)")
    assert both["false alerts per device-day, novelty days"] == (True, "0.060 (3 alerts, 50 devices x 1 days)")
    only_novelty = benign(0, 1)
    assert only_novelty["false alerts per device-day, quiet days"][0] is False
    assert "not measured" in only_novelty["false alerts per device-day, quiet days"][1]
    assert benign(1, 0)["false alerts per device-day, novelty days"][0] is False
    assert benign(1, 1, incidents=3)["false incidents per site-day"] == (False, "1.50")


def test_a_scenario_set_in_a_maintenance_window_keeps_its_weekday() -> None:
    from appliance.evaluate import PROFILE, SCENARIO_DIR
    from appliance.evaluate.runner import EvalPlan, scenario_day

    # site-small starts on a Monday; its window is Tuesday 02:00-05:00; the -maint files are set on day 1 at 02:40
    for learn in (1, 2, 8):
        plan = EvalPlan(PROFILE, (), learn_days=learn)
        assert scenario_day(plan, SCENARIO_DIR / "ot-bacnet-dcc.yml") == learn
        assert scenario_day(plan, SCENARIO_DIR / "ot-bacnet-dcc-maint.yml") == {1: 1, 2: 8, 8: 8}[learn]


def test_tidy_keeps_what_the_score_needs_unless_told_to_keep_all(tmp_path: Path) -> None:
    from appliance.evaluate.runner import EvalPlan, tidy

    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("alerts.jsonl", "incidents.jsonl", "weird.jsonl", "assets.jsonl", "conn.jsonl", "modbus.jsonl"):
        (logs / name).write_text("{}\n")
    (tmp_path / "test.pcap").write_bytes(b"x")
    tidy(EvalPlan(Path("p.yml"), (), keep=True), tmp_path / "test.pcap", logs)
    assert len(list(logs.iterdir())) == 6 and (tmp_path / "test.pcap").exists()
    tidy(EvalPlan(Path("p.yml"), ()), tmp_path / "test.pcap", logs)
    assert sorted(p.name for p in logs.iterdir()) == ["alerts.jsonl", "assets.jsonl", "incidents.jsonl", "weird.jsonl"]
    assert not (tmp_path / "test.pcap").exists()
