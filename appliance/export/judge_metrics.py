"""Risk, incident and learning families: what the judge layer (baselines, incidents) publishes for the scrape.

The pipeline thread publishes a `JudgeSnapshot` (immutable) next to its stats; the collector turns it into families.
Per-asset risk series follow the same cap as every per-asset series (the assets kept by the collector); per-incident
series are capped at `MAX_INCIDENT_SERIES` open incidents, riskiest first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from prometheus_client.metrics_core import GaugeMetricFamily

from appliance.model import Asset

MAX_INCIDENT_SERIES = 200
MODES = ("learning", "protecting")


@dataclass(frozen=True, slots=True)
class AssetRisk:
    """An asset's additive risk: the total (0-100) and the points of each factor."""

    score: float
    factors: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class IncidentGauge:
    """What the metrics need of an open incident."""

    incident_id: str
    severity: str
    phase: str  # the furthest phase reached
    risk: float


@dataclass(frozen=True, slots=True)
class JudgeSnapshot:
    """Risk by address, open incidents, and the learning mode with its progress (0-1)."""

    risk: Mapping[str, AssetRisk] = field(default_factory=lambda: MappingProxyType({}))
    incidents: Sequence[IncidentGauge] = ()
    mode: str = "learning"
    progress: float = 0.0


def judge_families() -> dict[str, Any]:
    """The judge families, without samples (for `describe()`)."""
    g = GaugeMetricFamily
    return {
        "risk": g("otwatch_asset_risk_score", "Each asset's additive risk score (0-100).", labels=["asset_id"]),
        "factors": g(
            "otwatch_asset_risk_factor_points", "The points each factor adds to an asset's risk score.",
            labels=["asset_id", "factor"],
        ),
        "zone_max": g("otwatch_zone_risk_max", "The highest asset risk score in each zone.", labels=["zone"]),
        "open": g(
            "otwatch_incidents_open", "Open incidents by severity and the furthest kill-chain phase reached.",
            labels=["severity", "phase"],
        ),
        "incident_risk": g(
            "otwatch_incident_risk_score", "Risk score of each open incident (the riskiest, capped).",
            labels=["incident_id", "severity", "phase"],
        ),
        "mode": g(
            "otwatch_learning_mode", "The sensor's mode: 1 on the current one (learning or protecting).",
            labels=["mode"],
        ),
        "progress": g(
            "otwatch_learning_progress_ratio", "Fraction of the site-wide learning period done (1 when protecting).",
            labels=[],
        ),
    }  # fmt: skip


def build_judge_families(snap: JudgeSnapshot, kept: Sequence[Asset], assets: Sequence[Asset]) -> dict[str, Any]:
    """Every judge family: per-asset risk for the `kept` assets, zone maxima over all `assets`."""
    f = judge_families()
    risk = snap.risk
    for a in kept:
        r = risk.get(a.ip)
        if r is None:
            continue
        f["risk"].add_metric([a.asset_id], r.score)
        for factor, points in sorted(r.factors.items()):
            f["factors"].add_metric([a.asset_id, factor], points)
    zone_max: dict[str, float] = {}
    for a in assets:
        r = risk.get(a.ip)
        if r is not None:
            zone = a.zone or "unknown"
            zone_max[zone] = max(zone_max.get(zone, 0.0), r.score)
    for zone, score in sorted(zone_max.items()):
        f["zone_max"].add_metric([zone], score)
    counts = Counter((i.severity, i.phase) for i in snap.incidents)
    for (severity, phase), n in sorted(counts.items()):
        f["open"].add_metric([severity, phase], n)
    riskiest = sorted(snap.incidents, key=lambda i: (-i.risk, i.incident_id))[:MAX_INCIDENT_SERIES]
    for i in sorted(riskiest, key=lambda i: i.incident_id):
        f["incident_risk"].add_metric([i.incident_id, i.severity, i.phase], i.risk)
    for mode in MODES:
        f["mode"].add_metric([mode], 1 if snap.mode == mode else 0)
    f["progress"].add_metric([], snap.progress)
    return f


class _IncidentSource(Protocol):
    def snapshot(self) -> list[dict[str, Any]]: ...

    def asset_risk(self) -> Mapping[str, Any]: ...


class _BaselineSource(Protocol):
    def progress(self) -> Any: ...


_MODE_NAMES = {"learn": "learning", "protect": "protecting"}


def judge_snapshot(incidents: _IncidentSource, baseline: _BaselineSource | None) -> JudgeSnapshot:
    """Take the judge layer's state for the scrape (on the pipeline thread): per-address risk with its factors, open
    incidents with their furthest phase, the learning mode and progress."""
    risk = {
        ip: AssetRisk(float(score.score), MappingProxyType({f.factor: float(f.points) for f in score.factors}))
        for ip, score in incidents.asset_risk().items()
    }
    gauges = tuple(
        IncidentGauge(str(row["incident_id"]), str(row["severity"]), str(row.get("phase") or "none"),
                      float(row.get("risk", 0)))
        for row in incidents.snapshot()
        if row.get("state") != "closed"
    )
    mode, progress = "learning", 0.0
    if baseline is not None:
        p = baseline.progress()
        mode, progress = _MODE_NAMES.get(p.mode, str(p.mode)), float(p.fraction)
    return JudgeSnapshot(MappingProxyType(risk), gauges, mode, progress)
