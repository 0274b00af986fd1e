"""The inventory's names and its read-only views for detectors: host names learnt from NTLM, DHCP and DNS, and what
an address is known as (asset or not, names, protocols, MAC, gateway MACs).

`HostnameInventory` sits between the MQTT layer and `AssetInventory`; detectors read these views through
`appliance.detectors.base.InventoryView` before the inventory learns from the same event.
"""

from __future__ import annotations

from appliance.asset_record import normalize_mac
from appliance.hostnames import CLIENT_SOURCES, hostname_facts
from appliance.model import ProtocolEvent
from appliance.mqtt_assets import MqttInventory
from appliance.zones import Zone


class HostnameInventory(MqttInventory):
    """Host names per asset, and the views detectors read (pipeline thread only)."""

    def hostnames_of(self, ip: str) -> list[str]:
        """The names an address went by so far (as first written), oldest first; [] for an unknown address."""
        rec = self._by_ip.get(ip)
        if rec is None:
            return []
        return [entry[0] for entry in sorted(rec.hostnames.values(), key=lambda e: e[2])]

    def knows(self, ip: str) -> bool:
        """True when the address is an asset already."""
        return ip in self._by_ip

    def asset_count(self) -> int:
        """How many assets there are."""
        return len(self._recs) + len(self._routed)

    def could_be_asset(self, ip: str) -> bool:
        """True when the address would become an asset if it sent (unicast, specified)."""
        return self._unicast(ip)

    def protocols_of(self, ip: str) -> frozenset[str]:
        """The protocols an address was seen speaking (empty for an unknown address)."""
        rec = self._by_ip.get(ip)
        return frozenset(rec.protocols) if rec is not None else frozenset()

    def zone_of(self, ip: str) -> Zone | None:
        """The configured zone of an address (None when no zone holds it)."""
        return self.zones.lookup(ip)

    def mac_of(self, ip: str) -> str | None:
        """The MAC an address is known by (None when unknown or behind a gateway)."""
        rec = self._by_ip.get(ip)
        return rec.mac if rec is not None else None

    def is_gateway_mac(self, mac: str) -> bool:
        """True when the MAC is a gateway's (it sent from many addresses)."""
        return (normalize_mac(mac) or "") in self.gateways

    def learn_hostnames(self, ev: ProtocolEvent) -> list[tuple[str, str, str, bool]]:
        """Learn the names an event gives addresses; returns (ip, name, source, new to that asset) for each fact.
        NTLM and DHCP clients may become assets here (they sent the message); a DNS answer only names known ones."""
        out = []
        for ip, name, source in hostname_facts(ev):
            rec = self._by_ip.get(ip)
            if rec is None and source in CLIENT_SOURCES:
                rec = self._sender(ip, None, ev.ts)
            if rec is not None:
                out.append((ip, name, source, rec.learn_hostname(name, source, ev.ts)))
        return out
