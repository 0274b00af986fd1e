"""`otwatch mode` and `otwatch learn`: the operator's side of the baseline, recorded in the `actions` table.

`otwatch mode` shows the mode and the learning progress kept in the state directory; `otwatch mode learn|protect`
switches it; `otwatch learn ID` accepts what an alert reported as normal (ID: the alert's `fact_id`, or its key).
Each is recorded with who and when; the sensor applies it at its next save (every `inventory.save_interval`
seconds) or its next start, at its current packet time.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from appliance.baseline.modes import MODES, Modes
from appliance.baseline.persist import LEARN_ACTION, MODE_ACTION, find_broken, record_action
from appliance.config import Config
from appliance.store import Store, StoreError

EXIT_OK, EXIT_ERROR = 0, 1


def default_who() -> str:
    """Who runs the command: the invoking user behind sudo, else the login name."""
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """The `mode` and `learn` subcommands' arguments (called by appliance.cli.build_parser)."""
    mode = sub.add_parser(
        "mode",
        parents=[common],
        help="show the baseline's mode and learning progress, or switch it (learn, protect)",
        description="Without an argument, print the mode (learn or protect), the learning progress and the last "
        "mode changes. `otwatch mode learn` makes the whole site learn until `otwatch mode protect`; `otwatch mode "
        "protect` ends learning now. Recorded with who and when; the sensor applies it at its next save or start.",
    )
    mode.add_argument("mode", nargs="?", choices=MODES, help="the mode to switch to")
    mode.add_argument("--who", help="who switches (default: your login name)")
    mode.add_argument("--json", action="store_true", help="print the state as JSON")
    learn = sub.add_parser(
        "learn",
        parents=[common],
        help="accept what an alert reported as normal (add it to the learned allow-list)",
        description="Add the fact an alert broke (a new edge, writer, point, value, topic, ...) to what the baseline "
        "knows as normal. ID is the alert's details.fact_id, or the alert's key. Recorded with who and when; the "
        "sensor applies it at its next save or start.",
    )
    learn.add_argument("alert", metavar="ALERT_KEY_OR_ID", help="the alert's fact_id or key")
    learn.add_argument("--who", help="who accepts it (default: your login name)")


def _fail(message: str) -> int:
    print(f"otwatch: {message}", file=sys.stderr)
    return EXIT_ERROR


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts)) if ts else "-"


def mode_command(args: argparse.Namespace, config: Config, state_dir: Path) -> int:
    """Show or switch the mode."""
    who = args.who or default_who()
    if args.mode is not None:
        try:
            with Store(state_dir) as store:
                seq = record_action(store.connection, who, MODE_ACTION, {"mode": args.mode})
        except (OSError, StoreError) as exc:
            return _fail(str(exc))
        print(f"recorded: mode {args.mode} by {who} (action {seq}); the sensor applies it at its next save or start")
        return EXIT_OK
    try:
        store = Store.open_readonly(state_dir)
    except (OSError, StoreError) as exc:
        return _fail(str(exc))
    with store:
        conn = store.connection
        row = conn.execute("SELECT data FROM baselines WHERE kind = 'state' AND key = 'baseline'").fetchone()
        actions = conn.execute(
            "SELECT seq, ts, who, data FROM actions WHERE action = ? ORDER BY seq DESC LIMIT 5", (MODE_ACTION,)
        ).fetchall()
    modes = Modes(config.baseline.learning_days, config.baseline.device_learning_days)
    applied = 0
    if row is not None:
        state = json.loads(row[0])
        modes.restore(state.get("modes", {}))
        applied = int(state.get("applied_seq", 0))
    p = modes.progress()
    pending = [a for a in actions if a[0] > applied]
    out = {"mode": p.mode, "fraction": p.fraction, "started": p.started, "ends": p.ends, "manual": p.manual,
           "who": p.who, "packet_time": modes.now or None,
           "changes": [{"seq": s, "ts": ts, "who": w, "mode": json.loads(d).get("mode"), "applied": s <= applied}
                       for s, ts, w, d in actions]}  # fmt: skip
    if args.json:
        print(json.dumps(out, indent=2))
        return EXIT_OK
    by = f" (set by {p.who})" if p.manual else ""
    print(f"mode         {p.mode}{by}")
    if p.mode == "learn" and p.ends is not None:
        print(f"learning     {p.fraction:.0%} done, from {_when(p.started)} to {_when(p.ends)} (packet time)")
    elif p.started is not None:
        print(f"since        {_when(p.started)} (packet time)")
    print(f"packet time  {_when(modes.now or None)}")
    for s, ts, w, d in actions:
        state = "pending" if (s, ts, w, d) in pending else "applied"
        print(f"change       {json.loads(d).get('mode')} by {w} at {_when(ts)} ({state})")
    return EXIT_OK


def learn_command(args: argparse.Namespace, config: Config, state_dir: Path) -> int:
    """Accept an alert's broken fact as normal."""
    who = args.who or default_who()
    try:
        with Store(state_dir) as store:
            found = find_broken(store.connection, args.alert)
            if found is None:
                return _fail(
                    f"no alert with fact id or key {args.alert!r} in {state_dir} (alerts of learned behaviour carry "
                    "details.fact_id; the sensor saves them at its next save, every inventory.save_interval seconds)"
                )
            fid, record = found
            seq = record_action(store.connection, who, LEARN_ACTION, {"fact_id": fid, **record})
    except (OSError, StoreError, ValueError) as exc:
        return _fail(str(exc))
    print(f"recorded: learn {record.get('kind')} {record.get('key')} (fact {fid}, alert {record.get('alert_key')}) "
          f"by {who} (action {seq}); the sensor applies it at its next save or start")  # fmt: skip
    return EXIT_OK
