"""`otwatch evaluate` on a small fixed set, through the CLI: two learning days (the site's weekly maintenance window
falls on the second), two benign test days (the first carries the profile's benign novelty, the second is quiet), the
VPN intrusion continued into OT and three single steps (one of them slow). Asserts the issue's targets on these:
every step detected, single-action steps within 1 s of packet time, the chain as one incident with at least four
phases, false alerts per device-day within the bounds on both kinds of day. The full run is `make eval`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "simulators" / "profiles" / "scenarios"
SET = ("vpn-intrusion-ot", "ot-modbus-setpoint-write", "ot-bacnet-dcc-slow", "ot-mqtt-wildcard-subscribe")


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("eval")
    scenario_args = [arg for name in SET for arg in ("--scenario", str(SCENARIOS / f"{name}.yml"))]
    cmd = [sys.executable, "-m", "appliance", "evaluate", "--learn-days", "2", "--benign-days", "2", "--seed", "1",
           "--work", str(work / "run"), "--json", *scenario_args]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False, timeout=900)
    assert done.returncode in (0, 1), done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    data["returncode"] = done.returncode
    return data


def test_every_step_of_the_set_is_detected(result: dict[str, Any]) -> None:
    steps = result["steps"]
    assert {s["scenario"] for s in steps} == set(SET)
    assert [f"{s['scenario']}/{s['step']}" for s in steps if not s["detected"]] == []


def test_every_target_passes(result: dict[str, Any]) -> None:
    failed = [f"{c['name']}: {c['figure']}" for c in result["checks"] if not c["ok"]]
    assert failed == [] and result["returncode"] == 0


def test_the_chain_is_one_incident_with_four_phases_or_more(result: dict[str, Any]) -> None:
    chain = [s for s in result["steps"] if s["scenario"] == "vpn-intrusion-ot"]
    assert len(chain) >= 15
    assert len({s["incident"] for s in chain}) == 1 and chain[0]["incident"]
    assert len(chain[-1]["phases"]) >= 4


def test_benign_day_is_quiet(result: dict[str, Any]) -> None:
    benign = result["benign"]
    assert benign["devices"] >= 40 and benign["quiet_days"] == 1 and benign["novelty_days"] == 1
    assert benign["quiet_rate"] <= 0.05 and benign["novelty_rate"] <= 0.2
