"""The baseline end to end on the simulated small site, through the real `otwatch replay` and its state directory.

Four simulated days (one simulation for the module): days 0-1 are learned (`baseline.learning_days: 2`); the sensor
stops two hours into day 2 and a new `otwatch replay` resumes from the state directory in protecting mode, without
relearning. Day 2 is a benign day with novelty: a new camera and a new BMS controller identical to two existing
ones (both inherit their peer group's baseline). Day 3 carries seven single-step OT scenarios of an intruder on a
VPN worker's address; each raises its notes, the first within 1 s of packet time of the step's first packet.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from appliance.baseline import Baseline, BaselineSettings
from appliance.baseline.persist import load
from appliance.capture.pcapfile import PcapReader
from appliance.pipeline import op_class
from appliance.store import Store
from simulators.site import load_profile, load_scenario, simulate
from simulators.site.profile import Novelty

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "simulators" / "profiles" / "site-small.yml"
SCENARIOS = ROOT / "simulators" / "profiles" / "scenarios"
DAY = 86400.0
LEARNED = {"ot_baseline", "ot_discovery", "ot_internet", "mqtt_baseline", "ot_timing", "ot_anomaly"}
PLAN = [("ot-modbus-setpoint-write", "10:30"), ("ot-bacnet-write-priority", "12:30"),
        ("ot-mqtt-wildcard-subscribe", "14:30"), ("ot-modbus-unit-sweep", "16:30"), ("ot-bacnet-who-is-sweep", "17:30"),
        ("ot-bacnet-device-walk", "18:30"), ("ot-mqtt-forged-command", "19:30")]  # fmt: skip
EXPECTED = {
    "modbus_setpoint_write": {"rogue_modbus_master", "write_out_of_range"},
    "bacnet_write_priority": {"new_ot_edge", "rogue_bacnet_writer"},  # (the chiller's setpoint was not written
    # while learning in this simulation: no range to be outside of)
    "mqtt_wildcard_subscribe": {"new_ot_edge", "mqtt_wildcard_subscription"},
    "modbus_unit_sweep": {"rogue_modbus_master", "modbus_device_identification", "modbus_unit_sweep"},
    "bacnet_who_is_sweep": {"bacnet_who_is_sweep"},
    "bacnet_device_walk": {"bacnet_device_walk"},
    "mqtt_forged_command": {"mqtt_new_publisher"},
}


def _split(pcap: Path, at: float, first: Path, second: Path) -> None:
    """Write the frames before and after packet time `at` into two pcap files."""
    with PcapReader(pcap) as reader, first.open("wb") as a, second.open("wb") as b:
        for out in (a, b):
            out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for _linktype, ts, data, wire_len in reader:
            sec, usec = divmod(round(ts * 1e6), 1_000_000)
            (a if ts < at else b).write(struct.pack("<IIII", sec, usec, len(data), wire_len) + bytes(data))


def _replay(pcap: Path, config: Path, state: Path, out: Path) -> list[dict[str, Any]]:
    cmd = [sys.executable, "-m", "appliance", "replay", str(pcap), "--config", str(config), "--state", str(state),
           "--out", str(out), "--json", "--no-progress"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=900)
    assert done.returncode == 0, done.stderr
    path = out / "alerts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Simulate once, replay in two runs of the sensor sharing one state directory."""
    tmp = tmp_path_factory.mktemp("baseline-site")
    profile = load_profile(PROFILE)
    novelty = [*profile.novelty, Novelty(kind="camera_onboarded", day=2, time="11:00", name="cam-07"),
               # the profile schema does not list this kind yet: built without validation
               Novelty.model_construct(kind="bms_device_added", day=2, time="09:00", name="crah-03", target=None,
                                       ip=None)]  # fmt: skip
    profile = profile.model_copy(update={"novelty": novelty})
    scenarios = [load_scenario(SCENARIOS / f"{name}.yml", 3, at, None) for name, at in PLAN]
    simulate(profile, days=4, seed=3, out_dir=tmp, scenarios=scenarios)
    truth = json.loads((tmp / "truth.json").read_text())
    start = profile.start_ts()
    restart = start + 2 * DAY + 2 * 3600
    _split(tmp / "site.pcap", restart, tmp / "learn.pcap", tmp / "protect.pcap")
    (tmp / "site.pcap").unlink()
    config = tmp / "otwatch.yml"
    config.write_text((tmp / "zones.yml").read_text() + "baseline: {learning_days: 2}\n")
    state = tmp / "state"
    first = _replay(tmp / "learn.pcap", config, state, tmp / "logs1")
    settings = BaselineSettings(learning_days=2)
    saved = Baseline(settings, op_class=op_class)
    with Store(state) as store:
        load(saved, store.connection)
    second = _replay(tmp / "protect.pcap", config, state, tmp / "logs2")
    resumed = Baseline(settings, op_class=op_class)
    with Store(state) as store:
        load(resumed, store.connection)
    return {"truth": truth, "start": start, "restart": restart, "first": first, "second": second, "saved": saved,
            "resumed": resumed, "config": config, "state": state}  # fmt: skip


def test_learning_is_saved_and_a_restart_resumes_protecting(site: dict[str, Any]) -> None:
    saved: Baseline = site["saved"]
    p = saved.progress()
    assert p.mode == "protect" and p.started == pytest.approx(site["start"] + 2 * DAY, abs=5)
    assert [a for a in site["first"] if a["detector"] in LEARNED] == []  # nothing judged while learning
    counts = saved.facts.counts()
    assert counts["edge"] >= 30 and counts["op"] >= 100 and counts["commander"] >= 8 and counts["point"] >= 5
    polls = [c for c in saved.channels.values() if c.timed and c.period is not None]
    assert len(polls) >= 20 and {round(c.period) for c in polls if c.protocol == "modbus"} >= {5, 30}
    assert len(saved.models.judge) >= 20  # fitted at the end of learning, saved with their training rows
    resumed: Baseline = site["resumed"]
    assert resumed.modes.site_start == saved.modes.site_start  # not relearning: the same learning period
    for kind, n in counts.items():
        assert resumed.facts.count(kind) >= n
    assert set(resumed.models.judge) >= set(saved.models.judge)
    shown = subprocess.run([sys.executable, "-m", "appliance", "mode", "--state", str(site["state"]), "--config",
                            str(site["config"]), "--json"], capture_output=True, text=True, check=True)  # fmt: skip
    assert json.loads(shown.stdout)["mode"] == "protect"


def test_a_benign_day_with_new_devices_raises_almost_nothing(site: dict[str, Any]) -> None:
    day2 = site["start"] + 2 * DAY
    benign = [a for a in site["second"] if a["detector"] in LEARNED and day2 <= a["ts"] < day2 + DAY]
    devices = site["resumed"].facts.count("asset")
    rate = len(benign) / devices
    print(f"benign day: {len(benign)} learned-behaviour alerts over {devices} devices = {rate:.3f} per device-day")
    assert rate <= 0.05, [a["explanation"] for a in benign]
    hosts = {h["name"]: h["ip"] for h in site["truth"]["hosts"]}
    inherited = site["resumed"].inherited
    assert inherited[hosts["crah-03"]] == [hosts["crah-01"], hosts["crah-02"]]  # the fifth identical controller
    assert hosts["cam-07"] in inherited  # the new camera joined the cameras
    assert not site["resumed"].device_learning(hosts["crah-03"], day2 + DAY)


def test_each_ot_scenario_raises_its_notes_within_a_second(site: dict[str, Any]) -> None:
    steps = [s for s in site["truth"]["steps"] if s["scenario"] != "benign"]
    assert {s["step"] for s in steps} == set(EXPECTED)
    for step in steps:
        actor, t0 = step["actor_ip"], step["t_start"]
        mine = [a for a in site["second"] if a["detector"] in LEARNED and a["src"] == actor
                and t0 - 0.001 <= a["ts"] <= step["t_end"] + 1.0]  # fmt: skip
        notes = {a["note"] for a in mine}
        assert EXPECTED[step["step"]] <= notes, (step["step"], notes)
        first = min(a["ts"] for a in mine)
        assert first - t0 <= 1.0, (step["step"], first - t0)
        for a in mine:
            assert a["details"]["novel"] is True and a["details"]["fact_id"]
            assert "learning" in a["explanation"] or a["detector"] == "ot_anomaly"
