"""The DNS parse memo (protocols/dns_wire.parse_message) gives what a fresh parse gives, whatever the transaction
id, and never shares a top-level dict between callers."""

from __future__ import annotations

from pathlib import Path

from appliance.capture.dissect import Dissector
from appliance.capture.pcapfile import PcapReader
from protocols import dns_wire
from simulators.itgen.dns_http import write_pcap


def test_memo_equals_a_fresh_parse_for_any_transaction_id(tmp_path: Path) -> None:
    write_pcap(tmp_path / "dns.pcap", seed=7)
    dissector = Dissector()
    messages = []
    with PcapReader(tmp_path / "dns.pcap") as reader:
        for linktype, ts, data, wire_len in reader:
            pkt = dissector.dissect(linktype, ts, data, wire_len)
            if pkt is not None and pkt.proto == 17 and 53 in (pkt.sport, pkt.dport) and len(pkt.payload) >= 12:
                messages.append(bytes(pkt.payload))
    assert len(messages) > 20
    dns_wire._memo.clear()
    for msg in messages:
        for tid in (0x1234, 0xBEEF):
            variant = tid.to_bytes(2, "big") + msg[2:]
            got = dns_wire.parse_message(variant)
            fresh = dns_wire._parse_message(variant)
            assert got == fresh
            assert got[0] is None or got[0]["trans_id"] == tid
    first, _, _ = dns_wire.parse_message(messages[0])
    again, _, _ = dns_wire.parse_message(messages[0])
    assert first is not None and again is not None and first is not again
    first["rtt"] = 1.0
    assert "rtt" not in again
