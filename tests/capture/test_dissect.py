"""Dissector: hand-built frames for every link type and edge case, then real traces checked against tshark."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from appliance.capture.dissect import Dissector
from appliance.capture.pcapfile import PcapReader
from appliance.model import ACK, LLC, PSH, SYN, ZERO_MAC, Packet

from .pcapbuild import MAC_A, MAC_B, eth, icmp, ipv4, ipv6, sll, sll2, tcp, udp

TRACES = Path(__file__).resolve().parents[1] / "traces"
TS = 1700000000.5


def one(linktype: int, frame: bytes, wire_len: int | None = None) -> tuple[Packet | None, Counter[str]]:
    """Dissect one frame with a fresh Dissector; return the packet and the skip counts."""
    d = Dissector()
    pkt = d.dissect(linktype, TS, frame, len(frame) if wire_len is None else wire_len)
    return pkt, d.skipped


def skipped_as(linktype: int, frame: bytes) -> str:
    """The single reason a frame was skipped (and assert it was)."""
    pkt, skipped = one(linktype, frame)
    assert pkt is None
    assert sum(skipped.values()) == 1
    return next(iter(skipped))


# ------------------------------------------------------------------ Ethernet / IPv4 / TCP, the hot path


def test_ethernet_ipv4_tcp_padded_syn() -> None:
    frame = eth(0x0800, ipv4("10.0.0.1", "10.0.0.2", 6, tcp(40000, 502, 1000, 0, SYN)))
    frame += b"\xaa" * (60 - len(frame))  # Ethernet padding must not become payload
    pkt, skipped = one(1, frame)
    assert not skipped
    assert pkt == Packet(
        TS, MAC_A, MAC_B, (), "10.0.0.1", "10.0.0.2", 6, 40000, 502, b"", 40, SYN, 1000, 0, 60
    )


def test_ethernet_ipv4_options_tcp_options_payload() -> None:
    seg = tcp(
        502,
        40000,
        0xFFFFFFF0,
        7,
        PSH | ACK,
        b"\x00\x01\x00\x00\x00\x06\x01\x03",
        options=b"\x01\x01\x08\x0a" + b"\x00" * 8,
    )
    frame = eth(0x0800, ipv4("192.168.1.20", "192.168.1.10", 6, seg, options=b"\x94\x04\x00\x00"))
    pkt, _ = one(1, frame, wire_len=1514)
    assert pkt is not None
    assert (pkt.src, pkt.dst, pkt.sport, pkt.dport) == ("192.168.1.20", "192.168.1.10", 502, 40000)
    assert (pkt.seq, pkt.ack, pkt.tcp_flags) == (0xFFFFFFF0, 7, PSH | ACK)
    assert pkt.payload == b"\x00\x01\x00\x00\x00\x06\x01\x03"
    assert pkt.ip_len == 24 + 32 + 8 and pkt.wire_len == 1514 and pkt.vlans == ()


def test_tcp_captured_shorter_than_datagram_keeps_what_was_captured() -> None:
    frame = eth(0x0800, ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1, 2, 3, 4, ACK, b"x" * 1000)))
    pkt, _ = one(1, frame[: 54 + 100], wire_len=len(frame))
    assert pkt is not None and pkt.payload == b"x" * 100 and pkt.ip_len == 1040 and pkt.wire_len == len(frame)


def test_tso_zero_total_length_uses_captured_bytes() -> None:
    frame = eth(0x0800, ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1, 2, 3, 4, ACK, b"y" * 3000), total=0))
    pkt, _ = one(1, frame)
    assert pkt is not None and pkt.payload == b"y" * 3000 and pkt.ip_len == 3040


def test_udp_and_its_length_field() -> None:
    frame = eth(0x0800, ipv4("10.1.1.1", "10.1.1.255", 17, udp(47808, 47808, b"\x81\x0b\x00\x0c" + b"B" * 8)))
    pkt, _ = one(1, frame + b"\x00" * 4)
    assert pkt is not None and pkt.proto == 17 and (pkt.sport, pkt.dport) == (47808, 47808)
    assert pkt.payload == b"\x81\x0b\x00\x0c" + b"B" * 8 and pkt.ip_len == 40 and pkt.tcp_flags == 0
    # a UDP length shorter than the IP payload: the payload ends where UDP says
    pkt, _ = one(1, eth(0x0800, ipv4("10.1.1.1", "10.1.1.2", 17, udp(1, 2, b"abcdef", length=10))))
    assert pkt is not None and pkt.payload == b"ab"
    # a UDP length longer than what was captured: clipped
    pkt, _ = one(1, eth(0x0800, ipv4("10.1.1.1", "10.1.1.2", 17, udp(1, 2, b"abcdef", length=400))))
    assert pkt is not None and pkt.payload == b"abcdef"
    # a short unpadded frame (under 54 bytes) takes the general path
    pkt, _ = one(1, eth(0x0800, ipv4("10.1.1.1", "10.1.1.2", 17, udp(7, 9))))
    assert pkt is not None and (pkt.sport, pkt.dport, pkt.payload, pkt.ip_len) == (7, 9, b"", 28)


def test_icmp_type_and_code_as_ports() -> None:
    frame = eth(0x0800, ipv4("10.0.0.1", "10.0.0.2", 1, icmp(3, 3, payload=b"orig-datagram")))
    pkt, _ = one(1, frame)
    assert pkt is not None and pkt.proto == 1 and (pkt.sport, pkt.dport) == (3, 3)
    assert pkt.payload == b"orig-datagram"


# ------------------------------------------------------------------ VLANs and other link types


def test_stacked_vlans_outermost_first() -> None:
    inner = ipv4("10.0.0.1", "10.0.0.2", 17, udp(1000, 2000, b"q"))
    frame = eth(
        0x0800, inner, vlans=[(0x88A8, 100), (0x8100, (5 << 13) | 200), (0x9100, 300), (0x8100, 4095)]
    )
    pkt, _ = one(1, frame)
    assert pkt is not None and pkt.vlans == (100, 200, 300, 4095) and pkt.payload == b"q"
    assert (pkt.src_mac, pkt.dst_mac) == (MAC_A, MAC_B)


def test_sll_and_sll2() -> None:
    pkt, _ = one(113, sll(0x0800, ipv4("10.0.0.1", "10.0.0.2", 17, udp(5, 6, b"sll")), pkttype=4))
    assert pkt is not None and pkt.src_mac == MAC_A and pkt.dst_mac == ZERO_MAC and pkt.payload == b"sll"
    # a non-Ethernet hardware type has no MAC to report
    pkt, _ = one(
        113, sll(0x0800, ipv4("10.0.0.1", "10.0.0.2", 17, udp(5, 6)), hatype=778, addr=b"\x0a\0\0\x01")
    )
    assert pkt is not None and pkt.src_mac == ZERO_MAC
    seg = tcp(443, 50000, 1, 2, ACK, b"tls")
    pkt, _ = one(276, sll2(0x86DD, ipv6("2001:db8::1", "2001:db8:0:0:1::2", 6, seg)))
    assert pkt is not None
    assert (pkt.src, pkt.dst, pkt.sport, pkt.dport, pkt.payload) == (
        "2001:db8::1",
        "2001:db8::1:0:0:2",
        443,
        50000,
        b"tls",
    )
    assert pkt.src_mac == MAC_A and pkt.ip_len == 40 + 23
    # a VLAN tag left in a cooked capture
    pkt, _ = one(113, sll(0x8100, b"\x00\x07\x08\x00" + ipv4("10.0.0.1", "10.0.0.2", 17, udp(5, 6))))
    assert pkt is not None and pkt.vlans == (7,)
    assert skipped_as(113, sll(0x0004, b"\xaa\xaa\x03" + bytes(40))) == "llc"
    assert skipped_as(276, sll2(0x0806, bytes(28))) == "ethertype:0x0806"


@pytest.mark.parametrize("linktype", [101, 12, 14, 228])
def test_raw_ipv4(linktype: int) -> None:
    pkt, _ = one(linktype, ipv4("172.16.0.1", "172.16.0.2", 6, tcp(1883, 5555, 9, 10, ACK, b"mqtt")))
    assert pkt is not None and (pkt.src, pkt.sport, pkt.payload) == ("172.16.0.1", 1883, b"mqtt")
    assert pkt.src_mac == pkt.dst_mac == ZERO_MAC


@pytest.mark.parametrize("linktype", [101, 12, 14, 229])
def test_raw_ipv6(linktype: int) -> None:
    pkt, _ = one(linktype, ipv6("fe80::1", "ff02::1", 58, icmp(135, 0, payload=b"ns")))
    assert pkt is not None and (pkt.src, pkt.dst, pkt.proto, pkt.sport, pkt.dport) == (
        "fe80::1",
        "ff02::1",
        58,
        135,
        0,
    )
    assert pkt.payload == b"ns"


@pytest.mark.parametrize(
    ("linktype", "header"),
    [
        (0, (2).to_bytes(4, "little")),
        (0, (2).to_bytes(4, "big")),
        (108, (2).to_bytes(4, "big")),
    ],
)
def test_null_and_loop_ipv4(linktype: int, header: bytes) -> None:
    pkt, _ = one(linktype, header + ipv4("127.0.0.1", "127.0.0.1", 17, udp(1, 2, b"lo")))
    assert pkt is not None and pkt.payload == b"lo" and pkt.src == "127.0.0.1"


@pytest.mark.parametrize("family", [10, 24, 28, 30])
@pytest.mark.parametrize("order", ["little", "big"])
def test_null_ipv6_families(family: int, order: str) -> None:
    pkt, _ = one(0, family.to_bytes(4, order) + ipv6("::1", "::1", 17, udp(1, 2, b"v6")))  # type: ignore[arg-type]
    assert pkt is not None and pkt.src == "::1" and pkt.payload == b"v6"


def test_null_unknown_family() -> None:
    assert skipped_as(0, (7).to_bytes(4, "little") + bytes(40)) == "null_family:7"


# ------------------------------------------------------------------ IPv6 extension headers, fragments


def test_ipv6_extension_headers_are_skipped() -> None:
    hop = b"\x00" + b"\x01\x04\x00\x00\x00\x00"  # length 0 (8 bytes): PadN
    routing = b"\x02" + bytes(22)  # length 2: 24 bytes with the next-header byte
    dest = b"\x00" + b"\x01\x04\x00\x00\x00\x00"
    pkt6 = ipv6(
        "2001:db8::a", "2001:db8::b", 17, udp(546, 547, b"dhcp"), ext=[(0, hop), (43, routing), (60, dest)]
    )
    pkt, _ = one(1, eth(0x86DD, pkt6))
    assert pkt is not None and (pkt.proto, pkt.sport, pkt.dport, pkt.payload) == (17, 546, 547, b"dhcp")
    assert pkt.ip_len == len(pkt6)


def test_ipv6_fragments() -> None:
    first = ipv6(
        "2001:db8::a", "2001:db8::b", 17, udp(1, 2, b"x" * 16), ext=[(44, b"\x00\x00\x01\x00\x00\x00\x07")]
    )
    assert skipped_as(1, eth(0x86DD, first)) == "ip_fragment"
    later = ipv6("2001:db8::a", "2001:db8::b", 17, b"y" * 16, ext=[(44, b"\x00\x00\x08\x00\x00\x00\x07")])
    assert skipped_as(1, eth(0x86DD, later)) == "ip_fragment"
    atomic = ipv6(
        "2001:db8::a", "2001:db8::b", 17, udp(1, 2, b"z"), ext=[(44, b"\x00\x00\x00\x00\x00\x00\x07")]
    )
    pkt, _ = one(1, eth(0x86DD, atomic))
    assert pkt is not None and pkt.payload == b"z"


def test_ipv4_fragments() -> None:
    body = udp(1, 2, b"f" * 20)
    assert (
        skipped_as(1, eth(0x0800, ipv4("10.0.0.1", "10.0.0.2", 17, body, flags_frag=0x2000))) == "ip_fragment"
    )
    assert (
        skipped_as(1, eth(0x0800, ipv4("10.0.0.1", "10.0.0.2", 17, body, flags_frag=0x0003))) == "ip_fragment"
    )
    assert (
        skipped_as(228, ipv4("10.0.0.1", "10.0.0.2", 17, body, flags_frag=0x2000, options=bytes(4)))
        == "ip_fragment"
    )
    pkt, _ = one(1, eth(0x0800, ipv4("10.0.0.1", "10.0.0.2", 17, body, flags_frag=0x4000)))
    assert pkt is not None


# ------------------------------------------------------------------ what is skipped, and why


def test_non_ip_frames_are_counted() -> None:
    assert skipped_as(1, eth(0x0806, bytes(28))) == "ethertype:0x0806"
    assert skipped_as(1, eth(0x88CC, bytes(40))) == "ethertype:0x88cc"
    assert skipped_as(1, eth(38, b"\x42\x42\x03" + bytes(35))) == "llc"  # 802.3 length field: STP's LLC
    assert skipped_as(1, eth(38, b"\xaa\xaa\x03" + bytes(35), vlans=[(0x8100, 5)])) == "llc:snap"
    assert skipped_as(7, bytes(60)) == "linktype:7"
    assert skipped_as(1, eth(0x0800, ipv4("10.0.0.1", "10.0.0.2", 47, bytes(24)))) == "ipproto:47"
    assert skipped_as(101, b"\x50" + bytes(30)) == "ip_version:5"


@pytest.mark.parametrize(
    ("linktype", "frame", "reason"),
    [
        (1, bytes(10), "truncated:ethernet"),
        (1, eth(0x8100, b"\x00"), "truncated:vlan"),
        (1, eth(0x0800, bytes(12)), "truncated:ipv4"),
        (1, eth(0x0800, ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1, 2, 3, 4, ACK))[:30]), "truncated:tcp"),
        (
            1,
            eth(0x0800, ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1, 2, 3, 4, ACK, options=bytes(8)))[:44]),
            "truncated:tcp",
        ),
        (1, eth(0x0800, ipv4("10.0.0.1", "10.0.0.2", 17, udp(1, 2))[:24]), "truncated:udp"),
        (1, eth(0x0800, ipv4("10.0.0.1", "10.0.0.2", 1, b"\x08")), "truncated:icmp"),
        (1, eth(0x86DD, bytes(30)), "truncated:ipv6"),
        (1, eth(0x86DD, ipv6("::1", "::2", 0, b"\x11")), "truncated:ipv6_ext"),
        (113, bytes(10), "truncated:sll"),
        (276, bytes(10), "truncated:sll2"),
        (0, b"\x02\x00", "truncated:null"),
        (101, b"", "truncated:ip"),
        (1, eth(0x0800, b"\x44" + bytes(19)), "bad:ipv4_header"),
        (1, eth(0x0800, ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1, 2, 3, 4, ACK), total=10)), "bad:ipv4_length"),
        (1, eth(0x86DD, b"\x40" + bytes(39)), "bad:ipv6_header"),
        (
            1,
            eth(0x0800, ipv4("10.0.0.1", "10.0.0.2", 6, b"\x00\x01\x00\x02" + bytes(8) + b"\x40" + bytes(7))),
            "bad:tcp_offset",
        ),
    ],
)
def test_truncated_and_malformed_headers(linktype: int, frame: bytes, reason: str) -> None:
    assert skipped_as(linktype, frame) == reason


def test_random_garbage_never_raises() -> None:
    rng = random.Random(1234)
    good = eth(0x0800, ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1, 2, 3, 4, ACK, b"abc"), options=bytes(4)))
    d = Dissector()
    decoded = 0
    for i in range(4000):
        linktype = rng.choice([0, 1, 12, 101, 108, 113, 228, 229, 276])
        if i % 2:
            frame = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 120)))
        else:  # mutate a valid frame so that the parsers get deep before meeting nonsense
            buf = bytearray(good[: rng.randrange(0, len(good) + 1)])
            for _ in range(3):
                if buf:
                    buf[rng.randrange(len(buf))] = rng.getrandbits(8)
            frame, linktype = bytes(buf), 1
        if d.dissect(linktype, 0.0, frame, len(frame)) is not None:
            decoded += 1
    assert decoded + sum(d.skipped.values()) == 4000
    assert not any(k.startswith("error:") for k in d.skipped)


# ------------------------------------------------------------------ real traces

# Per trace: packets decoded by transport and frames skipped by reason. Checked once against tshark 4.0.17
# (`-Y tcp`, `-Y udp`, `-Y icmp`, `-Y arp`, `-Y llc`, `-Y lldp`, `-Y pn_rt`; fuzz-1011 frame 2 has a
# "Bogus IPv4 version").
TRACE_COUNTS: dict[str, tuple[dict[int, int], dict[str, int]]] = {
    "arkime/mqtt_synthetic.pcap": ({6: 63}, {}),
    "ndpi/mqtt.pcap": ({6: 9}, {}),
    "icsst/mb2.pcap": (
        {6: 13393, 17: 24, 1: 8},
        {"ethertype:0x0806": 25, "llc": 11, "llc:snap": 2, "ethertype:0x88cc": 5, "ethertype:0x8892": 4},
    ),
    "zeek/modbusBig.pcap": ({6: 13622}, {}),
    "zeek/modbusSmall.pcap": ({6: 160, 17: 6}, {}),
    "zeek/fuzz-1011.pcap": ({6: 5}, {"bad:ipv4_header": 1}),
}

# Sums over each trace as tshark reports them: tcp.len, udp.length - 8, ip.len.
TRACE_SUMS = {
    "icsst/mb2.pcap": (1000263, 5820, 1543407),
    "zeek/modbusSmall.pcap": (384, 746, 9874),
    "ndpi/mqtt.pcap": (875, 0, 1351),
    "arkime/mqtt_synthetic.pcap": (8868, 0, 11388),
}


def dissect_trace(name: str) -> tuple[list[Packet], Dissector]:
    """Read and dissect a whole trace."""
    d = Dissector()
    pkts = [p for f in PcapReader(TRACES / name) if (p := d.dissect(*f)) is not None]
    return pkts, d


@pytest.mark.parametrize("name", sorted(TRACE_COUNTS))
def test_trace_counts(name: str) -> None:
    pkts, d = dissect_trace(name)
    by_proto, skipped = TRACE_COUNTS[name]
    assert Counter(p.proto for p in pkts) == by_proto
    assert dict(d.skipped) == skipped


@pytest.mark.parametrize("name", sorted(TRACE_SUMS))
def test_trace_payload_and_ip_lengths(name: str) -> None:
    pkts, _ = dissect_trace(name)
    tcp_bytes = sum(len(p.payload) for p in pkts if p.proto == 6)
    udp_bytes = sum(len(p.payload) for p in pkts if p.proto == 17)
    assert (tcp_bytes, udp_bytes, sum(p.ip_len for p in pkts)) == TRACE_SUMS[name]


def test_raw_ipv4_trace_fields() -> None:
    # tshark: frame 1 192.168.1.10:54321 -> 10.0.0.100:1883 SYN seq 1000 ack 2000,
    # frame 2 SYN-ACK seq 2000 ack 1001
    pkts, _ = dissect_trace("arkime/mqtt_synthetic.pcap")
    a, b = pkts[0], pkts[1]
    assert (a.ts, a.src, a.sport, a.dst, a.dport) == (1700000000.0, "192.168.1.10", 54321, "10.0.0.100", 1883)
    assert (a.tcp_flags, a.seq, a.ack, a.payload) == (SYN, 1000, 2000, b"")
    assert a.src_mac == ZERO_MAC and a.vlans == ()
    assert (b.ts, b.tcp_flags, b.seq, b.ack) == (pytest.approx(1700000000.05), SYN | ACK, 2000, 1001)


def test_pcapng_trace_vlan_and_macs() -> None:
    # tshark: frame 9 is VLAN 1008, 100.67.35.238:35035 -> 51.137.28.239:1883, 285 bytes of TCP payload
    pkts, _ = dissect_trace("ndpi/mqtt.pcap")
    last = pkts[-1]
    assert last.vlans == (1008,)
    assert (last.src, last.sport, last.dst, last.dport, len(last.payload)) == (
        "100.67.35.238",
        35035,
        "51.137.28.239",
        1883,
        285,
    )
    assert last.src_mac == bytes.fromhex("000200000008")
    assert all(p.vlans == () for p in pkts[:-1])


def test_bacnet_ethernet_llc_frames_become_packets_between_macs() -> None:
    npdu = b"\x01\x20\xff\xff\x00\xff\x10\x08"  # a global Who-Is
    frame = eth(3 + len(npdu), b"\x82\x82\x03" + npdu + bytes(46 - 3 - len(npdu)), vlans=[(0x8100, 7)])
    d = Dissector()
    pkt = d.dissect(1, 5.0, frame, len(frame))
    assert pkt is not None and not d.skipped
    assert (pkt.proto, pkt.sport, pkt.dport) == (LLC, 0x82, 0x82)
    assert (pkt.src, pkt.dst) == ("02:00:00:00:00:01", "02:00:00:00:00:02")
    assert pkt.payload == npdu  # the 802.3 length trims the Ethernet padding
    assert pkt.vlans == (7,)
