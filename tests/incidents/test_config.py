"""The `incidents:` config section: defaults, and bad values named by their path."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import ConfigError, load_config


def test_the_defaults_are_a_day_idle_an_hour_to_join_and_no_enforcement() -> None:
    s = load_config(None).incidents
    assert (s.idle, s.join_window, s.min_severity, s.enforce) == (86400.0, 3600.0, "medium", False)


def test_the_section_is_read(tmp_path: Path) -> None:
    path = tmp_path / "otwatch.yml"
    path.write_text("incidents: {idle: 7200, join_window: 600, min_severity: high, enforce: true}\n")
    s = load_config(path).incidents
    assert (s.idle, s.join_window, s.min_severity, s.enforce) == (7200.0, 600.0, "high", True)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("incidents: {idle: 0}", "incidents.idle"),
        ("incidents: {min_severity: severe}", "incidents.min_severity"),
        ("incidents: {enforce: maybe}", "incidents.enforce"),
        ("incidents: {apply: true}", "incidents.apply: unknown key"),
    ],
)
def test_a_bad_value_is_named_by_its_path(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "otwatch.yml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_config(path)
