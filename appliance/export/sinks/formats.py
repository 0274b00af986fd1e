"""Record bodies: the otwatch JSON document, ECS JSON (Elastic Common Schema) and ArcSight CEF:0.

The JSON document is `{"kind": "alert", "sensor": NAME, "alert": ROW}` (or `"incident": ROW`), ROW being exactly the
alerts.jsonl row (the incident store's row for an incident). ECS and CEF map the same facts to their vocabularies:

| fact | CEF | ECS |
|---|---|---|
| packet time | rt (ms since the epoch) | @timestamp |
| detector/note (incident: "incident") | Device Event Class ID | rule.id; rule.category = detector |
| note (incident: its title) | Name | rule.name |
| severity | Severity 3/5/8/10, low/medium/high/critical | event.severity (same numbers), log.level |
| actor / first other asset | src / dst (an IP; a MAC goes to smac / dmac) | source.ip / destination.ip (or .mac) |
| explanation (incident: narrative, else title) | msg | message, event.reason |
| ATT&CK technique ids | cs1 (cs1Label=ATT&CK Techniques) | threat.technique.id |
| detector | cs2 (Detector) | rule.category |
| dedupe key (incident: its id) | cs3 (Dedupe Key / Incident ID) | event.id |
| evidence uids | cs4 (Evidence UIDs) | otwatch.uids |
| every asset | cs5 (Assets) | related.ip |
| score / risk (0-100) | cn1 (Score) | event.risk_score |
| what the sensor did: alert raised, or the incident's state | act | event.action |
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from appliance.export.jsonl import json_default
from appliance.export.sinks.base import Record

CEF_SEVERITY = {"low": 3, "medium": 5, "high": 8, "critical": 10}
UNKNOWN_CEF_SEVERITY = 5
CEF_MSG_MAX, CEF_CS_MAX = 1023, 4000  # the lengths the CEF dictionary gives msg and csN (longer ones are cut)
ECS_VERSION = "8.11.0"
VENDOR = PRODUCT = "otwatch"
# the incident fields an ECS document carries under otwatch.incident (the timeline, asset details, response and
# history stay in incidents.jsonl and the JSON document: they would make a syslog datagram too large)
INCIDENT_KEYS = frozenset(
    ("incident_id", "version", "state", "severity", "risk", "title", "actor", "actors", "first_ts", "last_ts",
     "alerts", "phase", "phases", "techniques", "assets", "closed_reason")
)  # fmt: skip
_MAC = re.compile(r"^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$")


def dumps(doc: Any) -> bytes:
    """Compact UTF-8 JSON of a document (the encoding of alerts.jsonl rows)."""
    try:
        return orjson.dumps(doc, default=json_default, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits: the stdlib encoder takes anything
        text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, default=json_default)
        return text.encode("utf-8", "surrogatepass")


def rfc3339(ts: float) -> str:
    """A UTC RFC 3339 timestamp with microseconds (`2024-06-04T06:50:00.009638Z`), as RFC 5424 and ECS take."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _texts(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple | set | frozenset):
        return [str(v) for v in value]
    return [str(value)]


@dataclass(frozen=True, slots=True)
class Facts:
    """What the formats need from a record, alert or incident alike."""

    kind: str
    ts: float
    severity: str
    detector: str
    name: str
    signature: str
    ident: str
    src: str
    dst: str
    message: str
    action: str
    techniques: list[str]
    uids: list[str]
    assets: list[str]
    score: float | None


def facts(record: Record) -> Facts:
    """Pull the common facts out of an alert row or an incident row (absent fields become empty)."""
    row = record.row
    assets = _texts(row.get("assets"))
    if record.kind == "alert":
        detector, note = str(row.get("detector", "")), str(row.get("note", ""))
        name, signature, ident = note, f"{detector}/{note}", str(row.get("key", ""))
        src, action = str(row.get("src", "")), "alert"
        message = str(row.get("explanation", ""))
    else:
        detector, name, signature = "incident", str(row.get("title") or "incident"), "incident"
        ident = str(row.get("incident_id") or row.get("id") or "")
        src, action = str(row.get("actor") or row.get("src") or ""), str(row.get("state") or "open")
        message = str(row.get("explanation") or row.get("narrative") or row.get("title") or "")
        if not message:
            phases = ", ".join(_texts(row.get("phases")))
            message = f"incident {ident} around {src}" + (f": {phases}" if phases else "")
    dst = next((a for a in assets if a != src), "")
    score = row.get("score", row.get("risk"))
    return Facts(
        kind=record.kind, ts=record.ts, severity=record.severity, detector=detector, name=name, signature=signature,
        ident=ident, src=src, dst=dst, message=message, action=action, techniques=_texts(row.get("techniques")),
        uids=_texts(row.get("uids")), assets=assets, score=float(score) if isinstance(score, int | float) else None,
    )  # fmt: skip


def json_document(record: Record, sensor: str) -> dict[str, Any]:
    """The otwatch JSON document of a record: kind, sensor, and the row under the kind's name."""
    return {"kind": record.kind, "sensor": sensor, record.kind: record.row}


def _address(value: str) -> str | None:
    """'ip' for an IP address, 'mac' for a MAC address, None for anything else."""
    if not value:
        return None
    try:
        ipaddress.ip_address(value)
        return "ip"
    except ValueError:
        return "mac" if _MAC.match(value) else None


def _ips(values: list[str]) -> list[str]:
    return [v for v in values if _address(v) == "ip"]


def ecs_document(record: Record, sensor: str, version: str) -> dict[str, Any]:
    """The record as an ECS event (event.kind alert), otwatch's own fields under `otwatch`."""
    f = facts(record)
    severity = CEF_SEVERITY.get(f.severity, UNKNOWN_CEF_SEVERITY)
    event: dict[str, Any] = {
        "kind": "alert",
        "category": ["intrusion_detection", "network"],
        "type": ["info"],
        "module": "otwatch",
        "dataset": f"otwatch.{f.kind}",
        "action": f.action,
        "severity": severity,
        "reason": f.message,
    }
    if f.ident:
        event["id"] = f.ident
    if f.score is not None:
        event["risk_score"] = f.score
    doc: dict[str, Any] = {
        "@timestamp": rfc3339(f.ts),
        "ecs": {"version": ECS_VERSION},
        "message": f.message,
        "event": event,
        "log": {"level": f.severity},
        "rule": {"id": f.signature, "name": f.name, "category": f.detector},
        "observer": {"type": "ids", "vendor": VENDOR, "product": PRODUCT, "version": version, "name": sensor},
    }
    if f.techniques:
        doc["threat"] = {"framework": "MITRE ATT&CK", "technique": {"id": f.techniques}}
    for key, value in (("source", f.src), ("destination", f.dst)):
        kind = _address(value)
        if kind is not None:
            doc[key] = {kind: value}
    related = _ips([f.src, *f.assets])
    if related:
        doc["related"] = {"ip": list(dict.fromkeys(related))}
    row = record.row if record.kind == "alert" else {k: v for k, v in record.row.items() if k in INCIDENT_KEYS}
    doc["otwatch"] = {"kind": f.kind, "sensor": sensor, "uids": f.uids, "assets": f.assets, record.kind: row}
    return doc


def cef_header(value: str) -> str:
    """Escape a CEF header field: backslash and pipe; a line break becomes a space (headers are one line)."""
    text = value.replace("\\", "\\\\").replace("|", "\\|")
    return text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def cef_extension(value: str) -> str:
    """Escape a CEF extension value: backslash, equals sign, and line breaks as \\n / \\r."""
    return value.replace("\\", "\\\\").replace("=", "\\=").replace("\r", "\\r").replace("\n", "\\n")


def cef_message(record: Record, version: str) -> str:
    """The record as one ArcSight CEF:0 line (no syslog header)."""
    f = facts(record)
    severity = CEF_SEVERITY.get(f.severity, UNKNOWN_CEF_SEVERITY)
    ext: list[tuple[str, str]] = [("rt", str(round(f.ts * 1000)))]
    for value, ip_key, mac_key in ((f.src, "src", "smac"), (f.dst, "dst", "dmac")):
        kind = _address(value)
        if kind is not None:
            ext.append((ip_key if kind == "ip" else mac_key, value))
    ext.append(("act", f.action))
    ext.append(("msg", f.message[:CEF_MSG_MAX]))
    custom = [
        ("ATT&CK Techniques", ",".join(f.techniques)),
        ("Detector", f.detector),
        ("Incident ID" if f.kind == "incident" else "Dedupe Key", f.ident),
        ("Evidence UIDs", ",".join(f.uids)),
        ("Assets", ",".join(f.assets)),
    ]
    for i, (label, value) in enumerate(custom, start=1):
        if value:
            ext.append((f"cs{i}", value[:CEF_CS_MAX]))
            ext.append((f"cs{i}Label", label))
    if f.score is not None:
        ext += [("cn1", str(round(f.score))), ("cn1Label", "Score")]
    ext.append(("cat", f"otwatch/{f.kind}"))
    header = "|".join(cef_header(v) for v in (VENDOR, PRODUCT, version, f.signature, f.name))
    body = " ".join(f"{k}={cef_extension(v)}" for k, v in ext)
    return f"CEF:0|{header}|{severity}|{body}"
