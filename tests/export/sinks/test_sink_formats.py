"""The bodies and the syslog frame: CEF escaping and fields, ECS fields, RFC 5424 header and structured data."""

from __future__ import annotations

import json

import pytest
from sinkkit import NASTY, make_alert, parse_cef, parse_syslog

from appliance.export.sinks.base import Record
from appliance.export.sinks.formats import (
    CEF_SEVERITY,
    cef_extension,
    cef_header,
    cef_message,
    dumps,
    ecs_document,
    json_document,
    rfc3339,
)
from appliance.export.sinks.syslog import octet_frame, sd_value, syslog_message


def _record(i: int = 7, severity: str = "high", **kw: str) -> Record:
    alert = make_alert(i, severity, **kw)
    return Record("alert", alert.ts, alert.severity, alert.to_dict())


def test_cef_escapes_survive_a_strict_parser() -> None:
    assert cef_header("a|b\\c\nd") == "a\\|b\\\\c d"
    assert cef_extension("a=b\\c\nd\re|f") == "a\\=b\\\\c\\nd\\re|f"
    header, ext = parse_cef(cef_message(_record(), "1.2|3"))
    assert header == ["otwatch", "otwatch", "1.2|3", "scan/address_scan", "address_scan", "8"]
    assert ext["msg"] == f"alert 7: {NASTY}"  # pipes, backslashes, equals and line breaks all round-trip


def test_cef_extension_keys() -> None:
    rec = _record()
    _header, ext = parse_cef(cef_message(rec, "0.1.0"))
    assert ext["rt"] == str(round(rec.ts * 1000))
    assert (ext["src"], ext["dst"], ext["act"]) == ("10.8.0.23", "10.20.0.11", "alert")
    assert (ext["cs1"], ext["cs1Label"]) == ("T0846,T1046", "ATT&CK Techniques")
    assert (ext["cs2"], ext["cs3"], ext["cs3Label"]) == ("scan", "scan/address_scan/10.8.0.23/7", "Dedupe Key")
    assert (ext["cs4"], ext["cs5"]) == ("C00007", "10.8.0.23,10.20.0.11")
    assert (ext["cn1"], ext["cn1Label"], ext["cat"]) == ("67", "Score", "otwatch/alert")


@pytest.mark.parametrize(("severity", "cef"), [("low", 3), ("medium", 5), ("high", 8), ("critical", 10), ("odd", 5)])
def test_cef_severity_map(severity: str, cef: int) -> None:
    header, _ext = parse_cef(cef_message(_record(severity=severity), "0"))
    assert header[-1] == str(cef)
    assert 0 <= cef <= 10 and CEF_SEVERITY.get(severity, 5) == cef


def test_cef_addresses_ipv6_and_mac() -> None:
    _h, ext = parse_cef(cef_message(_record(src="fd00::5", dst="00:11:22:33:44:55"), "0"))
    assert ext["src"] == "fd00::5" and ext["dmac"] == "00:11:22:33:44:55" and "dst" not in ext
    _h, ext = parse_cef(cef_message(_record(src="not an address", dst="10.0.0.1"), "0"))
    assert "src" not in ext and ext["dst"] == "10.0.0.1"


def test_cef_long_message_is_cut_to_the_dictionary_length() -> None:
    rec = Record("alert", 1.0, "low", {**_record().row, "explanation": "x=" * 1000})
    _h, ext = parse_cef(cef_message(rec, "0"))
    assert ext["msg"] == ("x=" * 1000)[:1023]


def test_cef_of_an_incident() -> None:
    row = {"incident_id": "I-1", "actor": "10.8.0.23", "state": "open", "severity": "critical", "last_ts": 5.0,
           "assets": ["10.8.0.23", "10.20.0.5"], "phases": ["discovery", "impact"], "techniques": ["T0855"],
           "risk": 91.5}  # fmt: skip
    header, ext = parse_cef(cef_message(Record("incident", 5.0, "critical", row), "0"))
    assert header[3:] == ["incident", "incident", "10"]
    assert (ext["src"], ext["dst"], ext["act"], ext["cs3Label"], ext["cs3"]) == (
        "10.8.0.23", "10.20.0.5", "open", "Incident ID", "I-1")  # fmt: skip
    assert ext["msg"] == "incident I-1 around 10.8.0.23: discovery, impact" and ext["cn1"] == "92"


def test_ecs_document() -> None:
    rec = _record(3, "critical")
    doc = json.loads(dumps(ecs_document(rec, "sensor-a", "0.1.0")))
    assert doc["@timestamp"] == "2024-06-04T06:50:03.123456Z"
    assert doc["event"]["kind"] == "alert" and doc["event"]["severity"] == 10
    assert doc["event"]["category"] == ["intrusion_detection", "network"] and doc["event"]["dataset"] == "otwatch.alert"
    assert doc["threat"]["technique"]["id"] == ["T0846", "T1046"]
    assert doc["source"]["ip"] == "10.8.0.23" and doc["destination"]["ip"] == "10.20.0.11"
    assert doc["rule"]["name"] == "address_scan" and doc["rule"]["category"] == "scan"
    assert doc["message"] == doc["event"]["reason"] == f"alert 3: {NASTY}"
    assert doc["observer"]["name"] == "sensor-a" and doc["otwatch"]["alert"]["key"] == rec.row["key"]
    assert doc["otwatch"]["alert"]["details"]["set"] == [1, 3]  # sets encoded as alerts.jsonl does


def test_json_document_is_the_alerts_row() -> None:
    rec = _record()
    doc = json.loads(dumps(json_document(rec, "s")))
    assert doc["kind"] == "alert" and doc["sensor"] == "s"
    assert doc["alert"] == json.loads(dumps(rec.row))


def test_rfc5424_message_parses_strictly() -> None:
    rec = _record(severity="critical")
    raw = syslog_message(rec, "CEF:0|x", facility=16, hostname="edge-1", app_name="otwatch", procid="42",
                         sequence=9, version='0.1"]\\')  # fmt: skip
    msg = parse_syslog(raw)
    assert (msg.facility, msg.severity) == (16, 2)
    assert msg.timestamp.timestamp() == pytest.approx(rec.ts, abs=1e-6)
    assert (msg.hostname, msg.app_name, msg.procid, msg.msgid) == ("edge-1", "otwatch", "42", "alert")
    assert msg.sd == {"origin": {"software": "otwatch", "swVersion": '0.1"]\\'}, "meta": {"sequenceId": "9"}}
    assert msg.msg == "CEF:0|x"
    assert sd_value('a"b]c\\') == 'a\\"b\\]c\\\\'
    assert octet_frame(b"abc") == b"3 abc" and octet_frame("é".encode()) == b"2 \xc3\xa9"


@pytest.mark.parametrize(("severity", "code"), [("low", 5), ("medium", 4), ("high", 3), ("critical", 2)])
def test_syslog_severity(severity: str, code: int) -> None:
    raw = syslog_message(_record(severity=severity), "x", facility=4, hostname="h", app_name="a", procid="1",
                         sequence=1, version="0")  # fmt: skip
    assert parse_syslog(raw).pri == 4 * 8 + code


def test_rfc3339() -> None:
    assert rfc3339(0.5) == "1970-01-01T00:00:00.500000Z"
