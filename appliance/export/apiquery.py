"""The JSON API's collections as data: their filter parameters, how each matches a row, and their sort order.

One table serves the request handler (appliance/export/api.py) and the OpenAPI document (openapi.py), so a
parameter cannot be implemented without being documented, or documented without being implemented.
Values of a filter given more than once are alternatives (`severity=high&severity=critical`); different filters
must all match.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from appliance.alert import SEVERITIES
from appliance.model import Asset

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class BadParameter(ValueError):
    """A query parameter that cannot be used; `name` is the parameter."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


def parse_text(value: str) -> str:
    """A non-empty string, as given."""
    if not value:
        raise ValueError("must not be empty")
    return value


def parse_lower(value: str) -> str:
    """A non-empty string, compared without regard to case."""
    return parse_text(value).lower()


def parse_network(value: str) -> IpNetwork:
    """An IP address or a CIDR network (`10.0.0.5`, `10.0.0.0/24`, `fd00::/8`)."""
    try:
        return ipaddress.ip_network(parse_text(value), strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address or network (e.g. 10.0.0.5, 10.0.0.0/24)") from None


def parse_time(value: str) -> float:
    """Seconds since the epoch: a number (`1717394401.5`) or an RFC 3339 time with its offset."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(parse_text(value))
    except ValueError:
        raise ValueError(f"{value!r} is neither seconds since the epoch nor an RFC 3339 time") from None
    if when.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone: add Z or an offset such as +02:00")
    return when.timestamp()


def parse_severity(value: str) -> str:
    """One of the alert severities."""
    if value not in SEVERITIES:
        raise ValueError(f"must be one of {', '.join(SEVERITIES)} (got {value!r})")
    return value


def _in_networks(address: str | None, networks: Sequence[IpNetwork]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


@dataclass(frozen=True)
class Param:
    """One filter parameter: how to read a value, how rows match, and what the document says."""

    name: str
    description: str
    parse: Callable[[str], Any]
    match: Callable[[Any, list[Any]], bool]
    repeatable: bool = True
    schema: tuple[tuple[str, Any], ...] = (("type", "string"),)


@dataclass(frozen=True)
class Collection:
    """A read-only collection: its path, filters, sort order and item schema."""

    name: str
    summary: str
    description: str
    filters: tuple[Param, ...]
    sort_key: Callable[[Any], tuple[Any, ...]]
    key_types: tuple[type, ...]  # the types in a sort key (cursors are checked against them)
    newest_first: bool
    item_schema: str

    @property
    def path(self) -> str:
        """The URL path."""
        return f"/api/v1/{self.name}"


def _vendor_of(asset: Asset) -> list[str]:
    return [a.value.lower() for a in (asset.vendor, asset.mac_vendor) if a is not None]


def _ts(row: dict[str, Any], key: str = "ts") -> float:
    value = row.get(key)
    return float(value) if isinstance(value, int | float) else 0.0


ASSETS = Collection(
    name="assets",
    summary="The asset inventory",
    description="The inventory as the pipeline last published it (about once a second), ordered by asset_id.",
    filters=(
        Param("zone", "Zone name (exact).", parse_text, lambda a, v: a.zone in v),
        Param("category", "Category, e.g. `PLC`, `IT host` (any case).", parse_lower,
              lambda a, v: a.category.lower() in v),
        Param("protocol", "A protocol the asset spoke, e.g. `modbus` (any case).", parse_lower,
              lambda a, v: any(p in v for p in a.protocols)),
        Param("vendor", "Part of the vendor's name, from the protocols or the MAC's OUI (any case).", parse_lower,
              lambda a, v: any(part in name for name in _vendor_of(a) for part in v)),
        Param("ip", "The asset's IP address, or a CIDR network that holds it.", parse_network,
              lambda a, v: _in_networks(a.ip, v), schema=(("type", "string"), ("examples", ["10.0.0.0/24"]))),
    ),
    sort_key=lambda a: (a.asset_id,),
    key_types=(str,),
    newest_first=False,
    item_schema="Asset",
)

ALERTS = Collection(
    name="alerts",
    summary="Recent alerts",
    description="The most recent alerts (alerts.jsonl rows) kept in memory since the sensor started (the last "
    "10,000 by default), newest first by packet time.",
    filters=(
        Param("since", "Packet time at or after this (seconds since the epoch, or RFC 3339).", parse_time,
              lambda r, v: _ts(r) >= v[0], repeatable=False),
        Param("until", "Packet time before this (seconds since the epoch, or RFC 3339).", parse_time,
              lambda r, v: _ts(r) < v[0], repeatable=False),
        Param("severity", "Severity.", parse_severity, lambda r, v: r.get("severity") in v,
              schema=(("type", "string"), ("enum", list(SEVERITIES)))),
        Param("detector", "Detector name (exact), e.g. `scan`.", parse_text, lambda r, v: r.get("detector") in v),
        Param("note", "Alert note (exact), e.g. `rdp_scan`.", parse_text, lambda r, v: r.get("note") in v),
        Param("technique", "An ATT&CK technique id among the alert's, e.g. `T0846` (any case).",
              lambda s: parse_text(s).upper(), lambda r, v: any(t in v for t in r.get("techniques", ()))),
        Param("src", "The actor's IP address, or a CIDR network that holds it.", parse_network,
              lambda r, v: _in_networks(r.get("src"), v)),
    ),
    sort_key=lambda r: (_ts(r), str(r.get("detector", "")), str(r.get("note", "")), str(r.get("key", "")),
                        str(r.get("src", ""))),
    key_types=(float, str, str, str, str),
    newest_first=True,
    item_schema="Alert",
)

INCIDENTS = Collection(
    name="incidents",
    summary="Incidents",
    description="Correlated incidents, most recently active first. Answers 503 while the sensor has no incident "
    "store wired in.",
    filters=(
        Param("state", "Incident state (exact), e.g. `open`.", parse_text, lambda r, v: r.get("state") in v),
        Param("severity", "Severity.", parse_severity, lambda r, v: r.get("severity") in v,
              schema=(("type", "string"), ("enum", list(SEVERITIES)))),
        Param("phase", "A kill-chain phase the incident reached (exact).", parse_text,
              lambda r, v: any(p in v for p in r.get("phases", ())) or r.get("phase") in v),
    ),
    sort_key=lambda r: (_ts(r, "last_ts"), str(r.get("incident_id", r.get("id", "")))),
    key_types=(float, str),
    newest_first=True,
    item_schema="Incident",
)

COLLECTIONS = (ASSETS, ALERTS, INCIDENTS)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
PAGING = (
    Param("limit", f"Items per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}).", int, lambda r, v: True,
          repeatable=False, schema=(("type", "integer"), ("minimum", 1), ("maximum", MAX_LIMIT),
                                    ("default", DEFAULT_LIMIT))),
    Param("cursor", "Where the previous page ended (from its `next` link); stable while data changes.", str,
          lambda r, v: True, repeatable=False),
    Param("offset", "Items to skip instead of a cursor (positions move as data changes).", int,
          lambda r, v: True, repeatable=False, schema=(("type", "integer"), ("minimum", 0))),
)  # fmt: skip
