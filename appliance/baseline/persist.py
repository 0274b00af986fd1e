"""The baseline in SQLite (the `baselines` table of appliance/store.py) and the operator's actions (`actions`).

Rows of `baselines` (kind, key, data): `state`/`baseline` the modes and counters; `fact:<kind>`/<key as JSON> one
learned fact; `channel`/<key> a polling channel's timing; `history`/<ip> a device's benign feature windows;
`model`/<entity> the rows a model was fitted on (refitted at load: the same model, fixed seed); `broken`/<fact id>
a fact an alert reported, for `otwatch learn`. `save` writes what changed since the last save, in one transaction;
`load` reads everything back, so a restarted sensor resumes where it stopped instead of relearning.

Operator actions (`otwatch mode`, `otwatch learn`) are rows of `actions` (ts: wall-clock time, who, action, data);
the sensor applies the ones it has not applied yet at load and at every save (`sync`), at its current packet time.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from appliance.baseline.core import Baseline, _extend
from appliance.baseline.facts import KINDS, key_from_text, key_text

MODE_ACTION = "baseline_mode"
LEARN_ACTION = "baseline_learn"


def _dump(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def save(baseline: Baseline, conn: sqlite3.Connection) -> None:
    """Write what changed since the last save (one transaction)."""
    upserts: list[tuple[str, str, str]] = []
    deletes: list[tuple[str, str]] = []
    changed, removed = baseline.facts.take_changes()
    for kind, rows in changed.items():
        upserts += [(f"fact:{kind}", key_text(key), _dump(value)) for key, value in rows]
    for kind, keys in removed.items():
        deletes += [(f"fact:{kind}", key_text(key)) for key in keys]
    for ckey in sorted(baseline.channel_dirty, key=key_text):
        ch = baseline.channels.get(ckey)
        if ch is not None:
            upserts.append(("channel", key_text(ckey), _dump(ch.to_dict())))
    baseline.channel_dirty.clear()
    for ip, data in baseline.models.histories_to_save():
        upserts.append(("history", ip, _dump(data)))
    models = baseline.models.models_to_save()
    for fid in sorted(baseline.broken_dirty):
        record = baseline.broken.get(fid)
        if record is None:
            deletes.append(("broken", fid))
        else:
            upserts.append(("broken", fid, _dump(record)))
    baseline.broken_dirty.clear()
    state = {"modes": baseline.modes.to_dict(), "applied_seq": baseline.applied_seq,
             "inherited": baseline.inherited, "cap_hits": dict(baseline.facts.cap_hits)}  # fmt: skip
    upserts.append(("state", "baseline", _dump(state)))
    with conn:
        if models is not None:
            conn.execute("DELETE FROM baselines WHERE kind = 'model'")
            upserts += [("model", entity, _dump(data)) for entity, data in models]
        conn.executemany(
            "INSERT INTO baselines (kind, key, data) VALUES (?, ?, ?) "
            "ON CONFLICT (kind, key) DO UPDATE SET data = excluded.data",
            upserts,
        )
        conn.executemany("DELETE FROM baselines WHERE kind = ? AND key = ?", deletes)


def load(baseline: Baseline, conn: sqlite3.Connection) -> int:
    """Read the saved baseline back into a fresh `Baseline`; returns the number of rows that could not be read."""
    bad = 0
    histories: list[tuple[str, dict[str, Any]]] = []
    models: list[tuple[str, dict[str, Any]]] = []
    kinds = {f"fact:{k}": k for k in KINDS}
    for kind, key, data in conn.execute("SELECT kind, key, data FROM baselines ORDER BY kind, rowid"):
        try:
            value = json.loads(data)
            if kind in kinds:
                fkey = key_from_text(key)
                baseline.facts.load(kinds[kind], fkey, value)
                if kind == "fact:asset" and isinstance(value, list):
                    baseline.assets[str(fkey[0])] = value
            elif kind == "channel":
                _load_channel(baseline, key_from_text(key), value)
            elif kind == "history":
                histories.append((key, value))
            elif kind == "model":
                models.append((key, value))
            elif kind == "broken":
                baseline.broken[key] = value
            elif kind == "state" and key == "baseline":
                baseline.modes.restore(value.get("modes", {}))
                baseline.applied_seq = int(value.get("applied_seq", 0))
                baseline.inherited.update({str(k): list(v) for k, v in value.get("inherited", {}).items()})
        except (ValueError, TypeError, KeyError, AttributeError, IndexError):
            bad += 1
    baseline.models.restore(histories, models)
    return bad


def _load_channel(baseline: Baseline, key: tuple[Any, ...], data: dict[str, Any]) -> None:
    from appliance.baseline.channels import Channel

    src, dst, protocol = str(key[0]), str(key[1]), str(key[2])
    ch = Channel(src, dst, protocol, tuple(str(p) for p in key[3:]), float(data.get("last", 0.0)))
    ch.restore(data)
    baseline.prepare(ch)
    baseline.channels[key] = ch
    if ch.timed:
        baseline.timed[key] = ch  # not `known`: its first request re-checks its facts (they were loaded)


def record_action(conn: sqlite3.Connection, who: str, action: str, data: dict[str, Any]) -> int:
    """Record an operator action (wall-clock time, who, what); returns its sequence number."""
    with conn:
        cur = conn.execute("INSERT INTO actions (ts, who, action, data) VALUES (?, ?, ?, ?)",
                           (time.time(), who, action, _dump(data)))  # fmt: skip
    return int(cur.lastrowid or 0)


def apply_actions(baseline: Baseline, conn: sqlite3.Connection) -> list[str]:
    """Apply the operator actions recorded since the last applied one; returns what was done, in words."""
    done = []
    rows = conn.execute(
        "SELECT seq, who, action, data FROM actions WHERE seq > ? AND action IN (?, ?) ORDER BY seq",
        (baseline.applied_seq, MODE_ACTION, LEARN_ACTION),
    ).fetchall()
    for seq, who, action, data in rows:
        baseline.applied_seq = max(baseline.applied_seq, int(seq))
        try:
            payload = json.loads(data)
        except ValueError:
            continue
        if action == MODE_ACTION and payload.get("mode") in ("learn", "protect"):
            baseline.modes.set_mode(payload["mode"], baseline.modes.now, str(who))
            done.append(f"mode {payload['mode']} (by {who})")
        elif action == LEARN_ACTION and accept(baseline, str(payload.get("fact_id", ""))):
            done.append(f"learned {payload.get('fact_id')} (by {who})")
    return done


def resume(baseline: Baseline, conn: sqlite3.Connection) -> list[str]:
    """Load the saved baseline and apply the operator actions recorded since (a sensor's start)."""
    load(baseline, conn)
    return apply_actions(baseline, conn)


def sync(baseline: Baseline, conn: sqlite3.Connection) -> list[str]:
    """Apply new operator actions, then save."""
    done = apply_actions(baseline, conn)
    save(baseline, conn)
    return done


def accept(baseline: Baseline, fid: str) -> bool:
    """Add a broken fact to what is normal ("learn this"); False when the id is unknown."""
    record = baseline.broken.get(fid)
    if record is None:
        return False
    kind, key, now = str(record["kind"]), tuple(record["key"]), baseline.modes.now
    value = record.get("value")
    if kind == "point":
        baseline.facts.add("point", key, _extend(None, value))
    elif kind == "value":
        baseline.facts.add("point", key, _extend(baseline.facts.get("point", key), value))
    elif kind in KINDS:
        baseline.facts.add(kind, key, now)
    elif kind in ("silence", "period"):
        ch = baseline.channels.get(key)
        if ch is not None:
            ch.period = float(record["observed"]) if kind == "period" else None
            ch.fixed = ch.period is not None
            ch.silent = ch.changed = False
            baseline.channel_dirty.add(key)
    elif kind == "anomaly":
        ip, vector = str(record.get("ip", "")), record.get("vector")
        hist = baseline.models.history.get(ip)
        if hist is not None and isinstance(vector, list):
            hist.append(tuple(float(v) for v in vector))
            baseline.models.dirty.add(ip)
    del baseline.broken[fid]
    baseline.broken_dirty.add(fid)
    return True


def find_broken(conn: sqlite3.Connection, key_or_id: str) -> tuple[str, dict[str, Any]] | None:
    """The broken fact an alert reported, by fact id or by the alert's key (None when not found)."""
    row = conn.execute("SELECT key, data FROM baselines WHERE kind = 'broken' AND key = ?", (key_or_id,)).fetchone()
    if row is not None:
        return str(row[0]), json.loads(row[1])
    found = None
    for fid, data in conn.execute("SELECT key, data FROM baselines WHERE kind = 'broken' ORDER BY rowid"):
        record = json.loads(data)
        if record.get("alert_key") == key_or_id:
            found = (str(fid), record)  # the latest alert with that key
    return found
