"""FlowTable: conn records with Zeek's conn_state and history, roles, timers, eviction, decoder dispatch, uids."""

from __future__ import annotations

import re
from typing import Any, ClassVar

import pytest

from appliance.flows import FlowTable
from appliance.model import Flow, Packet, ProtocolEvent
from protocols.base import NOTICE, REQUEST, RESPONSE, WEIRD, DecoderFactory, FlowId, weird

S, F, R, A, PA = 0x02, 0x01, 0x04, 0x10, 0x18
MAC_C = bytes.fromhex("020000000001")
MAC_S = bytes.fromhex("020000000002")


def make_decoder(name: str = "toy", transport: str = "tcp", ports: tuple[int, ...] = (7777,),
                 magic: bytes = b"TOY") -> Any:
    """A small decoder class honouring protocols.base.Decoder: one event per feed, `BAD` fails, `BOOM` raises."""

    class Toy:
        """A test decoder that records everything the FlowTable hands it."""

        instances: ClassVar[list[Toy]] = []

        def __init__(self, flow: FlowId) -> None:
            self.flow = flow
            self.failed = False
            self.log: list[tuple[Any, ...]] = []
            Toy.instances.append(self)

        @classmethod
        def probe(cls, payload: bytes, is_orig: bool) -> bool:
            """Accept payloads that start with the magic bytes."""
            return payload.startswith(magic)

        def feed(self, data: bytes, is_orig: bool, ts: float) -> list[ProtocolEvent]:
            """Record the bytes; fail on BAD, raise on BOOM, else one request/response event."""
            self.log.append(("feed", is_orig, bytes(data)))
            if data.startswith(b"BOOM"):
                raise ValueError("boom")
            if data.startswith(b"BAD"):
                self.failed = True
                return [weird(self.flow, name, "protocol_violation", ts, is_orig)]
            src, _, dst, _ = self.flow.endpoints(is_orig)
            kind = REQUEST if is_orig else RESPONSE
            return [ProtocolEvent(ts, self.flow, name, "msg", kind, is_orig, src, dst, {"n": len(data)})]

        def gap(self, is_orig: bool, ts: float, length: int) -> list[ProtocolEvent]:
            """Record the gap."""
            self.log.append(("gap", is_orig, length))
            return []

        def close(self, ts: float) -> list[ProtocolEvent]:
            """Record the close and report it with a notice."""
            self.log.append(("close", ts))
            return [ProtocolEvent(ts, self.flow, name, "closed", NOTICE, True, "", "")]

        def stream(self, is_orig: bool) -> bytes:
            """All bytes fed for one direction."""
            return b"".join(e[2] for e in self.log if e[0] == "feed" and e[1] == is_orig)

    Toy.name = name  # type: ignore[attr-defined]
    Toy.transport = transport  # type: ignore[attr-defined]
    Toy.ports = frozenset(ports)  # type: ignore[attr-defined]
    return Toy


class Sink:
    """Collects what a FlowTable emits, in order."""

    def __init__(self) -> None:
        self.events: list[ProtocolEvent] = []
        self.flows: list[Flow] = []
        self.order: list[str] = []

    def on_event(self, ev: ProtocolEvent) -> None:
        """Keep an event."""
        self.events.append(ev)
        self.order.append(f"event:{ev.op}")

    def on_flow(self, flow: Flow) -> None:
        """Keep a conn record."""
        self.flows.append(flow)
        self.order.append(f"flow:{flow.id.uid}")

    def only(self) -> Flow:
        """The one conn record emitted."""
        assert len(self.flows) == 1, self.flows
        return self.flows[0]


def table(*decoders: DecoderFactory, **kw: Any) -> tuple[FlowTable, Sink]:
    """A FlowTable wired to a fresh Sink."""
    sink = Sink()
    return FlowTable(list(decoders), sink.on_event, sink.on_flow, **kw), sink


class Tcp:
    """Builds the packets of one TCP conversation, tracking both sides' sequence numbers and the clock."""

    def __init__(self, client: tuple[str, int] = ("10.0.0.1", 40000), server: tuple[str, int] = ("10.0.0.2", 502),
                 isn: tuple[int, int] = (1000, 5000), t0: float = 100.0) -> None:
        self.ends = {True: client, False: server}
        self.seq = {True: isn[0], False: isn[1]}
        self.ts = t0

    def pkt(self, from_client: bool, flags: int, data: bytes = b"", *, seq: int | None = None,
            ack: int | None = None, dt: float = 0.01) -> Packet:
        """A segment; without `seq` it takes (and advances) the sender's next sequence number."""
        self.ts += dt
        (src, sport), (dst, dport) = self.ends[from_client], self.ends[not from_client]
        if seq is None:
            seq = self.seq[from_client]
            self.seq[from_client] = (seq + len(data) + (1 if flags & S else 0) + (1 if flags & F else 0)) & 0xFFFFFFFF
        if ack is None:
            ack = self.seq[not from_client] if flags & A else 0
        macs = (MAC_C, MAC_S) if from_client else (MAC_S, MAC_C)
        return Packet(self.ts, macs[0], macs[1], (7,), src, dst, 6, sport, dport, data, 40 + len(data), flags,
                      seq, ack, 54 + len(data))

    def c(self, flags: int, data: bytes = b"", **kw: Any) -> Packet:
        """Client to server."""
        return self.pkt(True, flags, data, **kw)

    def s(self, flags: int, data: bytes = b"", **kw: Any) -> Packet:
        """Server to client."""
        return self.pkt(False, flags, data, **kw)

    def handshake(self) -> list[Packet]:
        """SYN, SYN-ACK, ACK."""
        return [self.c(S), self.s(S | A), self.c(A)]


def udp(ts: float, src: tuple[str, int], dst: tuple[str, int], data: bytes = b"x") -> Packet:
    """A UDP datagram."""
    return Packet(ts, MAC_C, MAC_S, (), src[0], dst[0], 17, src[1], dst[1], data, 28 + len(data))


def run(ft: FlowTable, packets: list[Packet]) -> None:
    """Feed packets in order."""
    for p in packets:
        ft.process(p)


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


# --- timers, reuse, eviction, flush ----------------------------------------------------------------------------

def test_idle_timeouts_by_packet_time() -> None:
    ft, sink = table(udp_idle=60.0, tcp_idle=300.0)
    run(ft, [udp(10.0, ("10.0.0.1", 1111), ("10.0.0.2", 2222))])
    w = Tcp(t0=10.0)
    run(ft, [*w.handshake(), w.c(PA, b"x")])
    run(ft, [udp(69.0, ("10.0.0.5", 1), ("10.0.0.6", 2))])  # 59 s later: nothing idle yet
    assert sink.flows == []
    run(ft, [udp(70.5, ("10.0.0.5", 1), ("10.0.0.6", 2))])
    assert [f.id.proto for f in sink.flows] == ["udp"]
    run(ft, [udp(311.0, ("10.0.0.5", 1), ("10.0.0.6", 2))])  # that flow went idle at 130.5, the TCP one at 310.04
    assert [f.id.proto for f in sink.flows] == ["udp", "udp", "tcp"]
    assert (ft.timed_out, ft.live, sink.flows[2].conn_state) == (3, 1, "S1")


def test_unanswered_syn_ends_after_the_attempt_timeout_from_its_first_packet() -> None:
    ft, sink = table(tcp_attempt=5.0)
    w = Tcp(t0=0.0)
    syn = w.c(S, dt=0.0)
    run(ft, [syn, w.c(S, seq=syn.seq, dt=3.0)])
    ft.expire(4.9)
    assert sink.flows == []
    ft.expire(5.0)
    f = sink.only()
    assert (f.conn_state, f.history, f.orig_pkts, f.duration) == ("S0", "S", 2, 3.0)


def test_closed_flow_lingers_for_late_acks_then_a_new_syn_starts_a_new_flow() -> None:
    ft, sink = table(tcp_closed_linger=5.0)
    w = Tcp(t0=0.0)
    run(ft, [*w.handshake(), w.c(F | A), w.s(F | A)])
    run(ft, [w.c(A, dt=2.0)])  # a late ACK within the linger joins the closed flow
    assert sink.flows == []
    w.seq[True] = 777_000
    run(ft, [w.c(S, dt=0.5), w.s(R | A)])  # the same 5-tuple again: a new connection
    assert len(sink.flows) == 1
    old = sink.flows[0]
    assert (old.conn_state, old.orig_pkts, old.history) == ("SF", 4, "ShAFf")
    ft.flush()
    new = sink.flows[1]
    assert new.id.uid != old.id.uid
    assert (new.conn_state, new.history) == ("REJ", "Sr")
    assert ft.reused == 1


def test_closed_flow_is_emitted_after_the_linger() -> None:
    ft, sink = table(tcp_closed_linger=5.0)
    w = Tcp(t0=0.0)
    run(ft, [*w.handshake(), w.c(R | A)])
    ft.expire(w.ts + 4.0)
    assert sink.flows == []
    ft.expire(w.ts + 6.0)
    assert sink.only().conn_state == "RSTO"
    assert (ft.timed_out, ft.live) == (0, 0)


def test_syn_with_a_new_initial_sequence_starts_a_new_flow() -> None:
    ft, sink = table()
    w = Tcp()
    run(ft, [w.c(S)])
    w.seq[True] = 99_999
    run(ft, [w.c(S)])
    ft.flush()
    assert [f.conn_state for f in sink.flows] == ["S0", "S0"]
    assert sink.flows[0].id.uid != sink.flows[1].id.uid


def test_eviction_ends_the_least_recently_active_flow() -> None:
    ft, sink = table(max_flows=3)
    a, b, c = ("10.0.0.1", 41001), ("10.0.0.1", 41002), ("10.0.0.1", 41003)
    srv = ("10.0.0.2", 9999)
    run(ft, [udp(1.0, a, srv), udp(2.0, b, srv), udp(3.0, c, srv), udp(4.0, a, srv)])  # a active again
    run(ft, [udp(5.0, ("10.0.0.1", 41004), srv)])
    assert [f.id.orig_p for f in sink.flows] == [41002]
    run(ft, [udp(6.0, ("10.0.0.1", 41005), srv)])
    assert [f.id.orig_p for f in sink.flows] == [41002, 41003]
    assert (ft.evicted, ft.live, ft.total) == (2, 3, 5)


def test_flush_emits_every_live_flow_after_its_decoder_closes() -> None:
    toy = make_decoder()
    ft, sink = table(toy)
    w = Tcp(server=("10.0.0.2", 7777))
    run(ft, [*w.handshake(), w.c(PA, b"hello")])
    run(ft, [udp(w.ts, ("10.0.0.1", 5000), ("10.0.0.2", 5001))])
    assert ft.live == 2
    ft.flush()
    assert ft.live == 0
    assert len(sink.flows) == 2
    uid = sink.flows[0].id.uid
    assert sink.order == ["event:msg", "event:closed", f"flow:{uid}", f"flow:{sink.flows[1].id.uid}"]
    assert toy.instances[0].log[-1] == ("close", pytest.approx(w.ts))


# --- decoder dispatch -----------------------------------------------------------------------------------------

def test_dispatch_by_responder_port() -> None:
    toy = make_decoder(ports=(7777,))
    ft, sink = table(toy)
    w = Tcp(server=("10.0.0.2", 7777))
    run(ft, [*w.handshake(), w.c(PA, b"anything"), w.s(PA, b"reply")])
    ft.flush()
    (dec,) = toy.instances
    assert dec.flow == sink.only().id
    assert (dec.stream(True), dec.stream(False)) == (b"anything", b"reply")
    assert [(e.kind, e.is_orig, e.src) for e in sink.events[:2]] == [(REQUEST, True, "10.0.0.1"),
                                                                    (RESPONSE, False, "10.0.0.2")]
    assert sink.only().service == "toy"


def test_dispatch_by_probe_on_a_non_standard_port() -> None:
    other, toy = make_decoder("other", magic=b"NOPE", ports=(1,)), make_decoder(ports=(7777,))
    ft, sink = table(other, toy)
    w = Tcp(server=("10.0.0.2", 40001))
    run(ft, [*w.handshake(), w.c(PA, b"TOY hello"), w.s(PA, b"ok")])
    ft.flush()
    assert other.instances == []
    assert toy.instances[0].stream(False) == b"ok"
    assert sink.only().service == "toy"


def test_probe_retried_on_the_next_payloads_then_given_up() -> None:
    toy = make_decoder(ports=())
    ft, sink = table(toy, probe_limit=2)
    w = Tcp(server=("10.0.0.2", 40001))
    run(ft, [*w.handshake(), w.c(PA, b"hello"), w.c(PA, b"TOY late start"), w.c(PA, b"more")])
    assert toy.instances[0].stream(True) == b"TOY late startmore"
    w2 = Tcp(client=("10.0.0.5", 40000), server=("10.0.0.2", 40001))
    run(ft, [*w2.handshake(), w2.c(PA, b"a"), w2.c(PA, b"b"), w2.c(PA, b"TOY too late")])
    ft.flush()
    assert len(toy.instances) == 1
    assert [f.service for f in sink.flows] == ["toy", None]


def test_no_decoder_when_neither_port_nor_probe_matches() -> None:
    toy = make_decoder(ports=(7777,))
    ft, sink = table(toy)
    w = Tcp(server=("10.0.0.2", 8888))
    run(ft, [*w.handshake(), w.c(PA, b"GET / HTTP/1.1\r\n\r\n")])
    ft.flush()
    assert (toy.instances, sink.events, sink.only().service) == ([], [], None)


def test_failed_decoder_is_no_longer_fed() -> None:
    toy = make_decoder(ports=(7777,))
    ft, sink = table(toy)
    w = Tcp(server=("10.0.0.2", 7777))
    run(ft, [*w.handshake(), w.c(PA, b"BAD: TLS on the Modbus port"), w.s(PA, b"more"), w.c(PA, b"TOY")])
    ft.flush()
    (dec,) = toy.instances
    assert dec.log == [("feed", True, b"BAD: TLS on the Modbus port")]  # not fed again, not even closed
    assert [(e.kind, e.op) for e in sink.events] == [(WEIRD, "protocol_violation")]
    assert sink.only().service is None


def test_decoder_exception_becomes_a_weird_and_stops_decoding() -> None:
    toy = make_decoder(ports=(7777,))
    ft, sink = table(toy)
    w = Tcp(server=("10.0.0.2", 7777))
    run(ft, [*w.handshake(), w.c(PA, b"TOY ok"), w.c(PA, b"BOOM"), w.c(PA, b"TOY again")])
    ft.flush()
    assert [(e.kind, e.op) for e in sink.events] == [(REQUEST, "msg"), (WEIRD, "decoder_error")]
    assert sink.events[1].fields["addl"] == "ValueError: boom"
    assert ft.decoder_errors == 1
    assert sink.only().service == "toy"


def test_decoders_raising_in_probe_or_constructor_are_contained() -> None:
    class Broken:
        """A decoder whose probe and constructor raise."""

        name: ClassVar[str] = "broken"
        transport: ClassVar[str] = "tcp"
        ports: ClassVar[frozenset[int]] = frozenset({7777})

        def __init__(self, flow: FlowId) -> None:
            raise RuntimeError("cannot start")

        @classmethod
        def probe(cls, payload: bytes, is_orig: bool) -> bool:
            """Always raises."""
            raise IndexError("probe bug")

    toy = make_decoder(ports=(1,))
    ft, sink = table(Broken, toy)  # type: ignore[arg-type]
    by_probe = Tcp(server=("10.0.0.2", 40001))
    run(ft, [*by_probe.handshake(), by_probe.c(PA, b"TOY hi")])  # Broken's probe raises: Toy still found
    by_port = Tcp(client=("10.0.0.9", 40000), server=("10.0.0.2", 7777))
    run(ft, [*by_port.handshake(), by_port.c(PA, b"x"), by_port.c(PA, b"y")])
    ft.flush()
    assert [f.service for f in sink.flows] == ["toy", None]
    assert [(e.kind, e.op, e.protocol) for e in sink.events[1:]] == [(WEIRD, "decoder_error", "broken"),
                                                                   (NOTICE, "closed", "toy")]
    assert ft.decoder_errors == 1


def test_udp_datagrams_dispatched_one_per_feed() -> None:
    toy = make_decoder("utoy", transport="udp", ports=(47808,))
    ft, sink = table(toy)
    dev, bms = ("10.0.0.1", 47808), ("10.0.0.2", 47808)
    run(ft, [udp(1.0, bms, dev, b"who"), udp(1.1, dev, bms, b"i-am"), udp(1.2, bms, dev, b"")])
    ft.flush()
    (dec,) = toy.instances
    assert [e[:3] for e in dec.log[:2]] == [("feed", True, b"who"), ("feed", False, b"i-am")]
    assert (sink.only().service, sink.only().orig_pkts) == ("utoy", 2)


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
