"""Quiet on normal days: a simulated benign day of the small site (shifts, maintenance window, an engineer's write
session, a firmware update, a camera onboarded, VPN workers logging on) through the real `otwatch replay` raises no
medium, high or critical alert; the only alerts are low `new_device` ones for addresses that really first appeared
after the sensor's (shortened) settle period, and the onboarded camera is one of them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from simulators.site import load_profile, simulate

PROFILE = Path(__file__).resolve().parents[1] / "simulators" / "profiles" / "site-small.yml"
SETTLE = 3600.0


def test_a_benign_day_raises_only_low_new_device_alerts_for_new_addresses(tmp_path: Path) -> None:
    profile = load_profile(PROFILE)
    simulate(profile, days=1, seed=3, out_dir=tmp_path)
    truth = json.loads((tmp_path / "truth.json").read_text())
    config = tmp_path / "otwatch.yml"
    config.write_text((tmp_path / "zones.yml").read_text() + f"detectors:\n  new_device: {{settle: {SETTLE}}}\n")
    cmd = [sys.executable, "-m", "appliance", "replay", str(tmp_path / "site.pcap"), "--config", str(config),
           "--out", str(tmp_path / "logs"), "--state", str(tmp_path / "state"), "--json", "--no-progress"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["weird"] == 0
    path = tmp_path / "logs" / "alerts.jsonl"
    alerts = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    assert {(a["detector"], a["note"], a["severity"]) for a in alerts} <= {("new_device", "new_device", "low")}
    onboarded = {s["actor_ip"] for s in truth["steps"] if s["step"] == "camera_onboarded"}
    assert onboarded and onboarded <= {a["src"] for a in alerts}
    assert all(a["ts"] >= profile.start_ts() + SETTLE for a in alerts)  # nothing while the sensor settles
    assert len(alerts) <= 5
