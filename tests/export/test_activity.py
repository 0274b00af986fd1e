"""Activity families: requests resolved to zones, crossings, writes into OT, alerts by technique, new assets; and the
pipeline's request table with its cap."""

from __future__ import annotations

from types import MappingProxyType

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from appliance.config import Config
from appliance.export.activity import ActivityFamilies, note_techniques
from appliance.export.prometheus import OtwatchCollector
from appliance.model import Asset, FlowId, ProtocolEvent
from appliance.pipeline import Pipeline, op_class
from appliance.stats import StatsSnapshot
from appliance.zones import Zone, ZoneMap

ZONES = ZoneMap([
    Zone("vpn", ("10.9.0.0/24",), "VPN"),
    Zone("ot-control", ("10.20.0.0/24",), "OT"),
    Zone("bms", ("10.30.0.0/24",), "BMS"),
])  # fmt: skip
T = 1_700_000_000.0


def _snapshot(requests: dict[tuple[str, str, str, str], int], alerts: dict[tuple[str, str, str], int]) -> StatsSnapshot:
    empty: MappingProxyType[object, int] = MappingProxyType({})
    return StatsSnapshot(
        10, 1000, empty, empty, empty, MappingProxyType(alerts), 1, 1, 0, 0, T, T + 100, None,  # type: ignore[arg-type]
        requests=MappingProxyType(requests), requests_overflow=3,
    )


def _scrape(snap: StatsSnapshot, assets: list[Asset]) -> str:
    registry = CollectorRegistry()
    activity = ActivityFamilies(ZONES.lookup, op_class, note_techniques())
    registry.register(OtwatchCollector(lambda: snap, lambda: assets, op_class, {"version": "t"}, activity=activity))
    return generate_latest(registry).decode()


def test_requests_become_zone_crossings_and_writes_into_ot() -> None:
    snap = _snapshot(
        {
            ("10.9.0.5", "10.20.0.11", "modbus", "write_single_register"): 2,
            ("10.9.0.5", "10.20.0.11", "modbus", "read_holding_registers"): 7,
            ("10.20.0.5", "10.20.0.11", "modbus", "write_multiple_registers"): 4,
            ("10.9.0.5", "10.30.0.7", "bacnet", "reinitialize_device"): 1,
            ("192.0.2.1", "10.9.0.5", "dns", "query"): 5,
        },
        {("ot_pivot", "it_to_ot_write", "critical"): 2, ("scan", "rdp_scan", "high"): 1},
    )
    text = _scrape(snap, [])
    lines = set(text.splitlines())
    assert ('otwatch_zone_requests_total{dst_zone="ot-control",op_class="read",protocol="modbus",src_zone="vpn"} 7.0'
            in lines)  # fmt: skip
    assert 'otwatch_zone_crossings_total{dst_zone="ot-control",protocol="modbus",src_zone="vpn"} 9.0' in lines
    assert 'otwatch_zone_crossings_total{dst_zone="vpn",protocol="dns",src_zone="unknown"} 5.0' in lines
    # the HMI's writes inside its zone are writes into OT but not a crossing
    assert not any(line.startswith('otwatch_zone_crossings_total{dst_zone="ot-control",protocol="modbus",src_zone="ot')
                   for line in lines)  # fmt: skip
    writes = sorted(line for line in lines if line.startswith("otwatch_ot_writes_total{"))
    assert writes == [
        'otwatch_ot_writes_total{dst_zone="bms",op_class="command",protocol="bacnet",src_domain="VPN",'
        'src_zone="vpn"} 1.0',
        'otwatch_ot_writes_total{dst_zone="ot-control",op_class="write",protocol="modbus",src_domain="OT",'
        'src_zone="ot-control"} 4.0',
        'otwatch_ot_writes_total{dst_zone="ot-control",op_class="write",protocol="modbus",src_domain="VPN",'
        'src_zone="vpn"} 2.0',
    ]  # fmt: skip
    assert "otwatch_request_keys_overflow_total 3.0" in lines
    # it_to_ot_write carries T0886, T0855 and T0836: each counted with the alert's severity
    for technique in ("T0886", "T0855", "T0836"):
        assert f'otwatch_alert_techniques_total{{severity="critical",technique="{technique}"}} 2.0' in lines
    assert 'otwatch_alert_techniques_total{severity="high",technique="T1046"} 1.0' in lines


def test_new_assets_are_those_first_seen_in_the_last_day() -> None:
    old = Asset("a1", "10.20.0.11", None, first_seen=T - 90000, last_seen=T + 100, category="PLC", zone="ot-control")
    new = Asset("a2", "10.30.0.7", None, first_seen=T + 50, last_seen=T + 100, category="BMS controller", zone="bms")
    text = _scrape(_snapshot({}, {}), [old, new])
    assert 'otwatch_assets_new{category="BMS controller",zone="bms"} 1.0' in text.splitlines()
    assert 'category="PLC"' not in "\n".join(x for x in text.splitlines() if x.startswith("otwatch_assets_new{"))


def _request(i: int) -> ProtocolEvent:
    flow = FlowId(f"C{i}", "10.9.0.5", 40000 + i, "10.20.0.11", 502, "tcp")
    return ProtocolEvent(T + i, flow, "modbus", "read_holding_registers", "request", True, "10.9.0.5",
                         f"10.20.0.{i}", {})  # fmt: skip


def test_the_pipeline_counts_requests_by_key_up_to_its_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    import appliance.pipeline as pipeline_module

    pipeline = Pipeline(Config(), None)
    monkeypatch.setattr(pipeline_module, "MAX_REQUEST_KEYS", 3)
    for i in range(5):
        pipeline._on_event(_request(i))
    pipeline._on_event(_request(0))
    snap = pipeline.stats.snapshot()
    assert dict(snap.requests) == {
        ("10.9.0.5", "10.20.0.0", "modbus", "read_holding_registers"): 2,
        ("10.9.0.5", "10.20.0.1", "modbus", "read_holding_registers"): 1,
        ("10.9.0.5", "10.20.0.2", "modbus", "read_holding_registers"): 1,
    }
    assert snap.requests_overflow == 2
