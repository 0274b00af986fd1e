"""Dashboards, metric catalogue and alerting rules as committed: equal to their generators, structurally sound for
Grafana, every query parsed by Prometheus's own parser (promtool), every metric a query names in the catalogue, and
the alerting rules checked and unit-tested by promtool."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from appliance.export.catalogue import entries, full_collector, render
from appliance.export.dashboards import DASHBOARDS, dashboard_files

REPO = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = REPO / "docs" / "grafana" / "dashboards"
RULES_DIR = REPO / "docs" / "prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
METRIC = re.compile(r"\b(otwatch_[a-z_]+)\b")
# Grafana's own variables, replaced by what Grafana would put there before the query reaches Prometheus
GRAFANA_VARS = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "15s"}


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, expression) for every target of every committed dashboard."""
    out = []
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                out.append((board["uid"], panel["title"], target["expr"]))
    return out


def concrete(expr: str, asset: str = "a1") -> str:
    """A panel expression with Grafana's variables replaced as Grafana would."""
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    return expr.replace("$asset", asset)


def test_committed_dashboards_equal_the_generator() -> None:
    files = dashboard_files()
    assert sorted(p.name for p in DASHBOARD_DIR.glob("*.json")) == sorted(files)
    for name, text in files.items():
        assert (DASHBOARD_DIR / name).read_text() == text, f"regenerate: python -m appliance.export.dashboards ({name})"


def test_committed_metric_catalogue_equals_the_collector() -> None:
    text = render(entries(full_collector().describe()))
    assert (REPO / "docs" / "metrics.md").read_text() == text, "regenerate: python -m appliance.export.catalogue"


@pytest.mark.parametrize("path", sorted(DASHBOARD_DIR.glob("*.json")), ids=lambda p: p.name)
def test_dashboard_structure(path: Path) -> None:
    raw = path.read_text()
    assert "${DS_" not in raw and "__inputs" not in raw  # provisionable as is, no import placeholders
    board: dict[str, Any] = json.loads(raw)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert board["uid"].startswith("otwatch-") and board["schemaVersion"] >= 36
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)) and board["panels"]
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["title"] and panel["description"] and panel["targets"], panel["title"]
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps another panel"
                cells.add((x, y))
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids))
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}" and target["expr"].strip()
            # every variable a query uses is defined by the dashboard or by Grafana itself
            for var in re.findall(r"\$(\w+)", target["expr"]):
                assert var in variables or f"${var}" in GRAFANA_VARS, (panel["title"], var)


def test_the_three_dashboards_of_the_issue_exist() -> None:
    assert [d.uid for d in DASHBOARDS] == ["otwatch-site", "otwatch-asset", "otwatch-health"]
    asset = json.loads((DASHBOARD_DIR / "otwatch-asset.json").read_text())
    names = [v["name"] for v in asset["templating"]["list"]]
    assert names == ["datasource", "asset"]


def test_every_metric_a_query_names_is_in_the_catalogue() -> None:
    known = {e.name for e in entries(full_collector().describe())}
    named = {m for _uid, _title, expr in panel_queries() for m in METRIC.findall(expr)}
    rules = yaml.safe_load((RULES_DIR / "otwatch.rules.yml").read_text())
    named |= {m for group in rules["groups"] for rule in group["rules"] for m in METRIC.findall(rule["expr"])}
    assert named and not named - known, sorted(named - known)


def test_every_query_parses_with_prometheus_parser(tmp_path: Path) -> None:
    # promtool parses a rule file's expressions with Prometheus's own PromQL parser: one recording rule per query
    queries = panel_queries()
    rules = [{"record": f"otwatch:panel_{i}", "expr": concrete(expr)} for i, (_u, _t, expr) in enumerate(queries)]
    path = tmp_path / "panels.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    done = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout
    # and the parser does reject a broken query: the check above can fail
    path.write_text(yaml.safe_dump({"groups": [{"name": "bad", "rules": [{"record": "x:y", "expr": "sum by (("}]}]}))
    bad = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert bad.returncode != 0


def test_alerting_rules_check_and_unit_tests_pass() -> None:
    check = subprocess.run([PROMTOOL, "check", "rules", "otwatch.rules.yml"], cwd=RULES_DIR, capture_output=True,
                           text=True, check=False)  # fmt: skip
    assert check.returncode == 0 and "SUCCESS: 6 rules found" in check.stdout, check.stdout + check.stderr
    unit = subprocess.run([PROMTOOL, "test", "rules", "otwatch.rules.test.yml"], cwd=RULES_DIR, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert unit.returncode == 0 and "SUCCESS" in unit.stdout, unit.stdout + unit.stderr
    names = {r["alert"] for g in yaml.safe_load((RULES_DIR / "otwatch.rules.yml").read_text())["groups"]
             for r in g["rules"]}  # fmt: skip
    assert {"OtwatchCriticalIncidentOpen", "OtwatchOtWriteFromItZone", "OtwatchSensorDown",
            "OtwatchDroppingPackets", "OtwatchBrokerSessionDown"} <= names  # fmt: skip
