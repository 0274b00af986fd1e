"""The offline simulator's site (simulators/profiles/site-small.yml) through the real `otwatch replay` with its own
zones: the VPN intrusion continued into OT (scenario vpn-intrusion-ot, started at 13:00 of the first day) forms one
incident reaching all five phases in order, and a benign day (the one tests/test_benign_day.py replays) forms none
although it raises low new-device alerts."""

from __future__ import annotations

import json
from pathlib import Path

from appliance.detectors.techniques import unknown_techniques
from appliance.incidents.phases import PHASES
from simulators.site import load_profile, load_scenario, simulate
from tests.incidents.test_chain_incident import otwatch, replay, rows

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "simulators" / "profiles" / "site-small.yml"
SCENARIO = ROOT / "simulators" / "profiles" / "scenarios" / "vpn-intrusion-ot.yml"
SETTLE = 3600.0


def config(out: Path) -> Path:
    path = out / "otwatch.yml"
    path.write_text((out / "zones.yml").read_text() + f"detectors:\n  new_device: {{settle: {SETTLE}}}\n")
    return path


def test_the_simulated_intrusion_forms_one_incident_with_all_five_phases(tmp_path: Path) -> None:
    simulate(load_profile(PROFILE), days=1, seed=1, out_dir=tmp_path, scenarios=[load_scenario(SCENARIO, 0, "13:00")])
    truth = json.loads((tmp_path / "truth.json").read_text())
    actor = next(s["actor_ip"] for s in truth["steps"] if s.get("scenario") == "vpn-intrusion-ot")
    summary = replay(tmp_path / "site.pcap", config(tmp_path), tmp_path / "state", tmp_path / "logs")
    assert summary["incidents"] == {"open": 1, "acknowledged": 0, "closed": 0}
    (last,) = [json.loads(x) for x in otwatch("incidents", "--json", "--state", tmp_path / "state").stdout.splitlines()]
    assert last["actor"] == actor and last["severity"] == "critical"
    assert last["phases"] == list(PHASES)
    first = {p["phase"]: p["first_ts"] for p in last["phase_times"]}
    assert first["credential_access"] < first["it_recon"] < first["pivot_into_ot"] <= first["ot_discovery"]
    assert first["ot_discovery"] < first["impair"]
    assert unknown_techniques(last["techniques"]) == []
    touched = {a["ip"]: a for a in last["asset_details"]}
    assert {"PLC", "BMS controller"} <= {a["category"] for a in touched.values()}
    alerts = rows(tmp_path / "logs" / "alerts.jsonl")
    mine = [a for a in alerts if a["src"] == actor and a["ts"] >= last["first_ts"]]
    assert last["alerts"] == len(mine)  # every alert of the intrusion is on the timeline, nothing else
    assert {a["src"] for a in alerts if a["ts"] < last["first_ts"]} and all(
        a["severity"] == "low" for a in alerts if a["src"] != actor or a["ts"] < last["first_ts"]
    )  # the day's benign low alerts (new devices) stayed out


def test_a_benign_simulated_day_forms_no_incident(tmp_path: Path) -> None:
    simulate(load_profile(PROFILE), days=1, seed=3, out_dir=tmp_path)
    summary = replay(tmp_path / "site.pcap", config(tmp_path), tmp_path / "state", tmp_path / "logs")
    alerts = rows(tmp_path / "logs" / "alerts.jsonl")
    assert alerts and {a["severity"] for a in alerts} == {"low"}  # there were alerts: low new-device ones
    assert summary["incidents"] == {"open": 0, "acknowledged": 0, "closed": 0}
    assert not (tmp_path / "logs" / "incidents.jsonl").exists()
    assert otwatch("incidents", "--all", "--state", tmp_path / "state").stdout.startswith("no incidents")
