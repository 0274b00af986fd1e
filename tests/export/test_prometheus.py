"""OtwatchCollector: exact exposition text, the per-asset series cap, a real scrape checked by promtool."""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request
from collections.abc import Sequence
from types import MappingProxyType

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from appliance.export.prometheus import MAX_LABEL_LEN, OtwatchCollector, label_value
from appliance.export.web import start_web
from appliance.model import Asset, Attribute
from appliance.stats import StatsSnapshot

PROMTOOL = "/usr/bin/promtool"


def _stats(**kw: object) -> StatsSnapshot:
    base: dict[str, object] = dict(
        packets=1000, bytes=123456,
        skipped=MappingProxyType({"linktype-113": 2, "ethertype-0x88cc": 5}),
        events=MappingProxyType({
            ("modbus", "read_holding_registers", "request"): 40,
            ("modbus", "read_coils", "request"): 2,
            ("modbus", "read_holding_registers", "response"): 39,
            ("modbus", "write_single_register", "request"): 1,
            ("modbus", "modbus_bad_length", "weird"): 1,
        }),
        weird=MappingProxyType({("modbus", "modbus_bad_length"): 1}),
        alerts=MappingProxyType({("scan", "rdp_scan", "high"): 2, ("new_device", "new_device", "low"): 1}),
        flows_total=12, flows_live=3, flows_evicted=0, capture_drops=4,
        first_packet_ts=1_700_000_000.0, last_packet_ts=1_700_000_060.5, truncated=None,
        asset_alerts=MappingProxyType({("10.1.2.10", "critical"): 2, ("10.1.2.10", "high"): 1, ("10.9.9.9", "low"): 4}),
    )
    base.update(kw)
    return StatsSnapshot(**base)  # type: ignore[arg-type]


def _op_class(protocol: str, op: str) -> str:
    if op.startswith("read"):
        return "read"
    return "write" if op.startswith("write") else "other"


PLC = Asset(
    "a1", "10.1.2.10", "00:80:f4:00:00:01", 1_700_000_000.0, 1_700_000_060.0, category="PLC", zone="cell-1",
    vendor=Attribute("Schneider Electric", "modbus/fc43", 0.9),
    model=Attribute("BMX P34 2020", "modbus/fc43", 0.6),
    firmware=Attribute("v2.7", "modbus/fc43", 0.9), protocols=("modbus",),
)
HMI = Asset(
    "b2", "10.1.3.5", None, 1_700_000_000.0, 1_700_000_059.0, category="HMI/SCADA", zone=None,
    mac_vendor=Attribute("Rockwell Automation", "oui", 0.5), protocols=("dns", "modbus"),
)

EXPECTED = """\
# HELP otwatch_packets_total Packets read from the capture.
# TYPE otwatch_packets_total counter
otwatch_packets_total 1000.0
# HELP otwatch_bytes_total Bytes (original wire length) of the packets read.
# TYPE otwatch_bytes_total counter
otwatch_bytes_total 123456.0
# HELP otwatch_capture_skipped_total Frames not decoded, by reason (link type, ethertype...).
# TYPE otwatch_capture_skipped_total counter
otwatch_capture_skipped_total{reason="ethertype-0x88cc"} 5.0
otwatch_capture_skipped_total{reason="linktype-113"} 2.0
# HELP otwatch_capture_drops_total Packets the kernel or capture library dropped.
# TYPE otwatch_capture_drops_total counter
otwatch_capture_drops_total 4.0
# HELP otwatch_flows_live Connections tracked in the flow table now.
# TYPE otwatch_flows_live gauge
otwatch_flows_live 3.0
# HELP otwatch_flows_total Connections seen since start.
# TYPE otwatch_flows_total counter
otwatch_flows_total 12.0
# HELP otwatch_flows_evicted_total Connections evicted early because the flow table was full.
# TYPE otwatch_flows_evicted_total counter
otwatch_flows_evicted_total 0.0
# HELP otwatch_protocol_events_total Decoded protocol messages by protocol, operation class and kind.
# TYPE otwatch_protocol_events_total counter
otwatch_protocol_events_total{kind="weird",op_class="other",protocol="modbus"} 1.0
otwatch_protocol_events_total{kind="request",op_class="read",protocol="modbus"} 42.0
otwatch_protocol_events_total{kind="response",op_class="read",protocol="modbus"} 39.0
otwatch_protocol_events_total{kind="request",op_class="write",protocol="modbus"} 1.0
# HELP otwatch_weird_total Malformed or unexpected protocol data, by protocol and weird name.
# TYPE otwatch_weird_total counter
otwatch_weird_total{name="modbus_bad_length",protocol="modbus"} 1.0
# HELP otwatch_alerts_total Alerts raised (repeats inside the suppression interval not counted), by detector, note \
and severity.
# TYPE otwatch_alerts_total counter
otwatch_alerts_total{detector="new_device",note="new_device",severity="low"} 1.0
otwatch_alerts_total{detector="scan",note="rdp_scan",severity="high"} 2.0
# HELP otwatch_assets Known assets by zone, category and protocol (counted once per protocol spoken).
# TYPE otwatch_assets gauge
otwatch_assets{category="PLC",protocol="modbus",zone="cell-1"} 1.0
otwatch_assets{category="HMI/SCADA",protocol="dns",zone="unknown"} 1.0
otwatch_assets{category="HMI/SCADA",protocol="modbus",zone="unknown"} 1.0
# HELP otwatch_asset_info Identity of each known asset (value 1).
# TYPE otwatch_asset_info gauge
otwatch_asset_info{asset_id="a1",category="PLC",firmware="v2.7",ip="10.1.2.10",mac="00:80:f4:00:00:01",\
model="BMX P34 2020",vendor="Schneider Electric",zone="cell-1"} 1.0
otwatch_asset_info{asset_id="b2",category="HMI/SCADA",firmware="",ip="10.1.3.5",mac="",model="",\
vendor="Rockwell Automation",zone="unknown"} 1.0
# HELP otwatch_asset_series_dropped_total Assets left out of per-asset series by the cap, summed over scrapes.
# TYPE otwatch_asset_series_dropped_total counter
otwatch_asset_series_dropped_total 0.0
# HELP otwatch_asset_last_seen_timestamp_seconds Packet time each asset was last seen sending.
# TYPE otwatch_asset_last_seen_timestamp_seconds gauge
otwatch_asset_last_seen_timestamp_seconds{asset_id="a1"} 1.70000006e+09
otwatch_asset_last_seen_timestamp_seconds{asset_id="b2"} 1.700000059e+09
# HELP otwatch_asset_protocol Protocols each asset was seen speaking (value 1), per-asset cap applies.
# TYPE otwatch_asset_protocol gauge
otwatch_asset_protocol{asset_id="a1",protocol="modbus"} 1.0
otwatch_asset_protocol{asset_id="b2",protocol="dns"} 1.0
otwatch_asset_protocol{asset_id="b2",protocol="modbus"} 1.0
# HELP otwatch_asset_peers Distinct peers each asset exchanged traffic with (as kept by the inventory).
# TYPE otwatch_asset_peers gauge
otwatch_asset_peers{asset_id="a1"} 0.0
otwatch_asset_peers{asset_id="b2"} 0.0
# HELP otwatch_asset_alerts Alerts that named each asset (as actor or target), by severity.
# TYPE otwatch_asset_alerts gauge
otwatch_asset_alerts{asset_id="a1",severity="critical"} 2.0
otwatch_asset_alerts{asset_id="a1",severity="high"} 1.0
# HELP otwatch_last_packet_timestamp_seconds Packet time of the newest packet read.
# TYPE otwatch_last_packet_timestamp_seconds gauge
otwatch_last_packet_timestamp_seconds 1.7000000605e+09
# HELP otwatch_build_info otwatch build information.
# TYPE otwatch_build_info gauge
otwatch_build_info{version="0.1.0"} 1.0
# HELP otwatch_scrape_duration_seconds Time this collector took to build the scrape.
# TYPE otwatch_scrape_duration_seconds gauge
otwatch_scrape_duration_seconds 0.125
"""


class Clock:
    """A clock that advances 0.125 s per reading: a deterministic scrape duration."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 0.125
        return self.now


def _registry(assets: Sequence[Asset], stats: StatsSnapshot | None = None, **kw: int) -> CollectorRegistry:
    registry = CollectorRegistry()
    snap = stats or _stats()
    registry.register(
        OtwatchCollector(lambda: snap, lambda: assets, _op_class, {"version": "0.1.0"}, clock=Clock(), **kw)
    )
    return registry


def test_exact_exposition_text() -> None:
    assert generate_latest(_registry([PLC, HMI])).decode() == EXPECTED


def test_registration_calls_no_snapshot_function() -> None:
    def boom() -> StatsSnapshot:
        raise AssertionError("called at registration")

    registry = CollectorRegistry()
    registry.register(OtwatchCollector(boom, lambda: [], _op_class, {"version": "x"}))
    assert "otwatch_packets_total" in registry._names_to_collectors


def test_asset_series_cap_keeps_the_most_recent_and_counts_the_rest() -> None:
    assets = [
        Asset(f"id{i}", f"10.0.0.{i}", None, 0.0, float(i), category="unknown", protocols=("modbus",))
        for i in range(1, 6)
    ]
    registry = _registry(assets, max_asset_series=2)
    text = generate_latest(registry).decode()
    assert 'otwatch_asset_last_seen_timestamp_seconds{asset_id="id5"} 5.0' in text
    assert 'otwatch_asset_last_seen_timestamp_seconds{asset_id="id4"} 4.0' in text
    assert 'asset_id="id3"' not in text
    assert text.count("otwatch_asset_info{") == 2
    assert "otwatch_asset_series_dropped_total 3.0" in text
    # the aggregate still counts every asset
    assert 'otwatch_assets{category="unknown",protocol="modbus",zone="unknown"} 5.0' in text
    assert "otwatch_asset_series_dropped_total 6.0" in generate_latest(registry).decode()


def test_a_vanished_asset_leaves_the_next_scrape() -> None:
    current: list[Asset] = [PLC, HMI]
    registry = CollectorRegistry()
    registry.register(OtwatchCollector(_stats, lambda: current, _op_class, {"version": "0.1.0"}))
    assert 'asset_id="b2"' in generate_latest(registry).decode()
    current = [PLC]
    text = generate_latest(registry).decode()
    assert 'asset_id="b2"' not in text and 'asset_id="a1"' in text


def test_label_values_are_bounded_and_printable() -> None:
    assert label_value("Schneider\x00 Electric\n") == "Schneider Electric"
    assert len(label_value("x" * 500)) == MAX_LABEL_LEN
    assert label_value(None, "unknown") == "unknown"
    assert label_value("", "none") == "none"
    odd = Asset("c3", "10.0.0.9", None, 0.0, 1.0, vendor=Attribute('ACME "best"\r\n' + "y" * 200, "x", 0.9))
    text = generate_latest(_registry([odd])).decode()
    assert 'vendor="ACME \\"best\\"' + "y" * (MAX_LABEL_LEN - len('ACME "best"')) + '"' in text


def _promtool() -> str:
    path = shutil.which("promtool") or PROMTOOL
    if not os.path.exists(path):
        pytest.fail("promtool is required (Debian package prometheus; `make test` installs it)")
    return path


def test_http_scrape_passes_promtool() -> None:
    registry = _registry([PLC, HMI])
    server = start_web("127.0.0.1:0", registry)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as resp:
            content_type = resp.headers["Content-Type"]
            body = resp.read()
    finally:
        server.stop()
    assert content_type.startswith("text/plain; version=0.0.4")
    text = body.decode()
    assert "otwatch_asset_info{" in text and text.startswith("# HELP otwatch_packets_total")
    result = subprocess.run([_promtool(), "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_http_scrape_speaks_openmetrics_when_asked() -> None:
    server = start_web("127.0.0.1:0", _registry([PLC]))
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{server.port}/metrics",
            headers={"Accept": "application/openmetrics-text; version=1.0.0; charset=utf-8"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            content_type = resp.headers["Content-Type"]
            text = resp.read().decode()
    finally:
        server.stop()
    assert content_type.startswith("application/openmetrics-text")
    assert text.endswith("# EOF\n")
    assert "# TYPE otwatch_asset info\n" in text and "otwatch_asset_info{" in text
    assert "# TYPE otwatch_packets counter\n" in text and "otwatch_packets_total 1000.0\n" in text
