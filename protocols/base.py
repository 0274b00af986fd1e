"""The Decoder protocol, the event types decoders produce (FlowId, ProtocolEvent), and shared helpers.

A decoder is created per flow with the flow's `FlowId`. The FlowTable hands it reassembled, in-order bytes of
each direction (`feed`), tells it about holes in the stream (`gap`) and the end of the flow (`close`). UDP
decoders get one datagram per `feed`. A decoder never raises on bad bytes: it returns `weird` events and either
resynchronises or sets `failed` (a protocol violation), after which the FlowTable stops feeding it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class FlowId:
    """Identity of one connection: Zeek-style uid and originator/responder endpoints."""

    uid: str
    orig_h: str
    orig_p: int
    resp_h: str
    resp_p: int
    proto: str  # "tcp" | "udp" | "icmp"

    def endpoints(self, is_orig: bool) -> tuple[str, int, str, int]:
        """The true (src, sport, dst, dport) of a message sent by the originator (is_orig) or the responder."""
        if is_orig:
            return self.orig_h, self.orig_p, self.resp_h, self.resp_p
        return self.resp_h, self.resp_p, self.orig_h, self.orig_p


# ProtocolEvent.kind values
REQUEST = "request"
RESPONSE = "response"
EXCEPTION = "exception"
WEIRD = "weird"
NOTICE = "notice"


@dataclass(slots=True)
class ProtocolEvent:
    """One decoded message (or a weird): who sent it to whom, what operation, and its typed fields.

    Not frozen, for speed: one is built per decoded message, and a frozen dataclass's initialiser costs about four
    times as much (1.9 us against 0.45 us). Treat it as immutable all the same: nobody downstream may change it.
    """

    ts: float
    flow: FlowId | None
    protocol: str
    op: str
    kind: str
    is_orig: bool
    src: str
    dst: str
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def uid(self) -> str | None:
        """The uid of the flow this event was decoded from, if any."""
        return self.flow.uid if self.flow is not None else None


class Decoder(Protocol):
    """What the FlowTable needs from a protocol decoder instance (one per flow)."""

    failed: bool

    def feed(self, data: bytes, is_orig: bool, ts: float) -> list[ProtocolEvent]:
        """Decode the next in-order bytes of one direction (or one datagram) into events."""
        ...

    def gap(self, is_orig: bool, ts: float, length: int) -> list[ProtocolEvent]:
        """Report `length` missing bytes in one direction; buffered partial messages are dropped."""
        ...

    def close(self, ts: float) -> list[ProtocolEvent]:
        """The flow ended: report what is still pending (unanswered requests, partial messages)."""
        ...


class DecoderFactory(Protocol):
    """A decoder class: its name, transport and well-known ports, a probe, and a constructor taking a FlowId."""

    name: str
    transport: str
    ports: frozenset[int]
    op_classes: dict[str, str]

    def __call__(self, flow: FlowId) -> Decoder:
        """Create a decoder for one flow."""
        ...

    def probe(self, payload: bytes, is_orig: bool) -> bool:
        """True when the first payload bytes of a flow (sent by the originator if is_orig) look like this protocol."""
        ...


def unknown(code: int) -> str:
    """The name of an unknown code, as Zeek renders it: `unknown-N`."""
    return f"unknown-{code}"


def weird(
    flow: FlowId | None, protocol: str, name: str, ts: float, is_orig: bool, addl: str = "", **extra: Any
) -> ProtocolEvent:
    """A weird event: something malformed or unexpected, named in Zeek's weird.log habit."""
    if flow is not None:
        src, _, dst, _ = flow.endpoints(is_orig)
    else:
        src = dst = ""
    fields: dict[str, Any] = {"name": name, "addl": addl}
    fields.update(extra)
    return ProtocolEvent(ts, flow, protocol, name, WEIRD, is_orig, src, dst, fields)
