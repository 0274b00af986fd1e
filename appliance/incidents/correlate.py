"""Correlation: which incident an alert belongs to, when an incident forms, and when it closes.

An alert's actor is its `src` (the first asset when it has none). It joins, in this order: the live incident whose
actors include it; the live incident that targeted it (it was among that incident's alerts' assets) within
`join_window` seconds of packet time before (lateral movement: the victim now acts); the live incident of an actor
that shares a host name with it (the same machine at another address). Otherwise it starts a new incident when its
severity reaches `min_severity` and it reaches a kill-chain phase (any alert when `min_severity` is low); else it is
held as pending for `join_window` (a low new-device alert, a statistical anomaly alone: context, not an incident)
and goes into the actor's incident if one forms in that time. Meta alerts (alert_burst) follow the same rule: their
src is their subject. An incident closes when no alert joined it for `idle` seconds of packet time. Deterministic:
the same alerts in the same order give the same incidents and ids."""

from __future__ import annotations

from collections import OrderedDict

from appliance.alert import Alert
from appliance.incidents.facts import AssetLookup
from appliance.incidents.model import MAX_TARGETS, MAX_UIDS, SEVERITY_RANK, Entry, Incident, make_id
from appliance.incidents.phases import phases_of
from appliance.incidents.settings import IncidentSettings

MAX_INDEX = 100_000  # addresses kept in the target index; the oldest go first
MAX_PENDING = 10_000  # actors with pending (low) alerts
MAX_PENDING_ALERTS = 32  # per actor


def short_name(name: str) -> str:
    """The first label of a host name, case-folded (`LAPTOP-JSMITH` is `laptop-jsmith.corp.local`)."""
    return name.split(".", 1)[0].casefold()


def _json_safe(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(_json_safe(v) for v in value)  # type: ignore[type-var]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


class Correlator:
    """Live incidents and the indexes that join alerts to them (pipeline thread only)."""

    def __init__(self, settings: IncidentSettings, lookup: AssetLookup) -> None:
        self.settings = settings
        self.lookup = lookup
        self.live: dict[str, Incident] = {}  # incident id -> open or acknowledged incident
        self.by_actor: dict[str, str] = {}  # actor address -> incident id
        self.targets: OrderedDict[str, tuple[str, float]] = OrderedDict()  # address -> (incident id, last ts)
        self.names: dict[str, str] = {}  # short host name of an actor -> incident id
        self.pending: OrderedDict[str, list[Alert]] = OrderedDict()  # actor -> low alerts held
        self.uncorrelated = 0  # alerts with no actor address
        self._next_expiry = 0.0

    # ---- finding ----

    def _find(self, actor: str, ts: float) -> Incident | None:
        found = self.by_actor.get(actor)
        if found is not None:
            return self.live.get(found)
        hit = self.targets.get(actor)
        if hit is not None and 0 <= ts - hit[1] <= self.settings.join_window and hit[0] in self.live:
            return self.live[hit[0]]
        for name in self.lookup.facts(actor, ts).hostnames:
            owner = self.names.get(short_name(name))
            if owner is not None and owner in self.live:
                return self.live[owner]
        return None

    # ---- input ----

    def add(self, alert: Alert) -> list[Incident]:
        """Correlate one alert; returns the incidents it changed (closed ones first, then the one it joined)."""
        actor = alert.src or (alert.assets[0] if alert.assets else "")
        if not actor:
            self.uncorrelated += 1
            return []
        changed = self.expire(alert.ts)
        inc = self._find(actor, alert.ts)
        if inc is not None and alert.ts - inc.last_ts >= self.settings.idle:
            changed.append(self.close(inc, alert.ts, "idle"))
            inc = None
        # low alerts held for this actor, if recent enough to belong with this one
        held = [a for a in self.pending.pop(actor, []) if 0 <= alert.ts - a.ts <= self.settings.join_window]
        if inc is None:
            if self._context(alert):
                self._hold(actor, held, alert)
                return changed
            first = min([alert, *held], key=lambda a: a.ts)
            inc = Incident(make_id(first.ts, actor), actor, [actor])
            self.live[inc.incident_id] = inc
        elif actor not in inc.actors:
            inc.actors.append(actor)
        self.by_actor[actor] = inc.incident_id
        grew = False
        for a in (*held, alert):
            grew |= self._merge(inc, a)
        if grew:
            changed.append(inc)
        return changed

    def _context(self, alert: Alert) -> bool:
        """Whether an alert cannot start an incident alone: below `min_severity`, or (unless `min_severity` is low:
        every alert an incident) a finding that names no kill-chain step, such as a statistical anomaly."""
        min_severity = self.settings.min_severity
        if SEVERITY_RANK[alert.severity] < SEVERITY_RANK[min_severity]:
            return True
        return min_severity != "low" and not phases_of(alert.detector, alert.note, alert.details)

    def _hold(self, actor: str, held: list[Alert], alert: Alert) -> None:
        self.pending[actor] = [*held[-(MAX_PENDING_ALERTS - 1) :], alert]
        while len(self.pending) > MAX_PENDING:
            self.pending.popitem(last=False)

    def _merge(self, inc: Incident, alert: Alert) -> bool:
        """Put one alert on an incident's timeline; refresh the facts of the addresses it names."""
        actor = alert.src or alert.assets[0]
        targets = tuple(a for a in dict.fromkeys(alert.assets) if a != actor)[:MAX_TARGETS]
        facts = {ip: self.lookup.facts(ip, alert.ts) for ip in (actor, *targets)}
        entry = Entry(
            alert.ts, alert.ts, 1, alert.detector, alert.note, alert.severity, alert.score,
            phases_of(alert.detector, alert.note, alert.details, [facts[t].domain for t in targets]),
            actor, targets, alert.explanation, tuple(alert.techniques), alert.key, tuple(alert.uids[:MAX_UIDS]),
            _json_safe(alert.details),  # type: ignore[arg-type]
        )  # fmt: skip
        before = set(inc.phases())
        if not inc.add(entry):
            return False
        for f in facts.values():
            inc.note_asset(f)
        for name in facts[actor].hostnames:
            self.names[short_name(name)] = inc.incident_id
        for t in targets:
            self.targets[t] = (inc.incident_id, alert.ts)
            self.targets.move_to_end(t)
        while len(self.targets) > MAX_INDEX:
            self.targets.popitem(last=False)
        new = set(entry.phases) - before
        if inc.state == "acknowledged" and new:
            inc.set_state("open", alert.ts, "otwatch", "reopen", reason=f"reached {', '.join(sorted(new))}")
        return True

    # ---- time ----

    def expire(self, now: float) -> list[Incident]:
        """Close incidents idle for `idle` seconds of packet time (checked at most once a minute of packet time)."""
        if now < self._next_expiry:
            return []
        self._next_expiry = now + 60.0
        horizon = now - self.settings.join_window
        for actor in [a for a, held in self.pending.items() if held[-1].ts < horizon]:
            del self.pending[actor]
        idle = self.settings.idle
        return [self.close(inc, now, "idle") for inc in list(self.live.values()) if now - inc.last_ts >= idle]

    def close(self, inc: Incident, ts: float, reason: str, who: str = "otwatch", seq: int | None = None) -> Incident:
        """Close an incident and drop it from the indexes."""
        inc.set_state("closed", ts, who, "close", seq)
        inc.closed_reason = reason
        self.forget(inc)
        return inc

    def forget(self, inc: Incident) -> None:
        """Drop a closed incident from the live set and its index entries."""
        self.live.pop(inc.incident_id, None)
        for actor in inc.actors:
            if self.by_actor.get(actor) == inc.incident_id:
                del self.by_actor[actor]
        for name in [n for n, owner in self.names.items() if owner == inc.incident_id]:
            del self.names[name]

    def adopt(self, inc: Incident) -> None:
        """Take a live incident loaded from the store into the indexes."""
        self.live[inc.incident_id] = inc
        for actor in inc.actors:
            self.by_actor[actor] = inc.incident_id
        for e in inc.entries:
            for t in e.targets:
                self.targets[t] = (inc.incident_id, e.last_ts)
        for ip in inc.actors:
            facts = inc.assets.get(ip)
            for name in facts.hostnames if facts is not None else ():
                self.names[short_name(name)] = inc.incident_id
