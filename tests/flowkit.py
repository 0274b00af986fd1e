"""Helpers for the FlowTable tests: a TCP conversation builder, UDP packets, a collecting sink, toy decoders."""

from __future__ import annotations

from typing import Any, ClassVar

from appliance.flows import FlowTable
from appliance.model import Flow, Packet, ProtocolEvent
from protocols.base import NOTICE, REQUEST, RESPONSE, DecoderFactory, FlowId, weird

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
    Toy.op_classes = {"msg": "read"}  # type: ignore[attr-defined]
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
