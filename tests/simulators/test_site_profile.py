"""The site profile and scenario files: the shipped ones load, bad keys are named, techniques are known."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.detectors.techniques import unknown_techniques
from simulators.site import ProfileError, load_profile, load_scenario
from simulators.site.scenario import STEPS

PROFILES = Path(__file__).resolve().parents[2] / "simulators" / "profiles"
SCENARIOS = sorted((PROFILES / "scenarios").glob("*.yml"))


def test_site_small_has_the_asked_sizes() -> None:
    p = load_profile(PROFILES / "site-small.yml")
    assert len(p.ot.plcs) == 4 and len(p.bms.devices) == 6
    assert len(p.iot.cameras) + len(p.iot.sensors) == 8 and len(p.iot.gateways) == 1
    it_hosts = len(p.it.servers) - 2 + p.it.workstations + len(p.it.admins) + len(p.it.dmz)
    assert it_hosts == 20 and sum(s.role == "dc" for s in p.it.servers) == 2
    assert len(p.vpn.workers) == 3


def test_a_bad_key_is_named(tmp_path: Path) -> None:
    text = (PROFILES / "site-small.yml").read_text()
    bad = tmp_path / "bad.yml"
    bad.write_text(text.replace("poll_seconds: 5", "poll_secs: 5").replace("kind: power, vendor: 2", "kind: steam"))
    with pytest.raises(ProfileError) as err:
        load_profile(bad)
    assert "ot.poll_secs: unknown key" in str(err.value)
    assert "ot.plcs.2.kind" in str(err.value)


def test_a_zone_that_does_not_exist_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text((PROFILES / "site-small.yml").read_text().replace("zone: bms\n", "zone: bmz\n"))
    with pytest.raises(ProfileError, match=r"bms\.zone: no zone named 'bmz'"):
        load_profile(bad)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_shipped_scenario_loads_with_known_techniques(path: Path) -> None:
    sc = load_scenario(path)
    for spec in sc.steps:
        assert unknown_techniques(list(STEPS[spec.step][1])) == []


def test_single_step_variants_cover_every_ot_step() -> None:
    names = {p.stem for p in SCENARIOS}
    ot = [s for s in STEPS if s.split("_")[0] in ("modbus", "bacnet", "mqtt")]
    for step in ot:
        base = "ot-" + step.replace("_", "-")
        assert {base, base + "-slow", base + "-maint"} <= names, step


def test_an_unknown_step_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "s.yml"
    bad.write_text("name: x\nsteps:\n  - {step: modbus_teleport}\n  - {step: rdp_scan, aftr: 3}\n")
    with pytest.raises(ProfileError) as err:
        load_scenario(bad)
    assert "steps.0.step: unknown step 'modbus_teleport'" in str(err.value)
    assert "steps.1.aftr: unknown key" in str(err.value)
