"""TCP reassembly: sequence arithmetic, in-order delivery, overlaps, gaps and their lengths, wraparound."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from appliance.conn_state import Conn
from appliance.flows import FlowTable
from appliance.model import Flow, Packet, ProtocolEvent
from appliance.reassembly import buffer_segment, pop_ready, unwrap
from protocols.base import FlowId

S, F, R, A, PA = 0x02, 0x01, 0x04, 0x10, 0x18
CLIENT, SERVER = ("10.0.0.1", 40000), ("10.0.0.2", 502)


class Recorder:
    """A decoder for port 502 that records the stream it is handed: ('data', is_orig, bytes) / ('gap', ...)."""

    name: ClassVar[str] = "rec"
    transport: ClassVar[str] = "tcp"
    ports: ClassVar[frozenset[int]] = frozenset({502})
    op_classes: ClassVar[dict[str, str]] = {}
    last: ClassVar[Recorder | None] = None

    def __init__(self, flow: FlowId) -> None:
        self.failed = False
        self.log: list[tuple[str, bool, Any]] = []
        Recorder.last = self

    @classmethod
    def probe(cls, payload: bytes, is_orig: bool) -> bool:
        """Never by content: the port decides."""
        return False

    def feed(self, data: bytes, is_orig: bool, ts: float) -> list[ProtocolEvent]:
        """Record delivered bytes."""
        self.log.append(("data", is_orig, bytes(data)))
        return []

    def gap(self, is_orig: bool, ts: float, length: int) -> list[ProtocolEvent]:
        """Record a gap."""
        self.log.append(("gap", is_orig, length))
        return []

    def close(self, ts: float) -> list[ProtocolEvent]:
        """Nothing pending."""
        return []

    def stream(self, is_orig: bool = True) -> list[Any]:
        """The client's (or server's) deliveries and gaps, in order."""
        return [e[2] for e in self.log if e[1] == is_orig]


class Session:
    """A FlowTable with the Recorder and a packet builder for one client/server pair."""

    def __init__(self, cisn: int = 1000, sisn: int = 5000, **kw: Any) -> None:
        self.flows: list[Flow] = []
        self.table = FlowTable([Recorder], lambda ev: None, self.flows.append, **kw)
        self.isn = {True: cisn, False: sisn}
        self.ts = 10.0

    def send(self, from_client: bool, flags: int, off: int = 0, data: bytes = b"", ack: int = 0) -> None:
        """A segment at byte offset `off` of the sender's stream (offset 0 follows the SYN), acking `ack`."""
        self.ts += 0.01
        (src, sport), (dst, dport) = (CLIENT, SERVER) if from_client else (SERVER, CLIENT)
        seq = (self.isn[from_client] + (0 if flags & S else 1 + off)) & 0xFFFFFFFF
        ackno = (self.isn[not from_client] + 1 + ack) & 0xFFFFFFFF if flags & A else 0
        self.table.process(Packet(self.ts, b"", b"", (), src, dst, 6, sport, dport, data, 40 + len(data), flags,
                                  seq, ackno))

    def open(self) -> None:
        """The three-way handshake."""
        self.send(True, S)
        self.send(False, S | A)
        self.send(True, A)

    def end(self) -> Flow:
        """Flush and return the one conn record."""
        self.table.flush()
        assert len(self.flows) == 1
        return self.flows[0]

    @property
    def rec(self) -> Recorder:
        """The decoder of the session."""
        assert Recorder.last is not None
        return Recorder.last


@pytest.fixture(autouse=True)
def _fresh_recorder() -> None:
    Recorder.last = None


# --- sequence arithmetic and the buffer ----------------------------------------------------------------------

def test_unwrap_takes_the_offset_nearest_the_reference() -> None:
    base = 0xFFFFFFF0
    assert unwrap(0xFFFFFFF5, base, 0) == 5
    assert unwrap(0x00000010, base, 20) == 0x20  # past the 32-bit wrap
    assert unwrap(0xFFFFFFF0, base, 0x20) == 0  # behind the reference: a retransmission, not 4 GiB ahead
    assert unwrap(base, base, (1 << 32) + 5) == 1 << 32  # a second lap of the sequence space


def test_buffer_and_pop_trim_overlaps_and_skip_duplicates() -> None:
    half = Conn(0, FlowId("C", "a", 1, "b", 2, "tcp"), 6, 0.0).orig
    half.nxt = 1
    assert buffer_segment(half, 5, b"EFGH") == 4
    assert buffer_segment(half, 6, b"FG") == 0  # inside what is held
    assert buffer_segment(half, 3, b"CDEF") == 4
    assert half.obytes == 8
    assert pop_ready(half) == []
    half.nxt = 3
    assert pop_ready(half) == [b"CDEF", b"GH"]
    assert (half.nxt, half.obytes, half.ostarts) == (9, 0, [])


# --- delivery order -------------------------------------------------------------------------------------------

def test_out_of_order_segments_are_delivered_in_order_once_the_hole_fills() -> None:
    s = Session()
    s.open()
    s.send(True, PA, 3, b"DEF")
    s.send(True, PA, 6, b"GHI")
    assert Recorder.last is None  # nothing delivered (so no decoder chosen) before the hole fills
    s.send(True, PA, 0, b"ABC")
    assert s.rec.stream() == [b"ABC", b"DEF", b"GHI"]
    f = s.end()
    assert (f.orig_bytes, f.missed_bytes) == (9, 0)
    assert "T" in f.history  # the late segment is below the highest sequence seen, as Zeek counts it


def test_retransmissions_and_overlaps_are_never_delivered_twice() -> None:
    s = Session()
    s.open()
    s.send(True, PA, 0, b"ABCD")
    s.send(True, PA, 0, b"ABCD")  # exact retransmission
    s.send(True, PA, 2, b"CDEF")  # overlaps the delivered bytes
    s.send(True, PA, 8, b"IJ")  # out of order
    s.send(True, PA, 7, b"HIJK")  # overlaps the held segment
    s.send(True, PA, 6, b"G")
    assert b"".join(s.rec.stream()) == b"ABCDEFGHIJK"
    f = s.end()
    assert (f.orig_bytes, f.missed_bytes, f.history) == (11, 0, "ShADT")


def test_syn_payload_is_delivered_and_rst_payload_is_not() -> None:
    s = Session()
    s.send(True, S, data=b"fastopen")  # TCP Fast Open: data in the SYN
    s.send(False, S | A, ack=8)
    s.send(True, PA, 8, b"!", ack=0)
    s.send(False, R | A, 0, b"reset reason text", ack=9)
    assert s.rec.stream() == [b"fastopen", b"!"]
    assert s.rec.stream(False) == []
    f = s.end()
    assert (f.orig_bytes, f.resp_bytes, f.conn_state) == (9, 0, "RSTR")


def test_sequence_numbers_wrap_around_32_bits() -> None:
    s = Session(cisn=0xFFFFFFFA, sisn=0xFFFFFFFE)
    s.open()
    s.send(True, PA, 0, b"01234")  # bytes at 0xFFFFFFFB..0xFFFFFFFF
    s.send(True, PA, 10, b"ABCDE")  # after the wrap, out of order
    s.send(True, PA, 5, b"56789")
    s.send(False, PA, 0, b"ok", ack=15)
    s.send(True, F | A, 15, ack=2)
    s.send(False, F | A, 2, ack=16)
    s.send(True, A, 16, ack=3)
    assert s.rec.stream() == [b"01234", b"56789", b"ABCDE"]
    f = s.end()
    assert (f.conn_state, f.orig_bytes, f.resp_bytes, f.missed_bytes) == ("SF", 15, 2, 0)


# --- gaps -----------------------------------------------------------------------------------------------------

def test_gap_reported_when_the_peer_acknowledges_past_the_hole() -> None:
    s = Session()
    s.open()
    s.send(True, PA, 0, b"x" * 10)
    s.send(True, PA, 30, b"y" * 5)  # bytes 10..29 never seen
    s.send(False, A, 0, ack=35)
    assert s.rec.stream() == [b"x" * 10, 20, b"y" * 5]
    s.send(True, PA, 10, b"z" * 20)  # too late: already given up
    s.send(False, A, 0, ack=60)  # data acknowledged that the capture never saw at all
    assert s.rec.stream()[3:] == [25]
    f = s.end()
    assert (f.missed_bytes, f.orig_bytes) == (45, 60)
    assert "G" in f.history


def test_gap_reported_when_the_buffer_bound_is_hit() -> None:
    s = Session(max_ooo_bytes=100)
    s.open()
    s.send(True, PA, 0, b"a" * 10)
    s.send(True, PA, 50, b"b" * 60)
    assert s.rec.stream() == [b"a" * 10]
    s.send(True, PA, 110, b"c" * 50)  # 110 bytes held: over the bound
    assert s.rec.stream() == [b"a" * 10, 40, b"b" * 60, b"c" * 50]
    assert s.end().missed_bytes == 40


def test_table_wide_buffer_bound() -> None:
    s = Session(max_ooo_total=50)
    s.open()
    s.send(True, PA, 100, b"h" * 60)  # over the table's bound: the hole is given up at once
    assert s.rec.stream() == [b"h" * 60]  # the decoder starts after the gap: nothing to tell it
    assert s.table.ooo_total == 0
    assert s.end().missed_bytes == 100


def test_hole_reported_when_the_connection_ends() -> None:
    s = Session()
    s.open()
    s.send(True, PA, 0, b"a" * 4)
    s.send(True, PA, 7, b"b" * 3)
    s.send(True, F | A, 10)  # FIN after the held bytes
    f = s.end()
    assert s.rec.stream() == [b"a" * 4, 3, b"b" * 3]
    assert (f.missed_bytes, f.orig_bytes) == (3, 10)
    assert "G" not in f.history  # as Zeek, a gap found at the end is not put in the history


def test_ack_of_a_fin_after_a_hole_does_not_count_the_fin_as_data() -> None:
    s = Session()
    s.open()
    s.send(True, PA, 0, b"a" * 4)
    s.send(True, F | A, 10)  # bytes 4..9 missed, then the FIN
    s.send(False, F | A, 0, ack=11)
    s.send(True, A, 11, ack=1)
    assert s.rec.stream() == [b"a" * 4, 6]
    f = s.end()
    assert (f.missed_bytes, f.orig_bytes, f.conn_state) == (6, 10, "SF")


def test_an_ack_far_beyond_anything_sent_is_not_trusted() -> None:
    s = Session()
    s.open()
    s.send(True, PA, 0, b"a" * 4)
    s.send(False, A, 0, ack=0x40000000)
    s.send(True, PA, 4, b"b" * 4)
    assert s.rec.stream() == [b"a" * 4, b"b" * 4]
    f = s.end()
    assert (f.missed_bytes, f.orig_bytes) == (0, 8)
