"""FlowTable: idle, attempt and close timers, connection reuse, eviction, flush, and decoder dispatch."""

from __future__ import annotations

from typing import ClassVar

import pytest

from protocols.base import NOTICE, REQUEST, RESPONSE, WEIRD, FlowId

from .flowkit import PA, A, F, R, S, Tcp, make_decoder, run, table, udp

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
        op_classes: ClassVar[dict[str, str]] = {}

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


def test_unanswered_udp_is_reported_once_after_the_attempt_time_and_lives_to_its_idle_timeout() -> None:
    attempts: list[tuple[float, str, int, int]] = []
    ft, sink = table(udp_idle=60.0, udp_attempt=5.0,
                     on_attempt=lambda f: attempts.append((ft._clock, f.id.resp_h, f.orig_pkts, f.resp_pkts)))
    run(ft, [udp(10.0, ("10.0.0.1", 1111), ("10.0.0.2", 161)), udp(12.0, ("10.0.0.1", 1111), ("10.0.0.2", 161))])
    run(ft, [udp(10.5, ("10.0.0.1", 1112), ("10.0.0.3", 53)), udp(10.6, ("10.0.0.3", 53), ("10.0.0.1", 1112))])
    ft.expire(14.9)
    assert attempts == []
    ft.expire(15.0)
    assert attempts == [(15.0, "10.0.0.2", 2, 0)]  # the answered DNS flow is not an attempt
    ft.expire(40.0)
    assert len(attempts) == 1 and sink.flows == []  # reported once; the flow itself is still live
    ft.expire(72.0)
    assert [(f.id.resp_h, f.orig_pkts, f.resp_pkts) for f in sink.flows] == [("10.0.0.3", 1, 1), ("10.0.0.2", 2, 0)]


def test_without_an_attempt_listener_udp_flows_only_end_at_idle() -> None:
    ft, sink = table(udp_idle=60.0)
    run(ft, [udp(10.0, ("10.0.0.1", 1111), ("10.0.0.2", 161))])
    ft.expire(69.9)
    assert sink.flows == []
    ft.expire(70.0)
    assert len(sink.flows) == 1
