"""The OpenAPI 3.1 document of the web endpoint, built from the same tables the handlers use.

`python -m appliance.export.openapi` prints it; `--update docs/api.md` rewrites the copy kept in that page (between
its `<!-- openapi -->` markers) and `--check docs/api.md` exits 1 when the copy is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from appliance.alert import SEVERITIES
from appliance.export.apiquery import COLLECTIONS, PAGING, Param
from appliance.model import ASSET_ATTRIBUTES

BEGIN, END = "<!-- openapi -->", "<!-- /openapi -->"

_S: dict[str, Any] = {"type": "string"}
_SN: dict[str, Any] = {"type": ["string", "null"]}
_IN: dict[str, Any] = {"type": ["integer", "null"]}
_NUM: dict[str, Any] = {"type": "number"}
_STRS: dict[str, Any] = {"type": "array", "items": _S}
_ATTR: dict[str, Any] = {"oneOf": [{"$ref": "#/components/schemas/Attribute"}, {"type": "null"}]}


def _asset_schema() -> dict[str, Any]:
    props: dict[str, Any] = {
        "asset_id": _S, "ip": {**_S, "description": "IP address ('' for a device known by MAC or routed address)"},
        "mac": _SN, "via_mac": _SN, "via_ip": _SN, "via_asset": _SN,
        "first_seen": {**_NUM, "description": "packet time, seconds since the epoch"}, "last_seen": _NUM,
        "category": _S, "category_rule": _S, "category_evidence": _S, "category_confidence": _NUM,
        "zone": _SN, "domain": _SN, "purdue_level": {"type": ["number", "null"]},
        "bacnet_device_instance": _IN, "bacnet_network": _IN, "bacnet_mac": _SN, "bacnet_vendor_id": _IN,
        "bacnet_max_apdu": _IN, "bacnet_segmentation": _SN, "bacnet_services": _STRS,
    }  # fmt: skip
    props.update({name: _ATTR for name in ASSET_ATTRIBUTES})
    counts = {"type": "array", "items": {"type": "array", "prefixItems": [_S, _S, {"type": "integer"}]},
              "description": "(protocol, operation class, count)"}  # fmt: skip
    props.update({
        "protocols": _STRS,
        "roles": {"type": "object", "description": "protocol -> role (client, server) -> {units, peers}",
                  "additionalProperties": {"type": "object", "additionalProperties": {"type": "object"}}},
        "peers": _STRS, "events_sent": counts, "events_received": counts, "flows": {"type": "integer"},
        "ot_traffic": {"type": "boolean"}, "mqtt_client_ids": _STRS, "mqtt_usernames": _STRS,
        "mqtt_topics_published": _STRS, "mqtt_topics_subscribed": _STRS,
        "mqtt_payload_types": {"type": "array", "items": {"type": "array"}},
        "hostnames": {"type": "array", "items": {"type": "object", "properties": {
            "name": _S, "source": _S, "first_seen": _NUM, "last_seen": _NUM}}},
    })  # fmt: skip
    return {"type": "object", "properties": props, "required": ["asset_id", "ip", "first_seen", "last_seen"]}


def _alert_schema() -> dict[str, Any]:
    props = {
        "ts": {**_NUM, "description": "packet time, seconds since the epoch"}, "detector": _S, "note": _S,
        "severity": {"type": "string", "enum": list(SEVERITIES)}, "score": {**_NUM, "minimum": 0, "maximum": 100},
        "techniques": {**_STRS, "description": "MITRE ATT&CK technique ids"},
        "src": {**_S, "description": "the actor's address"},
        "assets": {**_STRS, "description": "every address involved, actor first"},
        "uids": {**_STRS, "description": "flow and event uids of the evidence"}, "explanation": _S,
        "key": {**_S, "description": "dedupe key"}, "details": {"type": "object"},
    }  # fmt: skip
    return {"type": "object", "properties": props, "required": list(props)}


def _parameter(param: Param) -> dict[str, Any]:
    schema = dict(param.schema)
    if param.repeatable:
        return {"name": param.name, "in": "query", "required": False, "description": param.description
                + " Repeat for alternatives.", "style": "form", "explode": True,
                "schema": {"type": "array", "items": schema}}  # fmt: skip
    return {"name": param.name, "in": "query", "required": False, "description": param.description, "schema": schema}


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}  # fmt: skip


def _text(description: str, media: tuple[str, ...] = ("text/plain",)) -> dict[str, Any]:
    return {"description": description, "content": {m: {"schema": {"type": "string"}} for m in media}}


_UNAUTHORIZED = {"description": "Basic auth is configured and the credentials are missing or wrong (the same "
                 "answer whatever was wrong, with `WWW-Authenticate: Basic`)."}  # fmt: skip


def _plain_get(summary: str, responses: dict[str, Any]) -> dict[str, Any]:
    return {"get": {"summary": summary, "responses": {**responses, "401": _UNAUTHORIZED}}}


def build_openapi(version: str = "0") -> dict[str, Any]:
    """The OpenAPI document: every path the endpoint serves, every parameter the API reads."""
    paths: dict[str, Any] = {
        "/": _plain_get("A short index of the paths", {"200": _text("The index")}),
        "/metrics": _plain_get("Prometheus metrics", {"200": _text(
            "The exposition: OpenMetrics when the Accept header asks for application/openmetrics-text, else the "
            "classic text format", ("text/plain", "application/openmetrics-text"))}),
        "/-/healthy": _plain_get("Liveness", {"200": _text("The process serves requests")}),
        "/-/ready": _plain_get("Readiness", {"200": _text("Ready"), "503": _text("Not ready yet")}),
        "/api/v1/openapi.json": _plain_get("This document", {"200": {"description": "The OpenAPI document",
                                           "content": {"application/json": {"schema": {"type": "object"}}}}}),
    }  # fmt: skip
    for c in COLLECTIONS:
        page = {"type": "object", "required": ["items", "total", "limit", "next"], "properties": {
            "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{c.item_schema}"}},
            "total": {"type": "integer", "description": "items matching the filters, on every page"},
            "limit": {"type": "integer"},
            "next": {"type": ["string", "null"], "description": "the next page's URL (path and query), null on "
                     "the last page; also sent as a `Link: <...>; rel=\"next\"` header"}}}  # fmt: skip
        responses = {
            "200": {"description": "One page", "content": {"application/json": {"schema": page}}},
            "400": _error("A bad or unknown parameter, named in `parameter`"),
            "401": _UNAUTHORIZED,
        }
        if c.name == "incidents":
            responses["503"] = _error("The sensor has no incident store wired in: `incidents are not available`")
        paths[c.path] = {"get": {
            "summary": c.summary, "description": c.description, "operationId": f"list_{c.name}",
            "parameters": [_parameter(p) for p in (*c.filters, *PAGING)], "responses": responses}}  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {"title": "otwatch sensor API", "version": version,
                 "description": "Read-only views of a running otwatch sensor. All paths need basic auth when the web "
                 "config (`--web.config.file`) lists users, and TLS when it has a tls_server_config."},
        "paths": paths,
        "components": {
            "securitySchemes": {"basicAuth": {"type": "http", "scheme": "basic"}},
            "schemas": {
                "Asset": _asset_schema(),
                "Attribute": {"type": "object", "required": ["value", "source", "confidence"], "properties": {
                    "value": _S, "source": {**_S, "description": "where it was learnt, e.g. modbus/fc43, oui"},
                    "confidence": {**_NUM, "minimum": 0, "maximum": 1}}},
                "Alert": _alert_schema(),
                "Incident": {"type": "object", "description": "An incident store row: incident_id, actor, state, "
                             "severity, first_ts, last_ts, phases and more", "properties": {
                                 "incident_id": _S, "actor": _S, "state": _S,
                                 "severity": {"type": "string", "enum": list(SEVERITIES)},
                                 "first_ts": _NUM, "last_ts": _NUM, "phases": _STRS}},
                "Error": {"type": "object", "required": ["error"], "properties": {
                    "error": _S, "parameter": {**_S, "description": "the query parameter at fault"}}},
            },
        },
        "security": [{}, {"basicAuth": []}],
    }  # fmt: skip


def render(document: dict[str, Any]) -> str:
    """The document as the JSON text kept in docs/api.md."""
    return json.dumps(document, indent=2, ensure_ascii=False)


def embedded(markdown: str) -> str | None:
    """The JSON between the markers of a Markdown page (inside its ```json fence), or None."""
    if BEGIN not in markdown or END not in markdown:
        return None
    block = markdown.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    return block.removeprefix("```json").removesuffix("```").strip()


def main(argv: list[str] | None = None) -> int:
    """Print the document, or update or check the copy in a Markdown page."""
    parser = argparse.ArgumentParser(prog="python -m appliance.export.openapi", description=__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--update", type=Path, metavar="MD", help="rewrite the copy between the markers of MD")
    group.add_argument("--check", type=Path, metavar="MD", help="exit 1 when the copy in MD is stale")
    args = parser.parse_args(argv)
    from appliance.cli import otwatch_version

    text = render(build_openapi(otwatch_version()))
    if args.update is None and args.check is None:
        print(text)
        return 0
    page: Path = args.update or args.check
    markdown = page.read_text(encoding="utf-8")
    if embedded(markdown) is None:
        print(f"{page}: no {BEGIN} ... {END} markers", file=sys.stderr)
        return 1
    if args.check is not None:
        if embedded(markdown) != text:
            print(f"{page}: the OpenAPI copy is stale: run python -m appliance.export.openapi --update {page}",
                  file=sys.stderr)  # fmt: skip
            return 1
        return 0
    head, rest = markdown.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    page.write_text(f"{head}{BEGIN}\n```json\n{text}\n```\n{END}{tail}", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
