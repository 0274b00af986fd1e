"""Test helpers: build frames by hand with struct, and write pcap / pcapng files with chosen quirks."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")


# ------------------------------------------------------------------ L4


def tcp(
    sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes = b"", options: bytes = b""
) -> bytes:
    """A TCP segment (checksum left zero: never verified)."""
    assert len(options) % 4 == 0
    doff = (20 + len(options)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, doff << 4, flags, 8192, 0, 0) + options + payload


def udp(sport: int, dport: int, payload: bytes = b"", length: int | None = None) -> bytes:
    """A UDP datagram; `length` overrides the header's length field."""
    return struct.pack("!HHHH", sport, dport, 8 + len(payload) if length is None else length, 0) + payload


def icmp(typ: int, code: int, rest: bytes = b"\x00\x01\x00\x02", payload: bytes = b"") -> bytes:
    """An ICMP (or ICMPv6) message: type, code, checksum, 4 bytes of rest-of-header, payload."""
    return struct.pack("!BBH", typ, code, 0) + rest + payload


# ------------------------------------------------------------------ L3


def ipv4(
    src: str,
    dst: str,
    proto: int,
    payload: bytes,
    *,
    options: bytes = b"",
    flags_frag: int = 0x4000,
    total: int | None = None,
    ttl: int = 64,
) -> bytes:
    """An IPv4 datagram; `total` overrides the total length, `flags_frag` the flags and fragment offset."""
    assert len(options) % 4 == 0
    ihl = 5 + len(options) // 4
    length = ihl * 4 + len(payload) if total is None else total
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | ihl,
        0,
        length,
        0x1234,
        flags_frag,
        ttl,
        proto,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    return header + options + payload


def ipv6(src: str, dst: str, nh: int, payload: bytes, *, ext: Sequence[tuple[int, bytes]] = ()) -> bytes:
    """An IPv6 packet; `ext` is a list of (header type, body) extension headers put before the payload.

    Each body is the extension header after its next-header byte (hop-by-hop, routing, destination options:
    the length byte then the data, 8-octet aligned in total; fragment: 7 bytes).
    """
    chain = b""
    types = [t for t, _ in ext] + [nh]
    for i, (_, body) in enumerate(ext):
        chain += bytes([types[i + 1]]) + body
    first = types[0]
    rest = chain + payload
    return (
        struct.pack(
            "!IHBB16s16s",
            0x60000000,
            len(rest),
            first,
            64,
            socket.inet_pton(socket.AF_INET6, src),
            socket.inet_pton(socket.AF_INET6, dst),
        )
        + rest
    )


# ------------------------------------------------------------------ L2


def eth(
    etype: int,
    payload: bytes,
    *,
    dst: bytes = MAC_B,
    src: bytes = MAC_A,
    vlans: Sequence[tuple[int, int]] = (),
) -> bytes:
    """An Ethernet II frame; `vlans` is a list of (TPID, TCI), outermost first."""
    tags = b"".join(struct.pack("!HH", tpid, tci) for tpid, tci in vlans)
    return dst + src + tags + struct.pack("!H", etype) + payload


def sll(protocol: int, payload: bytes, *, pkttype: int = 0, hatype: int = 1, addr: bytes = MAC_A) -> bytes:
    """A Linux cooked (SLL, link type 113) frame."""
    return struct.pack("!HHH8sH", pkttype, hatype, len(addr), addr.ljust(8, b"\0"), protocol) + payload


def sll2(
    protocol: int, payload: bytes, *, ifindex: int = 2, pkttype: int = 0, hatype: int = 1, addr: bytes = MAC_A
) -> bytes:
    """A Linux cooked v2 (SLL2, link type 276) frame."""
    return (
        struct.pack("!HHIHBB8s", protocol, 0, ifindex, hatype, pkttype, len(addr), addr.ljust(8, b"\0"))
        + payload
    )


# ------------------------------------------------------------------ files

Record = tuple[int, int, bytes, int]  # seconds, fraction (us or ns), captured bytes, original length


def write_pcap(
    path: Path,
    records: Iterable[Record],
    *,
    linktype: int = 1,
    nanosecond: bool = False,
    big_endian: bool = False,
    snaplen: int = 65535,
) -> Path:
    """Write a classic pcap file."""
    bo = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    out = [struct.pack(bo + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for sec, frac, data, orig in records:
        out.append(struct.pack(bo + "IIII", sec, frac, len(data), orig) + data)
    path.write_bytes(b"".join(out))
    return path


def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


class PcapngWriter:
    """Builds a pcapng file block by block, in one byte order per section."""

    def __init__(self) -> None:
        self.blocks: list[bytes] = []
        self.bo = "<"

    def block(self, btype: int, body: bytes) -> PcapngWriter:
        """Append a raw block of any type."""
        body = _pad4(body)
        n = 12 + len(body)
        self.blocks.append(struct.pack(self.bo + "II", btype, n) + body + struct.pack(self.bo + "I", n))
        return self

    def shb(self, *, big_endian: bool = False) -> PcapngWriter:
        """Start a section (Section Header Block) in the given byte order."""
        self.bo = ">" if big_endian else "<"
        return self.block(0x0A0D0D0A, struct.pack(self.bo + "IHHq", 0x1A2B3C4D, 1, 0, -1))

    def idb(
        self, linktype: int, *, snaplen: int = 0, tsresol: int | None = None, tsoffset: int | None = None
    ) -> PcapngWriter:
        """An Interface Description Block with optional if_tsresol (raw byte) and if_tsoffset options."""
        opts = b""
        if tsresol is not None:
            opts += struct.pack(self.bo + "HH", 9, 1) + _pad4(bytes([tsresol]))
        if tsoffset is not None:
            opts += struct.pack(self.bo + "HHq", 14, 8, tsoffset)
        if opts:
            opts += struct.pack(self.bo + "HH", 0, 0)
        return self.block(1, struct.pack(self.bo + "HHI", linktype, 0, snaplen) + opts)

    def epb(self, ifid: int, ticks: int, data: bytes, orig: int | None = None) -> PcapngWriter:
        """An Enhanced Packet Block with a timestamp in the interface's units."""
        head = struct.pack(
            self.bo + "IIIII",
            ifid,
            ticks >> 32,
            ticks & 0xFFFFFFFF,
            len(data),
            len(data) if orig is None else orig,
        )
        return self.block(6, head + _pad4(data))

    def spb(self, data: bytes, orig: int | None = None) -> PcapngWriter:
        """A Simple Packet Block."""
        return self.block(3, struct.pack(self.bo + "I", len(data) if orig is None else orig) + _pad4(data))

    def pb(self, ifid: int, ticks: int, data: bytes, orig: int | None = None) -> PcapngWriter:
        """An obsolete Packet Block."""
        head = struct.pack(
            self.bo + "HHIIII",
            ifid,
            0,
            ticks >> 32,
            ticks & 0xFFFFFFFF,
            len(data),
            len(data) if orig is None else orig,
        )
        return self.block(2, head + _pad4(data))

    def write(self, path: Path) -> Path:
        """Write the file."""
        path.write_bytes(b"".join(self.blocks))
        return path
