"""AssetInventory: conn records and protocol events in, assets out.

Identity: an asset is keyed by (MAC, IP). A flow without a usable MAC (zero MAC from loopback or raw-IP
link types) and every protocol event (events carry no MACs) key by IP alone; when a conn record later brings
the MAC, the IP-only asset is re-keyed and keeps its id. A MAC seen sending from more than
`router_mac_threshold` IPs is a gateway: its addresses are keyed by IP alone and the MAC is kept as `via_mac`.
Only senders become assets (an address that never answered is a peer, not an asset); broadcast, multicast and
unspecified addresses never do. Categories come from the rule table in `appliance.asset_rules`.

Threading: `on_flow`, `on_event`, `load` and `snapshot` belong to the pipeline thread (or whoever holds the
pipeline's lock); `snapshot()` returns immutable `Asset` copies that any thread may read.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Iterable

import netaddr

from appliance.asset_rules import (
    MAX_PEERS,
    MAX_ROLE_PEERS,
    MAX_UNITS,
    OT_PORTS,
    OT_PROTOCOLS,
    OUI,
    AssetRecord,
    add_bounded,
    apply_fc43,
    clean_text,
    default_op_class,
    freeze,
    normalize_mac,
    thaw,
)
from appliance.model import EXCEPTION, REQUEST, RESPONSE, WEIRD, Asset, Attribute, Flow, ProtocolEvent
from appliance.zones import ZoneMap

_IP_CACHE_MAX = 1 << 16


class AssetInventory:
    """Who is who on the network, built from conn records and protocol events (pipeline thread only)."""

    def __init__(
        self,
        zones: ZoneMap | None = None,
        *,
        router_mac_threshold: int = 8,
        op_class: Callable[[str, str], str] = default_op_class,
    ) -> None:
        self.zones = zones if zones is not None else ZoneMap()
        self.router_mac_threshold = router_mac_threshold
        self._op_class = op_class
        self._op_classes: dict[tuple[str, str], str] = {}
        self._recs: dict[tuple[str | None, str], AssetRecord] = {}
        self._by_ip: dict[str, AssetRecord] = {}
        self._mac_ips: dict[str, set[str]] = {}
        self.gateways: set[str] = set()
        self._ip_ok: dict[str, bool] = {}
        self._oui: dict[str, str | None] = {}
        self.new_assets = 0  # assets first seen since start (loaded ones excluded)
        self.removed_ids: list[str] = []  # ids merged away since start; the store may delete them

    # ---- identity ----

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
        digest = hashlib.blake2b(f"{mac or ''}|{ip}|{ts!r}".encode(), digest_size=6).hexdigest()
        rec = AssetRecord(digest, ip, mac, ts, ts)
        zone = self.zones.lookup(ip)
        if zone is not None:
            rec.zone, rec.domain, rec.purdue_level = zone.name, zone.domain, zone.purdue_level
        if mac is not None:
            self._set_mac_vendor(rec, mac)
        self._recs[(mac, ip)] = rec
        self._by_ip[ip] = rec
        self.new_assets += 1
        return rec

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
        self._recs[(mac, rec.ip)] = rec
        self._by_ip[rec.ip] = rec
        if mac is not None:
            self._set_mac_vendor(rec, mac)
        return rec

    def _become_gateway(self, mac: str) -> None:
        self.gateways.add(mac)
        self._mac_ips.pop(mac, None)
        for rec in [r for r in self._recs.values() if r.mac == mac]:
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

    # ---- input ----

    def on_flow(self, flow: Flow) -> None:
        """Learn from a finished conn record: who sent, MACs, services, peers, first/last seen."""
        fid = flow.id
        services = [s for s in flow.service.split(",") if s] if flow.service else []
        ot = bool(OT_PROTOCOLS.intersection(services)) or fid.resp_p in OT_PORTS or (
            fid.proto == "udp" and fid.orig_p in OT_PORTS
        )
        end = flow.ts + flow.duration
        sides = [(fid.orig_h, flow.orig_mac, fid.resp_h, "client")]
        if flow.resp_pkts > 0 or flow.resp_bytes > 0:
            sides.append((fid.resp_h, flow.resp_mac, fid.orig_h, "server"))
        for ip, mac, peer, role in sides:
            rec = self._sender(ip, normalize_mac(mac), flow.ts)
            if rec is None:
                continue
            rec.first_seen = min(rec.first_seen, flow.ts)
            rec.last_seen = max(rec.last_seen, end)
            rec.flows += 1
            rec.ot_traffic |= ot
            rec.protocols.update(services)
            if len(sides) == 2:  # the responder answered: client and server roles
                for service in services:
                    add_bounded(rec.role(service, role)[1], (peer,), MAX_ROLE_PEERS)
            if len(rec.peers) < MAX_PEERS and self._unicast(peer):
                rec.peers.add(peer)
            rec.cached = None

    def op_class(self, protocol: str, op: str) -> str:
        """The (cached) operation class of a protocol operation."""
        key = (protocol, op)
        klass = self._op_classes.get(key)
        if klass is None:
            klass = self._op_classes[key] = self._op_class(protocol, op)
        return klass

    def on_event(self, ev: ProtocolEvent) -> None:
        """Learn from one protocol event: the sender's roles, unit ids, peers, activity and FC43 identity."""
        src = ev.src
        if not src:
            return
        rec = self._by_ip.get(src)
        if rec is None:
            rec = self._sender(src, None, ev.ts)
            if rec is None:
                return
        ts = ev.ts
        if ts > rec.last_seen:
            rec.last_seen = ts
        elif ts < rec.first_seen:
            rec.first_seen = ts
        rec.cached = None
        protocol = ev.protocol
        kind = ev.kind
        key = (protocol, self.op_class(protocol, ev.op))
        rec.sent[key] += 1
        dst = ev.dst
        target = self._by_ip.get(dst) if dst else None
        if target is not None:
            target.received[key] += 1
            target.cached = None
        if kind == WEIRD:
            return
        if protocol in OT_PROTOCOLS:
            rec.ot_traffic = True
        rec.protocols.add(protocol)
        dst_ok = bool(dst) and dst != src and self._unicast(dst)
        if dst_ok and len(rec.peers) < MAX_PEERS:
            rec.peers.add(dst)
        if kind == REQUEST:
            role = "client"
        elif kind in (RESPONSE, EXCEPTION):
            role = "server"
        else:
            return
        units, peers = rec.role(protocol, role)
        unit = ev.fields.get("unit")
        if type(unit) is int and len(units) < MAX_UNITS:
            units.add(unit)
        if dst_ok and len(peers) < MAX_ROLE_PEERS:
            peers.add(dst)
        if kind == RESPONSE and ev.op == "read_device_identification":
            apply_fc43(rec, ev.fields.get("objects"))

    # ---- output and resume ----

    def snapshot(self) -> tuple[Asset, ...]:
        """Immutable copies of every asset, in discovery order (first_seen, then id)."""
        out = []
        for rec in self._recs.values():
            asset = rec.cached
            if asset is None:
                asset = rec.cached = freeze(rec)
            out.append(asset)
        out.sort(key=lambda a: (a.first_seen, a.asset_id))
        return tuple(out)

    def __len__(self) -> int:
        return len(self._recs)

    def take_removed(self) -> list[str]:
        """Ids of assets merged into others since the last call, for `Store.save_assets(removed=...)`."""
        removed, self.removed_ids = self.removed_ids, []
        return removed

    def load(self, assets: Iterable[Asset]) -> None:
        """Resume from stored assets (zones are looked up again: the configuration may have changed)."""
        for a in assets:
            rec = thaw(a)
            zone = self.zones.lookup(a.ip)
            if zone is not None:
                rec.zone, rec.domain, rec.purdue_level = zone.name, zone.domain, zone.purdue_level
            key = (a.mac, a.ip)
            existing = self._recs.get(key)
            if existing is not None:
                existing.absorb(rec)
                continue
            self._recs[key] = rec
            current = self._by_ip.get(a.ip)
            if current is None or current.last_seen <= rec.last_seen:
                self._by_ip[a.ip] = rec
            if a.via_mac is not None and a.mac is None:
                self.gateways.add(a.via_mac)
            if a.mac is not None and a.mac not in self.gateways:
                self._mac_ips.setdefault(a.mac, set()).add(a.ip)
        over = [mac for mac, ips in self._mac_ips.items() if len(ips) > self.router_mac_threshold]
        keyed = {mac for mac, _ in self._recs if mac is not None}
        for mac in sorted(keyed & self.gateways | set(over)):
            self._become_gateway(mac)
