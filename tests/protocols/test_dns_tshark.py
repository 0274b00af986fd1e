"""The DNS decoders through the FlowTable against tshark 4.0.17, message by message, on the seeded scenario
(simulators/itgen/dns_http.py) and on the DNS frames of a real capture (Zeek's modbusSmall.pcap)."""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from appliance.capture.dissect import Dissector
from appliance.capture.pcapfile import PcapReader
from appliance.flows import FlowTable
from protocols.base import DecoderFactory, ProtocolEvent
from protocols.dns import DnsDecoder, DnsTcpDecoder
from simulators.itgen.dns_http import write_pcap

TRACES = Path(__file__).resolve().parents[1] / "traces"
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
FIELDS = ("frame.number", "dns.id", "dns.flags.response", "dns.flags.opcode", "dns.flags.rcode", "dns.qry.name",
          "dns.qry.type", "dns.qry.class", "dns.count.answers", "dns.flags.authoritative", "dns.flags.recdesired",
          "dns.flags.recavail", "dns.a", "dns.aaaa", "dns.ptr.domain_name", "dns.cname", "dns.resp.ttl",
          "dns.mx.mail_exchange", "dns.srv.target", "dns.ns", "dns.soa.mname")


def replay(path: Path, decoders: list[DecoderFactory]) -> dict[int, list[ProtocolEvent]]:
    """Events by the number of the frame that produced them (0: at the final flush)."""
    frames: dict[int, list[ProtocolEvent]] = defaultdict(list)
    frame = 0

    def on_event(ev: ProtocolEvent) -> None:
        frames[frame].append(ev)

    table = FlowTable(decoders, on_event, lambda flow: None)
    dissector = Dissector()
    with PcapReader(path) as reader:
        for frame, (linktype, ts, data, wire_len) in enumerate(reader, 1):  # noqa: B007 (on_event reads it)
            pkt = dissector.dissect(linktype, ts, data, wire_len)
            if pkt is not None:
                table.process(pkt)
    frame = 0
    table.flush()
    assert table.decoder_errors == 0
    return frames


def tshark(path: Path, display_filter: str, fields: tuple[str, ...]) -> list[dict[str, list[str]]]:
    """tshark's rows: every field's values (one per occurrence, in order)."""
    cmd = ["tshark", "-r", str(path), "-Y", display_filter, "-T", "fields", "-E", "separator=\t",
           "-E", "occurrence=a", "-E", "aggregator=\x1f"]
    for name in fields:
        cmd += ["-e", name]
    text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [{k: (v.split("\x1f") if v else []) for k, v in zip(fields, line.split("\t"), strict=True)}
            for line in text.splitlines()]


def compare(path: Path) -> tuple[int, int, list[str]]:
    """(messages compared, messages matched, differences) between our DNS events and tshark's rows."""
    ours = replay(path, [DnsDecoder, DnsTcpDecoder])
    compared = matched = 0
    diffs: list[str] = []
    for row in tshark(path, "dns", FIELDS):
        frame = int(row["frame.number"][0])
        events = [e for e in ours.get(frame, []) if e.kind in ("request", "response", "exception")]
        n = len(row["dns.id"])
        if len(events) != n:
            diffs.append(f"frame {frame}: {len(events)} events, tshark {n} messages")
            continue
        names = iter(row["dns.qry.name"])
        qtypes = iter(row["dns.qry.type"])
        for i, ev in enumerate(events):
            compared += 1
            f = ev.fields
            theirs = {"trans_id": int(row["dns.id"][i], 16), "QR": row["dns.flags.response"][i] in ("1", "True"),
                      "opcode": int(row["dns.flags.opcode"][i]), "query": next(names).lower(),
                      "qtype": int(next(qtypes)), "RD": row["dns.flags.recdesired"][i] in ("1", "True")}
            mine = {"trans_id": f["trans_id"], "QR": ev.op == "response", "opcode": f["opcode"],
                    "query": f.get("query"), "qtype": f.get("qtype"), "RD": f["RD"]}
            if theirs["QR"]:
                theirs["rcode"] = int(row["dns.flags.rcode"][i])
                mine["rcode"] = f["rcode"]
                theirs["answers"] = int(row["dns.count.answers"][i])
                mine["answers"] = f["total_answers"]
            if n == 1 and theirs["QR"]:  # rdata values are only attributable with one message per frame
                # tshark lists the A/AAAA/CNAME/PTR values of every section, Zeek's answers only the answer
                # section's: each of ours must be one of tshark's; ours are empty only without answer records (or
                # for SVCB/HTTPS, which Zeek does not log, and TXT, whose text tshark has in another field)
                keys = ("dns.a", "dns.aaaa", "dns.cname", "dns.ptr.domain_name", "dns.mx.mail_exchange",
                        "dns.srv.target", "dns.ns", "dns.soa.mname")
                texts = {t.lower() for k in keys for t in row[k]}
                ans = [a for a in f.get("answers", []) if not a.startswith(("TXT", "<", "RRSIG", "DS", "DNSKEY"))]
                ok = set(ans) <= texts and (bool(ans) or not theirs["answers"] or theirs["qtype"] in (16, 64, 65))
                mine["rdata_ok"] = ok
                theirs["rdata_ok"] = True
            if mine == theirs:
                matched += 1
            else:
                diffs.append(f"frame {frame}: ours {mine} tshark {theirs}")
    return compared, matched, diffs


@needs_tshark
def test_scenario_matches_tshark_message_by_message(tmp_path: Path) -> None:
    pcap = tmp_path / "dns_http.pcap"
    write_pcap(pcap, seed=7)
    compared, matched, diffs = compare(pcap)
    assert diffs == []
    assert (compared, matched) == (80, 80)


@needs_tshark
def test_real_capture_matches_tshark() -> None:
    compared, matched, diffs = compare(TRACES / "zeek" / "modbusSmall.pcap")
    assert diffs == []
    assert (compared, matched) == (6, 6)


def test_scenario_events_without_tshark(tmp_path: Path) -> None:
    pcap = tmp_path / "dns_http.pcap"
    write_pcap(pcap, seed=7)
    events = [e for evs in replay(pcap, [DnsDecoder, DnsTcpDecoder]).values() for e in evs]
    sweep = [e for e in events if e.op == "response" and e.fields.get("ptr_address", "").startswith("10.20.0.")]
    assert len(sweep) == 24 and sum(e.fields["rcode_name"] == "NXDOMAIN" for e in sweep) == 21
    assert {e.fields["answers"][0] for e in sweep if "answers" in e.fields} == {
        "host5.corp.example", "host8.corp.example", "host9.corp.example"}
    notices = [e.fields["query"] for e in events if e.kind == "notice"]
    assert sorted(notices) == ["lost.corp.example", "slow.corp.example"]  # one of the retransmitted pair too
    assert not [e for e in events if e.kind == "weird"]
    tcp = [e for e in events if e.flow is not None and e.flow.proto == "tcp"]
    assert [(e.op, e.fields["trans_id"]) for e in tcp] == [("query", 0x0A01), ("query", 0x0A02),
                                                          ("response", 0x0A01), ("response", 0x0A02)]
