"""The attack chain end to end through the real `otwatch replay`: alerts.jsonl holds the ground truth's alerts in
order (detector, note, severity, techniques, source), each within its bound of the step's start; the benign capture
raises none; the summary and the Prometheus counter source agree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from simulators.itgen.chain import GroundTruth, write_benign, write_chain


def replay(pcap: Path, base: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the CLI on a capture; its JSON summary and its alert rows."""
    out = base / "logs"
    cmd = [sys.executable, "-m", "appliance", "replay", str(pcap), "--out", str(out), "--state", str(base / "state"),
           "--json", "--no-progress"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr
    path = out / "alerts.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return json.loads(done.stdout), rows


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[GroundTruth, dict[str, Any], list[dict[str, Any]]]:
    base = tmp_path_factory.mktemp("chain")
    truth = write_chain(base / "chain.pcap", seed=1)
    summary, rows = replay(base / "chain.pcap", base)
    return truth, summary, rows


def test_the_chain_raises_the_ground_truth_in_order_through_the_cli(
    chain: tuple[GroundTruth, dict[str, Any], list[dict[str, Any]]],
) -> None:
    truth, _summary, rows = chain
    expected = truth.expected_alerts()
    got = [(r["detector"], r["note"], r["severity"], tuple(r["techniques"]), r["src"]) for r in rows]
    assert got == [(a.detector, a.note, a.severity, a.techniques, step.src) for step, a in expected]
    for row, (step, alert) in zip(rows, expected, strict=True):
        assert step.start <= row["ts"] <= step.start + alert.within, (row["note"], row["ts"] - step.start)
        assert row["uids"] and row["explanation"].startswith(step.src)


def test_the_summary_counts_the_alerts(chain: tuple[GroundTruth, dict[str, Any], list[dict[str, Any]]]) -> None:
    _truth, summary, rows = chain
    by_severity: dict[str, int] = {}
    for r in rows:
        by_severity[r["severity"]] = by_severity.get(r["severity"], 0) + 1
    assert summary["alerts_by_severity"] == dict(sorted(by_severity.items()))
    assert summary["weird"] == 0


def test_the_benign_capture_raises_nothing_through_the_cli(tmp_path: Path) -> None:
    write_benign(tmp_path / "benign.pcap", seed=1)
    summary, rows = replay(tmp_path / "benign.pcap", tmp_path)
    assert rows == [] and summary["alerts_by_severity"] == {}
    assert summary["weird"] == 0
