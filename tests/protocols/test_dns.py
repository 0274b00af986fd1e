"""The DNS decoder on hand-built messages: fields, Zeek's renderings, pairing, TCP framing, malformed input."""

from __future__ import annotations

import struct
from random import Random

import pytest

from protocols.base import FlowId, ProtocolEvent
from protocols.dns import DnsDecoder, DnsTcpDecoder
from protocols.dns_wire import parse_message, ptr_address, read_name
from simulators.itgen.dns_http import dns_message, wire_name

UDP = FlowId("CDNS1", "10.30.0.77", 40000, "10.20.0.10", 53, "udp")
TCP = FlowId("CDNS2", "10.30.0.77", 40001, "10.20.0.10", 53, "tcp")
A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, HTTPS = 1, 2, 5, 6, 12, 15, 16, 28, 33, 65


def _ip(addr: str) -> bytes:
    return bytes(int(x) for x in addr.split("."))


def msgs(events: list[ProtocolEvent]) -> list[ProtocolEvent]:
    """The message events (no weirds)."""
    return [e for e in events if e.kind != "weird"]


def weirds(events: list[ProtocolEvent]) -> list[str]:
    """The weird names, in order."""
    return [e.op for e in events if e.kind == "weird"]


def test_query_and_answer_fields_as_zeek_logs_them() -> None:
    dec = DnsDecoder(UDP)
    q = dns_message(0x1234, 0x0100, [("Intranet.Corp.Example", A)])
    r = dns_message(0x1234, 0x8180, [("Intranet.Corp.Example", A)], [
        ("intranet.corp.example", CNAME, 300, wire_name("WEB01.corp.example")),
        ("web01.corp.example", A, 60, _ip("10.20.0.80"))])
    (query,) = dec.feed(q, True, 10.0)
    (resp,) = dec.feed(r, False, 10.25)
    assert (query.op, query.kind, query.src, query.dst) == ("query", "request", "10.30.0.77", "10.20.0.10")
    assert query.fields == {
        "trans_id": 0x1234, "opcode": 0, "opcode_name": "query", "AA": False, "TC": False, "RD": True, "RA": False,
        "Z": 0, "query": "intranet.corp.example", "qclass": 1, "qclass_name": "C_INTERNET", "qtype": 1,
        "qtype_name": "A"}
    assert (resp.op, resp.kind, resp.src) == ("response", "response", "10.20.0.10")
    f = resp.fields
    assert f["answers"] == ["web01.corp.example", "10.20.0.80"]
    assert f["TTLs"] == [300.0, 60.0]
    assert (f["rcode"], f["rcode_name"], f["RA"], f["rejected"], f["matched"]) == (0, "NOERROR", True, False, True)
    assert f["rtt"] == pytest.approx(0.25)
    assert f["request_ts"] == 10.0
    assert (f["total_answers"], f["total_replies"]) == (2, 2)


@pytest.mark.parametrize(("rtype", "rdata", "text"), [
    (AAAA, bytes.fromhex("fd000000000000000000000000000080"), "fd00::80"),
    (MX, b"\x00\x0a" + wire_name("Mail.corp.example"), "mail.corp.example"),
    (TXT, b"\x0bv=spf1 -all\x03a\x01b", "TXT 11 v=spf1 -all TXT 3 a\\x01b"),
    (SRV, struct.pack(">HHH", 0, 100, 389) + wire_name("dc1.corp.example"), "dc1.corp.example"),
    (NS, wire_name("ns1.corp.example"), "ns1.corp.example"),
    (SOA, wire_name("ns1.corp.example") + wire_name("hm.corp.example") + bytes(20), "ns1.corp.example"),
    (PTR, wire_name("host5.corp.example"), "host5.corp.example"),
    (43, b"\x12\x34\x08\x02" + bytes(32), "DS 8 2"),
    (48, b"\x01\x01\x03\x0d" + bytes(64), "DNSKEY 13"),
    (46, struct.pack(">HBBIIIH", 1, 13, 2, 300, 0, 0, 7) + b"\x00" + bytes(64), "RRSIG 1 <Root>"),
    (44, b"\x01\x02\xab\xcd", "SSHFP: abcd"),
    (99, b"\x02hi", "SPF 2 hi"),
    (99 + 1000, b"\x00", "<unknown type=1099>"),
])  # fmt: skip
def test_answer_texts_follow_zeeks_main_script(rtype: int, rdata: bytes, text: str) -> None:
    r = dns_message(7, 0x8180, [("x.example", rtype)], [("x.example", rtype, 5, rdata)])
    f, problems, ok = parse_message(r)
    assert ok and not problems and f is not None
    assert f["answers"] == [text]


@pytest.mark.parametrize("rtype", [HTTPS, 257, 13, 11])
def test_types_zeek_parses_but_does_not_log_give_no_answer(rtype: int) -> None:
    r = dns_message(7, 0x8180, [("x.example", rtype)], [("x.example", rtype, 5, b"\x00\x01\x00")])
    f, problems, ok = parse_message(r)
    assert ok and not problems and f is not None
    assert "answers" not in f and f["total_answers"] == 1 and f["rejected"] is False


def test_names_of_codes_and_unknown_codes() -> None:
    f, _, _ = parse_message(dns_message(1, 0x8183, [("a.example", 255)]))
    assert f is not None
    assert (f["qtype_name"], f["rcode_name"], f["rejected"]) == ("*", "NXDOMAIN", True)
    f, _, _ = parse_message(dns_message(1, 0x8000 | (5 << 11) | 9, [("a.example", 999)]))
    assert f is not None
    assert (f["qtype_name"], f["rcode_name"], f["opcode_name"]) == ("query-999", "NOTAUTH", "dynamic-update")
    f, _, _ = parse_message(dns_message(1, 0x810C, [("a.example", 64)]))
    assert f is not None
    assert (f["qtype_name"], f["rcode_name"]) == ("SVCB", "unassigned-12")
    f, _, _ = parse_message(bytes(dns_message(1, 0x0100, [("a.example", 1)])[:-2]) + b"\x00\x07")
    assert f is not None and f["qclass_name"] == "qclass-7"


def test_flags_aa_tc_rd_ra_z() -> None:
    f, _, _ = parse_message(dns_message(1, 0x8000 | 0x400 | 0x200 | 0x80 | 0x30, [("a.example", 1)]))
    assert f is not None
    assert (f["AA"], f["TC"], f["RD"], f["RA"], f["Z"]) == (True, True, False, True, 3)


@pytest.mark.parametrize(("name", "address"), [
    ("5.0.20.10.in-addr.arpa", "10.20.0.5"),
    ("255.255.255.255.in-addr.arpa", "255.255.255.255"),
    (".".join(reversed("fd000000000000000000000000000080")) + ".ip6.arpa", "fd00::80"),
    ("20.10.in-addr.arpa", None),
    ("300.0.20.10.in-addr.arpa", None),
    ("a.0.20.10.in-addr.arpa", None),
    ("1.2.ip6.arpa", None),
])  # fmt: skip
def test_ptr_address(name: str, address: str | None) -> None:
    assert ptr_address(name) == address


def test_ptr_query_carries_the_address_it_asks_about() -> None:
    (ev,) = DnsDecoder(UDP).feed(dns_message(9, 0x0100, [("5.0.20.10.IN-ADDR.ARPA", PTR)]), True, 1.0)
    assert (ev.fields["query"], ev.fields["ptr_address"], ev.fields["qtype_name"]) == (
        "5.0.20.10.in-addr.arpa", "10.20.0.5", "PTR")


def test_compression_pointers_and_loops() -> None:
    head = struct.pack(">HHHHHH", 1, 0x8180, 1, 1, 0, 0)
    question = wire_name("a.example") + b"\x00\x01\x00\x01"
    # answer owner: "www" + pointer to offset 12 (a.example); rdata: pointer to itself
    owner_at = len(head) + len(question)
    answer = b"\x03www\xc0\x0c" + struct.pack(">HHIH", CNAME, 1, 5, 2) + struct.pack(">H", 0xC000 | owner_at + 19)
    f, problems, ok = parse_message(head + question + answer)
    assert ok and f is not None
    assert problems == [("dns_invalid_rdata", "CNAME rdata: dns_name_loop")]
    assert read_name(head + question + answer, owner_at) == ("www.a.example", owner_at + 6, "")
    # a pointer to itself and a forward pointer are loops; a pointer chain that goes backwards is fine
    assert read_name(b"\xc0\x00", 0)[2] == "dns_name_loop"
    assert read_name(b"\x01a\xc0\x04\x01b\x00", 0)[2] == "dns_name_loop"
    assert read_name(b"\x01b\x00\x01a\xc0\x00", 3) == ("a.b", 7, "")
    assert read_name(b"\x41" + b"a" * 65 + b"\x00", 0)[2] == "dns_invalid_label_type"
    assert read_name(b"\x3f" + b"a" * 63 + b"\x3f" + b"b" * 63 + b"\x3f" + b"c" * 63 + b"\x3f" + b"d" * 63 + b"\x00",
                     0)[2] == "dns_name_too_long"
    assert read_name(b"\x05ab", 0)[2] == "dns_truncated_name"
    assert read_name(b"\x00", 0) == ("", 1, "")
    assert read_name(b"\x03a.b\x02\xffZ\x00", 0) == ("a\\.b.\\xffz", 8, "")


def test_response_paired_by_trans_id_in_queue_order_and_unanswered_reported_at_close() -> None:
    dec = DnsDecoder(UDP)
    q = dns_message(5, 0x0100, [("slow.example", A)])
    out = dec.feed(q, True, 1.0) + dec.feed(q, True, 2.0)
    out += dec.feed(dns_message(5, 0x8180, [("slow.example", A)], [("slow.example", A, 5, _ip("10.0.0.9"))]),
                    False, 2.5)
    out += dec.feed(dns_message(6, 0x0100, [("lost.example", A)]), True, 3.0)
    out += dec.feed(dns_message(77, 0x8183, [("orphan.example", A)]), False, 3.5)
    out += dec.close(9.0)
    rows = [(e.op, e.kind, e.fields["trans_id"], e.fields.get("matched"), e.fields.get("request_ts")) for e in out]
    assert rows == [("query", "request", 5, None, None), ("query", "request", 5, None, None),
                    ("response", "response", 5, True, 1.0), ("query", "request", 6, None, None),
                    ("response", "exception", 77, False, None),
                    ("query", "notice", 5, False, 2.0), ("query", "notice", 6, False, 3.0)]
    assert out[2].fields["rtt"] == pytest.approx(1.5)
    assert out[-1].ts == 9.0 and out[-1].fields["query"] == "lost.example"
    assert dec.close(10.0) == []


def test_response_without_question_takes_the_querys_question() -> None:
    dec = DnsDecoder(UDP)
    dec.feed(dns_message(3, 0x0100, [("a.example", MX)]), True, 1.0)
    (resp,) = dec.feed(struct.pack(">HHHHHH", 3, 0x8185, 0, 0, 0, 0), False, 1.1)
    assert (resp.fields["query"], resp.fields["qtype_name"], resp.fields["rcode_name"]) == ("a.example", "MX",
                                                                                           "REFUSED")
    assert resp.fields["rejected"] is True and resp.kind == "exception"


def test_multicast_flows_report_no_unanswered_queries() -> None:
    mdns = FlowId("CM", "10.30.0.77", 5353, "224.0.0.251", 5353, "udp")
    dec = DnsDecoder(mdns)
    (ev,) = dec.feed(dns_message(0, 0, [("_printer._tcp.local", PTR)]), True, 1.0)
    assert ev.fields["query"] == "_printer._tcp.local"
    assert dec.close(5.0) == []


def test_several_questions_are_all_reported() -> None:
    (ev,) = DnsDecoder(UDP).feed(dns_message(3, 0x0100, [("a.example", A), ("b.example", AAAA)]), True, 1.0)
    assert ev.fields["query"] == "a.example"
    assert [(q["query"], q["qtype_name"]) for q in ev.fields["questions"]] == [("a.example", "A"),
                                                                                ("b.example", "AAAA")]


def test_malformed_messages_give_weirds_not_exceptions() -> None:
    dec = DnsDecoder(UDP)
    good = dns_message(1, 0x8180, [("a.example", A)], [("a.example", A, 5, _ip("10.0.0.1"))])
    dec.feed(dns_message(1, 0x0100, [("a.example", A)]), True, 1.0)
    out = dec.feed(good[:-2], False, 1.1)  # rdata cut
    assert weirds(out) == ["dns_truncated_rr"] and msgs(out)[0].fields["matched"] is True
    out = dec.feed(good + b"\x00\x00", False, 1.2)
    assert weirds(out) == ["dns_extra_data"]
    out = dec.feed(dns_message(2, 0x8180, [("a.example", A)], [("a.example", A, 5, b"\x01\x02")]), False, 1.3)
    assert weirds(out) == ["dns_invalid_rdata"] and "answers" not in msgs(out)[0].fields
    out = dec.feed(good[:20], False, 1.4)  # the question cut: still reported, with a weird
    assert weirds(out) == ["dns_truncated_name"] and msgs(out)[0].fields["trans_id"] == 1
    out = dec.feed(b"\x00\x01", False, 1.5)
    assert weirds(out) == ["dns_protocol_violation"] and dec.failed


def test_garbage_first_datagram_is_a_protocol_violation() -> None:
    dec = DnsDecoder(UDP)
    out = dec.feed(b"\x00\x01\x00\x00\x00\x05" + b"\xff" * 30, True, 1.0)
    assert weirds(out) == ["dns_protocol_violation"] and dec.failed
    assert dec.feed(dns_message(1, 0x0100, [("a.example", A)]), True, 2.0) == []


def test_random_bytes_never_raise() -> None:
    rng = Random(5)
    base = dns_message(1, 0x8180, [("a.example", A)], [("a.example", CNAME, 5, b"\x01b\xc0\x0c"),
                                                       ("a.example", TXT, 5, b"\x02hi")])
    for _ in range(3000):
        data = bytearray(base)
        for _ in range(rng.randrange(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        data = data[: rng.randrange(len(data) + 1)]
        dec = DnsDecoder(UDP)
        for ev in dec.feed(bytes(data), False, 1.0) + dec.close(2.0):
            assert ev.protocol == "dns"


def test_probe_accepts_queries_only() -> None:
    assert DnsDecoder.probe(dns_message(1, 0x0100, [("a.example", A)]), True)
    assert not DnsDecoder.probe(dns_message(1, 0x8180, [("a.example", A)]), True)
    assert not DnsDecoder.probe(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", True)
    assert not DnsDecoder.probe(dns_message(1, 0x0100, [("a.example", A)]) + b"x", True)
    q = dns_message(1, 0x0100, [("a.example", A)])
    assert DnsTcpDecoder.probe(struct.pack(">H", len(q)) + q, True)
    assert not DnsTcpDecoder.probe(struct.pack(">H", len(q) + 1) + q, True)


def _tcp(m: bytes) -> bytes:
    return struct.pack(">H", len(m)) + m


def test_tcp_messages_split_across_segments_and_several_per_segment() -> None:
    dec = DnsTcpDecoder(TCP)
    q1, q2 = (dns_message(t, 0x0100, [(f"h{t}.example", A)]) for t in (1, 2))
    r1, r2 = (dns_message(t, 0x8180, [(f"h{t}.example", A)], [(f"h{t}.example", A, 9, _ip(f"10.0.0.{t}"))])
              for t in (1, 2))
    out = dec.feed(_tcp(q1) + _tcp(q2), True, 1.0)
    stream = _tcp(r1) + _tcp(r2)
    for i in range(len(stream)):  # one byte at a time
        out += dec.feed(stream[i : i + 1], False, 2.0 + i / 1000)
    out += dec.close(5.0)
    assert [(e.op, e.fields["trans_id"], e.fields.get("answers")) for e in out] == [
        ("query", 1, None), ("query", 2, None), ("response", 1, ["10.0.0.1"]), ("response", 2, ["10.0.0.2"])]


def test_tcp_partial_message_at_close_gap_and_bad_length() -> None:
    dec = DnsTcpDecoder(TCP)
    q = _tcp(dns_message(1, 0x0100, [("a.example", A)]))
    out = dec.feed(q[:10], True, 1.0) + dec.close(2.0)
    assert weirds(out) == ["dns_truncated_tcp_message"]
    dec = DnsTcpDecoder(TCP)
    out = dec.gap(True, 1.0, 100) + dec.feed(q, True, 1.1) + dec.feed(_tcp(dns_message(1, 0x8180, [("a.example", A)])),
                                                                      False, 1.2)
    assert weirds(out) == ["dns_lost_sync"] and [e.op for e in msgs(out)] == ["response"]
    dec = DnsTcpDecoder(TCP)
    out = dec.feed(b"\x00\x03abc", True, 1.0)
    assert weirds(out) == ["dns_protocol_violation"] and dec.failed


def test_too_many_pending_queries_are_bounded() -> None:
    dec = DnsDecoder(UDP)
    out: list[ProtocolEvent] = []
    for i in range(1100):
        out += dec.feed(dns_message(i, 0x0100, [("a.example", A)]), True, float(i))
    assert weirds(out).count("dns_too_many_pending") == 76
    closing = dec.close(2000.0)
    assert len([e for e in closing if e.kind == "notice"]) == 64
    assert closing[-1].op == "dns_unmatched_queries" and closing[-1].fields["count"] == 1100 - 64


def test_probe_leaves_netbios_name_service_alone() -> None:
    from protocols.dns import DnsDecoder

    nbstat = bytes.fromhex("a1b2000000010000000000002043" + "4b" + "41" * 30 + "0000210001")
    assert not DnsDecoder.probe(nbstat, True)  # `nbtstat -A`: the wildcard name "*" encoded, type NBSTAT
    srv = bytes.fromhex("a1b201000001000000000000055f6c646170045f746370036463730000210001")
    assert DnsDecoder.probe(srv, True)  # a DNS SRV query (the same type number, 33) is DNS
