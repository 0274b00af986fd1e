"""IncidentStore: the owner of the incidents (pipeline thread), and the immutable rows other threads read.

The pipeline hands it every raised alert (`on_alert`) and the passing of packet time (`tick`). Each change to an
incident bumps its `version`, rebuilds its full record, hands the record to the listeners (alert sinks: `subscribe`;
incidents.jsonl takes its JSON text: `subscribe_text`) and publishes it for readers (`snapshot`, `asset_risk`: safe
from any thread; they read records swapped in whole, never mutated). Updates are coalesced so that what the
listeners get grows with what is new, not with the square of an incident's size (every row is the whole record, up
to about a megabyte): a change that adds no phase, technique or severity and leaves the state is held until the
incident's last record size / LOG_RATE seconds of packet time have passed since its last update (a 100 kB record: 50
s), and a large incident (LARGE timeline entries or more) is rebuilt at most once per REBUILD_EVERY second whatever
changed. What is held is published, as one update, by the next alert or tick once due, by a sync at its packet time
once due, and by a sync without a time (the end of a replay, a stopping sensor) at once; a live sensor ticks on an
idle link too. `load` resumes the live incidents of the state database; `sync` applies the operator actions recorded
since and saves the changed incidents (each update batch: the end of a replay, the sensor's save interval).
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.alert import Alert
from appliance.incidents.correlate import Correlator
from appliance.incidents.facts import AssetLookup, StaticLookup
from appliance.incidents.model import SEVERITY_RANK, Incident
from appliance.incidents.persist import (
    ACTION_STATES,
    actions_since,
    dumps,
    last_action_seq,
    load_rows,
    save_rows,
    write_rules,
)
from appliance.incidents.risk import RiskScore, asset_parts, combine
from appliance.incidents.rows import build_row, incident_from_row
from appliance.incidents.settings import IncidentSettings
from appliance.store import Store

Listener = Callable[[dict[str, Any]], None]
TextListener = Callable[[str], None]
LARGE = 100  # timeline entries from which an incident's record is rebuilt at most every REBUILD_EVERY seconds
REBUILD_EVERY = 1.0  # seconds of packet time
LOG_RATE = 2048.0  # record bytes per second of packet time an incident's routine updates may average
Signature = tuple[str, frozenset[str], frozenset[str], int]


def signature(inc: Incident) -> Signature:
    """What makes an update worth publishing at once: state, phases, techniques, top alert severity (the record's
    severity follows from the last two)."""
    phases: set[str] = set()
    techniques: set[str] = set()
    top = 0
    for e in inc.entries:
        phases.update(e.phases)
        techniques.update(e.techniques)
        rank = SEVERITY_RANK.get(e.severity, 0)
        if rank > top:
            top = rank
    return inc.state, frozenset(phases), frozenset(techniques), top


class IncidentStore:
    """Correlates alerts into incidents, keeps them, publishes their records and saves them."""

    def __init__(self, settings: IncidentSettings | None = None, lookup: AssetLookup | None = None) -> None:
        self.settings = settings or IncidentSettings()
        self.correlator = Correlator(self.settings, lookup or StaticLookup())
        self.listeners: list[Listener] = []
        self.text_listeners: list[TextListener] = []
        self.updates = 0  # incident updates (rows emitted) by this process
        self.skipped_rows = 0  # stored rows that could not be read back
        self.listener_errors = 0
        self._dirty: dict[str, tuple[dict[str, Any], str]] = {}  # id -> (record, JSON) not saved yet
        self._published: dict[str, str] = {}  # id -> record JSON (live and recently closed), replaced whole
        self._parts: dict[str, dict[str, dict[str, tuple[int, str]]]] = {}  # live id -> per-asset risk parts
        self._closed: list[str] = []  # ids of closed incidents still published, oldest first
        self._seq = 0  # the last operator action applied
        self._built: dict[str, float] = {}  # live id -> packet time its record was last rebuilt
        self._wait: dict[str, float] = {}  # live id -> seconds of packet time a routine update waits after that
        self._signed: dict[str, Signature] = {}  # live id -> signature of the last record published
        self._later: dict[str, tuple[Incident, float]] = {}  # held changes: id -> (incident, packet time due)

    # ---- input (pipeline thread) ----

    def subscribe(self, listener: Listener) -> None:
        """Call `listener(record)` on every incident update (pipeline thread; exceptions counted, not raised)."""
        self.listeners.append(listener)

    def subscribe_text(self, listener: TextListener) -> None:
        """Call `listener(json_text)` on every incident update: the record as the store encoded it (persist.dumps),
        for a listener that would only encode it again (incidents.jsonl)."""
        self.text_listeners.append(listener)

    def on_alert(self, alert: Alert) -> None:
        """Correlate one raised alert."""
        for inc in self.correlator.add(alert):
            self._changed(inc, alert.ts)
        if self._later:
            self.flush(alert.ts)

    def tick(self, now: float) -> None:
        """Packet time reached `now`: close idle incidents, publish the large ones whose update was held."""
        for inc in self.correlator.expire(now):
            self._changed(inc, now)
        self.flush(now)

    def _changed(self, inc: Incident, ts: float) -> None:
        """An incident changed: its record is rebuilt and published now, or held (see the module's docstring)."""
        iid = inc.incident_id
        built = self._built.get(iid)
        sig = None
        if inc.live and built is not None:
            sig = signature(inc)
            if sig == self._signed.get(iid):
                due = built + self._wait.get(iid, 0.0)
            else:
                due = built + (REBUILD_EVERY if len(inc.entries) >= LARGE else 0.0)
            if ts < due:
                held = self._later.get(iid)
                self._later[iid] = (inc, due if held is None else min(due, held[1]))
                return
        self._later.pop(iid, None)
        self._built[iid] = ts
        self._updated(inc, sig)

    def flush(self, now: float | None = None) -> None:
        """Publish the held updates that are due at packet time `now` (all of them when `now` is None)."""
        for incident_id, (inc, due) in list(self._later.items()):
            if now is None or now >= due:
                del self._later[incident_id]
                self._built[incident_id] = now if now is not None else inc.last_ts
                self._updated(inc)

    def _updated(self, inc: Incident, sig: Signature | None = None) -> None:
        """Rebuild, record and publish an incident's record (`sig`: its signature, when the caller has it)."""
        iid = inc.incident_id
        inc.version += 1
        self.updates += 1
        row, _risk = build_row(inc, self.settings.enforce)
        text = dumps(row)
        if inc.live:
            self._wait[iid] = max(REBUILD_EVERY if len(inc.entries) >= LARGE else 0.0, len(text) / LOG_RATE)
            self._signed[iid] = sig if sig is not None else signature(inc)
        else:
            self._built.pop(iid, None)
            self._wait.pop(iid, None)
            self._signed.pop(iid, None)
        self._dirty[inc.incident_id] = (row, text)
        self._publish(inc, text)
        for text_listener in self.text_listeners:
            self._call(text_listener, text)
        for listener in self.listeners:
            self._call(listener, row)

    def _call(self, listener: Callable[[Any], None], arg: object) -> None:
        """One listener on one update; its failure is counted and reported once, never raised."""
        try:
            listener(arg)
        except Exception as exc:  # a sink's failure must not stop the pipeline
            self.listener_errors += 1
            if self.listener_errors == 1:
                print(f"otwatch: incident listener failed: {type(exc).__name__}: {exc}", file=sys.stderr)

    def _publish(self, inc: Incident, text: str) -> None:
        published = dict(self._published)
        published[inc.incident_id] = text
        parts = dict(self._parts)
        if inc.live:
            parts[inc.incident_id] = asset_parts(inc.entries, inc.assets, inc.actors)
        else:
            parts.pop(inc.incident_id, None)
            if inc.incident_id not in self._closed:
                self._closed.append(inc.incident_id)
            while len(self._closed) > self.settings.max_closed_kept:
                published.pop(self._closed.pop(0), None)
        self._published, self._parts = published, parts

    # ---- persistence (pipeline thread) ----

    def load(self, store: Store) -> int:
        """Resume the live (open and acknowledged) incidents of the state database; returns how many."""
        conn = store.connection
        rows, bad = load_rows(conn, include_closed=False)
        self.skipped_rows += bad
        n = 0
        for row in rows:
            try:
                inc = incident_from_row(row)
            except (KeyError, ValueError, TypeError):
                self.skipped_rows += 1
                continue
            self.correlator.adopt(inc)
            self._publish(inc, dumps(row))
            n += 1
        self._seq = last_action_seq(conn)
        return n

    def apply_actions(self, conn: sqlite3.Connection) -> int:
        """Apply the operator actions recorded since the last applied one to the incidents held; returns how many
        changed an incident."""
        n = 0
        for seq, ts, who, action, data in actions_since(conn, self._seq):
            self._seq = seq
            inc = self.correlator.live.get(str(data.get("incident_id")))
            if inc is None or any(h.get("seq") == seq for h in inc.history):
                continue
            state = ACTION_STATES[action]
            verb = "ack" if state == "acknowledged" else "close"
            if state == "closed":
                self.correlator.close(inc, ts, "operator", who, seq)
            elif not inc.set_state(state, ts, who, verb, seq):
                continue
            self._later.pop(inc.incident_id, None)
            self._updated(inc)
            n += 1
        return n

    def sync(self, store: Store, now: float | None = None) -> int:
        """Close the incidents idle at packet time `now` (if given), apply new operator actions, then save the
        incidents published since the last sync (one transaction: with `now`, held updates not yet due wait for a
        later sync; without, all are published first); with `enforce`, write their rules files. Returns how many
        incidents were saved."""
        if now:
            self.tick(now)
        conn = store.connection
        if conn.in_transaction:
            conn.commit()
        conn.execute("BEGIN IMMEDIATE")
        try:
            self.apply_actions(conn)
            self.flush(now or None)  # at a packet time: what is due; without one: everything held
            dirty, self._dirty = self._dirty, {}
            save_rows(conn, dirty.values())
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        if self.settings.enforce:
            state_dir = Path(store.path).parent
            for row, _text in dirty.values():
                write_rules(state_dir, row)
        return len(dirty)

    # ---- readers (any thread) ----

    def snapshot(self) -> list[dict[str, Any]]:
        """Every live and recently closed incident record, by first time (fresh copies the caller may keep)."""
        rows = [json.loads(text) for text in self._published.values()]
        rows.sort(key=lambda r: (r["first_ts"], r["incident_id"]))
        return rows

    def asset_risk(self) -> dict[str, RiskScore]:
        """The risk of every address named by a live incident (each factor's highest points across incidents)."""
        return combine(self._parts.values())

    def counts(self) -> dict[str, int]:
        """Published incidents by state."""
        states: Counter[str] = Counter()
        for row in self.snapshot():
            states[row["state"]] += 1
        return {s: states[s] for s in ("open", "acknowledged", "closed")}

    @property
    def live(self) -> int:
        """How many incidents are open or acknowledged (pipeline thread)."""
        return len(self.correlator.live)
