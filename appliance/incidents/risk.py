"""Risk scores: additive and explainable, per incident and per asset; each factor with its points and why.

Factors (points; the score is their sum, at most 100):
- zone_crossing: 25 when an IT, VPN or DMZ host reached an OT or BMS device, 10 when it reached an IoT device;
- asset_criticality: the most critical target by category (PLC and BMS controller 20, HMI/SCADA and engineering
  workstation 14, BMS workstation 12, ... IT host 4; an uncategorised address by its zone's domain);
- operation_severity: 20 for a command (restart, communication control, program download), 15 for a write;
- novelty: 10 when something never seen before is part of it (a new device, name or MAC; a baseline alert that
  says `novel: true` in its details);
- anomaly: up to 15, the highest `anomaly_score` (0-1) an alert carries in its details, times 15;
- phases: the kill-chain phases reached (IT recon 4, credential access 6, pivot into OT 10, OT discovery 6,
  impair 10).
Every factor is always listed (0 points when absent), so a dashboard can show the same bars for every asset.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from appliance.incidents.facts import IT_DOMAINS, OT_DOMAINS, AssetFacts
from appliance.incidents.model import Entry
from appliance.incidents.phases import NOVELTY, PHASE_LABELS, PHASES, order

FACTORS = ("zone_crossing", "asset_criticality", "operation_severity", "novelty", "anomaly", "phases")
PHASE_POINTS = {"it_recon": 4, "credential_access": 6, "pivot_into_ot": 10, "ot_discovery": 6, "impair": 10}
CROSSING_OT, CROSSING_IOT = 25, 10
OPERATION_POINTS = {"command": 20, "write": 15}
NOVELTY_POINTS = 10
ANOMALY_POINTS = 15
MAX_SCORE = 100
COMMAND_NOTES = frozenset({("ot_pivot", "device_control"), ("ot_pivot", "program_download")})


@dataclass(frozen=True, slots=True)
class RiskFactor:
    """One additive part of a risk score: its name, its points and why."""

    factor: str
    points: int
    why: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"factor": self.factor, "points": self.points, "why": self.why}


@dataclass(frozen=True, slots=True)
class RiskScore:
    """A score (0-100, the capped sum of its factors) with every factor."""

    score: int
    factors: tuple[RiskFactor, ...]

    def points(self, factor: str) -> int:
        """The points of one factor (0 when absent)."""
        return next((f.points for f in self.factors if f.factor == factor), 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"score": self.score, "factors": [f.to_dict() for f in self.factors]}


def make_score(parts: Mapping[str, tuple[int, str]]) -> RiskScore:
    """A RiskScore from {factor: (points, why)}; missing factors get 0 points."""
    factors = tuple(RiskFactor(name, *parts.get(name, (0, "none"))) for name in FACTORS)
    return RiskScore(min(MAX_SCORE, sum(f.points for f in factors)), factors)


def operation(entry: Entry) -> str | None:
    """'command', 'write' or None: what the alert's operation does to a device."""
    op_class = entry.details.get("op_class")
    if op_class in OPERATION_POINTS:
        return str(op_class)
    if (entry.detector, entry.note) in COMMAND_NOTES:
        return "command"
    return None


def anomaly_of(entry: Entry) -> float | None:
    """The anomaly score (0-1) an alert carries in its details, if any."""
    value = entry.details.get("anomaly_score")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return max(0.0, min(1.0, float(value)))
    return None


def novel(entry: Entry) -> bool:
    """True when the alert reports something never seen before."""
    return (entry.detector, entry.note) in NOVELTY or entry.details.get("novel") is True


def _facts(assets: Mapping[str, AssetFacts], ip: str) -> AssetFacts:
    return assets.get(ip) or AssetFacts(ip)


def _pair(e: Entry, src: AssetFacts, dst: AssetFacts) -> tuple[int, str]:
    """The zone-crossing points of one alert's actor reaching one target."""
    if src.domain not in IT_DOMAINS:
        return 0, "none"
    points = CROSSING_OT if dst.domain in OT_DOMAINS else CROSSING_IOT if dst.domain == "IoT" else 0
    if not points:
        return 0, "none"
    proto = e.details.get("protocol")
    return points, f"{src.describe()} reached {dst.describe()}" + (f" with {proto}" if proto else "")


def _crossing(entries: Iterable[Entry], assets: Mapping[str, AssetFacts]) -> tuple[int, str]:
    best: tuple[int, str] = (0, "none")
    for e in entries:
        src = _facts(assets, e.src)
        if src.domain not in IT_DOMAINS:
            continue
        for t in e.targets:
            found = _pair(e, src, _facts(assets, t))
            if found[0] > best[0]:
                best = found
    return best


def _criticality(ips: Iterable[str], assets: Mapping[str, AssetFacts]) -> tuple[int, str]:
    best: tuple[int, str] = (0, "none")
    for ip in ips:
        points, why = _facts(assets, ip).criticality()
        if points > best[0]:
            best = (points, f"{why}: {ip}")
    return best


def _operation(entries: Iterable[Entry]) -> tuple[int, str]:
    best: tuple[int, str] = (0, "none")
    for e in entries:
        kind = operation(e)
        if kind is not None and OPERATION_POINTS[kind] > best[0]:
            op = e.details.get("op") or e.note
            target = e.details.get("dst") or (e.targets[0] if e.targets else "")
            best = (OPERATION_POINTS[kind], f"{kind} {op}" + (f" to {target}" if target else ""))
    return best


def _novelty(entries: Iterable[Entry]) -> tuple[int, str]:
    for e in entries:
        if novel(e):
            return NOVELTY_POINTS, f"{e.note} of {e.src}"
    return 0, "none"


def _anomaly(entries: Iterable[Entry]) -> tuple[int, str]:
    best: tuple[float, Entry | None] = (-1.0, None)
    for e in entries:
        a = anomaly_of(e)
        if a is not None and a > best[0]:
            best = (a, e)
    if best[1] is None:
        return 0, "no anomaly score"
    return round(best[0] * ANOMALY_POINTS), f"anomaly score {best[0]:.2f} ({best[1].detector}/{best[1].note})"


def _phases(phases: Iterable[str]) -> tuple[int, str]:
    reached = order(phases)
    if not reached:
        return 0, "none"
    words = ", ".join(PHASE_LABELS[p] for p in reached)
    return sum(PHASE_POINTS[p] for p in reached), f"{words} ({len(reached)} of {len(PHASES)})"


def incident_risk(entries: list[Entry], assets: Mapping[str, AssetFacts], actors: Iterable[str]) -> RiskScore:
    """The risk score of an incident from its timeline and assets."""
    actor_set = set(actors)
    targets = [t for e in entries for t in e.targets if t not in actor_set] or list(actor_set)
    return make_score({
        "zone_crossing": _crossing(entries, assets),
        "asset_criticality": _criticality(targets, assets),
        "operation_severity": _operation(entries),
        "novelty": _novelty(entries),
        "anomaly": _anomaly(entries),
        "phases": _phases(p for e in entries for p in e.phases),
    })  # fmt: skip


def asset_parts(
    entries: list[Entry], assets: Mapping[str, AssetFacts], actors: Iterable[str]
) -> dict[str, dict[str, tuple[int, str]]]:
    """One incident's contribution to the risk of each address it names: {ip: {factor: (points, why)}}. An actor
    gets the crossings and phases of all its alerts; a target the crossings into it and the phases of the alerts
    that named it. One pass over the timeline (each alert's targets)."""
    actor_set = set(actors)
    out: dict[str, dict[str, tuple[int, str]]] = {}
    phases: dict[str, set[str]] = {}

    def bump(ip: str, factor: str, value: tuple[int, str]) -> None:
        parts = out.setdefault(ip, {})
        if value[0] > 0 and value[0] > parts.get(factor, (0, ""))[0]:
            parts[factor] = value

    for e in entries:
        named = list(dict.fromkeys((e.src, *e.targets)))
        operation_part, anomaly_part = _operation([e]), _anomaly([e])
        for ip in named:
            bump(ip, "operation_severity", operation_part)
            bump(ip, "anomaly", anomaly_part)
            phases.setdefault(ip, set()).update(e.phases)
        if novel(e):
            bump(e.src, "novelty", (NOVELTY_POINTS, f"{e.note} of {e.src}"))
        src = _facts(assets, e.src)
        for t in e.targets if src.domain in IT_DOMAINS else ():
            crossing = _pair(e, src, _facts(assets, t))
            bump(t, "zone_crossing", crossing)
            bump(e.src, "zone_crossing", crossing)
    every = {p for e in entries for p in e.phases}
    for ip, parts in out.items():
        bump(ip, "asset_criticality", _criticality([ip], assets))
        bump(ip, "phases", _phases(every if ip in actor_set else phases.get(ip, ())))
        out[ip] = {f: parts[f] for f in FACTORS if f in parts}
    return out


def combine(contributions: Iterable[Mapping[str, Mapping[str, tuple[int, str]]]]) -> dict[str, RiskScore]:
    """Per-asset scores from several incidents' contributions: each factor's highest points."""
    best: dict[str, dict[str, tuple[int, str]]] = {}
    for contribution in contributions:
        for ip, parts in contribution.items():
            mine = best.setdefault(ip, {})
            for factor, (points, why) in parts.items():
                if points > mine.get(factor, (-1, ""))[0]:
                    mine[factor] = (points, why)
    return {ip: make_score(parts) for ip, parts in sorted(best.items())}
