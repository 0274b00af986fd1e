"""The HTTP decoder through the FlowTable against tshark 4.0.17 on the seeded scenario and on a real capture
(the RabbitMQ management API calls in Suricata's mqtt-events-missing-connect trace, found by probe())."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from appliance.capture.dissect import Dissector
from appliance.capture.pcapfile import PcapReader
from appliance.flows import FlowTable
from protocols.base import ProtocolEvent
from protocols.http import HttpDecoder
from simulators.itgen.dns_http import write_pcap

TRACES = Path(__file__).resolve().parents[1] / "traces"
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
FIELDS = ("frame.number", "http.request.method", "http.request.uri", "http.request.version", "http.host",
          "http.user_agent", "http.referer", "http.response.code", "http.response.phrase", "http.server",
          "http.location")


def replay(path: Path) -> list[ProtocolEvent]:
    """Every event of the HTTP decoder on a capture, in order."""
    events: list[ProtocolEvent] = []
    table = FlowTable([HttpDecoder], events.append, lambda flow: None)
    dissector = Dissector()
    with PcapReader(path) as reader:
        for linktype, ts, data, wire_len in reader:
            pkt = dissector.dissect(linktype, ts, data, wire_len)
            if pkt is not None:
                table.process(pkt)
    table.flush()
    assert table.decoder_errors == 0
    return events


def tshark(path: Path) -> list[dict[str, list[str]]]:
    """tshark's HTTP rows: every field's values, one per HTTP message of the frame."""
    cmd = ["tshark", "-r", str(path), "-Y", "http", "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a",
           "-E", "aggregator=\x1f"]
    for name in FIELDS:
        cmd += ["-e", name]
    text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [{k: (v.split("\x1f") if v else []) for k, v in zip(FIELDS, line.split("\t"), strict=True)}
            for line in text.splitlines()]


def _nth(row: dict[str, list[str]], key: str, i: int) -> str | None:
    """The i-th value of a field in a tshark row (None when the field has fewer values)."""
    values = row[key]
    return values[i] if i < len(values) else None


def compare(path: Path) -> tuple[int, int, list[tuple[object, ...]]]:
    """(messages compared, matched, differences): requests (method, uri, version, host, user_agent, referrer)
    and responses (status code, message, server, location), as multisets over the capture."""
    theirs_req: list[tuple[object, ...]] = []
    theirs_resp: list[tuple[object, ...]] = []
    for row in tshark(path):
        for i, method in enumerate(row["http.request.method"]):
            req = [_nth(row, k, i) for k in ("http.request.uri", "http.request.version", "http.host",
                                              "http.user_agent", "http.referer")]
            theirs_req.append((method, *req))
        for i, code in enumerate(row["http.response.code"]):
            resp = [_nth(row, k, i) for k in ("http.response.phrase", "http.server", "http.location")]
            theirs_resp.append((int(code), *resp))
    events = replay(path)
    ours_req = [(e.fields["method"], e.fields["uri"], "HTTP/" + e.fields["version"], e.fields.get("host"),
                 e.fields.get("user_agent"), e.fields.get("referrer")) for e in events if e.kind == "request"]
    ours_resp = [(e.fields["status_code"], e.fields["status_msg"], e.fields.get("server"), e.fields.get("location"))
                 for e in events if e.op == "response" and e.kind in ("response", "exception")]
    diffs: list[tuple[object, ...]] = []
    compared = len(theirs_req) + len(theirs_resp)
    for mine, theirs in ((ours_req, theirs_req), (ours_resp, theirs_resp)):
        for item in mine:
            if item in theirs:
                theirs.remove(item)
            else:
                diffs.append(("ours only", *item))
        diffs += [("tshark only", *item) for item in theirs]
    return compared, compared - len([d for d in diffs if d[0] == "tshark only"]), diffs


@needs_tshark
def test_scenario_matches_tshark(tmp_path: Path) -> None:
    pcap = tmp_path / "dns_http.pcap"
    write_pcap(pcap, seed=7)
    compared, matched, diffs = compare(pcap)
    assert diffs == []
    assert (compared, matched) == (18, 18)


@needs_tshark
def test_real_capture_matches_tshark() -> None:
    compared, matched, diffs = compare(TRACES / "suricata" / "mqtt" / "mqtt-events-missing-connect" / "input.pcap")
    assert diffs == []
    assert (compared, matched) == (12, 12)


def test_scenario_events(tmp_path: Path) -> None:
    pcap = tmp_path / "dns_http.pcap"
    write_pcap(pcap, seed=7)
    events = replay(pcap)
    nmap = [e for e in events if e.fields.get("uri_unescaped") == "/nice ports,/Trinity.txt.bak"]
    assert [(e.op, e.kind, e.fields.get("status_code")) for e in nmap] == [("request", "request", None),
                                                                          ("response", "exception", 400)]
    scans = [e for e in events if e.flow is not None and e.flow.resp_p == 9401 and e.op == "response"]
    assert [(e.fields["status_code"], e.fields["response_body_len"], e.fields["matched"]) for e in scans] == [
        (404, 10, True)] * 3
    assert {e.fields["user_agent"] for e in scans} == {
        "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)"}
    web = [e for e in events if e.flow is not None and e.flow.resp_p == 80 and e.op == "response"]
    assert [(e.fields["trans_depth"], e.fields["method"], e.fields["status_code"], e.fields["response_body_len"])
            for e in web] == [(1, "GET", 200, 1513), (2, "GET", 200, 21), (3, "GET", 304, 0), (4, "HEAD", 200, 0),
                              (5, "POST", 302, 0)]
    assert not [e for e in events if e.kind in ("weird", "notice")]
