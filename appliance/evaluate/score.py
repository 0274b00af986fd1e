"""Scoring a sensor run against the simulator's ground truth: per step, detected or not, by which alert, how fast,
in which incident with which phases; on benign days, false alerts per device-day and false incidents per site-day."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

GRACE = 300.0  # seconds after a step's end in which an alert still counts for it
EARLY = 0.5  # an alert this much before a step's first frame (timestamp rounding) still counts
DAY = 86400.0


@dataclass(frozen=True)
class StepScore:
    """One ground-truth step and what the sensor made of it."""

    scenario: str
    step: str
    actor_ip: str
    techniques: tuple[str, ...]
    t_start: float
    t_end: float
    detected: bool
    note: str = ""  # detector/note of the alert credited
    alert_techniques: tuple[str, ...] = ()
    technique_match: bool = False
    ttd: float | None = None  # seconds of packet time from the step's start to the first alert
    t_action: float | None = None  # the step's decisive write or command (single-action steps)
    ttd_action: float | None = None  # seconds from that frame to the first alert at or after it
    incident: str = ""
    phases: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready row."""
        return asdict(self)


@dataclass(frozen=True)
class BenignScore:
    """False alerts and incidents over benign test days, split into quiet days and days with benign novelty."""

    devices: int
    quiet_days: int
    novelty_days: int
    quiet_alerts: int
    novelty_alerts: int
    false_incidents: int
    alerts_by_note: dict[str, int] = field(default_factory=dict)

    @property
    def quiet_rate(self) -> float:
        """False alerts per device-day on quiet days."""
        return self.quiet_alerts / (self.devices * self.quiet_days) if self.quiet_days and self.devices else 0.0

    @property
    def novelty_rate(self) -> float:
        """False alerts per device-day on days with benign novelty."""
        return self.novelty_alerts / (self.devices * self.novelty_days) if self.novelty_days and self.devices else 0.0

    @property
    def incidents_per_site_day(self) -> float:
        """False incidents per site-day (both kinds of day)."""
        days = self.quiet_days + self.novelty_days
        return self.false_incidents / days if days else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary with the rates."""
        out = asdict(self)
        out.update(quiet_rate=self.quiet_rate, novelty_rate=self.novelty_rate,
                   incidents_per_site_day=self.incidents_per_site_day)  # fmt: skip
        return out


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file (none when it does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def latest_incidents(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last version of each incident from incidents.jsonl rows (one row per update)."""
    by_id: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = str(row.get("incident_id") or row.get("id") or "")
        if key and int(row.get("version", 0)) >= int(by_id.get(key, {}).get("version", -1)):
            by_id[key] = row
    return list(by_id.values())


def _involves(alert: dict[str, Any], ip: str) -> bool:
    return alert.get("src") == ip or ip in alert.get("assets", ())


def _after(window: Sequence[dict[str, Any]], t: float) -> float | None:
    """Seconds from `t` to the first alert of the window at or after it (EARLY allowed for rounding)."""
    later = [float(a["ts"]) for a in window if float(a["ts"]) >= t - EARLY]
    return max(0.0, later[0] - t) if later else None


def _incident_of(alert: dict[str, Any], incidents: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    key = alert.get("key")
    for incident in incidents:
        for entry in incident.get("timeline", ()):
            if entry.get("key") == key and abs(float(entry.get("ts", 0)) - float(alert["ts"])) < 1e-6:
                return incident
    for incident in incidents:  # no timeline with keys: the actor's incident spanning the alert
        if incident.get("actor") == alert.get("src") and (
            float(incident.get("first_ts", 0)) <= float(alert["ts"]) <= float(incident.get("last_ts", 0))
        ):
            return incident
    return None


def score_steps(
    steps: Sequence[dict[str, Any]], alerts: Sequence[dict[str, Any]], incidents: Sequence[dict[str, Any]]
) -> list[StepScore]:
    """Score each attack step by the alerts that involve its actor inside the step's window: from its first frame
    to GRACE after its last, but never into the next step of its scenario (an alert there belongs to that step).
    Time to detect runs to the first such alert; the alert credited is the first that carries one of the step's
    techniques, else the first."""
    ordered = sorted(alerts, key=lambda a: float(a["ts"]))
    attack = sorted((s for s in steps if s.get("scenario") != "benign"), key=lambda s: float(s["t_start"]))
    out = []
    for step in attack:
        actor, t0, t1 = step["actor_ip"], float(step["t_start"]), float(step["t_end"])
        later = [float(s["t_start"]) for s in attack if s["scenario"] == step["scenario"] and float(s["t_start"]) > t0]
        end = t1 + GRACE if not later else min(t1 + GRACE, max(t1, min(later)))
        wanted = set(step.get("techniques", ()))
        window = [a for a in ordered if t0 - EARLY <= float(a["ts"]) <= end and _involves(a, actor)]
        matching = [a for a in window if wanted & set(a.get("techniques", ()))]
        t_action = step.get("t_action")
        base = dict(scenario=step["scenario"], step=step["step"], actor_ip=actor, techniques=tuple(sorted(wanted)),
                    t_start=t0, t_end=t1, t_action=t_action)  # fmt: skip
        if not window:
            out.append(StepScore(**base, detected=False))
            continue
        chosen = (matching or window)[0]
        incident = _incident_of(chosen, incidents)
        out.append(StepScore(
            **base,
            detected=True,
            note=f"{chosen['detector']}/{chosen['note']}",
            alert_techniques=tuple(chosen.get("techniques", ())),
            technique_match=bool(matching),
            ttd=max(0.0, float(window[0]["ts"]) - t0),
            ttd_action=_after(window, float(t_action)) if t_action is not None else None,
            incident=str(incident.get("incident_id") or incident.get("id") or "") if incident else "",
            phases=tuple(incident.get("phases", ())) if incident else (),
        ))  # fmt: skip
    return out


def novelty_days(truth: dict[str, Any], first_day: int) -> set[int]:
    """Day indexes (from the capture's first day) with a benign-novelty row in the ground truth."""
    start = float(truth["first_ts"])
    return {
        int((float(row["t_start"]) - start) // DAY)
        for row in truth.get("steps", ())
        if row.get("scenario") == "benign" and int((float(row["t_start"]) - start) // DAY) >= first_day
    }


def score_benign(
    truth: dict[str, Any], alerts: Sequence[dict[str, Any]], incidents: Sequence[dict[str, Any]], first_test_day: int
) -> BenignScore:
    """Every alert on a test day of a benign capture is false; days are quiet or have benign novelty."""
    start = float(truth["first_ts"])
    days = int(truth["days"])
    novel = novelty_days(truth, first_test_day)
    quiet_alerts = novelty_alerts = 0
    by_note: dict[str, int] = {}
    for a in alerts:
        day = int((float(a["ts"]) - start) // DAY)
        if day < first_test_day:
            continue
        if day in novel:
            novelty_alerts += 1
        else:
            quiet_alerts += 1
        name = f"{a['detector']}/{a['note']}"
        by_note[name] = by_note.get(name, 0) + 1
    test_start = start + first_test_day * DAY
    false_incidents = sum(1 for i in incidents if float(i.get("first_ts", 0)) >= test_start)
    test_days = days - first_test_day
    return BenignScore(
        devices=len(truth.get("hosts", ())),
        quiet_days=test_days - len(novel),
        novelty_days=len(novel),
        quiet_alerts=quiet_alerts,
        novelty_alerts=novelty_alerts,
        false_incidents=false_incidents,
        alerts_by_note=dict(sorted(by_note.items())),
    )
