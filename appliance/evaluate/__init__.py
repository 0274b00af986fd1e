"""The detection evaluation (`otwatch evaluate`, `make eval`): simulated scenarios against the sensor, scored."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from appliance.evaluate.report import as_json, checks, table
from appliance.evaluate.runner import EvalPlan, run_evaluation

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "simulators" / "profiles" / "scenarios"
PROFILE = SCENARIO_DIR.parent / "site-small.yml"

__all__ = ["EvalPlan", "evaluate_command", "run_evaluation"]


def evaluate_command(args: argparse.Namespace) -> int:
    """Run the evaluation, print the table (or JSON); 0 when every target passes, 1 otherwise, 2 on bad input."""
    scenarios = tuple(args.scenario) or tuple(sorted(SCENARIO_DIR.glob("*.yml")))
    for path in (args.profile, *scenarios):
        if not Path(path).is_file():
            print(f"otwatch: evaluate: no such file: {path}", file=sys.stderr)
            return 2
    if args.learn_days < 1 or args.benign_days < 1:
        print("otwatch: evaluate: --learn-days and --benign-days must be at least 1", file=sys.stderr)
        return 2
    plan = EvalPlan(args.profile, scenarios, args.learn_days, args.benign_days, args.seed, args.work, args.jobs,
                    args.keep)
    result = run_evaluation(plan, say=lambda line: print(line, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(as_json(result), indent=2))
    else:
        print(table(result))
    return 0 if all(c.ok for c in checks(result)) else 1


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `evaluate` subcommand's arguments."""
    ev = sub.add_parser(
        "evaluate",
        help="score the detectors against the simulator's scenarios (learning days, then test days)",
        description="Simulate benign learning days and test days of a site, then each scenario on a test day, "
        "replay them through `otwatch replay` and print, per scenario step, whether it was detected, by which "
        "alert and technique, how fast (packet time), in which incident with which phases; and false alerts per "
        "device-day on benign test days. Exits 1 when a target is missed.",
    )
    ev.add_argument("--profile", type=Path, default=PROFILE, help="site profile (default: site-small)")
    ev.add_argument("--scenario", type=Path, action="append", default=[],
                    help="scenario file, repeatable (default: every file in simulators/profiles/scenarios)")
    ev.add_argument("--learn-days", type=int, default=2, help="simulated learning days (default 2)")
    ev.add_argument("--benign-days", type=int, default=2, help="benign test days (default 2)")
    ev.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ev.add_argument("--work", type=Path, default=Path("out/eval"), help="work directory (emptied first)")
    ev.add_argument("--jobs", type=int, default=0, help="scenarios simulated and replayed at once (default: CPUs)")
    ev.add_argument("--keep", action="store_true",
                    help="keep the pcaps and every protocol log (about 0.5 GB a scenario; default: alerts, "
                    "incidents, weird records and assets only)")
    ev.add_argument("--json", action="store_true", help="print the result as JSON")
