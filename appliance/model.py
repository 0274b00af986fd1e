"""Core types that flow through the pipeline: packets, flow ids, protocol events, conn records, assets.

`Packet` is a plain slotted dataclass (not frozen): one is built per frame on the hot path, and a frozen
dataclass's `object.__setattr__` initialiser costs several times more. Everything downstream of the FlowTable
(`FlowId`, `ProtocolEvent`, `Flow`) is frozen. `FlowId` and `ProtocolEvent` are defined in `protocols.base`
so that the parse layer imports nothing from the appliance.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.base import (  # re-exported: the event types live with the parsers
    EXCEPTION,
    NOTICE,
    REQUEST,
    RESPONSE,
    WEIRD,
    FlowId,
    ProtocolEvent,
)

__all__ = [
    "EXCEPTION", "NOTICE", "REQUEST", "RESPONSE", "WEIRD", "Flow", "FlowId", "Packet", "ProtocolEvent", "mac_str",
]

TCP = 6
UDP = 17
ICMP = 1
ICMP6 = 58

TRANSPORT_NAMES = {TCP: "tcp", UDP: "udp", ICMP: "icmp", ICMP6: "icmp"}

# TCP flag bits
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20


@dataclass(slots=True)
class Packet:
    """One parsed L2-L4 frame: time, MACs, VLANs, addresses, ports, TCP header fields and the payload."""

    ts: float
    src_mac: bytes
    dst_mac: bytes
    vlans: tuple[int, ...]
    src: str
    dst: str
    proto: int
    sport: int
    dport: int
    payload: bytes
    ip_len: int
    tcp_flags: int = 0
    seq: int = 0
    ack: int = 0
    wire_len: int = 0


@dataclass(frozen=True, slots=True)
class Flow:
    """A finished (or flushed) connection record, like a row of Zeek's conn.log."""

    id: FlowId
    ts: float
    duration: float
    service: str | None
    orig_bytes: int
    resp_bytes: int
    conn_state: str
    missed_bytes: int
    history: str
    orig_pkts: int
    orig_ip_bytes: int
    resp_pkts: int
    resp_ip_bytes: int
    orig_mac: str | None = None
    resp_mac: str | None = None
    vlans: tuple[int, ...] = ()


def mac_str(mac: bytes) -> str:
    """Render six bytes as a lower-case colon-separated MAC address."""
    return mac.hex(":")


ZERO_MAC = b"\x00" * 6
