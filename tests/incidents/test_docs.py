"""docs/incidents.md states the code's phases, risk points, criticality points and config defaults."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from appliance.incidents.facts import CRITICALITY
from appliance.incidents.phases import PHASE_LABELS, PHASES
from appliance.incidents.risk import FACTORS, PHASE_POINTS
from appliance.incidents.settings import IncidentSettings

DOC = (Path(__file__).resolve().parents[2] / "docs" / "incidents.md").read_text(encoding="utf-8")


def test_every_phase_and_factor_is_documented_with_its_points() -> None:
    for phase in PHASES:
        assert f"`{phase}`" in DOC
        assert f"{PHASE_LABELS[phase].replace('impair process control', 'impair')} {PHASE_POINTS[phase]}" in DOC
    for factor in FACTORS:
        assert f"| {factor} |" in DOC
    for category, points in CRITICALITY.items():
        assert re.search(rf"{re.escape(category)}[^|;]*? {points}\b", DOC), category


def test_the_documented_config_is_the_default() -> None:
    block = DOC.split("```yaml\n", 1)[1].split("```", 1)[0]
    documented = yaml.safe_load(block)["incidents"]
    assert documented == IncidentSettings().model_dump()
