"""What the incident engine knows about an address: zone, domain, Purdue level, category and host names.

`AssetLookup` is the view the engine asks (pipeline thread); `InventoryLookup` answers from the live
`AssetInventory` (zones and names at once, categories from its snapshot, refreshed at most once a minute of packet
time or when an address is missing); `StaticLookup` answers from fixed facts (tests, offline tools).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from appliance.model import Asset

# criticality points by category (the risk score's asset_criticality factor): controllers first, then the
# workstations that command them, then infrastructure of the OT/IoT side, then IT hosts
CRITICALITY: dict[str, int] = {
    "PLC": 20,
    "BMS controller": 20,
    "HMI/SCADA": 14,
    "engineering workstation": 14,
    "BMS workstation": 12,
    "BACnet router": 10,
    "BBMD": 10,
    "IoT gateway": 8,
    "MQTT broker": 8,
    "IP camera": 6,
    "sensor": 6,
    "IT host": 4,
}
# an address whose category is unknown: by the domain of its zone
DOMAIN_CRITICALITY: dict[str, int] = {"OT": 15, "BMS": 15, "IoT": 6, "DMZ": 4, "IT": 3, "VPN": 3}
UNKNOWN_CRITICALITY = 2
IT_DOMAINS = frozenset({"IT", "VPN", "DMZ"})
OT_DOMAINS = frozenset({"OT", "BMS"})


@dataclass(frozen=True, slots=True)
class AssetFacts:
    """An address as the incident engine sees it (every field but `ip` may be unknown)."""

    ip: str
    zone: str | None = None
    domain: str | None = None
    purdue_level: float | None = None
    category: str | None = None
    hostnames: tuple[str, ...] = ()

    def criticality(self) -> tuple[int, str]:
        """(points, why) of how critical the asset is, from its category, else its zone's domain."""
        if self.category and self.category in CRITICALITY:
            return CRITICALITY[self.category], self.category
        if self.domain in DOMAIN_CRITICALITY:
            return DOMAIN_CRITICALITY[self.domain or ""], f"unknown device in a {self.domain} zone"
        return UNKNOWN_CRITICALITY, "unknown device"

    def describe(self) -> str:
        """Short words for the asset: `PLC 10.50.1.10 (cooling, OT)`."""
        what = self.category if self.category and self.category != "unknown" else "host"
        where = ", ".join(x for x in (self.zone, self.domain) if x)
        return f"{what} {self.ip}" + (f" ({where})" if where else "")

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"ip": self.ip, "zone": self.zone, "domain": self.domain, "purdue_level": self.purdue_level,
                "category": self.category, "hostnames": list(self.hostnames)}  # fmt: skip

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> AssetFacts:
        """Back from `to_dict`."""
        level = row.get("purdue_level")
        return cls(str(row["ip"]), row.get("zone"), row.get("domain"),
                   float(level) if isinstance(level, int | float) else None, row.get("category"),
                   tuple(str(h) for h in row.get("hostnames") or ()))  # fmt: skip


class AssetLookup(Protocol):
    """Facts about an address at packet time `ts` (pipeline thread)."""

    def facts(self, ip: str, ts: float) -> AssetFacts:
        """What is known of `ip` now."""
        ...


class StaticLookup:
    """Fixed facts per address; unknown addresses get empty facts."""

    def __init__(self, facts: Iterable[AssetFacts] = ()) -> None:
        self._facts = {f.ip: f for f in facts}

    def facts(self, ip: str, ts: float) -> AssetFacts:
        """The stored facts of `ip`, else empty ones."""
        return self._facts.get(ip) or AssetFacts(ip)


class _Inventory(Protocol):
    def zone_of(self, ip: str) -> Any: ...
    def hostnames_of(self, ip: str) -> list[str]: ...
    def snapshot(self) -> tuple[Asset, ...]: ...


class InventoryLookup:
    """Facts from the live inventory: zone and names at once, categories from a snapshot kept up to a minute."""

    REFRESH = 60.0  # seconds of packet time between category refreshes

    def __init__(self, inventory: _Inventory) -> None:
        self.inventory = inventory
        self._categories: dict[str, str] = {}
        self._refreshed: float | None = None

    def _category(self, ip: str, ts: float) -> str | None:
        since = abs(ts - self._refreshed) if self._refreshed is not None else self.REFRESH
        if since >= self.REFRESH or (ip not in self._categories and since >= 1.0):  # a new address: once a second
            self._categories = {a.ip: a.category for a in self.inventory.snapshot() if a.ip}
            self._refreshed = ts
        return self._categories.get(ip)

    def facts(self, ip: str, ts: float) -> AssetFacts:
        """Zone, domain, Purdue level, category and names of `ip` as the inventory knows them now."""
        zone = self.inventory.zone_of(ip)
        return AssetFacts(
            ip,
            getattr(zone, "name", None),
            getattr(zone, "domain", None),
            getattr(zone, "purdue_level", None),
            self._category(ip, ts),
            tuple(self.inventory.hostnames_of(ip)[:8]),
        )
