"""The OpenAPI document: valid OpenAPI 3.1 (openapi-spec-validator), served at /api/v1/openapi.json, listing every
route and every query parameter the running app implements (probed over HTTP), its item schemas matching the rows
the API returns, and the copy in docs/api.md up to date."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate
from prometheus_client import CollectorRegistry

from appliance.alert import Alert
from appliance.export.api import ApiSources
from appliance.export.apiquery import COLLECTIONS, PAGING
from appliance.export.openapi import build_openapi, embedded, render
from appliance.export.web import WebServer, start_web
from appliance.model import Asset, Attribute, Hostname, Role

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "api.md"

# a valid value for each parameter, to show that the app accepts what the document lists
SAMPLES = {"zone": "ot", "category": "PLC", "protocol": "modbus", "vendor": "schneider", "ip": "10.0.0.0/8",
           "since": "0", "until": "2030-01-01T00:00:00Z", "severity": "high", "detector": "scan", "note": "rdp_scan",
           "technique": "T0846", "src": "10.0.0.1", "state": "open", "phase": "discovery", "limit": "5",
           "offset": "0"}  # fmt: skip


def _get(server: WebServer, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(server.url + path, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.fixture(scope="module")
def server() -> Iterator[WebServer]:
    srv = start_web("127.0.0.1:0", CollectorRegistry(), api=ApiSources(lambda: (), lambda: (), lambda: ()))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def served(server: WebServer) -> dict[str, Any]:
    status, body = _get(server, "/api/v1/openapi.json")
    assert status == 200
    document: dict[str, Any] = json.loads(body)
    return document


def test_the_served_document_is_valid_openapi(served: dict[str, Any]) -> None:
    validate(served)
    assert served["openapi"] == "3.1.0" and served["components"]["securitySchemes"]["basicAuth"]["scheme"] == "basic"


def test_every_documented_path_is_served_and_no_other(server: WebServer, served: dict[str, Any]) -> None:
    paths = set(served["paths"])
    assert paths == {"/", "/metrics", "/-/healthy", "/-/ready", "/api/v1/openapi.json", "/api/v1/assets",
                     "/api/v1/alerts", "/api/v1/incidents"}  # fmt: skip
    for path in paths:
        assert _get(server, path)[0] == 200, path
        assert set(served["paths"][path]) == {"get"}, path  # the API is read-only
    for near in ("/metric", "/api", "/api/v1", "/api/v1/", "/api/v1/asset", "/api/v1/openapi", "/-/health", "/x"):
        assert _get(server, near)[0] == 404, near


def test_every_parameter_the_app_reads_is_documented(server: WebServer, served: dict[str, Any]) -> None:
    for collection in COLLECTIONS:
        documented = {p["name"] for p in served["paths"][collection.path]["get"]["parameters"]}
        implemented = {p.name for p in (*collection.filters, *PAGING)}
        assert documented == implemented, collection.path
        for name in sorted(documented - {"cursor"}):  # each is accepted by the running app
            status, body = _get(server, f"{collection.path}?{name}={SAMPLES[name]}")
            assert status == 200, (collection.path, name, body)
        status, body = _get(server, f"{collection.path}?undocumented=1")  # anything else is refused
        assert status == 400 and json.loads(body)["parameter"] == "undocumented"
        if collection.name != "assets":
            assert _get(server, f"{collection.path}?zone=x")[0] == 400  # an assets-only filter


def test_item_schemas_match_the_rows(served: dict[str, Any]) -> None:
    schemas = served["components"]["schemas"]
    asset = Asset("a1", "10.0.0.1", "00:11:22:33:44:55", 1.0, 2.0, vendor=Attribute("Acme", "modbus/fc43", 0.9),
                  roles=(Role("modbus", "server", (1,), ("10.0.0.2",)),), hostnames=(Hostname("plc1", "dns", 1, 2),))
    assert set(schemas["Asset"]["properties"]) == set(asset.to_dict())  # fmt: skip
    alert = Alert(1.0, "scan", "rdp_scan", "high", 70.0, ("T0846",), "10.0.0.1", ("10.0.0.1",), ("C1",), "x", "k")
    assert set(schemas["Alert"]["properties"]) == set(alert.to_dict())
    assert set(schemas["Attribute"]["properties"]) == set(Attribute("a", "b", 1.0).to_dict())


def test_docs_api_md_holds_the_served_document(served: dict[str, Any]) -> None:
    copy = embedded(DOC.read_text(encoding="utf-8"))
    assert copy is not None, "docs/api.md lost its <!-- openapi --> markers"
    kept = json.loads(copy)
    assert render(kept) == render(build_openapi(kept["info"]["version"])), (
        "docs/api.md is stale: run .venv/bin/python -m appliance.export.openapi --update docs/api.md"
    )
    assert {**kept, "info": {**kept["info"], "version": "-"}} == {**served, "info": {**served["info"], "version": "-"}}
    check = subprocess.run([sys.executable, "-m", "appliance.export.openapi", "--check", str(DOC)],
                           capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip
    assert check.returncode == 0, check.stderr
