"""The `otwatch` command end to end: help, version, config errors, replay, inventory, truncated captures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TRACES = Path(__file__).resolve().parent / "traces"


def otwatch(*args: str | Path, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the real command in a subprocess."""
    cmd = [sys.executable, "-m", "appliance", *[str(a) for a in args]]
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=300)


def test_version() -> None:
    done = otwatch("--version")
    assert done.returncode == 0
    assert done.stdout.startswith("otwatch ")


@pytest.mark.parametrize("command", ["replay", "run", "inventory"])
def test_help_on_every_subcommand(command: str) -> None:
    done = otwatch(command, "--help")
    assert done.returncode == 0
    assert "--state" in done.stdout and "--config" in done.stdout


def test_bad_config_exits_before_capturing(tmp_path: Path) -> None:
    config = tmp_path / "bad.yml"
    config.write_text("capture:\n  interfce: eth0\n")
    done = otwatch("run", "--interface", "lo", "--config", config, "--state", tmp_path / "s")
    assert done.returncode == 2
    assert "capture.interfce: unknown key" in done.stderr
    assert not (tmp_path / "s").exists()


def test_replay_missing_and_non_capture_files(tmp_path: Path) -> None:
    done = otwatch("replay", tmp_path / "nope.pcap", "--out", tmp_path / "o", "--state", tmp_path / "s")
    assert done.returncode == 1
    assert "nope.pcap" in done.stderr
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a capture\n" * 10)
    done = otwatch("replay", text, "--out", tmp_path / "o", "--state", tmp_path / "s")
    assert done.returncode == 1
    assert "notes.txt" in done.stderr


def test_inventory_without_state_is_a_clear_error(tmp_path: Path) -> None:
    done = otwatch("inventory", "--state", tmp_path / "empty")
    assert done.returncode == 1
    assert str(tmp_path / "empty") in done.stderr


# Packet counts from `capinfos -c` (Wireshark 4.0.17), computed once when the traces were copied in.
CAPINFOS_PACKETS = {
    "zeek/modbusBig.pcap": 13622,
    "zeek/modbusSmall.pcap": 166,
    "icsst/modbus_test.pcap": 2257,
    "arkime/modbus.pcap": 1237,
    "arkime/mqtt_synthetic.pcap": 63,
    "ndpi/mqtt.pcap": 9,
}


@pytest.mark.parametrize(("trace", "packets"), sorted(CAPINFOS_PACKETS.items()))
def test_replay_summary_counts_every_packet(tmp_path: Path, trace: str, packets: int) -> None:
    done = otwatch("replay", TRACES / trace, "--out", tmp_path / "o", "--state", tmp_path / "s", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["packets"] == packets
    assert summary["truncated"] is None
    assert (tmp_path / "o" / "conn.jsonl").exists()


def test_replay_then_inventory_table_and_json(tmp_path: Path) -> None:
    state = tmp_path / "state"
    done = otwatch("replay", TRACES / "zeek/modbusBig.pcap", "--out", tmp_path / "o", "--state", state)
    assert done.returncode == 0, done.stderr
    assert "packets      13,622" in done.stdout
    table = otwatch("inventory", "--state", state)
    assert table.returncode == 0, table.stderr
    assert "10.235.149.243" in table.stdout and "PLC" in table.stdout
    rows = [json.loads(line) for line in otwatch("inventory", "--state", state, "--json").stdout.splitlines()]
    plc = next(r for r in rows if r["ip"] == "10.235.149.243")
    assert plc["category"] == "PLC"
    assert "modbus" in plc["roles"] and "server" in plc["roles"]["modbus"]


def test_truncated_capture_is_reported_and_kept(tmp_path: Path) -> None:
    data = (TRACES / "zeek/modbusSmall.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) // 2 + 7])
    done = otwatch("replay", cut, "--out", tmp_path / "o", "--state", tmp_path / "s", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["truncated"] and "truncated" in done.stderr
    assert 0 < summary["packets"] < 166
    assert (tmp_path / "o" / "modbus.jsonl").read_text().count("\n") > 0
