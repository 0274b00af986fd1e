"""`otwatch check-config --config FILE`: 'config OK: FILE' and 0, or the problems by key path and 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from appliance.cli import main

GOOD = """\
state_dir: /var/lib/otwatch
capture: {interface: eth1, snaplen: 65535}
zones:
  - {name: cooling-plc, cidrs: [10.20.0.0/24], domain: OT, purdue_level: 1}
web: {listen_address: ":9847"}
"""


def test_valid_config_prints_ok_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yml"
    path.write_text(GOOD)
    assert main(["check-config", "--config", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == f"config OK: {path}\n"
    assert err == ""


def test_bad_values_are_named_by_path_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yml"
    path.write_text(
        "capture: {interface: eth1, snaplen: 10}\n"
        "zones:\n  - {name: x, cidrs: [10.0.0.0/33], domain: OT}\n"
        "colour: blue\n"
    )
    assert main(["check-config", "--config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "config OK" not in err
    assert "capture.snaplen" in err
    assert "zones.0.cidrs" in err
    assert "colour: unknown key" in err
    assert "3 problem(s)" in err


def test_unreadable_and_non_mapping_files_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yml"
    assert main(["check-config", "--config", str(missing)]) == 2
    assert f"config {missing}: cannot read" in capsys.readouterr().err
    listing = tmp_path / "list.yml"
    listing.write_text("- a\n- b\n")
    assert main(["check-config", "--config", str(listing)]) == 2
    assert "top level must be a mapping" in capsys.readouterr().err


def test_config_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["check-config"])
    assert exc.value.code == 2
    assert "--config" in capsys.readouterr().err


def test_installed_command_exit_status(tmp_path: Path) -> None:
    good = tmp_path / "good.yml"
    good.write_text(GOOD)
    bad = tmp_path / "bad.yml"
    bad.write_text("flows: {max_flows: 1}\n")
    ok = subprocess.run(
        [sys.executable, "-m", "appliance", "check-config", "--config", str(good)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (ok.returncode, ok.stdout) == (0, f"config OK: {good}\n")
    failed = subprocess.run(
        [sys.executable, "-m", "appliance", "check-config", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert failed.returncode == 2
    assert "flows.max_flows" in failed.stderr
    assert failed.stdout == ""
