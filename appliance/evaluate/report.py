"""The evaluation's table and its targets: every step detected, single-action steps within 1 s of packet time, the
full intrusion chain as one incident with at least four phases, false alerts per device-day under the bounds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.evaluate.runner import EvalResult
from appliance.evaluate.score import StepScore

# steps that are one action on the wire (a write, a restart, a command): detected within 1 s of packet time
SINGLE_ACTION = frozenset({
    "modbus_setpoint_write", "bacnet_write_priority", "bacnet_reinitialize", "bacnet_dcc", "mqtt_forged_command",
    "new_hostname_logon",
})  # fmt: skip
SINGLE_ACTION_TTD = 1.0
CHAIN_SCENARIO_PREFIX = "vpn-intrusion"
CHAIN_MIN_PHASES = 4
QUIET_MAX = 0.05
NOVELTY_MAX = 0.2
INCIDENTS_MAX = 1.0  # ours, not the issue's: at most one incident a day from benign change (an engineer's session)


@dataclass(frozen=True)
class Check:
    """One target: what, the figure, pass or fail."""

    name: str
    figure: str
    ok: bool


def _action_ttd(s: StepScore) -> float | None:
    """Time to detect from the decisive frame when the truth names one, else from the step's start."""
    return s.ttd_action if s.t_action is not None else s.ttd


def _late(ttd: float | None) -> bool:
    return ttd is None or ttd > SINGLE_ACTION_TTD


def checks(result: EvalResult) -> list[Check]:
    """Every target of the evaluation with its figure."""
    out = []
    missed = [f"{s.scenario}/{s.step}" for s in result.steps if not s.detected]
    out.append(Check("every step detected", f"{len(result.steps) - len(missed)}/{len(result.steps)}"
                     + (f" (missed: {', '.join(missed)})" if missed else ""), not missed))  # fmt: skip
    single = [s for s in result.steps if s.step in SINGLE_ACTION and "slow" not in s.scenario]
    slow = [s for s in single if _late(_action_ttd(s))]
    out.append(Check(f"single-action steps within {SINGLE_ACTION_TTD:g} s", f"{len(single) - len(slow)}/{len(single)}"
                     + (f" (late or missed: {', '.join(f'{s.scenario}/{s.step}' for s in slow)})" if slow else ""),
                     not slow))  # fmt: skip
    for scenario, incidents in sorted(result.incidents.items()):
        if not scenario.startswith(CHAIN_SCENARIO_PREFIX):
            continue
        best = max((len(i.get("phases", ())) for i in incidents), default=0)
        chain_ids = {s.incident for s in result.steps if s.scenario == scenario and s.detected}
        one = len(chain_ids - {""}) == 1 and "" not in chain_ids
        out.append(Check(f"{scenario}: one incident, >= {CHAIN_MIN_PHASES} phases",
                         f"{len(chain_ids - {''})} incident(s) for its detected steps, {best} phases",
                         one and best >= CHAIN_MIN_PHASES))  # fmt: skip
    b = result.benign
    if b is not None:  # a kind of day that was not measured fails its target: it was not shown to hold
        out.append(Check(f"false alerts per device-day, quiet days (<= {QUIET_MAX:g})",
                         f"{b.quiet_rate:.3f} ({b.quiet_alerts} alerts, {b.devices} devices x {b.quiet_days} days)"
                         if b.quiet_days else "not measured: no quiet test day (--benign-days 2 or more)",
                         b.quiet_days > 0 and b.quiet_rate <= QUIET_MAX))  # fmt: skip
        out.append(Check(f"false alerts per device-day, novelty days (<= {NOVELTY_MAX:g})",
                         f"{b.novelty_rate:.3f} ({b.novelty_alerts} alerts, {b.devices} devices x "
                         f"{b.novelty_days} days)" if b.novelty_days else "not measured: no day with benign novelty",
                         b.novelty_days > 0 and b.novelty_rate <= NOVELTY_MAX))  # fmt: skip
        out.append(Check(f"false incidents per site-day (<= {INCIDENTS_MAX:g})", f"{b.incidents_per_site_day:.2f}",
                         b.incidents_per_site_day <= INCIDENTS_MAX))  # fmt: skip
    return out


def table(result: EvalResult) -> str:
    """The per-step table, the benign summary and the targets, as text."""
    head = ("scenario", "step", "det", "alert", "technique", "ttd", "ttd action", "incident", "phases")
    rows = [head]
    for s in result.steps:
        rows.append((
            s.scenario, s.step, "yes" if s.detected else "NO", s.note or "-",
            (",".join(s.alert_techniques[:3]) + (" (match)" if s.technique_match else "")) if s.detected else "-",
            f"{s.ttd:.2f} s" if s.ttd is not None else "-",
            f"{s.ttd_action:.3f} s" if s.ttd_action is not None else "-", s.incident or "-",
            str(len(s.phases)) if s.phases else "-",
        ))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    b = result.benign
    if b is not None:
        lines += ["", f"benign test days: {b.quiet_days} quiet, {b.novelty_days} with benign novelty; "
                  f"{b.devices} devices; alerts: {b.quiet_alerts} on quiet days, {b.novelty_alerts} on novelty days; "
                  f"false incidents: {b.false_incidents}"]  # fmt: skip
        if b.alerts_by_note:
            lines.append("  by note: " + ", ".join(f"{k} {n}" for k, n in b.alerts_by_note.items()))
    lines += ["", "targets:"]
    for c in checks(result):
        lines.append(f"  [{'PASS' if c.ok else 'FAIL'}] {c.name}: {c.figure}")
    total = result.seconds.get("total")
    if total is not None:
        lines.append(f"\n{total:.0f} s (learning {result.seconds.get('learn', 0):.0f} s)")
    return "\n".join(lines)


def as_json(result: EvalResult) -> dict[str, Any]:
    """The whole result as JSON-ready data."""
    return {
        "steps": [s.to_dict() for s in result.steps],
        "benign": result.benign.to_dict() if result.benign else None,
        "checks": [c.__dict__ for c in checks(result)],
        "seconds": result.seconds,
    }
