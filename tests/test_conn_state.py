"""Conn records as Zeek writes them: conn_state, history letters, byte counts, roles (flips), UDP, ICMP, uids."""

from __future__ import annotations

import re

import pytest

from appliance.conn_state import flip_roles, icmp_ports
from appliance.model import Packet

from .flowkit import MAC_C, MAC_S, PA, A, F, R, S, Tcp, make_decoder, run, table, udp

# --- conn_state and history ---------------------------------------------------------------------------------

def test_handshake_data_and_fin_both_ways_is_sf_with_zeek_history() -> None:
    ft, sink = table()
    w = Tcp()
    run(ft, [*w.handshake(), w.c(PA, b"hello"), w.s(A), w.s(PA, b"world!"), w.c(F | A), w.s(F | A)])
    closed_at = w.ts
    ft.process(w.c(A))  # the last ACK joins the flow but not its duration, as in Zeek
    assert sink.flows == []
    ft.flush()
    f = sink.only()
    assert (f.conn_state, f.history) == ("SF", "ShADadFf")
    assert (f.orig_bytes, f.resp_bytes, f.missed_bytes) == (5, 6, 0)
    assert (f.orig_pkts, f.resp_pkts) == (5, 4)
    assert (f.orig_ip_bytes, f.resp_ip_bytes) == (5 * 40 + 5, 4 * 40 + 6)
    assert f.duration == pytest.approx(closed_at - f.ts)
    assert (f.id.orig_h, f.id.orig_p, f.id.resp_h, f.id.resp_p, f.id.proto) == ("10.0.0.1", 40000, "10.0.0.2", 502,
                                                                                 "tcp")
    assert (f.orig_mac, f.resp_mac, f.vlans) == ("02:00:00:00:00:01", "02:00:00:00:00:02", (7,))
    assert f.service is None


@pytest.mark.parametrize(("script", "state", "history"), [
    ("c:S", "S0", "S"),
    ("c:S s:RA", "REJ", "Sr"),
    ("c:S c:R", "RSTOS0", "SR"),
    ("c:S s:SA c:A c:R", "RSTO", "ShAR"),
    ("c:S s:SA c:A s:R", "RSTR", "ShAr"),
    ("c:S s:SA c:A", "S1", "ShA"),
    ("c:S s:SA c:A c:FA", "S2", "ShAF"),
    ("c:S s:SA c:A s:FA", "S3", "ShAf"),
    ("c:S c:F", "SH", "SF"),
    ("s:SA s:F", "SHR", "^hf"),
    ("s:SA s:R", "RSTRH", "^hr"),
    ("c:PA s:PA", "OTH", "Dd"),
    ("c:S s:SA c:A c:FA c:R s:FA", "SF", "ShAFRf"),  # a FIN then a RST, answered by a FIN: a normal close
    ("c:SF", "SH", "Q"),  # SYN and FIN in one packet
])
def test_conn_state_vocabulary(script: str, state: str, history: str) -> None:
    ft, sink = table()
    w = Tcp()
    flags = {"S": S, "SA": S | A, "SF": S | F, "A": A, "R": R, "RA": R | A, "F": F, "FA": F | A, "PA": PA}
    for step in script.split():
        side, name = step.split(":")
        ft.process(w.pkt(side == "c", flags[name], b"data" if name == "PA" else b""))
    ft.flush()
    f = sink.only()
    assert (f.conn_state, f.history) == (state, history)


def test_midstream_single_exchange_matches_zeek_conn_log() -> None:
    # the two rows of Zeek's conn-second.log (modbus-eit.pcap): one request and one response, no handshake
    ft, sink = table()
    w = Tcp(client=("192.168.2.42", 54297), server=("192.168.88.100", 502))
    run(ft, [w.c(PA, b"q" * 11), w.s(PA, b"r" * 18)])
    ft.flush()
    f = sink.only()
    assert (f.conn_state, f.history, f.orig_bytes, f.resp_bytes) == ("OTH", "Dd", 11, 18)
    assert (f.orig_pkts, f.orig_ip_bytes, f.resp_pkts, f.resp_ip_bytes) == (1, 51, 1, 58)


def test_repeated_flags_recorded_again_only_with_a_new_sequence_number() -> None:
    ft, sink = table()
    w = Tcp()
    syn = w.c(S)
    run(ft, [syn, w.c(S, seq=syn.seq), w.s(S | A), w.c(A), w.c(PA, b"a"), w.c(PA, b"b"), w.c(F | A)])
    fin_seq = w.seq[True] - 1
    run(ft, [w.c(F | A, seq=fin_seq), w.s(F | A), w.s(F | A, seq=w.seq[False] - 1)])
    ft.flush()
    assert sink.only().history == "ShADFf"  # SYN and FIN retransmissions add nothing


def test_retransmissions_counted_logarithmically() -> None:
    ft, sink = table()
    w = Tcp()
    run(ft, w.handshake())
    p = w.c(PA, b"x")
    run(ft, [p] + [w.c(PA, b"x", seq=p.seq) for _ in range(10)])
    ft.flush()
    assert sink.only().history == "ShADTT"  # the 1st and the 10th retransmission


# --- roles ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("flags", "sport", "dport", "flip"), [
    (S, 40000, 502, False),  # a SYN never flips
    (S, 502, 40000, False),
    (S | A, 502, 40000, True),  # a SYN-ACK from the server
    (S | A, 50000, 40000, True),  # a SYN-ACK between ephemeral ports
    (S | A, 40000, 80, False),  # a SYN-ACK towards a server port: a SYN-ACK scan, not a missed SYN
    (S | A, 502, 443, False),
    (PA, 502, 40000, True),  # midstream from a likely server port
    (PA, 7777, 40000, True),  # a decoder's port is a likely server port
    (PA, 40000, 7777, False),
    (PA, 443, 502, True),  # both likely: the lower port is the server
    (PA, 502, 443, False),
    (None, 53, 33000, True),  # UDP: flip only from a likely server port to one that is not
    (None, 47808, 47808, False),
    (None, 123, 123, False),
])
def test_flip_roles(flags: int | None, sport: int, dport: int, flip: bool) -> None:
    assert flip_roles(flags, sport, dport, frozenset({7777})) is flip


def test_icmp_ports_pair_requests_with_replies() -> None:
    assert icmp_ports(1, 8, 0) == (8, 0)
    assert icmp_ports(1, 0, 0) == (0, 8)
    assert icmp_ports(1, 3, 1) == (3, 1)  # unreachable: one way, the code is the "port"
    assert icmp_ports(58, 128, 0) == (128, 129)
    assert icmp_ports(58, 135, 0) == (135, 136)


def test_syn_ack_first_from_server_port_flips_roles() -> None:
    ft, sink = table()
    w = Tcp()
    run(ft, [w.s(S | A), w.c(A), w.c(PA, b"req"), w.s(PA, b"resp")])
    ft.flush()
    f = sink.only()
    assert (f.id.orig_h, f.id.orig_p, f.id.resp_p) == ("10.0.0.1", 40000, 502)
    assert f.history.startswith("^h")
    assert (f.orig_mac, f.orig_pkts, f.resp_pkts, f.orig_bytes, f.resp_bytes) == ("02:00:00:00:00:01", 2, 2, 3, 4)


def test_syn_ack_between_ephemeral_ports_flips_but_not_towards_a_server_port() -> None:
    ft, sink = table()
    run(ft, [Tcp(client=("10.0.0.1", 50000), server=("10.0.0.2", 40000)).s(S | A)])
    run(ft, [Tcp(client=("10.0.0.3", 80), server=("10.0.0.4", 40001)).s(S | A)])  # a SYN-ACK scan of port 80
    ft.flush()
    first, second = sink.flows
    assert (first.id.orig_p, first.id.resp_p, first.history) == (50000, 40000, "^h")
    assert (second.id.orig_h, second.id.orig_p, second.id.resp_p, second.history) == ("10.0.0.4", 40001, 80, "H")


def test_midstream_from_a_decoder_port_flips_roles() -> None:
    ft, sink = table(make_decoder(ports=(7777,)))
    w = Tcp(server=("10.0.0.2", 7777))
    run(ft, [w.s(PA, b"resp"), w.c(PA, b"req")])
    ft.flush()
    f = sink.only()
    assert (f.id.orig_p, f.id.resp_p, f.history) == (40000, 7777, "^dD")


def test_udp_roles_states_and_bytes() -> None:
    ft, sink = table()
    cli, dns = ("10.0.0.1", 33000), ("10.0.0.53", 53)
    run(ft, [udp(1.0, cli, dns, b"q" * 30), udp(1.1, dns, cli, b"r" * 80), udp(1.2, cli, dns, b"q" * 30)])
    run(ft, [udp(2.0, ("10.0.0.9", 44000), ("10.0.0.8", 44001))])  # one way
    run(ft, [udp(3.0, dns, ("10.0.0.7", 35000))])  # a reply whose query was not seen: roles flip
    ft.flush()
    both, oneway, reply = sink.flows
    assert (both.conn_state, both.history, both.orig_bytes, both.resp_bytes, both.orig_pkts) == ("SF", "Dd", 60, 80, 2)
    assert (both.orig_ip_bytes, both.resp_ip_bytes, both.id.proto) == (2 * 58, 108, "udp")
    assert (oneway.conn_state, oneway.history) == ("S0", "D")
    assert (reply.conn_state, reply.history, reply.id.resp_p, reply.id.orig_h) == ("SHR", "^d", 53, "10.0.0.7")


def test_icmp_echo_request_and_reply_share_one_flow() -> None:
    ft, sink = table()
    req = Packet(1.0, MAC_C, MAC_S, (), "10.0.0.1", "10.0.0.2", 1, 8, 0, b"p" * 56, 84)
    rep = Packet(1.1, MAC_S, MAC_C, (), "10.0.0.2", "10.0.0.1", 1, 0, 0, b"p" * 56, 84)
    unreach = Packet(1.2, MAC_S, MAC_C, (), "10.0.0.2", "10.0.0.1", 1, 3, 3, b"h" * 28, 56)
    run(ft, [req, rep, unreach])
    ft.flush()
    echo, dest = sink.flows
    assert (echo.id.orig_p, echo.id.resp_p, echo.id.proto, echo.orig_pkts, echo.resp_pkts) == (8, 0, "icmp", 1, 1)
    assert (echo.orig_bytes, echo.resp_bytes, echo.conn_state) == (56, 56, "OTH")
    assert (dest.id.orig_h, dest.id.orig_p, dest.id.resp_p) == ("10.0.0.2", 3, 3)


# --- uids -----------------------------------------------------------------------------------------------------

def _uids(seed: int) -> list[str]:
    ft, sink = table(uid_seed=seed)
    run(ft, [udp(1.0, ("10.0.0.1", p), ("10.0.0.2", 9)) for p in range(40000, 40010)])
    ft.flush()
    return [f.id.uid for f in sink.flows]


def test_uids_are_zeek_like_and_reproducible_for_a_seed() -> None:
    first = _uids(42)
    assert first == _uids(42)
    assert first != _uids(43)
    assert len(set(first)) == 10
    assert all(re.fullmatch(r"C[0-9A-Za-z]{17}", uid) for uid in first)
