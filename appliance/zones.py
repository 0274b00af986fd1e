"""Network zones: which CIDRs form a zone, its security domain and Purdue level; longest-prefix lookup by IP.

`ZoneMap.lookup` is called once per new address (the inventory caches the answer on the asset) and keeps its
own bounded cache per IP string, so repeated lookups cost one dict access.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

DOMAINS = ("IT", "VPN", "DMZ", "OT", "BMS", "IoT")

_CACHE_MAX = 1 << 16

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Zone:
    """A named set of networks with a security domain (IT, VPN, DMZ, OT, BMS, IoT) and a Purdue level."""

    name: str
    cidrs: tuple[str, ...]
    domain: str
    purdue_level: float | None = None

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ValueError(f"zone {self.name!r}: domain {self.domain!r} is not one of {', '.join(DOMAINS)}")
        if isinstance(self.cidrs, str):
            raise ValueError(f"zone {self.name!r}: cidrs must be a sequence of networks, not one string")
        for cidr in self.cidrs:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(f"zone {self.name!r}: {cidr!r} is not an IP network ({exc})") from None

    def networks(self) -> tuple[_IPNetwork, ...]:
        """The zone's CIDRs parsed (host bits cleared)."""
        return tuple(ipaddress.ip_network(c, strict=False) for c in self.cidrs)


def _parse_ip(ip: str) -> _IPAddress | None:
    """Parse an address, unwrapping IPv4-mapped IPv6 and dropping an IPv6 scope; None when it is not an IP."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


class ZoneMap:
    """Longest-prefix-match of IPv4 and IPv6 addresses to zones, cached per address string."""

    def __init__(self, zones: Iterable[Zone] = ()) -> None:
        self.zones: tuple[Zone, ...] = tuple(zones)
        # per family: prefix length -> {network as int: (zone, network)}; prefix lengths longest first
        self._tables: dict[int, dict[int, dict[int, tuple[Zone, _IPNetwork]]]] = {4: {}, 6: {}}
        seen_names: set[str] = set()
        for zone in self.zones:
            if zone.name in seen_names:
                raise ValueError(f"zone {zone.name!r} is defined twice")
            seen_names.add(zone.name)
            for net in zone.networks():
                table = self._tables[net.version].setdefault(net.prefixlen, {})
                key = int(net.network_address)
                other = table.get(key)
                if other is not None and other[0] is not zone:
                    raise ValueError(f"network {net} is in zone {other[0].name!r} and zone {zone.name!r}")
                table[key] = (zone, net)
        self._lengths = {v: sorted(t, reverse=True) for v, t in self._tables.items()}
        self._cache: dict[str, tuple[Zone, _IPNetwork] | None] = {}

    def _match(self, ip: str) -> tuple[Zone, _IPNetwork] | None:
        cache = self._cache
        try:
            return cache[ip]
        except KeyError:
            pass
        found: tuple[Zone, _IPNetwork] | None = None
        addr = _parse_ip(ip)
        if addr is not None:
            value = int(addr)
            bits = addr.max_prefixlen
            table = self._tables[addr.version]
            for length in self._lengths[addr.version]:
                mask = ((1 << length) - 1) << (bits - length) if length else 0
                found = table[length].get(value & mask)
                if found is not None:
                    break
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[ip] = found
        return found

    def lookup(self, ip: str) -> Zone | None:
        """The zone whose most specific network contains `ip`; None if none does or `ip` is not an IP."""
        found = self._match(ip)
        return found[0] if found is not None else None

    def is_directed_broadcast(self, ip: str) -> bool:
        """True when `ip` is the broadcast address of the IPv4 zone network that contains it (prefix < 31)."""
        found = self._match(ip)
        if found is None:
            return False
        net = found[1]
        if net.version != 4 or net.prefixlen >= 31:
            return False
        addr = _parse_ip(ip)
        return addr == net.broadcast_address

    def zone(self, name: str) -> Zone | None:
        """The zone with this name, if configured."""
        for zone in self.zones:
            if zone.name == name:
                return zone
        return None
