"""Grafana dashboards as code: the site overview, the asset detail and the sensor health dashboards.

`python -m appliance.export.dashboards docs/grafana/dashboards` writes one JSON file per dashboard; a test requires
the committed files to equal this rendering, parses every query, and runs every query against a real Prometheus
scraping otwatch. Every panel takes its datasource from the `datasource` variable (no `${DS_...}` import
placeholders), so the files can be provisioned from disk or imported by hand.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 39
TAGS = ["otwatch"]


@dataclass(frozen=True)
class Query:
    """One PromQL target of a panel, with its legend."""

    expr: str
    legend: str = ""
    instant: bool = False


@dataclass(frozen=True)
class Panel:
    """A panel: type, title, description, queries, size and display options."""

    type: str
    title: str
    description: str
    queries: tuple[Query, ...]
    w: int = 12
    h: int = 8
    unit: str = "short"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Dashboard:
    """A dashboard: uid, title, description, panels in reading order, extra template variables."""

    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    variables: tuple[dict[str, Any], ...] = ()


def _stat(title: str, description: str, expr: str, unit: str = "short", w: int = 6) -> Panel:
    return Panel("stat", title, description, (Query(expr, instant=True),), w=w, h=5, unit=unit)


def _table(title: str, description: str, *queries: Query, w: int = 12, h: int = 9) -> Panel:
    return Panel("table", title, description, queries, w=w, h=h, options={"showHeader": True})


def _series(title: str, description: str, *queries: Query, unit: str = "short", w: int = 12) -> Panel:
    return Panel("timeseries", title, description, queries, w=w, unit=unit)


def _bars(title: str, description: str, *queries: Query, w: int = 12) -> Panel:
    return Panel("bargauge", title, description, queries, w=w, options={"displayMode": "gradient"})


SITE = Dashboard(
    "otwatch-site",
    "otwatch / Site overview",
    "What the sensor sees on the site: assets, risk, incidents, zone crossings and writes into OT.",
    (
        _stat("Assets", "Known assets (as exported; the per-asset cap applies).", "count(otwatch_asset_info)"),
        _stat("New assets (last day)", "Assets first seen in the last day of packet time.",
              "sum(otwatch_assets_new) or vector(0)"),
        _stat("Open incidents", "Incidents not closed, every severity.", "sum(otwatch_incidents_open) or vector(0)"),
        _stat("Highest asset risk", "The highest per-asset risk score (0-100).", "max(otwatch_asset_risk_score)"),
        _bars("Assets by zone and category", "Assets per zone and category.",
              Query("count by (zone, category) (otwatch_asset_info)", "{{zone}} / {{category}}", instant=True)),
        _table("Top-risk assets", "The ten riskiest assets with their identity.",
               Query("topk(10, otwatch_asset_risk_score * on (asset_id) group_left (ip, category, zone, vendor, "
                     "model) otwatch_asset_info)", instant=True)),
        _table("Open incidents by severity and phase", "Open incidents by severity and the furthest phase reached.",
               Query("sum by (severity, phase) (otwatch_incidents_open)", instant=True)),
        _bars("Highest risk per zone", "The highest asset risk score in each zone.",
              Query("otwatch_zone_risk_max", "{{zone}}", instant=True)),
        _table("Zone crossings", "Requests from one zone into another, by protocol (matrix: source rows, "
               "destination columns in Grafana's grouping transform).",
               Query("sum by (src_zone, dst_zone, protocol) (otwatch_zone_crossings_total)", instant=True), w=24),
        _series("Writes and commands into OT", "Writes and commands to OT and BMS devices, by source zone.",
                Query("sum by (src_zone, dst_zone, protocol) (rate(otwatch_ot_writes_total[$__rate_interval]))",
                      "{{src_zone}} -> {{dst_zone}} {{protocol}}"), unit="reqps"),
        _bars("Alerts by ATT&CK technique", "Alerts raised, by technique (an alert counts once per technique).",
              Query("sum by (technique) (otwatch_alert_techniques_total)", "{{technique}}", instant=True)),
    ),
)

ASSET_FILTER = 'asset_id="$asset"'
ASSET = Dashboard(
    "otwatch-asset",
    "otwatch / Asset detail",
    "One asset: identity, protocols, peers, risk and its factors, alerts.",
    (
        _table("Identity", "Vendor, model, firmware, category, zone, addresses.",
               Query(f"otwatch_asset_info{{{ASSET_FILTER}}}", instant=True), w=24, h=5),
        _stat("Risk score", "The asset's additive risk score (0-100).",
              f"otwatch_asset_risk_score{{{ASSET_FILTER}}}", w=6),
        _stat("Peers", "Distinct peers the asset exchanged traffic with.", f"otwatch_asset_peers{{{ASSET_FILTER}}}"),
        _stat("Last seen", "Packet time the asset last sent.",
              f"otwatch_asset_last_seen_timestamp_seconds{{{ASSET_FILTER}}} * 1000", unit="dateTimeAsIso"),
        _stat("Alerts", "Alerts that name the asset (as actor or target).",
              f"sum(otwatch_asset_alerts{{{ASSET_FILTER}}}) or vector(0)"),
        _bars("Risk factors", "Each factor of the risk score with its points.",
              Query(f"otwatch_asset_risk_factor_points{{{ASSET_FILTER}}}", "{{factor}}", instant=True)),
        _table("Protocols", "Protocols the asset speaks.",
               Query(f"otwatch_asset_protocol{{{ASSET_FILTER}}}", instant=True)),
        _bars("Alerts by severity", "Alerts that name the asset, by severity.",
              Query(f"sum by (severity) (otwatch_asset_alerts{{{ASSET_FILTER}}})", "{{severity}}", instant=True)),
    ),
    variables=(
        {
            "name": "asset",
            "label": "Asset",
            "type": "query",
            "datasource": DATASOURCE,
            "query": {"query": "label_values(otwatch_asset_info, asset_id)", "refId": "asset"},
            "definition": "label_values(otwatch_asset_info, asset_id)",
            "refresh": 2,
            "sort": 1,
            "current": {},
            "options": [],
            "includeAll": False,
            "multi": False,
        },
    ),
)

HEALTH = Dashboard(
    "otwatch-health",
    "otwatch / Sensor health",
    "Is the sensor seeing the network: capture rate, drops, weird records, decode problems, broker session, "
    "learning progress.",
    (
        _series("Capture rate", "Packets and bytes read per second.",
                Query("sum by (instance) (rate(otwatch_packets_total[$__rate_interval]))", "{{instance}} packets/s"),
                unit="pps"),
        _series("Dropped packets", "Packets the kernel dropped (a rising rate: the sensor is not keeping up).",
                Query("sum by (instance) (rate(otwatch_capture_drops_total[$__rate_interval]))", "{{instance}}"),
                unit="pps"),
        _bars("Weird records by protocol", "Malformed or unexpected protocol data, by protocol.",
              Query("sum by (protocol) (otwatch_weird_total) or on () vector(0)", "{{protocol}}", instant=True)),
        _bars("Frames not decoded", "Frames skipped (unsupported link types, ethertypes, fragments), by reason.",
              Query("sum by (reason) (otwatch_capture_skipped_total) or on () vector(0)", "{{reason}}",
                    instant=True)),
        _stat("Flows live", "Connections in the flow table now.", "sum(otwatch_flows_live)"),
        _stat("Flows evicted", "Connections evicted because the flow table was full.",
              "sum(otwatch_flows_evicted_total)"),
        _stat("Broker session", "1 when the read-only MQTT broker session is up (only with a broker configured).",
              "max(otwatch_broker_session_up)"),
        _stat("Learning progress", "Fraction of the site-wide learning period done (1: protecting).",
              "max(otwatch_learning_progress_ratio)", unit="percentunit"),
        _series("Protocol events", "Decoded messages per second by protocol.",
                Query("sum by (protocol) (rate(otwatch_protocol_events_total[$__rate_interval]))", "{{protocol}}"),
                unit="ops", w=24),
        _stat("Newest packet", "Packet time of the newest packet read.",
              "max(otwatch_last_packet_timestamp_seconds) * 1000", unit="dateTimeAsIso"),
        _stat("Scrape duration", "Time the exporter took to build a scrape.", "max(otwatch_scrape_duration_seconds)",
              unit="s"),
    ),
)

DASHBOARDS = (SITE, ASSET, HEALTH)


def _panel_json(panel: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {
            "datasource": DATASOURCE,
            "expr": q.expr,
            "legendFormat": q.legend,
            "instant": q.instant,
            "range": not q.instant,
            "refId": chr(ord("A") + i),
        }
        for i, q in enumerate(panel.queries)
    ]
    return {
        "id": pid,
        "type": panel.type,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.h, "w": panel.w, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": dict(panel.options),
        "targets": targets,
    }


def render(dashboard: Dashboard) -> dict[str, Any]:
    """The dashboard's Grafana JSON model (panels laid out left to right on a 24-column grid)."""
    panels, x, y, row_h = [], 0, 0, 0
    for pid, panel in enumerate(dashboard.panels, start=1):
        if x + panel.w > 24:
            x, y, row_h = 0, y + row_h, 0
        panels.append(_panel_json(panel, pid, x, y))
        x += panel.w
        row_h = max(row_h, panel.h)
    datasource_var = {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "options": [],
    }
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": TAGS,
        "timezone": "browser",
        "editable": True,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [datasource_var, *dashboard.variables]},
        "annotations": {"list": []},
        "links": [
            {"type": "dashboards", "tags": TAGS, "asDropdown": True, "title": "otwatch", "includeVars": False}
        ],
        "panels": panels,
    }


def dashboard_files() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {f"{d.uid}.json": json.dumps(render(d), indent=2, sort_keys=True) + "\n" for d in DASHBOARDS}


def main(argv: list[str] | None = None) -> int:
    """Write the dashboards into the directory given (default docs/grafana/dashboards)."""
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else Path("docs/grafana/dashboards")
    out.mkdir(parents=True, exist_ok=True)
    for name, text in dashboard_files().items():
        (out / name).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
