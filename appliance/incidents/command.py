"""`otwatch incidents`: the incidents of the state database as a table or JSON, and the operator's state changes
(`otwatch incidents ack|close ID [--who NAME]`, recorded in the `actions` table with who and when)."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from appliance.incidents.persist import IncidentError, default_who, load_rows, record_action
from appliance.store import DB_NAME, Store, StoreError
from appliance.tables import render_table

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
COLUMNS = ("ID", "STATE", "SEVERITY", "RISK", "ACTOR", "PHASES", "TITLE", "FIRST", "LAST")
SHORT = {"it_recon": "recon", "credential_access": "creds", "pivot_into_ot": "pivot", "ot_discovery": "ot-disc",
         "impair": "impair"}  # fmt: skip


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """The `incidents` subcommand's arguments (called by appliance.cli.build_parser)."""
    inc = sub.add_parser(
        "incidents",
        parents=[common],
        help="show incidents, or acknowledge or close one",
        description="Print the open and acknowledged incidents of the state directory (--all: closed ones too) as "
        "a table or, with --json, their full records; or acknowledge or close one (`ack ID`, `close ID`), recorded "
        "with who and when.",
    )
    inc.add_argument("action", nargs="?", choices=("ack", "close"), help="change an incident's state")
    inc.add_argument("incident_id", nargs="?", metavar="ID", help="the incident to acknowledge or close")
    inc.add_argument("--json", action="store_true", help="one JSON record per incident instead of a table")
    inc.add_argument("--all", action="store_true", help="closed incidents too")
    inc.add_argument("--who", help="who acknowledges or closes (default: your login name)")


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) if ts else "-"


def table_row(r: dict[str, Any]) -> tuple[str, ...]:
    """Table cells of one incident record."""
    return (
        str(r.get("incident_id", "")), str(r.get("state", "")), str(r.get("severity", "")), str(r.get("risk", "")),
        str(r.get("actor", "")), ">".join(SHORT.get(p, p) for p in r.get("phases") or ()) or "-",
        str(r.get("title", "")), _when(float(r.get("first_ts") or 0)), _when(float(r.get("last_ts") or 0)),
    )  # fmt: skip


def _fail(message: str, code: int = EXIT_ERROR) -> int:
    print(f"otwatch: {message}", file=sys.stderr)
    return code


def incidents_command(args: argparse.Namespace, state_dir: Path) -> int:
    """List incidents, or acknowledge or close one."""
    if args.action is not None:
        if not args.incident_id:
            return _fail(f"incidents {args.action}: give the incident ID (see `otwatch incidents`)", EXIT_USAGE)
        return _change(state_dir, args.action, args.incident_id, args.who or default_who())
    if args.incident_id:
        return _fail("incidents: an ID needs an action first (`otwatch incidents ack ID`)", EXIT_USAGE)
    try:
        store = Store.open_readonly(state_dir)
    except (OSError, ValueError) as exc:
        return _fail(str(exc))
    try:
        rows, bad = load_rows(store.connection, include_closed=args.all)
    except sqlite3.DatabaseError as exc:
        return _fail(f"{store.path}: cannot read incidents: {exc}")
    finally:
        store.close()
    if bad:
        print(f"otwatch: {bad} unreadable incident row(s) skipped", file=sys.stderr)
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return EXIT_OK
    if not rows:
        print(f"no {'' if args.all else 'open '}incidents in {state_dir}")
        return EXIT_OK
    print(render_table([table_row(r) for r in rows], COLUMNS, cap=100))
    return EXIT_OK


def _change(state_dir: Path, action: str, incident_id: str, who: str) -> int:
    if not (Path(state_dir) / DB_NAME).is_file():
        return _fail(f"no otwatch database at {Path(state_dir) / DB_NAME} (give another with --state DIR)")
    try:
        with Store(state_dir) as store:
            row = record_action(store.connection, incident_id, action, who)
    except IncidentError as exc:
        return _fail(str(exc))
    except (StoreError, sqlite3.DatabaseError) as exc:
        return _fail(f"cannot record the action: {exc}")
    print(f"{incident_id}: {row['state']} by {who}")
    return EXIT_OK
