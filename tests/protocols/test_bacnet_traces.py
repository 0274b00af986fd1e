"""The BACnet decoder on real captures: framing fields frame by frame against tshark, bacnet.log against ICSNPP."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from appliance.capture.dissect import Dissector
from appliance.capture.pcapfile import PcapReader
from appliance.model import LLC
from protocols.bacnet import BacnetDecoder, BacnetEthernetDecoder
from protocols.bacnet_enums import ABORT_REASONS, ERROR_CODES, REJECT_REASONS
from protocols.bacnet_names import PDU_TYPES, bvlc_function_text, network_message_op
from protocols.base import FlowId, ProtocolEvent

TRACES = Path(__file__).resolve().parents[1] / "traces"
TSHARK = TRACES / "peers" / "tshark"
CAPTURES = {  # trace -> its tshark dump
    "icsnpp/bacnet_segmented_data.pcap": "icsnpp-bacnet/testing/traces/bacnet_segmented_data.pcap.tsv",
    "icsst/bacnet_test.pcap": "ICS-Security-Tools/pcaps/BACnet/bacnet_test.pcap.tsv",
    "arkime/bacnet-stack-services.pcap": "arkime/tests/pcap/bacnet-stack-services.pcap.tsv",
    "ndpi/bacnet.pcap": "nDPI/tests/cfgs/default/pcap/bacnet.pcap.tsv",
    **{f"hilti/{name}.pcap": f"hilti/bro/tests/Traces/bacnet/{name}.pcap.tsv"
       for name in ("BBMD_Results", "NPDU", "atomic-read-file", "bacnet-property-error", "read-properties", "rpm",
                    "who-has", "who-is-i-am")},
}
MIN_COMPARED = {  # frames compared per trace: every BACnet frame but the weird ones and unfinished segments
    "arkime/bacnet-stack-services.pcap": 108, "hilti/BBMD_Results.pcap": 8, "hilti/NPDU.pcap": 36,
    "hilti/atomic-read-file.pcap": 128, "hilti/bacnet-property-error.pcap": 1, "hilti/read-properties.pcap": 122,
    "hilti/rpm.pcap": 4, "hilti/who-has.pcap": 73, "hilti/who-is-i-am.pcap": 23,
    "icsnpp/bacnet_segmented_data.pcap": 18, "icsst/bacnet_test.pcap": 22, "ndpi/bacnet.pcap": 23,
}
# Malformed frames tshark shows as far as it can, and we report as weirds: an Original-Unicast-NPDU whose NPDU has
# version 0x10 (an APDU without its NPDU header), and four NPDUs that end after their destination specifier.
EXPECTED_WEIRD = {
    ("arkime/bacnet-stack-services.pcap", 1): "bacnet_invalid_npdu_version",
    **{("arkime/bacnet-stack-services.pcap", n): "bacnet_truncated_apdu" for n in (77, 79, 81, 83)},
}


def decode(trace: str) -> dict[int, list[ProtocolEvent]]:
    """Every UDP/LLC payload of a capture fed to per-flow decoders; frame number -> its events."""
    dissector = Dissector()
    decoders: dict[tuple, BacnetDecoder | BacnetEthernetDecoder] = {}
    out: dict[int, list[ProtocolEvent]] = {}
    with PcapReader(TRACES / trace) as reader:
        for frame, (linktype, ts, data, wire_len) in enumerate(reader, 1):
            pkt = dissector.dissect(linktype, ts, data, wire_len)
            if pkt is None or pkt.proto not in (17, LLC) or not pkt.payload:
                continue
            a, b = (pkt.src, pkt.sport), (pkt.dst, pkt.dport)
            key = (pkt.proto, b, a) if (pkt.proto, b, a) in decoders else (pkt.proto, a, b)
            dec = decoders.get(key)
            if dec is None:
                proto = "udp" if pkt.proto == 17 else "llc"
                flow = FlowId(f"C{len(decoders)}", a[0], a[1], b[0], b[1], proto)
                dec = decoders[key] = BacnetDecoder(flow) if pkt.proto == 17 else BacnetEthernetDecoder(flow)
            out[frame] = dec.feed(pkt.payload, key[1] == a, ts)
    return out


def tshark(dump: str) -> dict[int, dict[str, str]]:
    """tshark's rows of a dump, by frame number."""
    with open(TSHARK / dump, newline="") as f:
        return {int(r["frame.number"]): r for r in csv.DictReader(f, delimiter="\t")}


@pytest.mark.parametrize("trace", sorted(CAPTURES))
def test_framing_agrees_with_tshark(trace: str) -> None:
    ours = decode(trace)
    theirs = tshark(CAPTURES[trace])
    compared = 0
    for frame, row in theirs.items():
        if not (row["bvlc.function"] or row["bacapp.type"] or row["bacnet.mesgtyp"]):
            continue  # not BACnet to tshark (e.g. an empty datagram to 47808)
        events = ours.get(frame, [])
        if (trace, frame) in EXPECTED_WEIRD:
            assert [e.op for e in events] == [EXPECTED_WEIRD[trace, frame]]
            continue
        msgs = [e for e in events if e.kind != "weird"]
        if not msgs:  # only a segment that does not complete its message gives no event
            assert row["bacapp.type"] == "3" and not [e for e in events if "segment" in e.op], frame
            continue
        (ev,) = msgs
        f = ev.fields
        assert f.get("bvlc_function") == (bvlc_function_text(int(row["bvlc.function"], 16))
                                          if row["bvlc.function"] else None), frame
        # tshark's bacnet.dnet holds the header's DNET and the network numbers of a network-layer message
        dnets = [f["dnet"]] if "dnet" in f else []
        assert dnets + f.get("networks", []) == [int(n) for n in row["bacnet.dnet"].split(",") if n], frame
        assert f.get("snet") == (int(row["bacnet.snet"]) if row["bacnet.snet"] else None), frame
        if row["bacnet.mesgtyp"]:
            assert (f["pdu_type"], ev.op) == ("NPDU", network_message_op(int(row["bacnet.mesgtyp"], 16)))
        elif row["bacapp.type"]:
            assert f["pdu_type"] == PDU_TYPES[int(row["bacapp.type"])], frame
            for column, name in (("bacapp.invoke_id", "invoke_id"), ("bacapp.confirmed_service", "service_choice"),
                                 ("bacapp.unconfirmed_service", "service_choice")):
                if row[column]:
                    assert f[name] == int(row[column]), (frame, column)
            if row["bacapp.error_code"]:
                assert f["error_code"] == ERROR_CODES[int(row["bacapp.error_code"])], frame
            if row["bacapp.reject_reason"]:
                assert f["reject_reason"] == REJECT_REASONS[int(row["bacapp.reject_reason"])], frame
            if row["bacapp.abort_reason"]:
                assert f["abort_reason"] == ABORT_REASONS[int(row["bacapp.abort_reason"])], frame
        compared += 1
    assert compared >= MIN_COMPARED[trace]


def test_every_bvlc_function_of_the_bbmd_trace() -> None:
    ops = [e.op for events in decode("hilti/BBMD_Results.pcap").values() for e in events]
    assert ops == ["write_bdt", "bvlc_result", "read_bdt", "bvlc_result", "read_fdt", "bvlc_result",
                   "register_foreign_device", "bvlc_result"]


def test_network_layer_trace_decodes_without_weirds() -> None:
    events = [e for evs in decode("hilti/NPDU.pcap").values() for e in evs]
    assert [e for e in events if e.kind == "weird"] == []
    assert {e.op for e in events} >= {
        "who_is_router_to_network", "i_am_router_to_network", "i_could_be_router_to_network",
        "reject_message_to_network", "router_busy_to_network", "router_available_to_network",
        "initialize_routing_table", "initialize_routing_table_ack", "establish_connection_to_network",
        "disconnect_connection_to_network"}


def icsnpp_rows(name: str) -> list[dict[str, str]]:
    """ICSNPP's rows of one log of the segmented-data baseline."""
    lines = (TRACES / "peers" / "icsnpp" / "analyzer.segmented_data" / f"{name}.log").read_text().splitlines()
    fields = next(line for line in lines if line.startswith("#fields")).split("\t")[1:]
    return [dict(zip(fields, line.split("\t"), strict=True)) for line in lines if not line.startswith("#")]


def zeek(value: object) -> str:
    """A value as Zeek's TSV writer prints it."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "T" if value else "F"
    return str(value) if value != "" else "(empty)"


def test_bacnet_log_agrees_with_icsnpp() -> None:
    columns = ("source_h", "source_p", "destination_h", "destination_p", "bvlc_function", "pdu_type",
               "pdu_service", "invoke_id", "result_code")
    ours = []
    for events in decode("icsnpp/bacnet_segmented_data.pcap").values():
        for e in events:
            assert e.kind != "weird"
            fid = e.flow
            assert fid is not None
            sport, dport = (fid.orig_p, fid.resp_p) if e.is_orig else (fid.resp_p, fid.orig_p)
            row = {"source_h": e.src, "source_p": sport, "destination_h": e.dst, "destination_p": dport, **e.fields}
            ours.append(tuple(zeek(row.get(c)) for c in columns))
    theirs = [tuple(r[c] for c in columns) for r in icsnpp_rows("bacnet")]
    assert len(ours) == len(theirs) == 18
    assert Counter(ours) == Counter(theirs)
