"""The otwatch Ansible role on a real Debian bookworm root (debootstrap), reached with community.general.chroot.

Converge, converge again (nothing changes), `--check --diff` (nothing would change), verify what landed (user,
files and modes, otwatch inside the root, the unit with systemd-analyze), upgrade to a second wheel keeping the
state directory, then a broken wheelhouse that must leave the running release alone (ansible-lint and the other
plays: test_playbooks.py). Services cannot start in a chroot; everything short of that is checked. Needs root
(chroot, mount, debootstrap).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from tests.ansible.boxkit import Box, PlaybookRun, debian_box
from tests.ansible.buildcache import REPO, assemble_wheelhouse, otwatch_wheel, project, source_digest

pytestmark = [
    pytest.mark.ansible,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: debootstrap, chroot and mount"),
]

HOST = "edge-box-01"
SCRAPE_PASSWORD = "scrape-secret-1"
BROKER_PASSWORD = "broker-secret-1"
SITE_VARS: dict[str, Any] = {
    "otwatch_site": "test",
    "otwatch_capture_interface": "lo",
    "otwatch_zones": [
        {"name": "plc", "cidrs": ["10.0.0.0/24"], "domain": "OT", "purdue_level": 1},
        {"name": "corp", "cidrs": ["10.1.0.0/16"], "domain": "IT", "purdue_level": 4},
    ],
    "otwatch_web_basic_auth_users": {"prometheus": SCRAPE_PASSWORD},
    "otwatch_broker": {"host": "broker.test.example", "port": 1883, "username": "otwatch"},
    "otwatch_broker_password": BROKER_PASSWORD,
    "otwatch_detectors": {"scan": {"window": 300, "address_scan_hosts": 25}},
}
BASE_VERSION = str(project()["version"])
UPGRADE_VERSION = f"{BASE_VERSION}+upgrade1"
BROKEN_VERSION = f"{BASE_VERSION}+broken1"
MAX_EXPOSURE = 2.5
OTWATCH = "/opt/otwatch/current/venv/bin/otwatch"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def wheelhouses(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three wheelhouses on the 'controller': this checkout, the same stamped as an upgrade, and a broken one."""
    base = tmp_path_factory.mktemp("wheelhouses")
    digest = source_digest()
    upgrade = otwatch_wheel(UPGRADE_VERSION, digest)
    houses = {
        "base": assemble_wheelhouse(base / "base", otwatch_wheel(None, digest)),
        "upgrade": assemble_wheelhouse(base / "upgrade", upgrade),
    }
    broken = assemble_wheelhouse(base / "broken", upgrade)
    good = broken / upgrade.name
    (broken / f"otwatch-{BROKEN_VERSION}-py3-none-any.whl").write_bytes(good.read_bytes()[:4096])  # truncated zip
    good.unlink()
    houses["broken"] = broken
    return houses


@pytest.fixture(scope="module")
def box() -> Iterator[Box]:
    """A fresh copy of the cached Debian root, removed (and unmounted) after the module."""
    with debian_box(SITE_VARS) as made:
        yield made


@pytest.fixture(scope="module")
def fresh_check(box: Box, wheelhouses: dict[str, Path]) -> PlaybookRun:
    """`--check --diff` on the fresh box, before anything was installed."""
    return box.playbook({"otwatch_wheelhouse_dir": str(wheelhouses["base"])}, args=("--check", "--diff"))


@pytest.fixture(scope="module")
def converged(box: Box, wheelhouses: dict[str, Path], fresh_check: PlaybookRun) -> PlaybookRun:
    """The first converge from the base wheelhouse (after the check run on the fresh box)."""
    return box.playbook({"otwatch_wheelhouse_dir": str(wheelhouses["base"])})


def _assert_ok(run: PlaybookRun) -> dict[str, int]:
    assert run.returncode == 0, run.output[-8000:]
    counts = run.counts(HOST)
    assert counts["failed"] == 0 and counts["unreachable"] == 0, run.output[-8000:]
    return counts


def _current_release(box: Box) -> str:
    return os.readlink(box.path("/opt/otwatch/current"))


def test_check_on_a_fresh_box_reports_changes_and_makes_none(box: Box, fresh_check: PlaybookRun) -> None:
    counts = _assert_ok(fresh_check)
    assert counts["changed"] >= 5
    assert "+state_dir: /var/lib/otwatch" in fresh_check.output  # the config it would write, as a diff
    assert not box.path("/opt/otwatch").exists() and not box.path("/etc/otwatch").exists()
    assert "otwatch:" not in box.path("/etc/passwd").read_text()


def test_converge_installs_renders_and_notifies(converged: PlaybookRun) -> None:
    counts = _assert_ok(converged)
    assert counts["changed"] >= 10
    assert "RUNNING HANDLER [otwatch : Restart otwatch]" in converged.output  # notified; skipped inside a chroot


def test_second_converge_changes_nothing(box: Box, converged: PlaybookRun, wheelhouses: dict[str, Path]) -> None:
    again = box.playbook({"otwatch_wheelhouse_dir": str(wheelhouses["base"])})
    counts = _assert_ok(again)
    assert counts["changed"] == 0, [line for line in again.output.splitlines() if line.startswith("changed:")]
    assert "RUNNING HANDLER" not in again.output


def test_check_diff_on_converged_box_changes_nothing(
    box: Box, converged: PlaybookRun, wheelhouses: dict[str, Path]
) -> None:
    before = {p: _sha(box.path(p)) for p in ("/etc/otwatch/config.yml", "/etc/otwatch/web-config.yml")}
    check = box.playbook({"otwatch_wheelhouse_dir": str(wheelhouses["base"])}, args=("--check", "--diff"))
    counts = _assert_ok(check)
    assert counts["changed"] == 0, check.output[-6000:]
    assert "\n+++ " not in check.output and "\n--- " not in check.output  # no diff shown
    assert {p: _sha(box.path(p)) for p in before} == before


def test_service_user(box: Box, converged: PlaybookRun) -> None:
    _assert_ok(converged)
    passwd = {f[0]: f for f in (line.split(":") for line in box.path("/etc/passwd").read_text().splitlines())}
    user = passwd["otwatch"]
    assert int(user[2]) < 1000, "a system user"
    assert user[5:] == ["/var/lib/otwatch", "/usr/sbin/nologin"]
    shadow = {f[0]: f for f in (line.split(":") for line in box.path("/etc/shadow").read_text().splitlines())}
    assert shadow["otwatch"][1] == "!", "no password"
    groups = {f[0]: f for f in (line.split(":") for line in box.path("/etc/group").read_text().splitlines())}
    assert int(groups["otwatch"][2]) == int(user[3])
    assert [g for g, f in groups.items() if "otwatch" in f[3].split(",")] == [], "no supplementary groups"


def test_files_and_modes(box: Box, converged: PlaybookRun) -> None:
    _assert_ok(converged)
    expected = {
        "/etc/otwatch": ("root", "otwatch", 0o750),
        "/etc/otwatch/config.yml": ("root", "otwatch", 0o640),
        "/etc/otwatch/web-config.yml": ("root", "otwatch", 0o640),
        "/etc/otwatch/broker.pass": ("otwatch", "otwatch", 0o400),
        "/var/lib/otwatch": ("otwatch", "otwatch", 0o750),
        "/var/log/otwatch": ("otwatch", "otwatch", 0o750),
        "/etc/systemd/system/otwatch.service": ("root", "root", 0o644),
        "/opt/otwatch": ("root", "root", 0o755),
    }
    assert {path: box.owner(path) for path in expected} == expected
    assert box.path("/etc/otwatch/broker.pass").read_text() == BROKER_PASSWORD + "\n"
    release = _current_release(box)
    assert re.fullmatch(rf"/opt/otwatch/releases/{re.escape(BASE_VERSION)}-[0-9a-f]{{12}}", release), release
    assert box.owner(release)[:2] == ("root", "root")
    wants = box.path("/etc/systemd/system/multi-user.target.wants/otwatch.service")
    assert os.readlink(wants) == "/etc/systemd/system/otwatch.service", "enabled"

    config = yaml.safe_load(box.path("/etc/otwatch/config.yml").read_text())
    assert config["capture"]["interface"] == "lo"
    assert [z["name"] for z in config["zones"]] == ["plc", "corp"]
    assert config["web"] == {"listen_address": ":9847", "config_file": "/etc/otwatch/web-config.yml"}
    assert config["broker"]["password_file"] == "/etc/otwatch/broker.pass"
    assert (config["state_dir"], config["log_dir"]) == ("/var/lib/otwatch", "/var/log/otwatch")
    assert config["detectors"] == SITE_VARS["otwatch_detectors"]
    assert BROKER_PASSWORD not in box.path("/etc/otwatch/config.yml").read_text()

    web = yaml.safe_load(box.path("/etc/otwatch/web-config.yml").read_text())
    hashed = web["basic_auth_users"]["prometheus"]
    assert hashed.startswith("$2b$") and bcrypt.checkpw(SCRAPE_PASSWORD.encode(), hashed.encode())
    assert SCRAPE_PASSWORD not in box.path("/etc/otwatch/web-config.yml").read_text()


def test_otwatch_runs_inside_the_root(box: Box, converged: PlaybookRun) -> None:
    _assert_ok(converged)
    version = box.run_as("otwatch", OTWATCH, "--version")
    assert (version.returncode, version.stdout.strip()) == (0, f"otwatch {BASE_VERSION}"), version.stderr
    check = box.run_as("otwatch", OTWATCH, "check-config", "--config", "/etc/otwatch/config.yml")
    assert (check.returncode, check.stdout.strip()) == (0, "config OK: /etc/otwatch/config.yml"), check.stderr
    secret = box.run_as("otwatch", "cat", "/etc/otwatch/broker.pass")
    assert secret.stdout == BROKER_PASSWORD + "\n", secret.stderr
    for path in ("/etc/otwatch/broker.pass", "/etc/otwatch/config.yml", "/etc/otwatch/web-config.yml"):
        other = box.run_as("nobody", "cat", path)
        assert other.returncode != 0 and "Permission denied" in other.stderr, path
    box.path("/tmp/bad.yml").write_text("capture: {interface: lo, snaplen: 1}\n")
    bad = box.run_as("otwatch", OTWATCH, "check-config", "--config", "/tmp/bad.yml")
    assert bad.returncode == 2 and "capture.snaplen" in bad.stderr


def _unit(box: Box) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for line in box.path("/etc/systemd/system/otwatch.service").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            keys.setdefault(key, []).append(value)
    return keys


def test_unit_hardening_and_systemd_analyze_verify(box: Box, converged: PlaybookRun) -> None:
    _assert_ok(converged)
    unit = _unit(box)
    assert unit["ExecStart"] == [f"{OTWATCH} run --config /etc/otwatch/config.yml"]
    assert (unit["User"], unit["Group"]) == (["otwatch"], ["otwatch"])
    assert unit["AmbientCapabilities"] == ["CAP_NET_RAW"] and unit["CapabilityBoundingSet"] == ["CAP_NET_RAW"]
    for key, value in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("StateDirectory", "otwatch"),
        ("ConfigurationDirectory", "otwatch"),
        ("LogsDirectory", "otwatch"),
        ("Restart", "on-failure"),
        ("StandardOutput", "journal"),
        ("SystemCallArchitectures", "native"),
    ]:
        assert unit[key] == [value], key
    assert "AF_PACKET" in unit["RestrictAddressFamilies"][0].split()
    assert unit["SystemCallFilter"] == ["@system-service", "~@privileged @resources"]
    verify = subprocess.run(
        ["systemd-analyze", "verify", f"--root={box.root}", "otwatch.service"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verify.returncode == 0 and verify.stderr == "", verify.stderr


def test_unit_security_exposure(box: Box, converged: PlaybookRun, record_property: Any) -> None:
    _assert_ok(converged)
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", f"--root={box.root}", "--no-pager", "otwatch.service"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    found = re.search(r"Overall exposure level for otwatch\.service: (\d+(?:\.\d+)?)", done.stdout)
    assert found, done.stdout[-3000:] + done.stderr
    exposure = float(found[1])
    record_property("systemd_exposure", exposure)
    print(f"systemd-analyze security --offline=true: exposure {exposure}")
    assert exposure <= MAX_EXPOSURE, done.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"otwatch_capture_interface": "nosuch0"}, "otwatch_capture_interface: nosuch0 does not exist on"),
        (
            {"otwatch_broker": {"host": "broker.test.example"}, "otwatch_broker_password": "x"},
            "otwatch_broker_password needs otwatch_broker with a username",
        ),
        ({"otwatch_zones": [{"name": "z", "cidrs": ["10.9.0.0/16"], "domain": "Cloud"}]}, "domain must be one of"),
        ({"otwatch_state_dir": "/srv/otwatch"}, "otwatch_state_dir under /var/lib/"),
    ],
    ids=["missing-interface", "password-without-user", "bad-zone-domain", "state-dir-outside-var-lib"],
)
def test_preflight_rejects_bad_variables_before_any_change(
    box: Box, converged: PlaybookRun, wheelhouses: dict[str, Path], extra: dict[str, Any], message: str
) -> None:
    _assert_ok(converged)
    run = box.playbook(
        {"otwatch_wheelhouse_dir": str(wheelhouses["base"]), **extra}, args=("--tags", "otwatch_preflight")
    )
    assert run.returncode != 0
    assert message in " ".join(run.output.split()), run.output[-4000:]
    assert run.counts(HOST)["changed"] == 0


def test_upgrade_keeps_the_state_directory(box: Box, converged: PlaybookRun, wheelhouses: dict[str, Path]) -> None:
    _assert_ok(converged)
    shutil.copy(REPO / "tests/traces/suricata/modbus.pcap", box.path("/tmp/modbus.pcap"))
    replay = box.run_as(
        "otwatch", OTWATCH, "replay", "/tmp/modbus.pcap", "--config", "/etc/otwatch/config.yml",
        "--out", "/var/log/otwatch/replay", "--no-progress",
    )  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    inventory = [OTWATCH, "inventory", "--json", "--config", "/etc/otwatch/config.yml"]
    assets_before = box.run_as("otwatch", *inventory).stdout
    assert len(assets_before.splitlines()) >= 3
    state_before = _sha(box.path("/var/lib/otwatch/otwatch.sqlite"))
    web_before = _sha(box.path("/etc/otwatch/web-config.yml"))
    old_release = _current_release(box)

    upgrade = box.playbook({"otwatch_wheelhouse_dir": str(wheelhouses["upgrade"])})
    _assert_ok(upgrade)
    new_release = _current_release(box)
    assert new_release != old_release and f"/releases/{UPGRADE_VERSION}-" in new_release
    version = box.run_as("otwatch", OTWATCH, "--version")
    assert version.stdout.strip() == f"otwatch {UPGRADE_VERSION}", version.stderr
    assert _sha(box.path("/var/lib/otwatch/otwatch.sqlite")) == state_before
    assert box.run_as("otwatch", *inventory).stdout == assets_before
    assert _sha(box.path("/etc/otwatch/web-config.yml")) == web_before, "bcrypt hash kept: same password"
    assert box.path(old_release).is_dir(), "the previous release is kept for a rollback (otwatch_keep_releases: 2)"
    assert "RUNNING HANDLER [otwatch : Restart otwatch]" in upgrade.output


def test_failed_upgrade_leaves_the_running_release(
    box: Box, converged: PlaybookRun, wheelhouses: dict[str, Path]
) -> None:
    _assert_ok(converged)
    release = _current_release(box)
    version = box.run_as("otwatch", OTWATCH, "--version").stdout
    watched = ["/etc/otwatch/config.yml", "/etc/otwatch/web-config.yml", "/etc/systemd/system/otwatch.service"]
    before = {p: _sha(box.path(p)) for p in watched}
    state = sorted(p.name for p in box.path("/var/lib/otwatch").iterdir())
    releases = sorted(p.name for p in box.path("/opt/otwatch/releases").iterdir())

    failed = box.playbook({"otwatch_wheelhouse_dir": str(wheelhouses["broken"])})
    assert failed.returncode != 0
    flat = " ".join(failed.output.split())
    assert f"installing otwatch {BROKEN_VERSION} from the wheelhouse failed" in flat, failed.output[-4000:]
    assert "the running release (/opt/otwatch/current) is untouched" in flat
    assert failed.counts(HOST)["rescued"] == 1
    assert _current_release(box) == release
    assert box.run_as("otwatch", OTWATCH, "--version").stdout == version
    assert {p: _sha(box.path(p)) for p in watched} == before
    assert sorted(p.name for p in box.path("/var/lib/otwatch").iterdir()) == state
    assert sorted(p.name for p in box.path("/opt/otwatch/releases").iterdir()) == releases, "broken release removed"
