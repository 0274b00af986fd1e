"""The incident as the engine keeps it (pipeline thread): its timeline entries, assets, state and history.

An `Entry` is one alert on the timeline; a later alert with the same dedupe key updates that entry's count and
last time instead of adding a row (the engine already counts repeats inside its suppression interval; a repeat
after it lands here). The derived parts of the record (severity, phases, techniques, risk, title, narrative,
response) are computed from these facts by `appliance.incidents.rows` whenever the incident changes.
"""

from __future__ import annotations

import hashlib
import time
from bisect import insort
from dataclasses import dataclass, field
from typing import Any

from appliance.alert import SEVERITIES
from appliance.incidents.facts import AssetFacts
from appliance.incidents.phases import order

STATES = ("open", "acknowledged", "closed")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
MAX_ENTRIES = 500  # timeline entries kept; beyond, an alert merges into the latest entry of its kind
MAX_ASSETS = 500  # addresses kept per incident
MAX_TARGETS = 20  # targets kept per entry
MAX_UIDS = 10  # evidence uids kept per entry


def make_id(ts: float, actor: str) -> str:
    """A deterministic incident id from the first alert's packet time and the actor: INC-YYYYMMDD-HHMMSS-xxxxxx."""
    digest = hashlib.sha256(f"{actor}|{ts:.6f}".encode()).hexdigest()[:6]
    return f"INC-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(ts))}-{digest}"


@dataclass(slots=True)
class Entry:
    """One alert on an incident's timeline (repeats with the same key counted in `count`)."""

    ts: float
    last_ts: float
    count: int
    detector: str
    note: str
    severity: str
    score: float
    phases: tuple[str, ...]
    src: str
    targets: tuple[str, ...]
    explanation: str
    techniques: tuple[str, ...]
    key: str
    uids: tuple[str, ...]
    details: dict[str, Any]

    def __lt__(self, other: Entry) -> bool:
        return (self.ts, self.key) < (other.ts, other.key)

    @property
    def kind(self) -> tuple[str, str, str]:
        """(detector, note, src): what merges when the timeline is full."""
        return (self.detector, self.note, self.src)

    def to_dict(self) -> dict[str, Any]:
        """The timeline row."""
        return {
            "ts": self.ts, "last_ts": self.last_ts, "count": self.count, "detector": self.detector,
            "note": self.note, "severity": self.severity, "score": self.score, "phases": list(self.phases),
            "src": self.src, "targets": list(self.targets), "explanation": self.explanation,
            "techniques": list(self.techniques), "key": self.key, "uids": list(self.uids), "details": self.details,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Entry:
        """Back from `to_dict`."""
        severity = str(row["severity"])
        if severity not in SEVERITY_RANK:
            raise ValueError(f"timeline severity {severity!r} is not one of {', '.join(SEVERITIES)}")
        return cls(
            float(row["ts"]), float(row.get("last_ts", row["ts"])), int(row.get("count", 1)), str(row["detector"]),
            str(row["note"]), severity, float(row.get("score", 0.0)), order(row.get("phases") or ()),
            str(row["src"]), tuple(str(t) for t in row.get("targets") or ()), str(row.get("explanation", "")),
            tuple(str(t) for t in row.get("techniques") or ()), str(row["key"]),
            tuple(str(u) for u in row.get("uids") or ()), dict(row.get("details") or {}),
        )  # fmt: skip


@dataclass(slots=True)
class Incident:
    """Correlated alerts around one actor (and those that joined it): timeline, assets, state, history."""

    incident_id: str
    actor: str
    actors: list[str] = field(default_factory=list)
    state: str = "open"
    version: int = 0
    entries: list[Entry] = field(default_factory=list)
    assets: dict[str, AssetFacts] = field(default_factory=dict)
    asset_alerts: dict[str, int] = field(default_factory=dict)  # address -> alerts naming it
    history: list[dict[str, Any]] = field(default_factory=list)  # state changes: ts, who, action, state, seq
    closed_reason: str | None = None
    merged: int = 0  # alerts merged into an entry of their kind because the timeline was full
    alerts: int = 0  # alerts, repeats included
    keys: dict[str, Entry] = field(default_factory=dict)

    @property
    def first_ts(self) -> float:
        """Packet time of the first alert."""
        return self.entries[0].ts if self.entries else 0.0

    @property
    def last_ts(self) -> float:
        """Packet time of the latest alert (repeats included)."""
        return max((e.last_ts for e in self.entries), default=0.0)

    @property
    def live(self) -> bool:
        """True while the incident takes alerts (open or acknowledged)."""
        return self.state != "closed"

    def phases(self) -> tuple[str, ...]:
        """Phases reached, in kill-chain order."""
        return order(p for e in self.entries for p in e.phases)

    def add(self, entry: Entry) -> bool:
        """Put an alert's entry on the timeline; False when it was recorded already (the same key and time)."""
        known = self.keys.get(entry.key)
        if known is not None:
            if entry.ts <= known.last_ts and entry.ts >= known.ts:
                return False  # the same alert again (a capture replayed twice): nothing new
            known.count += entry.count
            known.last_ts = max(known.last_ts, entry.last_ts)
            if entry.ts < known.ts:  # an earlier repeat (captures replayed out of order)
                known.ts = entry.ts
                self.entries.sort()
            self.alerts += entry.count
            return True
        if len(self.entries) >= MAX_ENTRIES:
            same = [e for e in self.entries if e.kind == entry.kind]
            if same:
                latest = same[-1]
                latest.count += entry.count
                latest.last_ts = max(latest.last_ts, entry.last_ts)
                self.keys[entry.key] = latest
                self.merged += 1
                self.alerts += entry.count
                return True
        insort(self.entries, entry)
        self.keys[entry.key] = entry
        self.alerts += entry.count
        return True

    def note_asset(self, facts: AssetFacts) -> None:
        """Record (or refresh) what is known of an address involved."""
        if facts.ip in self.assets or len(self.assets) < MAX_ASSETS:
            self.assets[facts.ip] = facts
            self.asset_alerts[facts.ip] = self.asset_alerts.get(facts.ip, 0) + 1

    def set_state(self, state: str, ts: float, who: str, action: str, seq: int | None = None, **extra: Any) -> bool:
        """Move to `state` (recorded in the history); False when it is the state already."""
        if state not in STATES:
            raise ValueError(f"incident state {state!r} is not one of {', '.join(STATES)}")
        if state == self.state:
            return False
        self.state = state
        row: dict[str, Any] = {"ts": ts, "who": who, "action": action, "state": state}
        if seq is not None:
            row["seq"] = seq
        row.update(extra)
        self.history.append(row)
        return True
