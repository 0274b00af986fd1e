"""The incident record (the incidents.jsonl row, the SQLite `data`, the API's row) built from an Incident's facts,
and an Incident read back from its record.

Record fields: incident_id, version, state, severity, risk (0-100), title, actor, actors, actor_hostnames,
first_ts, last_ts, alerts (repeats included), phase (the furthest reached), phases (kill-chain order),
phase_times (phase, label, first_ts, last_ts, alerts), techniques (ATT&CK ids), technique_names, assets (addresses),
asset_details (ip, role, zone, domain, purdue_level, category, hostnames, alerts), timeline (one row per alert key:
ts, last_ts, count, detector, note, severity, score, phases, src, targets, explanation, techniques, key, uids,
details), timeline_merged, uids, risk_factors (factor, points, why), narrative, response (blocks and nftables text;
never applied), history (state changes: ts, who, action, state), closed_reason.
"""

from __future__ import annotations

from typing import Any

from appliance.alert import SEVERITIES
from appliance.detectors.techniques import techniques as technique_table
from appliance.incidents.facts import AssetFacts
from appliance.incidents.model import SEVERITY_RANK, STATES, Entry, Incident
from appliance.incidents.narrative import narrative, title
from appliance.incidents.phases import PHASE_LABELS, PHASES, furthest
from appliance.incidents.response import response
from appliance.incidents.risk import RiskScore, incident_risk

MAX_UIDS = 50


def severity(entries: list[Entry], phases: tuple[str, ...]) -> str:
    """The highest severity of the alerts, raised to high at a pivot into OT and to critical at impair."""
    rank = max((SEVERITY_RANK[e.severity] for e in entries), default=0)
    if "pivot_into_ot" in phases or "ot_discovery" in phases:
        rank = max(rank, SEVERITY_RANK["high"])
    if "impair" in phases:
        rank = SEVERITY_RANK["critical"]
    return SEVERITIES[rank]


def phase_times(entries: list[Entry]) -> list[dict[str, Any]]:
    """Each phase reached, in kill-chain order, with its first and last time and how many alerts reached it."""
    seen: dict[str, dict[str, Any]] = {}
    for e in entries:
        for p in e.phases:
            row = seen.get(p)
            if row is None:
                seen[p] = {"phase": p, "label": PHASE_LABELS[p], "first_ts": e.ts, "last_ts": e.last_ts,
                           "alerts": e.count}  # fmt: skip
            else:
                row["first_ts"] = min(row["first_ts"], e.ts)
                row["last_ts"] = max(row["last_ts"], e.last_ts)
                row["alerts"] += e.count
    return [seen[p] for p in PHASES if p in seen]


def build_row(inc: Incident, enforce: bool = False) -> tuple[dict[str, Any], RiskScore]:
    """The full record of an incident, and its risk score."""
    entries = inc.entries
    phases = inc.phases()
    risk = incident_risk(entries, inc.assets, inc.actors)
    ids = sorted({t for e in entries for t in e.techniques})
    table = technique_table()
    actor_set = set(inc.actors)
    me = inc.assets.get(inc.actor) or AssetFacts(inc.actor)
    row: dict[str, Any] = {
        "incident_id": inc.incident_id,
        "version": inc.version,
        "state": inc.state,
        "severity": severity(entries, phases),
        "risk": risk.score,
        "title": title(entries, inc.assets, inc.actor, phases),
        "actor": inc.actor,
        "actors": list(inc.actors),
        "actor_hostnames": list(me.hostnames),
        "first_ts": inc.first_ts,
        "last_ts": inc.last_ts,
        "alerts": inc.alerts,
        "phase": furthest(phases),
        "phases": list(phases),
        "phase_times": phase_times(entries),
        "techniques": ids,
        "technique_names": {t: table[t].name for t in ids if t in table},
        "assets": list(inc.assets),
        "asset_details": [
            {**f.to_dict(), "role": "actor" if ip in actor_set else "target", "alerts": inc.asset_alerts.get(ip, 0)}
            for ip, f in inc.assets.items()
        ],
        "timeline": [e.to_dict() for e in entries],
        "timeline_merged": inc.merged,
        "uids": list(dict.fromkeys(u for e in entries for u in e.uids))[:MAX_UIDS],
        "risk_factors": [f.to_dict() for f in risk.factors],
        "narrative": narrative(entries, inc.assets, inc.actors, phases, risk),
        "response": response(inc.incident_id, entries, inc.actors, enforce),
        "history": list(inc.history),
        "closed_reason": inc.closed_reason,
    }
    return row, risk


def incident_from_row(row: dict[str, Any]) -> Incident:
    """An Incident from its stored record (raises KeyError, ValueError or TypeError on a bad one)."""
    state = str(row["state"])
    if state not in STATES:
        raise ValueError(f"incident state {state!r} is not one of {', '.join(STATES)}")
    details = {str(a["ip"]): a for a in row.get("asset_details") or ()}
    inc = Incident(
        incident_id=str(row["incident_id"]),
        actor=str(row["actor"]),
        actors=[str(a) for a in row.get("actors") or [row["actor"]]],
        state=state,
        version=int(row.get("version", 0)),
        history=[dict(h) for h in row.get("history") or ()],
        closed_reason=row.get("closed_reason"),
        merged=int(row.get("timeline_merged", 0)),
    )
    for ip, a in details.items():
        inc.assets[ip] = AssetFacts.from_dict(a)
        inc.asset_alerts[ip] = int(a.get("alerts", 0))
    for t in row.get("timeline") or ():
        entry = Entry.from_dict(t)
        inc.entries.append(entry)
        inc.keys[entry.key] = entry
        inc.alerts += entry.count
    inc.entries.sort()
    inc.alerts = max(inc.alerts, int(row.get("alerts", 0)))
    if not inc.entries:
        raise ValueError(f"incident {inc.incident_id}: empty timeline")
    return inc
