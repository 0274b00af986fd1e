"""Zones: longest-prefix lookup over IPv4 and IPv6, validation, directed broadcasts."""

from __future__ import annotations

import pytest

from appliance.zones import Zone, ZoneMap


def _name(zm: ZoneMap, ip: str) -> str | None:
    zone = zm.lookup(ip)
    return zone.name if zone is not None else None


def _map() -> ZoneMap:
    return ZoneMap(
        [
            Zone("corp", ("10.0.0.0/8",), "IT", 4),
            Zone("plant", ("10.1.0.0/16", "fd00:1::/32"), "OT", 2),
            Zone("cell-1", ("10.1.2.0/24",), "OT", 1),
            Zone("bms", ("192.168.50.0/24", "fd00:1:50::/48"), "BMS", 1.5),
            Zone("dmz", ("172.16.0.0/12",), "DMZ", 3.5),
        ]
    )


def test_longest_prefix_wins_ipv4() -> None:
    zm = _map()
    assert _name(zm, "10.9.9.9") == "corp"
    assert _name(zm, "10.1.9.9") == "plant"
    assert _name(zm, "10.1.2.3") == "cell-1"
    dmz = zm.lookup("172.20.0.1")
    assert dmz is not None and dmz.purdue_level == 3.5 and dmz.domain == "DMZ"
    assert zm.lookup("11.0.0.1") is None


def test_longest_prefix_wins_ipv6_and_mapped_ipv4() -> None:
    zm = _map()
    assert _name(zm, "fd00:1::5") == "plant"
    assert _name(zm, "fd00:1:50::7") == "bms"
    assert zm.lookup("fd00:2::1") is None
    assert _name(zm, "::ffff:10.1.2.3") == "cell-1"


def test_not_an_address_gives_none() -> None:
    zm = _map()
    assert zm.lookup("") is None
    assert zm.lookup("10.1.2") is None
    assert zm.lookup("not-an-ip") is None


def test_lookup_is_cached_per_address() -> None:
    zm = _map()
    first = zm.lookup("10.1.2.3")
    assert zm.lookup("10.1.2.3") is first
    assert "10.1.2.3" in zm._cache


def test_empty_map_matches_nothing() -> None:
    assert ZoneMap().lookup("10.0.0.1") is None
    assert ZoneMap().lookup("::1") is None


def test_default_route_zone_matches_everything_of_its_family() -> None:
    zm = ZoneMap([Zone("any4", ("0.0.0.0/0",), "IT"), Zone("lab", ("10.0.0.0/24",), "OT", 1)])
    assert _name(zm, "8.8.8.8") == "any4"
    assert _name(zm, "10.0.0.9") == "lab"
    assert zm.lookup("2001:db8::1") is None


def test_zone_validation() -> None:
    with pytest.raises(ValueError, match="domain"):
        Zone("x", ("10.0.0.0/8",), "SCADA")
    with pytest.raises(ValueError, match="not an IP network"):
        Zone("x", ("10.0.0.0/33",), "OT")
    with pytest.raises(ValueError, match="sequence"):
        Zone("x", "10.0.0.0/8", "OT")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="zone 'a' and zone 'b'"):
        ZoneMap([Zone("a", ("10.0.0.0/8",), "IT"), Zone("b", ("10.0.0.0/8",), "OT")])
    with pytest.raises(ValueError, match="defined twice"):
        ZoneMap([Zone("a", ("10.0.0.0/8",), "IT"), Zone("a", ("11.0.0.0/8",), "IT")])


def test_host_bits_are_cleared() -> None:
    zm = ZoneMap([Zone("a", ("10.1.2.3/24",), "OT")])
    assert _name(zm, "10.1.2.200") == "a"


def test_directed_broadcast() -> None:
    zm = ZoneMap([Zone("cell", ("10.1.2.0/24",), "OT"), Zone("p2p", ("10.9.0.0/31",), "OT")])
    assert zm.is_directed_broadcast("10.1.2.255")
    assert not zm.is_directed_broadcast("10.1.2.254")
    assert not zm.is_directed_broadcast("10.9.0.1")  # a /31 has no broadcast address
    assert not zm.is_directed_broadcast("192.168.0.255")  # outside every zone: unknown, so not assumed


def test_zone_by_name() -> None:
    zm = _map()
    bms = zm.zone("bms")
    assert bms is not None and bms.domain == "BMS"
    assert zm.zone("nope") is None
