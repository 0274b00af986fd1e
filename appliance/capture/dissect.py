"""L2-L4 dissection of captured frames into `appliance.model.Packet`, by hand with precompiled structs.

Link types: 1 Ethernet (802.1Q 0x8100, 802.1ad 0x88a8 and 0x9100 tags stacked to any depth), 113 Linux cooked
(SLL), 276 SLL2, raw IP (101, 12, 14; 228 IPv4, 229 IPv6), 0 BSD null/loopback (either byte order) and 108
OpenBSD loop. Network: IPv4 (options skipped, the total length trims Ethernet padding and FCS) and IPv6
(hop-by-hop, routing, destination-options and AH extension headers skipped). Transport: TCP, UDP, ICMP and
ICMPv6 (sport is the ICMP type and dport the code, as Zeek does). Checksums are never verified.

Not decoded, counted in `Dissector.skipped` by reason and returned as None (never raised): unsupported link
types (`linktype:N`), other ethertypes (`ethertype:0x0806`), 802.2 LLC frames (`llc`, kept apart for BACnet/
Ethernet), IP fragments (`ip_fragment`: no reassembly yet; an IPv6 atomic fragment is decoded), other IP
protocols (`ipproto:47`), truncated headers (`truncated:ipv4`, `truncated:tcp`, ...) and malformed ones
(`bad:ipv4_header`, `bad:tcp_offset`, ...).
"""

from __future__ import annotations

import socket
import struct
from collections import Counter

from appliance.model import ICMP, ICMP6, LLC, LLC_BACNET_SAP, TCP, UDP, ZERO_MAC, Packet, mac_str

__all__ = ["Dissector"]

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
VLAN_TPIDS = frozenset((0x8100, 0x88A8, 0x9100))

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_SLL2 = 276
RAW_LINKTYPES = frozenset((LINKTYPE_RAW, 12, 14))

ARPHRD_ETHER = 1
SLL_PROTO_LLC = 0x0004  # the SLL "protocol" of 802.2 LLC frames

# address families of the null/loop header: IPv4 everywhere, IPv6 on Linux, NetBSD/OpenBSD, FreeBSD, macOS
AF_INET_ALL = frozenset((2,))
AF_INET6_ALL = frozenset((10, 24, 28, 30))

IPV6_SKIPPED_EXT = frozenset((0, 43, 60))  # hop-by-hop, routing, destination options: length in 8-octet units
IPV6_FRAGMENT = 44
IPV6_AH = 51

_H = struct.Struct("!H")
_HH = struct.Struct("!HH")
_IPV4 = struct.Struct("!BxHxxHxBxxII")  # ver/ihl, total length, flags/fragment offset, protocol, src, dst
_ETH_IPV4 = struct.Struct("!6s6sHBxHxxHxBxxII")  # Ethernet header followed by the fixed IPv4 header
_IPV6 = struct.Struct("!HB")  # payload length, next header (at offset 4)
_TCP = struct.Struct("!HHIIBB")  # sport, dport, seq, ack, data offset, flags
_UDP = struct.Struct("!HHH")  # sport, dport, length
_L32 = struct.Struct("<I")
_B32 = struct.Struct(">I")

_CACHE_MAX = 65536  # address text cache entries before it is cleared


class Dissector:
    """Turn `(linktype, ts, frame, wire_len)` into a `Packet`; else count why in `skipped` and return None."""

    def __init__(self) -> None:
        self.skipped: Counter[str] = Counter()
        self._v4: dict[int, str] = {}
        self._v6: dict[bytes, str] = {}

    def dissect(self, linktype: int, ts: float, data: bytes, wire_len: int) -> Packet | None:
        """Parse one frame down to its transport payload; None (and a `skipped` count) if it cannot be."""
        try:
            if linktype == LINKTYPE_ETHERNET:
                if len(data) >= 54:
                    # the common case, Ethernet + IPv4 without options + TCP, in one unpack and no calls
                    dst_mac, src_mac, etype, vihl, total, frag, proto, s, d = _ETH_IPV4.unpack_from(data, 0)
                    if etype == ETH_IPV4 and vihl == 0x45 and total >= 20 and not frag & 0x3FFF:
                        end = 14 + total
                        if end > len(data):
                            end = len(data)
                        cache = self._v4
                        src = cache.get(s)
                        if src is None:
                            src = self._addr4(s)
                        dst = cache.get(d)
                        if dst is None:
                            dst = self._addr4(d)
                        if proto == TCP:
                            sport, dport, seq, ack, doff, flags = _TCP.unpack_from(data, 34)
                            doff = 34 + ((doff >> 4) << 2)
                            if doff >= 54 and doff <= end:
                                return Packet(ts, src_mac, dst_mac, (), src, dst, TCP, sport, dport,
                                              data[doff:end], total, flags, seq, ack, wire_len)
                        return self._transport(
                            data, 34, end, proto, ts, src_mac, dst_mac, (), src, dst, total, wire_len
                        )
                elif len(data) < 14:
                    self.skipped["truncated:ethernet"] += 1
                    return None
                etype = (data[12] << 8) | data[13]
                off = 14
                vlans: tuple[int, ...] = ()
                if etype in VLAN_TPIDS:
                    etype, off, vlans = self._vlans(data, off)
                    if off < 0:
                        return None
                if etype == ETH_IPV4:
                    return self._ipv4(data, off, ts, data[6:12], data[0:6], vlans, wire_len)
                if etype == ETH_IPV6:
                    return self._ipv6(data, off, ts, data[6:12], data[0:6], vlans, wire_len)
                if etype <= 1500:  # an 802.3 length field: 802.2 LLC follows
                    return self._llc(data, off, etype, ts, vlans, wire_len)
                self.skipped[f"ethertype:{etype:#06x}"] += 1
                return None
            return self._other_link(linktype, ts, data, wire_len)
        except Exception as e:  # a safety net: a frame must never stop the pipeline
            self.skipped[f"error:{type(e).__name__}"] += 1
            return None

    def _llc(
        self, data: bytes, off: int, length: int, ts: float, vlans: tuple[int, ...], wire_len: int
    ) -> Packet | None:
        """An 802.2 LLC frame: BACnet/Ethernet (DSAP = SSAP = 0x82, UI) becomes a Packet; others are counted."""
        if data[off : off + 3] != b"\x82\x82\x03":
            if data[off : off + 2] == b"\xaa\xaa":
                self.skipped["llc:snap"] += 1  # e.g. MS/TP or ARCNET tunnelled over SNAP: not decoded
            else:
                self.skipped["llc"] += 1
            return None
        end = min(off + length, len(data))
        if end < off + 3:
            self.skipped["truncated:llc"] += 1
            return None
        src_mac, dst_mac = data[6:12], data[0:6]
        return Packet(ts, src_mac, dst_mac, vlans, mac_str(src_mac), mac_str(dst_mac), LLC, LLC_BACNET_SAP,
                      LLC_BACNET_SAP, data[off + 3 : end], length, 0, 0, 0, wire_len)

    def _vlans(self, data: bytes, off: int) -> tuple[int, int, tuple[int, ...]]:
        """Walk stacked VLAN tags from `off`; returns (inner ethertype, offset, VLAN ids) or offset -1."""
        ids: list[int] = []
        etype = 0x8100
        n = len(data)
        while etype in VLAN_TPIDS:
            if off + 4 > n:
                self.skipped["truncated:vlan"] += 1
                return 0, -1, ()
            tci, etype = _HH.unpack_from(data, off)
            ids.append(tci & 0x0FFF)
            off += 4
        return etype, off, tuple(ids)

    def _other_link(self, linktype: int, ts: float, data: bytes, wire_len: int) -> Packet | None:
        """Every link type but Ethernet: find the network protocol and its offset, then dissect it."""
        src_mac = ZERO_MAC
        n = len(data)
        if linktype == LINKTYPE_SLL:
            if n < 16:
                self.skipped["truncated:sll"] += 1
                return None
            hatype, halen = _HH.unpack_from(data, 2)
            if hatype == ARPHRD_ETHER and halen == 6:
                src_mac = data[6:12]
            etype = _H.unpack_from(data, 14)[0]
            off = 16
        elif linktype == LINKTYPE_SLL2:
            if n < 20:
                self.skipped["truncated:sll2"] += 1
                return None
            etype = _H.unpack_from(data, 0)[0]
            if _H.unpack_from(data, 8)[0] == ARPHRD_ETHER and data[11] == 6:
                src_mac = data[12:18]
            off = 20
        elif linktype in RAW_LINKTYPES or linktype in (LINKTYPE_IPV4, LINKTYPE_IPV6):
            if n < 1:
                self.skipped["truncated:ip"] += 1
                return None
            version = data[0] >> 4
            if linktype == LINKTYPE_IPV4 or (linktype != LINKTYPE_IPV6 and version == 4):
                return self._ipv4(data, 0, ts, ZERO_MAC, ZERO_MAC, (), wire_len)
            if linktype == LINKTYPE_IPV6 or version == 6:
                return self._ipv6(data, 0, ts, ZERO_MAC, ZERO_MAC, (), wire_len)
            self.skipped[f"ip_version:{version}"] += 1
            return None
        elif linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
            if n < 4:
                self.skipped["truncated:null"] += 1
                return None
            if linktype == LINKTYPE_LOOP:
                family = _B32.unpack_from(data, 0)[0]
            else:  # host byte order of the capturing machine: a family number is small, so pick the order
                family = _L32.unpack_from(data, 0)[0]
                if family > 0xFFFF:
                    family = _B32.unpack_from(data, 0)[0]
            if family in AF_INET_ALL:
                return self._ipv4(data, 4, ts, ZERO_MAC, ZERO_MAC, (), wire_len)
            if family in AF_INET6_ALL:
                return self._ipv6(data, 4, ts, ZERO_MAC, ZERO_MAC, (), wire_len)
            self.skipped[f"null_family:{family}"] += 1
            return None
        else:
            self.skipped[f"linktype:{linktype}"] += 1
            return None
        # SLL and SLL2 carry an ethertype (or a small number for non-Ethernet-II payloads)
        vlans: tuple[int, ...] = ()
        if etype in VLAN_TPIDS:
            etype, off, vlans = self._vlans(data, off)
            if off < 0:
                return None
        if etype == ETH_IPV4:
            return self._ipv4(data, off, ts, src_mac, ZERO_MAC, vlans, wire_len)
        if etype == ETH_IPV6:
            return self._ipv6(data, off, ts, src_mac, ZERO_MAC, vlans, wire_len)
        if etype == SLL_PROTO_LLC:
            self.skipped["llc"] += 1
        else:
            self.skipped[f"ethertype:{etype:#06x}"] += 1
        return None

    def _ipv4(
        self,
        data: bytes,
        off: int,
        ts: float,
        src_mac: bytes,
        dst_mac: bytes,
        vlans: tuple[int, ...],
        wire_len: int,
    ) -> Packet | None:
        """IPv4 header at `off`, then the transport header."""
        n = len(data)
        if off + 20 > n:
            self.skipped["truncated:ipv4"] += 1
            return None
        vihl, total, frag, proto, s, d = _IPV4.unpack_from(data, off)
        ihl = (vihl & 0x0F) << 2
        if vihl >> 4 != 4 or ihl < 20:
            self.skipped["bad:ipv4_header"] += 1
            return None
        if frag & 0x3FFF:  # MF set or a non-zero offset
            self.skipped["ip_fragment"] += 1
            return None
        l4 = off + ihl
        if total == 0:  # TCP segmentation offload: the capture saw the super-packet before it was cut
            total = n - off
        elif total < ihl:
            self.skipped["bad:ipv4_length"] += 1
            return None
        end = off + total
        if end > n:
            end = n  # captured shorter than the datagram (snaplen)
        if l4 > end:
            self.skipped["truncated:ipv4"] += 1
            return None
        src = self._v4.get(s)
        if src is None:
            src = self._addr4(s)
        dst = self._v4.get(d)
        if dst is None:
            dst = self._addr4(d)
        return self._transport(data, l4, end, proto, ts, src_mac, dst_mac, vlans, src, dst, total, wire_len)

    def _ipv6(
        self,
        data: bytes,
        off: int,
        ts: float,
        src_mac: bytes,
        dst_mac: bytes,
        vlans: tuple[int, ...],
        wire_len: int,
    ) -> Packet | None:
        """IPv6 header at `off`, its extension headers, then the transport header."""
        n = len(data)
        if off + 40 > n:
            self.skipped["truncated:ipv6"] += 1
            return None
        if data[off] >> 4 != 6:
            self.skipped["bad:ipv6_header"] += 1
            return None
        plen, nxt = _IPV6.unpack_from(data, off + 4)
        if plen == 0:  # jumbogram or offload: take what was captured
            plen = n - off - 40
        total = plen + 40
        end = off + total
        if end > n:
            end = n
        p = off + 40
        while True:
            if nxt in IPV6_SKIPPED_EXT or nxt == IPV6_AH:
                if p + 2 > end:
                    self.skipped["truncated:ipv6_ext"] += 1
                    return None
                nxt_next = data[p]
                p += (data[p + 1] + 2) << 2 if nxt == IPV6_AH else (data[p + 1] + 1) << 3
                nxt = nxt_next
            elif nxt == IPV6_FRAGMENT:
                if p + 8 > end:
                    self.skipped["truncated:ipv6_ext"] += 1
                    return None
                frag = _H.unpack_from(data, p + 2)[0]
                if frag & 0xFFF9:  # offset or M flag: a real fragment (offset 0, M 0 is an atomic fragment)
                    self.skipped["ip_fragment"] += 1
                    return None
                nxt = data[p]
                p += 8
            else:
                break
        if p > end:
            self.skipped["truncated:ipv6_ext"] += 1
            return None
        raw = data[off + 8 : off + 24]
        src = self._v6.get(raw)
        if src is None:
            src = self._addr6(raw)
        raw = data[off + 24 : off + 40]
        dst = self._v6.get(raw)
        if dst is None:
            dst = self._addr6(raw)
        return self._transport(data, p, end, nxt, ts, src_mac, dst_mac, vlans, src, dst, total, wire_len)

    def _transport(
        self,
        data: bytes,
        l4: int,
        end: int,
        proto: int,
        ts: float,
        src_mac: bytes,
        dst_mac: bytes,
        vlans: tuple[int, ...],
        src: str,
        dst: str,
        ip_len: int,
        wire_len: int,
    ) -> Packet | None:
        """TCP, UDP or ICMP header at `l4` (the IP datagram ends at `end`), and the Packet."""
        if proto == TCP:
            if l4 + 20 > end:
                self.skipped["truncated:tcp"] += 1
                return None
            sport, dport, seq, ack, doff, flags = _TCP.unpack_from(data, l4)
            doff = (doff >> 4) << 2
            if doff < 20:
                self.skipped["bad:tcp_offset"] += 1
                return None
            if l4 + doff > end:
                self.skipped["truncated:tcp"] += 1
                return None
            return Packet(ts, src_mac, dst_mac, vlans, src, dst, TCP, sport, dport, data[l4 + doff : end],
                          ip_len, flags, seq, ack, wire_len)
        if proto == UDP:
            if l4 + 8 > end:
                self.skipped["truncated:udp"] += 1
                return None
            sport, dport, ulen = _UDP.unpack_from(data, l4)
            stop = l4 + ulen if ulen >= 8 else end  # a bad length: take the rest of the datagram
            if stop > end:
                stop = end
            return Packet(ts, src_mac, dst_mac, vlans, src, dst, UDP, sport, dport, data[l4 + 8 : stop],
                          ip_len, 0, 0, 0, wire_len)
        if proto in (ICMP, ICMP6):
            if l4 + 4 > end:
                self.skipped["truncated:icmp"] += 1
                return None
            return Packet(ts, src_mac, dst_mac, vlans, src, dst, proto, data[l4], data[l4 + 1],
                          data[l4 + 8 : end], ip_len, 0, 0, 0, wire_len)
        self.skipped[f"ipproto:{proto}"] += 1
        return None

    def _addr4(self, addr: int) -> str:
        """Text of an IPv4 address (given as an integer), cached."""
        cache = self._v4
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        text = cache[addr] = socket.inet_ntoa(addr.to_bytes(4, "big"))
        return text

    def _addr6(self, raw: bytes) -> str:
        """Text of an IPv6 address in compressed form, cached."""
        cache = self._v6
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        text = cache[raw] = socket.inet_ntop(socket.AF_INET6, raw)
        return text
