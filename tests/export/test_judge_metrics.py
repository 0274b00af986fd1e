"""Risk, incident and learning families from a judge snapshot: per-asset risk under the asset cap, zone maxima over
every asset, open incidents by severity and phase, the riskiest incidents' series capped, the learning mode."""

from __future__ import annotations

from types import MappingProxyType

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from appliance.export import judge_metrics
from appliance.export.judge_metrics import AssetRisk, IncidentGauge, JudgeSnapshot
from appliance.export.prometheus import OtwatchCollector
from appliance.model import Asset
from appliance.stats import PipelineStats

PLC = Asset("a1", "10.20.0.11", None, 1.0, 50.0, category="PLC", zone="ot-control")
CRAH = Asset("b2", "10.30.0.7", None, 1.0, 40.0, category="BMS controller", zone="bms")
VPN = Asset("c3", "10.9.0.5", None, 1.0, 60.0, category="IT host", zone="vpn")
SNAP = JudgeSnapshot(
    risk=MappingProxyType({
        "10.20.0.11": AssetRisk(85.0, MappingProxyType({"criticality": 30.0, "zone_crossing": 25.0, "write": 30.0})),
        "10.30.0.7": AssetRisk(40.0, MappingProxyType({"criticality": 30.0, "novelty": 10.0})),
        "10.9.0.5": AssetRisk(70.0, MappingProxyType({"phases": 40.0, "zone_crossing": 30.0})),
        "10.99.0.1": AssetRisk(99.0, MappingProxyType({"phases": 99.0})),  # not an asset: never exported
    }),
    incidents=(
        IncidentGauge("inc-1", "critical", "impair", 92.0),
        IncidentGauge("inc-2", "medium", "it_recon", 20.0),
        IncidentGauge("inc-3", "medium", "it_recon", 25.0),
    ),
    mode="protecting",
    progress=1.0,
)  # fmt: skip


def _lines(cap: int) -> set[str]:
    registry = CollectorRegistry()
    stats = PipelineStats().snapshot()
    collector = OtwatchCollector(lambda: stats, lambda: [PLC, CRAH, VPN], lambda p, o: "other", {"version": "t"},
                                 max_asset_series=cap, judge_fn=lambda: SNAP)  # fmt: skip
    registry.register(collector)
    return set(generate_latest(registry).decode().splitlines())


def test_risk_incident_and_learning_series() -> None:
    lines = _lines(cap=10)
    assert 'otwatch_asset_risk_score{asset_id="a1"} 85.0' in lines
    assert 'otwatch_asset_risk_factor_points{asset_id="a1",factor="write"} 30.0' in lines
    assert 'otwatch_asset_risk_factor_points{asset_id="b2",factor="novelty"} 10.0' in lines
    assert not any("99.0" in line for line in lines if line.startswith("otwatch_asset_risk"))
    assert 'otwatch_zone_risk_max{zone="ot-control"} 85.0' in lines
    assert 'otwatch_zone_risk_max{zone="vpn"} 70.0' in lines
    assert 'otwatch_incidents_open{phase="it_recon",severity="medium"} 2.0' in lines
    assert 'otwatch_incidents_open{phase="impair",severity="critical"} 1.0' in lines
    assert 'otwatch_incident_risk_score{incident_id="inc-1",phase="impair",severity="critical"} 92.0' in lines
    assert 'otwatch_learning_mode{mode="protecting"} 1.0' in lines
    assert 'otwatch_learning_mode{mode="learning"} 0.0' in lines
    assert "otwatch_learning_progress_ratio 1.0" in lines


def test_per_asset_risk_follows_the_asset_cap_and_incident_series_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(judge_metrics, "MAX_INCIDENT_SERIES", 2)
    lines = _lines(cap=1)  # the most recently seen asset only: the VPN host
    risk = sorted(line for line in lines if line.startswith("otwatch_asset_risk_score{"))
    assert risk == ['otwatch_asset_risk_score{asset_id="c3"} 70.0']
    # zone maxima still come from every asset
    assert 'otwatch_zone_risk_max{zone="ot-control"} 85.0' in lines
    incidents = sorted(line.split("{")[1].split(",")[0] for line in lines
                       if line.startswith("otwatch_incident_risk_score{"))  # fmt: skip
    assert incidents == ['incident_id="inc-1"', 'incident_id="inc-3"']
