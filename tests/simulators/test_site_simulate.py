"""`otwatch simulate` end to end: same seed same bytes; ground truth consistent with the pcap; our decoders read a
simulated day with zero weird records; tshark reads it without Malformed entries; the CLI names bad input."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from simulators.site import load_profile, load_scenario, simulate

PROFILES = Path(__file__).resolve().parents[2] / "simulators" / "profiles"
PROFILE = PROFILES / "site-small.yml"
CHAIN = PROFILES / "scenarios" / "vpn-intrusion-ot.yml"


def otwatch(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the real command in a subprocess."""
    cmd = [sys.executable, "-m", "appliance", *[str(a) for a in args]]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)


def replay(pcap: Path, base: Path) -> tuple[dict[str, Any], Path]:
    """`otwatch replay` with default settings; its JSON summary and its log directory."""
    done = otwatch("replay", pcap, "--out", base / "logs", "--state", base / "state", "--json", "--no-progress")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), base / "logs"


def frames(pcap: Path) -> list[tuple[float, bytes]]:
    """(time, frame) of every record of a classic pcap."""
    data = pcap.read_bytes()
    out, off = [], 24
    while off < len(data):
        sec, usec, n, _ = struct.unpack_from("<IIII", data, off)
        out.append((sec + usec / 1e6, data[off + 16 : off + 16 + n]))
        off += 16 + n
    return out


@pytest.fixture(scope="module")
def benign(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("benign")
    began = time.perf_counter()
    summary = simulate(load_profile(PROFILE), 1, 5, out)
    print(f"\none day of site-small: {summary['frames']} frames in {time.perf_counter() - began:.1f} s")
    return out, summary


@pytest.fixture(scope="module")
def attacked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("attacked")
    sc = load_scenario(CHAIN, day=0, time="10:00")
    simulate(load_profile(PROFILE), 1, 5, out, [sc])
    return out, json.loads((out / "truth.json").read_text())


def test_same_seed_same_bytes_and_another_seed_differs(benign: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    out, _ = benign
    simulate(load_profile(PROFILE), 1, 5, tmp_path / "again")
    simulate(load_profile(PROFILE), 1, 6, tmp_path / "other")
    digest = [hashlib.sha256((p / "site.pcap").read_bytes()).hexdigest() for p in (out, tmp_path / "again",
                                                                                   tmp_path / "other")]  # fmt: skip
    assert digest[0] == digest[1] != digest[2]
    assert (out / "truth.json").read_text() == (tmp_path / "again" / "truth.json").read_text()


def test_the_pcap_is_sorted_and_spans_the_day(benign: tuple[Path, dict[str, Any]]) -> None:
    out, summary = benign
    got = frames(out / "site.pcap")
    times = [t for t, _ in got]
    assert len(got) == summary["frames"] and times == sorted(times)
    truth = json.loads((out / "truth.json").read_text())
    assert truth["last_ts"] - truth["first_ts"] > 86000
    assert [r["step"] for r in truth["steps"]] == ["camera_onboarded"]  # day 0's novelty only


def test_each_step_packets_lie_in_its_window(attacked: tuple[Path, dict[str, Any]]) -> None:
    out, truth = attacked
    rows = [r for r in truth["steps"] if r["scenario"] == "vpn-intrusion-ot"]
    assert len(rows) == 18
    actor = bytes(int(x) for x in rows[0]["actor_ip"].split("."))
    windows = [(r["t_start"], r["t_end"]) for r in rows]
    hits = [0] * len(rows)
    for t, f in frames(out / "site.pcap"):
        if f[12:14] != b"\x08\x00":
            continue
        from_actor = f[26:30] == actor and f[22] == 63  # the intruder's machine (TTL 63), not the laptop (128)
        if not from_actor:
            continue
        inside = [i for i, (a, b) in enumerate(windows) if a - 1e-6 <= t <= b + 1e-6]
        assert inside, f"a frame from the intruder at {t} is outside every step"
        for i in inside:
            hits[i] += 1
    assert all(hits), [r["step"] for r, n in zip(rows, hits, strict=True) if not n]


def test_dcc_and_reinitialize_silence_a_controller_for_a_while_then_it_resumes(
    attacked: tuple[Path, dict[str, Any]],
) -> None:
    out, truth = attacked
    effects = {e["effect"]: e for e in truth["effects"]}
    assert set(effects) == {"dcc-disable", "restart"}
    dcc, restart = effects["dcc-disable"], effects["restart"]
    assert (dcc["device"], dcc["step"], dcc["t_end"] - dcc["t_start"]) == ("crah-02", "bacnet_dcc", 3600.0)
    assert (restart["device"], restart["step"], restart["t_end"] - restart["t_start"]) == (
        "crah-01", "bacnet_reinitialize", 25.0)  # fmt: skip
    ips = {e["ip"]: e for e in (dcc, restart)}
    sent: dict[str, list[float]] = {ip: [] for ip in ips}  # BACnet datagrams from the controller
    asked: dict[str, list[float]] = {ip: [] for ip in ips}  # ... and to it
    first_after: dict[str, bytes] = {}
    for t, f in frames(out / "site.pcap"):
        if f[12:14] != b"\x08\x00" or f[23] != 17 or f[36:38] != b"\xba\xc0":
            continue
        src, dst = ".".join(map(str, f[26:30])), ".".join(map(str, f[30:34]))
        if src in ips:
            sent[src].append(t)
            if src not in first_after and t > ips[src]["t_start"]:
                first_after[src] = f[42:]
        if dst in ips:
            asked[dst].append(t)
    for ip, e in ips.items():
        silent = [t for t in sent[ip] if e["t_start"] < t < e["t_end"]]
        unanswered = [t for t in asked[ip] if e["t_start"] < t < e["t_end"]]
        resumed = [t for t in sent[ip] if e["t_end"] <= t < e["t_end"] + 120]
        assert silent == [] and resumed, (e, len(silent), len(resumed))
        assert len(unanswered) >= e["unanswered_requests"] > 0  # polls (each sent four times) and renewals
    assert first_after[restart["ip"]][:2] == b"\x81\x0b" and first_after[restart["ip"]][6:8] == b"\x10\x00"
    assert dcc["unanswered_requests"] >= 3600 / 30 - 2  # every poll of the hour went unanswered


def test_our_decoders_read_a_simulated_day_without_weird_records(
    benign: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, _ = benign
    summary, logs = replay(out / "site.pcap", tmp_path)
    assert summary["weird"] == 0
    weird = logs / "weird.jsonl"
    assert not weird.exists() or weird.read_text() == ""
    for proto in ("modbus", "bacnet", "mqtt", "dns", "http", "smb", "ldap", "dhcp"):
        assert summary["events_by_protocol"].get(proto, 0) > 0, proto
    assert summary["alerts_by_severity"] == {}  # one benign day: nothing to alert on


def test_a_day_with_the_intrusion_also_decodes_cleanly(attacked: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    out, _ = attacked
    summary, logs = replay(out / "site.pcap", tmp_path)
    assert summary["weird"] == 0
    notes = {json.loads(line)["note"] for line in (logs / "alerts.jsonl").read_text().splitlines()}
    assert {"ad_enumeration", "rdp_scan", "bruteforce"} <= notes
    control = [json.loads(line) for line in (logs / "bacnet_device_control.jsonl").read_text().splitlines()]
    assert {(r["pdu_service"], r.get("device_state", r.get("result"))) for r in control} == {
        ("device_communication_control", "disable"), ("reinitialize_device", "warmstart"),
        ("device_communication_control", "SUCCESS"), ("reinitialize_device", "SUCCESS")}  # fmt: skip


@pytest.mark.parametrize("which", ["benign", "attacked"])
def test_tshark_reads_it_without_malformed_entries(which: str, request: pytest.FixtureRequest) -> None:
    assert shutil.which("tshark"), "tshark is missing: `make test` installs it (Debian package tshark)"
    out, _ = request.getfixturevalue(which)
    done = subprocess.run(["tshark", "-r", str(out / "site.pcap"), "-q", "-z", "expert,error"],
                          capture_output=True, text=True, check=False, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Malformed" not in done.stdout and "Errors" not in done.stdout


def test_the_cli_writes_the_outputs(tmp_path: Path) -> None:
    done = otwatch("simulate", "--profile", PROFILE, "--days", "1", "--seed", "2", "--out", tmp_path,
                   "--scenario", PROFILES / "scenarios" / "ot-bacnet-dcc.yml", "--at", "0@09:00")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "frames" in done.stdout
    truth = json.loads((tmp_path / "truth.json").read_text())
    dcc = [r for r in truth["steps"] if r["step"] == "bacnet_dcc"]
    assert len(dcc) == 1 and dcc[0]["techniques"] == ["T0814", "T0815", "T0804"]
    assert abs(dcc[0]["t_start"] - (truth["first_ts"] // 86400 * 86400 + 9 * 3600)) < 1.0
    assert "zones:" in (tmp_path / "zones.yml").read_text()


def test_the_cli_names_a_bad_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(PROFILE.read_text().replace("snapshot_seconds:", "snapshot_secs:"))
    done = otwatch("simulate", "--profile", bad, "--out", tmp_path / "o")
    assert done.returncode == 2
    assert "iot.snapshot_secs: unknown key" in done.stderr
    assert not (tmp_path / "o").exists()
