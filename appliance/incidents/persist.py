"""Incidents on disk: the SQLite `incidents` table (one row per incident, its record as JSON), operator actions in
the `actions` table, `incidents.jsonl` (one row per incident update) and the response rules files.

Operator state changes (acknowledge, close) go through `record_action`: one transaction inserts the action (who,
when) and updates the incident's row, so `otwatch incidents` shows it at once. A running sensor reads the actions
newer than the last one it applied before each save (`IncidentStore.sync`) and applies them to the incident it
holds, so its next save does not undo them. The web API thread may call `record_action` on its own connection.
"""

from __future__ import annotations

import getpass
import json
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

ACTIONS = {"ack": ("incident_ack", "acknowledged"), "close": ("incident_close", "closed")}
ACTION_STATES = {name: state for name, state in ACTIONS.values()}
LOG_NAME = "incidents.jsonl"
RULES_DIR = "response"

_UPSERT = """INSERT INTO incidents (incident_id, actor, state, severity, first_ts, last_ts, data)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (incident_id) DO UPDATE SET actor = excluded.actor, state = excluded.state,
    severity = excluded.severity, first_ts = excluded.first_ts, last_ts = excluded.last_ts, data = excluded.data"""


class IncidentError(ValueError):
    """An operator action that cannot be done (no such incident, already closed); the message says why."""


def dumps(row: dict[str, Any]) -> str:
    """Compact JSON of a record (stable: the row's own key order); orjson, about ten times the stdlib's speed."""
    try:
        return orjson.dumps(row).decode()
    except TypeError:  # orjson.JSONEncodeError: a non-str key or an integer beyond 64 bits: the stdlib takes them
        return json.dumps(row, separators=(",", ":"), ensure_ascii=False)


def save_rows(conn: sqlite3.Connection, rows: Iterable[tuple[dict[str, Any], str]]) -> None:
    """Insert or update incidents from (record, its JSON text) pairs (in the caller's transaction)."""
    conn.executemany(
        _UPSERT,
        [(r["incident_id"], r["actor"], r["state"], r["severity"], r["first_ts"], r["last_ts"], text)
         for r, text in rows],
    )  # fmt: skip


def load_rows(conn: sqlite3.Connection, include_closed: bool = True) -> tuple[list[dict[str, Any]], int]:
    """Stored records by first time (closed ones too unless told), and how many rows were unreadable."""
    sql = "SELECT data FROM incidents" + ("" if include_closed else " WHERE state != 'closed'")
    out, bad = [], 0
    for (data,) in conn.execute(sql + " ORDER BY first_ts, incident_id"):
        try:
            row = json.loads(data)
        except ValueError:
            bad += 1
            continue
        if isinstance(row, dict) and "incident_id" in row:
            out.append(row)
        else:
            bad += 1
    return out, bad


def last_action_seq(conn: sqlite3.Connection) -> int:
    """The sequence number of the newest operator action (0 when none)."""
    row = conn.execute("SELECT MAX(seq) FROM actions").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def actions_since(conn: sqlite3.Connection, seq: int) -> list[tuple[int, float, str, str, dict[str, Any]]]:
    """Incident actions after `seq`: (seq, ts, who, action, data), oldest first."""
    out = []
    names = tuple(ACTION_STATES)
    marks = ", ".join("?" for _ in names)
    sql = f"SELECT seq, ts, who, action, data FROM actions WHERE seq > ? AND action IN ({marks}) ORDER BY seq"
    for s, ts, who, action, data in conn.execute(sql, (seq, *names)):
        try:
            parsed = json.loads(data)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            out.append((int(s), float(ts), str(who), str(action), parsed))
    return out


def default_who() -> str:
    """The login name of the user running the command."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def record_action(
    conn: sqlite3.Connection, incident_id: str, action: str, who: str, ts: float | None = None
) -> dict[str, Any]:
    """Acknowledge or close an incident (action 'ack' or 'close'): record who and when in `actions` and update the
    incident's row, in one transaction. Returns the updated record; raises IncidentError when it cannot be done."""
    if action not in ACTIONS:
        raise IncidentError(f"unknown action {action!r} (ack or close)")
    name, state = ACTIONS[action]
    when = time.time() if ts is None else ts
    if conn.in_transaction:
        conn.commit()
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = conn.execute("SELECT data FROM incidents WHERE incident_id = ?", (incident_id,)).fetchone()
        if found is None:
            raise IncidentError(f"no incident {incident_id!r} in the state database (see `otwatch incidents --all`)")
        row = json.loads(found[0])
        current = row.get("state")
        if current == "closed":
            raise IncidentError(f"incident {incident_id} is closed already")
        if current == state:
            raise IncidentError(f"incident {incident_id} is {state} already")
        data = {"incident_id": incident_id, "state": state, "previous": current}
        cur = conn.execute(
            "INSERT INTO actions (ts, who, action, data) VALUES (?, ?, ?, ?)", (when, who, name, dumps(data))
        )
        seq = int(cur.lastrowid or 0)
        row["state"] = state
        row["version"] = int(row.get("version", 0)) + 1
        row.setdefault("history", []).append({"ts": when, "who": who, "action": action, "state": state, "seq": seq})
        if state == "closed":
            row["closed_reason"] = "operator"
        conn.execute("UPDATE incidents SET state = ?, data = ? WHERE incident_id = ?", (state, dumps(row), incident_id))
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return dict(row)


class IncidentLog:
    """Appends one JSON line per incident update to `incidents.jsonl` (opened and closed per row: updates are rare,
    and a row written is on disk whatever happens next)."""

    def __init__(self, log_dir: Path) -> None:
        self.path = Path(log_dir) / LOG_NAME
        self.rows = 0

    def write(self, row: dict[str, Any]) -> None:
        """Append one record."""
        self.write_text(dumps(row))

    def write_text(self, text: str) -> None:
        """Append one record already encoded by `dumps`."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(text + "\n")
        self.rows += 1


def rules_path(state_dir: Path, incident_id: str) -> Path:
    """Where an incident's recommended rules are written when `incidents.enforce` is true."""
    return Path(state_dir) / RULES_DIR / f"{incident_id}.nft"


def write_rules(state_dir: Path, row: dict[str, Any]) -> Path | None:
    """Write (live incident) or remove (closed one) the rules file of an incident; never runs nft."""
    path = rules_path(state_dir, row["incident_id"])
    if row.get("state") == "closed":
        path.unlink(missing_ok=True)
        return None
    response = row.get("response") or {}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".nft.tmp")
    tmp.write_text(f"{response.get('nftables_block', '')}\n{response.get('nftables_quarantine', '')}", "utf-8")
    tmp.replace(path)
    return path
