"""Ethernet/IPv4/TCP/UDP frame building with precompiled structs, and TCP sessions with consistent seq/ack.

IPv4 header checksums are computed (incrementally, from a per-direction base sum); TCP and UDP checksums are
left at zero (UDP zero means "no checksum"; TCP checksum validation is off by default in Wireshark).
"""

from __future__ import annotations

import struct
from random import Random

FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10

_ETH_IPV4 = 0x0800
_DF = 0x4000
_WINDOW = 64240
_MSS_OPT = b"\x02\x04\x05\xb4"  # MSS 1460: SYN and SYN-ACK carry it (data offset 6)

# dst MAC, src MAC, ethertype | IPv4 header | TCP header
_TCP = struct.Struct("!6s6sHBBHHHBBH4s4sHHIIHHHH")
# dst MAC, src MAC, ethertype | IPv4 header | UDP header
_UDP = struct.Struct("!6s6sHBBHHHBBH4s4sHHHH")
_WORDS = struct.Struct("!HH")


class Host:
    """One simulated host: name, role, IPv4 address, stable MAC, TTL, IP id and ephemeral port counters."""

    __slots__ = ("ip", "ip4", "ipid", "mac", "name", "next_port", "role", "ttl", "vendor")

    def __init__(
        self, name: str, role: str, ip: str, mac: bytes, ttl: int, rng: Random, vendor: str = ""
    ) -> None:
        self.name = name
        self.role = role
        self.ip = ip
        self.ip4 = bytes(int(x) for x in ip.split("."))
        self.mac = mac
        self.ttl = ttl
        self.vendor = vendor
        self.ipid = rng.getrandbits(16)
        self.next_port = 32768 + rng.randrange(28000)

    def ephemeral_port(self) -> int:
        """The next client port of this host (Linux-like range 32768-60999, wrapping)."""
        port = self.next_port
        self.next_port = port + 1 if port < 60999 else 32768
        return port


def ip_base_sum(src: Host, dst: Host, proto: int, frag: int) -> int:
    """The one's-complement sum of the IPv4 header words that stay fixed for one direction of traffic."""
    s = 0x4500 + frag + ((src.ttl << 8) | proto)
    for addr in (src.ip4, dst.ip4):
        hi, lo = _WORDS.unpack(addr)
        s += hi + lo
    return s


def udp_frame(src: Host, dst: Host, sport: int, dport: int, payload: bytes, base: int = -1) -> bytes:
    """An Ethernet/IPv4/UDP frame from src to dst carrying payload (UDP checksum 0)."""
    if base < 0:
        base = ip_base_sum(src, dst, 17, 0)
    total = 28 + len(payload)
    ipid = src.ipid = (src.ipid + 1) & 0xFFFF
    s = base + total + ipid
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return (
        _UDP.pack(
            dst.mac,
            src.mac,
            _ETH_IPV4,
            0x45,
            0,
            total,
            ipid,
            0,
            src.ttl,
            17,
            ~s & 0xFFFF,
            src.ip4,
            dst.ip4,
            sport,
            dport,
            8 + len(payload),
            0,
        )
        + payload
    )


class TcpConn:
    """One TCP session between a client and a server; every frame it builds has consistent seq/ack numbers."""

    __slots__ = ("c", "cbase", "cport", "cseq", "s", "sbase", "sport", "sseq")

    def __init__(self, client: Host, server: Host, sport: int, rng: Random) -> None:
        self.c = client
        self.s = server
        self.cport = client.ephemeral_port()
        self.sport = sport
        self.cseq = rng.getrandbits(32)
        self.sseq = rng.getrandbits(32)
        self.cbase = ip_base_sum(client, server, 6, _DF)
        self.sbase = ip_base_sum(server, client, 6, _DF)

    def _frame(self, from_client: bool, flags: int, payload: bytes, opts: bytes = b"") -> bytes:
        if from_client:
            src, dst, base, sp, dp, seq, ack = (
                self.c,
                self.s,
                self.cbase,
                self.cport,
                self.sport,
                self.cseq,
                self.sseq,
            )
        else:
            src, dst, base, sp, dp, seq, ack = (
                self.s,
                self.c,
                self.sbase,
                self.sport,
                self.cport,
                self.sseq,
                self.cseq,
            )
        total = 40 + len(opts) + len(payload)
        ipid = src.ipid = (src.ipid + 1) & 0xFFFF
        s = base + total + ipid
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        step = len(payload) + (1 if flags & (SYN | FIN) else 0)
        if from_client:
            self.cseq = (seq + step) & 0xFFFFFFFF
        else:
            self.sseq = (seq + step) & 0xFFFFFFFF
        if not flags & ACK:
            ack = 0
        head = _TCP.pack(
            dst.mac,
            src.mac,
            _ETH_IPV4,
            0x45,
            0,
            total,
            ipid,
            _DF,
            src.ttl,
            6,
            ~s & 0xFFFF,
            src.ip4,
            dst.ip4,
            sp,
            dp,
            seq,
            ack,
            ((5 + len(opts) // 4) << 12) | flags,
            _WINDOW,
            0,
            0,
        )
        return head + opts + payload if opts else head + payload

    def handshake(self) -> list[bytes]:
        """SYN, SYN-ACK, ACK."""
        return [
            self._frame(True, SYN, b"", _MSS_OPT),
            self._frame(False, SYN | ACK, b"", _MSS_OPT),
            self._frame(True, ACK, b""),
        ]

    def c2s(self, payload: bytes) -> bytes:
        """A PSH/ACK data segment from the client."""
        return self._frame(True, PSH | ACK, payload)

    def s2c(self, payload: bytes) -> bytes:
        """A PSH/ACK data segment from the server."""
        return self._frame(False, PSH | ACK, payload)

    def ack_from_client(self) -> bytes:
        """A pure ACK from the client (send only after new server data, or it is a duplicate ACK)."""
        return self._frame(True, ACK, b"")

    def ack_from_server(self) -> bytes:
        """A pure ACK from the server (send only after new client data)."""
        return self._frame(False, ACK, b"")

    def close(self, by_client: bool = True) -> list[bytes]:
        """An orderly close: FIN/ACK, FIN/ACK, ACK, started by the client or the server."""
        return [
            self._frame(by_client, FIN | ACK, b""),
            self._frame(not by_client, FIN | ACK, b""),
            self._frame(by_client, ACK, b""),
        ]

    def refused(self) -> list[bytes]:
        """A connection attempt to a closed port: SYN, then RST/ACK from the server."""
        syn = self._frame(True, SYN, b"", _MSS_OPT)
        return [syn, self._frame(False, RST | ACK, b"")]
