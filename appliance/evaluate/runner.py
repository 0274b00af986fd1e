"""`otwatch evaluate`: the simulator's scenarios against the sensor, offline, learning days then test days.

One benign simulation of LEARN + BENIGN days is cut at the end of the learning days (the profile's benign novelty is
moved onto the test days): the sensor replays the learning
part into a state directory (inventory, baselines), and a copy of that state replays the benign test days (false
alerts). Each scenario is simulated over LEARN + 1 days with its steps on the last day; the last day alone is replayed
into another copy of the learned state and scored against the ground truth. Replays go through the real
`otwatch replay` in a subprocess, so what is measured is what a user runs.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from appliance.config import Config
from appliance.evaluate.score import (
    DAY,
    BenignScore,
    StepScore,
    latest_incidents,
    read_jsonl,
    score_benign,
    score_steps,
)

_PCAP_HEADER = 24
_RECORD = struct.Struct("<IIII")
_MAGIC_LE = {b"\xd4\xc3\xb2\xa1": 1e-6, b"\x4d\x3c\xb2\xa1": 1e-9}


@dataclass(frozen=True)
class EvalPlan:
    """What to evaluate: the site profile, scenario files, learning and benign test days, seed, work directory."""

    profile: Path
    scenarios: tuple[Path, ...]
    learn_days: int = 2
    benign_days: int = 2
    seed: int = 1
    work: Path = Path("out/eval")


@dataclass
class EvalResult:
    """Every step's score, the benign score, and timings."""

    steps: list[StepScore] = field(default_factory=list)
    benign: BenignScore | None = None
    incidents: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # scenario -> its incidents
    seconds: dict[str, float] = field(default_factory=dict)


def split_pcap(src: Path, cut_ts: float, before: Path, after: Path) -> tuple[int, int]:
    """Write the records of a little-endian classic pcap before and from `cut_ts` into two files; their counts."""
    data = src.read_bytes()
    scale = _MAGIC_LE.get(data[:4])
    if scale is None:
        raise ValueError(f"{src}: not a little-endian classic pcap (the simulator writes those)")
    header = data[:_PCAP_HEADER]
    out_before, out_after = [header], [header]
    counts = [0, 0]
    pos, end, unpack = _PCAP_HEADER, len(data), _RECORD.unpack_from
    while pos + 16 <= end:
        sec, frac, incl, _orig = unpack(data, pos)
        nxt = pos + 16 + incl
        if nxt > end:
            break  # a truncated last record is left out
        later = sec + frac * scale >= cut_ts
        (out_after if later else out_before).append(data[pos:nxt])
        counts[later] += 1
        pos = nxt
    before.write_bytes(b"".join(out_before))
    after.write_bytes(b"".join(out_after))
    return counts[0], counts[1]


def sensor_config(zones_yml: Path, learn_days: int) -> str:
    """The sensor's config for an evaluation: the site's zones, and learning days when the sensor has baselines."""
    config = yaml.safe_load(zones_yml.read_text()) or {}
    if "baseline" in Config.model_fields:
        config["baseline"] = {**config.get("baseline", {}), "learning_days": learn_days}
    return yaml.safe_dump(config, sort_keys=False)


def replay(pcap: Path, config: Path, state: Path, logs: Path) -> dict[str, Any]:
    """`otwatch replay` in a subprocess; its JSON summary (a failure raises with its stderr)."""
    cmd = [sys.executable, "-m", "appliance", "replay", str(pcap), "--config", str(config), "--state", str(state),
           "--out", str(logs), "--json", "--no-progress"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"otwatch replay {pcap} failed ({done.returncode}): {done.stderr.strip()}")
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def _simulate(plan: EvalPlan, out: Path, days: int, scenario: Path | None) -> dict[str, Any]:
    from simulators.site import load_profile, load_scenario, simulate

    scenarios = [load_scenario(scenario, day=plan.learn_days)] if scenario is not None else []
    profile = load_profile(plan.profile)
    test_days = max(1, days - plan.learn_days)
    # the profile's benign novelty goes onto the test days (its day modulo their number): what is learned is the
    # site's routine; a camera onboarded or an engineer's session after learning is what must not cry wolf
    novelty = [n.model_copy(update={"day": plan.learn_days + n.day % test_days}) for n in profile.novelty]
    simulate(profile.model_copy(update={"novelty": novelty}), days, plan.seed, out, scenarios)
    truth: dict[str, Any] = json.loads((out / "truth.json").read_text())
    return truth


def run_evaluation(plan: EvalPlan, say: Callable[[str], None] = print) -> EvalResult:
    """Learn, test the benign days, then every scenario; the scores."""
    result = EvalResult()
    work = plan.work
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    began = time.perf_counter()
    say(f"simulating {plan.learn_days} learning + {plan.benign_days} benign test days ({plan.profile.name}, "
        f"seed {plan.seed})")  # fmt: skip
    benign = work / "benign"
    truth = _simulate(plan, benign, plan.learn_days + plan.benign_days, None)
    config = work / "otwatch.yml"
    config.write_text(sensor_config(benign / "zones.yml", plan.learn_days))
    cut = float(truth["first_ts"]) + plan.learn_days * DAY
    split_pcap(benign / "site.pcap", cut, benign / "learn.pcap", benign / "test.pcap")
    learned = work / "learned-state"
    say("replaying the learning days")
    replay(benign / "learn.pcap", config, learned, benign / "learn-logs")
    result.seconds["learn"] = time.perf_counter() - began
    shutil.copytree(learned, benign / "state")
    say("replaying the benign test days")
    replay(benign / "test.pcap", config, benign / "state", benign / "logs")
    incidents = latest_incidents(read_jsonl(benign / "logs" / "incidents.jsonl"))
    result.benign = score_benign(truth, read_jsonl(benign / "logs" / "alerts.jsonl"), incidents, plan.learn_days)
    result.incidents["benign"] = incidents
    for path in plan.scenarios:
        t0 = time.perf_counter()
        name = path.stem
        say(f"scenario {name}")
        out = work / "scenarios" / name
        truth = _simulate(plan, out, plan.learn_days + 1, path)
        cut = float(truth["first_ts"]) + plan.learn_days * DAY
        split_pcap(out / "site.pcap", cut, out / "learn.pcap", out / "test.pcap")
        (out / "learn.pcap").unlink()
        shutil.copytree(learned, out / "state")
        replay(out / "test.pcap", config, out / "state", out / "logs")
        incidents = latest_incidents(read_jsonl(out / "logs" / "incidents.jsonl"))
        steps = [s for s in truth["steps"] if s.get("scenario") != "benign"]
        result.steps.extend(score_steps(steps, read_jsonl(out / "logs" / "alerts.jsonl"), incidents))
        result.incidents[name] = incidents
        result.seconds[name] = time.perf_counter() - t0
    result.seconds["total"] = time.perf_counter() - began
    return result
