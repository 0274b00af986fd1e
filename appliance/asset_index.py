"""AssetIndex: the asset records keyed by identity, the base of `AssetInventory`.

Keys: (MAC, IP) for hosts; IP alone (MAC None) when the MAC is unknown or belongs to a gateway (a MAC seen
sending from more than `router_mac_threshold` IPs, kept as `via_mac`); (MAC, "") for a station seen only by
its MAC (BACnet/Ethernet); (network number, MAC) for a routed BACnet device, which has no IP, a stable id, and
its router's IP, MAC, asset id and zone. Broadcast, multicast and unspecified addresses never become assets.
"""

from __future__ import annotations

import hashlib
import ipaddress

import netaddr

from appliance.asset_rules import MAX_ROLE_PEERS, MAX_UNITS, OUI, AssetRecord, clean_text, normalize_mac
from appliance.model import Attribute, routed_address
from appliance.zones import ZoneMap

_IP_CACHE_MAX = 1 << 16


def looks_like_mac(addr: str) -> bool:
    """True for `aa:bb:cc:dd:ee:ff` text (the address of a BACnet/Ethernet sender), never for an IP."""
    return len(addr) == 17 and addr[2] == ":" and addr[14] == ":" and "::" not in addr


class AssetIndex:
    """Asset records by identity: lookups and creation for every kind of key (pipeline thread only)."""

    def __init__(
        self,
        zones: ZoneMap | None = None,
        *,
        router_mac_threshold: int = 8,
    ) -> None:
        self.zones = zones if zones is not None else ZoneMap()
        self.router_mac_threshold = router_mac_threshold
        self._recs: dict[tuple[str | None, str], AssetRecord] = {}  # (MAC, IP); (MAC, "") for MAC-only stations
        self._routed: dict[tuple[int, str], AssetRecord] = {}  # routed BACnet devices by (network, MAC)
        self._by_ip: dict[str, AssetRecord] = {}
        self._mac_ips: dict[str, set[str]] = {}
        self.gateways: set[str] = set()
        self._ip_ok: dict[str, bool] = {}
        self._oui: dict[str, str | None] = {}
        self.new_assets = 0  # assets first seen since start (loaded ones excluded)
        self.removed_ids: list[str] = []  # ids merged away since start; the store may delete them

    def _unicast(self, ip: str) -> bool:
        ok = self._ip_ok.get(ip)
        if ok is None:
            try:
                addr = ipaddress.ip_address(ip)
                ok = not (addr.is_multicast or addr.is_unspecified or ip == "255.255.255.255")
                ok = ok and not self.zones.is_directed_broadcast(ip)
            except ValueError:
                ok = False
            if len(self._ip_ok) >= _IP_CACHE_MAX:
                self._ip_ok.clear()
            self._ip_ok[ip] = ok
        return ok

    def _create(self, mac: str | None, ip: str, ts: float) -> AssetRecord:
        if mac is not None and ip and self._adoptable(mac):  # the station seen by MAC alone gets its IP
            rec = self._recs.pop((mac, ""))
            rec.ip, rec.cached = ip, None
            self._set_zone(rec)
            self._recs[(mac, ip)] = self._by_ip[ip] = rec
            return rec
        digest = hashlib.blake2b(f"{mac or ''}|{ip}|{ts!r}".encode(), digest_size=6).hexdigest()
        rec = AssetRecord(digest, ip, mac, ts, ts)
        if ip:
            self._set_zone(rec)
            self._by_ip[ip] = rec
        if mac is not None:
            self._set_mac_vendor(rec, mac)
        self._recs[(mac, ip)] = rec
        self.new_assets += 1
        return rec

    def _set_zone(self, rec: AssetRecord) -> None:
        zone = self.zones.lookup(rec.ip)
        if zone is not None:
            rec.zone, rec.domain, rec.purdue_level = zone.name, zone.domain, zone.purdue_level

    def _adoptable(self, mac: str) -> bool:
        """True when a station seen only by `mac` (BACnet/Ethernet) exists and `mac` sends from exactly one IP:
        then both are one box (one NIC speaking BACnet/Ethernet and IP)."""
        return (mac, "") in self._recs and len(self._mac_ips.get(mac, ())) == 1 and mac not in self.gateways

    def _set_mac_vendor(self, rec: AssetRecord, mac: str) -> None:
        if int(mac[:2], 16) & 2:  # locally administered: no registered vendor
            return
        prefix = mac[:8]
        if prefix not in self._oui:
            try:
                org: str | None = clean_text(netaddr.EUI(mac).oui.registration().org).rstrip(" ,") or None
            except (netaddr.NotRegisteredError, netaddr.AddrFormatError, ValueError, IndexError, KeyError):
                org = None
            self._oui[prefix] = org
        org = self._oui[prefix]
        if org is not None:
            rec.attrs["mac_vendor"] = Attribute(org, OUI, 0.5)

    def _rekey(self, rec: AssetRecord, mac: str | None) -> AssetRecord:
        """Move `rec` to key (mac, ip); merge into an existing record there. Returns the surviving record."""
        self._recs.pop((rec.mac, rec.ip), None)
        if mac is None:
            rec.attrs.pop("mac_vendor", None)
        rec.mac = mac
        rec.cached = None
        other = self._recs.get((mac, rec.ip))
        if other is not None and other is not rec:
            keep, gone = (other, rec) if other.first_seen <= rec.first_seen else (rec, other)
            keep.absorb(gone)
            self.removed_ids.append(gone.asset_id)
            rec = keep
        if mac is not None and self._adoptable(mac):
            orphan = self._recs.pop((mac, ""))
            rec.absorb(orphan)
            self.removed_ids.append(orphan.asset_id)
        self._recs[(mac, rec.ip)] = rec
        self._by_ip[rec.ip] = rec
        if mac is not None:
            self._set_mac_vendor(rec, mac)
        return rec

    def _become_gateway(self, mac: str) -> None:
        self.gateways.add(mac)
        self._mac_ips.pop(mac, None)
        for rec in [r for r in self._recs.values() if r.mac == mac and r.ip]:
            rec.via_mac = mac
            self._rekey(rec, None)

    def _sender(self, ip: str, mac: str | None, ts: float) -> AssetRecord | None:
        """The record of `ip`, which sent something (from MAC `mac` if known); None if not an asset."""
        if not self._unicast(ip):
            return None
        if mac is not None and mac not in self.gateways:
            rec = self._recs.get((mac, ip))
            if rec is not None:
                self._by_ip[ip] = rec
                return rec
            ips = self._mac_ips.setdefault(mac, set())
            ips.add(ip)
            if len(ips) > self.router_mac_threshold:
                self._become_gateway(mac)
            else:
                old = self._recs.get((None, ip))
                if old is not None:
                    return self._rekey(old, mac)
                return self._create(mac, ip, ts)
        rec = self._by_ip.get(ip)
        if rec is None:
            rec = self._create(None, ip, ts)
        if mac is not None and rec.mac is None and rec.via_mac != mac:
            rec.via_mac = mac
            rec.cached = None
        return rec

    def _mac_node(self, text: str, ts: float) -> AssetRecord | None:
        """The record of a station known only by its MAC (BACnet/Ethernet); None for broadcast or malformed."""
        mac = normalize_mac(text)
        if mac is None:
            return None
        rec = self._recs.get((mac, ""))
        if rec is not None:
            return rec
        ips = self._mac_ips.get(mac)
        if ips is not None and len(ips) == 1 and mac not in self.gateways:  # the one IP host with this MAC
            rec = self._recs.get((mac, next(iter(ips))))
            if rec is not None:
                return rec
        return self._create(mac, "", ts)

    def _node(self, addr: str, ts: float) -> AssetRecord | None:
        """The record of an event's sender, an IP or (BACnet/Ethernet) a MAC; None if not an asset."""
        rec = self._by_ip.get(addr)
        if rec is not None:
            return rec
        if looks_like_mac(addr):
            return self._mac_node(addr, ts)
        return self._sender(addr, None, ts)

    def _find(self, addr: str) -> AssetRecord | None:
        """The existing record of an IP or MAC address, without creating one."""
        rec = self._by_ip.get(addr)
        if rec is None and looks_like_mac(addr):
            mac = normalize_mac(addr)
            if mac is not None:
                rec = self._recs.get((mac, ""))
                ips = self._mac_ips.get(mac)
                if rec is None and ips is not None and len(ips) == 1 and mac not in self.gateways:
                    rec = self._recs.get((mac, next(iter(ips))))
        return rec

    def _peer_ok(self, addr: str) -> bool:
        """True for an address that names one station (unicast IP or unicast MAC)."""
        if looks_like_mac(addr):
            return normalize_mac(addr) is not None
        return self._unicast(addr)

    def _routed_device(self, network: int, mac: str, router: AssetRecord, ts: float) -> AssetRecord:
        """The routed BACnet device (network, MAC) reached through `router`, which gets the router role."""
        rec = self._routed.get((network, mac))
        if rec is None:
            digest = hashlib.blake2b(f"bacnet|{network}|{mac}".encode(), digest_size=6).hexdigest()
            rec = AssetRecord(digest, "", None, ts, ts, bacnet_network=network, bacnet_mac=mac)
            self._routed[(network, mac)] = rec
            self.new_assets += 1
        self._attach(rec, router)
        units, peers = router.role("bacnet", "router")
        if network not in units and len(units) < MAX_UNITS:
            units.add(network)
            router.cached = None
        address = routed_address(network, mac)
        if address not in peers and len(peers) < MAX_ROLE_PEERS:
            peers.add(address)
            router.cached = None
        return rec

    @staticmethod
    def _attach(rec: AssetRecord, router: AssetRecord) -> None:
        """Point a routed device at its router: the router's IP, MAC, asset id and zone."""
        via = (router.ip or None, router.mac, router.asset_id, router.zone, router.domain, router.purdue_level)
        if via != (rec.via_ip, rec.via_mac, rec.via_asset, rec.zone, rec.domain, rec.purdue_level):
            rec.via_ip, rec.via_mac, rec.via_asset, rec.zone, rec.domain, rec.purdue_level = via
            rec.cached = None

    def _router_of(self, rec: AssetRecord) -> AssetRecord | None:
        """The current record of a routed device's router (by IP, else by MAC for BACnet/Ethernet)."""
        if rec.via_ip:
            return self._by_ip.get(rec.via_ip)
        return self._find(rec.via_mac) if rec.via_mac else None
