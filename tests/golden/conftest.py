"""Golden tests: real captures replayed through the real `otwatch replay` command, logs compared with peers."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

TRACES = Path(__file__).resolve().parents[1] / "traces"
PEERS = TRACES / "peers"


@dataclass
class Replay:
    """The result of one `otwatch replay` run: its summary and its log rows."""

    out: Path
    summary: dict

    def rows(self, log: str) -> list[dict]:
        """The rows of one JSONL log (empty when the log was not written)."""
        path = self.out / f"{log}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]


_cache: dict[str, Replay] = {}


@pytest.fixture(scope="session")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Replay]:
    """Run `otwatch replay` on a trace (once per session per trace) and return its logs."""

    def run(trace: str) -> Replay:
        if trace not in _cache:
            base = tmp_path_factory.mktemp(trace.replace("/", "_"))
            out = base / "logs"
            cmd = [
                sys.executable,
                "-m",
                "appliance",
                "replay",
                str(TRACES / trace),
                "--out",
                str(out),
                "--state",
                str(base / "state"),
                "--json",
                "--no-progress",
            ]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
            assert done.returncode == 0, f"otwatch replay {trace} failed:\n{done.stderr}"
            _cache[trace] = Replay(out, json.loads(done.stdout))
        return _cache[trace]

    return run
