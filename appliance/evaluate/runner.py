"""`otwatch evaluate`: the simulator's scenarios against the sensor, offline, learning days then test days.

One benign simulation of LEARN + BENIGN days is cut at the end of the learning days: the sensor replays the learning
part into a state directory (inventory, baselines), and a copy of that state replays the benign test days (false
alerts). The profile's benign novelty is moved onto the first test day (every test day after it stays quiet), so a
run with two or more benign days measures both kinds of day. Each scenario is simulated without novelty up to its
test day, the first after learning, or for a scenario set inside a maintenance window, the first test day with that
window (its file's weekday); that day alone is replayed into another copy of the learned state and scored against
the ground truth. Scenarios run in parallel worker processes; replays go through the real `otwatch replay` in a
subprocess, so what is measured is what a user runs.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
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
    jobs: int = 0  # worker processes for the scenarios (0: one per CPU)
    keep: bool = False  # keep the pcaps and every protocol log (a simulated day's logs take ~450 MB)


@dataclass
class EvalResult:
    """Every step's score, the benign score, and timings."""

    steps: list[StepScore] = field(default_factory=list)
    benign: BenignScore | None = None
    incidents: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # scenario -> its incidents
    seconds: dict[str, float] = field(default_factory=dict)


def split_pcap(src: Path, cut_ts: float, before: Path | None, after: Path) -> tuple[int, int]:
    """Write the records of a little-endian classic pcap before and from `cut_ts` into two files (the first left
    out when `before` is None); their counts."""
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
    if before is not None:
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


def _simulate(plan: EvalPlan, out: Path, days: int, scenario: Any = None) -> dict[str, Any]:
    """Simulate `days` days of the profile: benign (novelty on the first test day) or with one scenario (no
    novelty: its test day is the site's routine and the attack)."""
    from simulators.site import load_profile, simulate

    profile = load_profile(plan.profile)
    if scenario is None:
        novelty = [n.model_copy(update={"day": plan.learn_days}) for n in profile.novelty]
        scenarios = []
    else:
        novelty, scenarios = [], [scenario]
    simulate(profile.model_copy(update={"novelty": novelty}), days, plan.seed, out, scenarios)
    truth: dict[str, Any] = json.loads((out / "truth.json").read_text())
    return truth


def scenario_day(plan: EvalPlan, path: Path) -> int:
    """The simulated day a scenario is played on: the first test day, or for one whose file sets it inside a
    maintenance window of the profile, the first test day on the same weekday (so the window is there)."""
    from simulators.site import load_profile, load_scenario
    from simulators.site.profile import parse_hhmm

    profile = load_profile(plan.profile)
    sc = load_scenario(path)
    start = profile.start_ts()
    weekday = time.gmtime(start + sc.day * DAY).tm_wday
    at = parse_hhmm(sc.time) / 3600.0
    windows = [m for m in profile.schedule.maintenance
               if m.weekday == weekday and 0 <= at - parse_hhmm(m.start) / 3600.0 < m.hours]  # fmt: skip
    if not windows:
        return plan.learn_days
    first_weekday = time.gmtime(start + plan.learn_days * DAY).tm_wday
    return plan.learn_days + (weekday - first_weekday) % 7


KEPT_LOGS = frozenset({"alerts.jsonl", "incidents.jsonl", "weird.jsonl", "assets.jsonl"})


def tidy(plan: EvalPlan, *paths: Path) -> None:
    """Unless the plan keeps everything: remove the pcaps and, in log directories, every log but the alerts,
    incidents, weird records and assets (what the score and a reader of the result need)."""
    if plan.keep:
        return
    for path in paths:
        if path.is_dir():
            for log in path.glob("*.jsonl"):
                if log.name not in KEPT_LOGS:
                    log.unlink()
        elif path.suffix == ".pcap":
            path.unlink(missing_ok=True)


def run_scenario(plan: EvalPlan, path: Path, learned: Path, config: Path) -> tuple[list[StepScore], list[Any], float]:
    """Simulate, cut, replay and score one scenario (in a worker process): its steps, incidents and seconds."""
    from simulators.site import load_scenario

    t0 = time.perf_counter()
    out = plan.work / "scenarios" / path.stem
    day = scenario_day(plan, path)
    truth = _simulate(plan, out, day + 1, load_scenario(path, day=day))
    cut = float(truth["first_ts"]) + day * DAY
    split_pcap(out / "site.pcap", cut, None, out / "test.pcap")
    (out / "site.pcap").unlink()  # up to 9 simulated days: only the test day is kept (disk)
    shutil.copytree(learned, out / "state")
    replay(out / "test.pcap", config, out / "state", out / "logs")
    incidents = latest_incidents(read_jsonl(out / "logs" / "incidents.jsonl"))
    steps = [s for s in truth["steps"] if s.get("scenario") != "benign"]
    scores = score_steps(steps, read_jsonl(out / "logs" / "alerts.jsonl"), incidents)
    tidy(plan, out / "test.pcap", out / "logs")
    return scores, incidents, time.perf_counter() - t0


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
    (benign / "site.pcap").unlink()
    learned = work / "learned-state"
    say("replaying the learning days")
    replay(benign / "learn.pcap", config, learned, benign / "learn-logs")
    result.seconds["learn"] = time.perf_counter() - began
    jobs = max(1, min(plan.jobs or os.cpu_count() or 1, len(plan.scenarios) or 1))
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [(path, pool.submit(run_scenario, plan, path, learned, config)) for path in plan.scenarios]
        shutil.copytree(learned, benign / "state")
        say("replaying the benign test days")
        replay(benign / "test.pcap", config, benign / "state", benign / "logs")
        incidents = latest_incidents(read_jsonl(benign / "logs" / "incidents.jsonl"))
        result.benign = score_benign(truth, read_jsonl(benign / "logs" / "alerts.jsonl"), incidents, plan.learn_days)
        result.incidents["benign"] = incidents
        tidy(plan, benign / "learn.pcap", benign / "test.pcap", benign / "learn-logs", benign / "logs")
        for path, future in futures:  # in the order given, whatever order they finish in
            scores, incidents, seconds = future.result()
            say(f"scenario {path.stem} ({seconds:.0f} s)")
            result.steps.extend(scores)
            result.incidents[path.stem] = incidents
            result.seconds[path.stem] = seconds
    result.seconds["total"] = time.perf_counter() - began
    return result
