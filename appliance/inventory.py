"""AssetInventory: conn records and protocol events in, assets out (identity keys: `appliance.asset_index`).

Identity: an asset is keyed by (MAC, IP). A flow without a usable MAC (zero MAC from loopback or raw-IP
link types) and every protocol event (events carry no MACs) key by IP alone; when a conn record later brings
the MAC, the IP-only asset is re-keyed and keeps its id. A MAC seen sending from more than
`router_mac_threshold` IPs is a gateway: its addresses are keyed by IP alone and the MAC is kept as `via_mac`.
Only senders become assets (an address that never answered, or answered a SYN with a bare RST, is a peer, not an
asset); broadcast, multicast and unspecified addresses never do. Categories come from the rule table in
`appliance.asset_rules`.

Assets without an IP: a BACnet/Ethernet station is keyed by its MAC alone (ip ""). A routed BACnet device (an
event with SNET/SADR: the message came from another BACnet network through a router) is keyed by (network
number, MAC) with a stable id; it has no IP, records its router's IP, MAC and asset id (`via_*`) and takes the
router's zone, and the router gets the `bacnet` `router` role. A BBMD's Forwarded-NPDU is credited to the
original sender it names (`forwarded_from`), the BBMD gets the `bbmd` role.

Threading: `on_flow`, `on_event`, `load` and `snapshot` belong to the pipeline thread (or whoever holds the
pipeline's lock); `snapshot()` returns immutable `Asset` copies that any thread may read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from appliance.asset_rules import (
    MAX_PEERS,
    MAX_ROLE_PEERS,
    MAX_SERVICES,
    MAX_UNITS,
    OT_PORTS,
    OT_PROTOCOLS,
    AssetRecord,
    add_bounded,
    apply_fc43,
    default_op_class,
    freeze,
    normalize_mac,
    thaw,
)
from appliance.bacnet_assets import (
    ANNOUNCE_OPS,
    BBMD_ANSWERS,
    BROADCAST,
    DISTRIBUTE,
    FORWARDED,
    MAX_INSTANCE,
    NO_ROLE_OPS,
    READ_OPS,
    ROUTER_OPS,
    forwarded_ip,
    is_network_op,
    learn_announcement,
    learn_device_properties,
    mac_of,
    network_of,
)
from appliance.hostname_assets import HostnameInventory
from appliance.hostnames import HOSTNAME_PROTOCOLS
from appliance.inventory_repeat import RepeatMemo
from appliance.model import EXCEPTION, REQUEST, RESPONSE, WEIRD, Asset, Flow, ProtocolEvent, routed_address
from appliance.mqtt_assets import BROKER_PROTOCOL, learn_wire
from appliance.zones import ZoneMap

# Protocols whose roles come from their events only: BACnet/IP peers talk both ways on one UDP port, so who
# opened a flow says nothing about who serves (a router relaying a device's answers is no server).
EVENT_ROLES = frozenset({"bacnet"})
_SERVICE, _ANNOUNCE, _NO_ROLE, _NETWORK = range(4)  # the nature of a BACnet op, for roles
_CLIENT, _SERVER = ("bacnet", "client"), ("bacnet", "server")


class AssetInventory(HostnameInventory):
    """Who is who on the network, built from conn records and protocol events (pipeline thread only)."""

    def __init__(
        self,
        zones: ZoneMap | None = None,
        *,
        router_mac_threshold: int = 8,
        op_class: Callable[[str, str], str] = default_op_class,
    ) -> None:
        super().__init__(zones, router_mac_threshold=router_mac_threshold)
        self._op_class = op_class
        self._op_classes: dict[tuple[str, str], str] = {}
        self._bacnet_ops: dict[str, tuple[tuple[str, str], int]] = {}
        self._repeats = RepeatMemo(self)

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
        if (flow.resp_pkts > 0 or flow.resp_bytes > 0) and flow.conn_state != "REJ":  # a bare RST is no service
            sides.append((fid.resp_h, flow.resp_mac, fid.orig_h, "server"))
        llc = fid.proto == "llc"  # BACnet/Ethernet: the endpoints are MACs
        for ip, mac, peer, role in sides:
            rec = self._mac_node(ip, flow.ts) if llc else self._sender(ip, normalize_mac(mac), flow.ts)
            if rec is None:
                continue
            rec.first_seen = min(rec.first_seen, flow.ts)
            rec.last_seen = max(rec.last_seen, end)
            rec.flows += 1
            rec.ot_traffic |= ot
            rec.protocols.update(services)
            if len(sides) == 2:  # the responder answered: client and server roles
                for service in services:
                    if service not in EVENT_ROLES:
                        add_bounded(rec.role(service, role)[1], (peer,), MAX_ROLE_PEERS)
            if len(rec.peers) < MAX_PEERS and self._peer_ok(peer):
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
        if self._repeats.hit(ev):  # a Modbus/BACnet event like one learnt already: only times and counters move
            return
        if ev.protocol == BROKER_PROTOCOL:  # the broker session's view: no flow, its own vocabulary
            self._on_broker(ev)
            return
        if ev.protocol in HOSTNAME_PROTOCOLS:
            self.learn_hostnames(ev)
        src = ev.src
        if not src:
            return
        if ev.protocol == "bacnet":
            self._on_bacnet(ev)
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
        if protocol == "mqtt":
            learn_wire(rec, ev)
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

    @staticmethod
    def _touch(rec: AssetRecord, ts: float, weird: bool) -> None:
        if ts > rec.last_seen:
            rec.last_seen = ts
        elif ts < rec.first_seen:
            rec.first_seen = ts
        if not weird:
            rec.protocols.add("bacnet")
            rec.ot_traffic = True
        rec.cached = None

    def _bacnet_op(self, op: str) -> tuple[tuple[str, str], int]:
        """(activity key, nature) of a BACnet op, cached: nature is _SERVICE, _ANNOUNCE, _NO_ROLE or _NETWORK."""
        info = self._bacnet_ops.get(op)
        if info is None:
            if is_network_op(op):
                nature = _NETWORK
            elif op in ANNOUNCE_OPS:
                nature = _ANNOUNCE
            else:
                nature = _NO_ROLE if op in NO_ROLE_OPS else _SERVICE
            if len(self._bacnet_ops) >= 4096:
                self._bacnet_ops.clear()
            info = self._bacnet_ops[op] = (("bacnet", self.op_class("bacnet", op)), nature)
        return info

    def _on_bacnet(self, ev: ProtocolEvent) -> None:
        """A BACnet event: find the true sender (BBMD origin, routed device), then its roles and identity."""
        f = ev.fields
        ts, op, kind, src, dst = ev.ts, ev.op, ev.kind, ev.src, ev.dst
        weird = kind == WEIRD
        bvlc = f.get("bvlc_function")
        bbmd = None
        if bvlc == FORWARDED:
            bbmd = self._node(src, ts)
            src = forwarded_ip(f.get("forwarded_from")) or src
        hop = self._by_ip.get(src) or self._node(src, ts)  # the station that put the message on this network
        if hop is None:
            if bbmd is not None:
                self._touch(bbmd, ts, weird)
            return
        rec = hop
        if "snet" in f and f["snet"] is not None:
            snet, sadr = network_of(f["snet"]), mac_of(f.get("sadr"))
            if snet is not None and sadr is not None:
                rec = self._routed_device(snet, sadr, hop, ts)
                self._touch(hop, ts, weird)
        if bbmd is not None and bbmd is not rec:
            self._touch(bbmd, ts, weird)
        if ts > rec.last_seen:
            rec.last_seen = ts
        elif ts < rec.first_seen:
            rec.first_seen = ts
        rec.cached = None
        key, nature = self._bacnet_ops.get(op) or self._bacnet_op(op)
        rec.sent[key] += 1
        peer: str | None = None
        target: AssetRecord | None = None
        dnet = network_of(f["dnet"]) if "dnet" in f else None
        dadr = mac_of(f.get("dadr")) if dnet is not None else None
        if dnet is not None and dadr is not None:
            target = self._routed.get((dnet, dadr))
            peer = routed_address(dnet, dadr)
        elif dst:
            target = self._by_ip.get(dst) or self._find(dst)
            if bbmd is None and bvlc != BROADCAST and dst != src and (self._ip_ok.get(dst) or self._peer_ok(dst)):
                peer = dst  # (a BACnet/IP broadcast names no peer, even to an address no zone marks as broadcast)
        if target is not None:
            target.received[key] += 1
            target.cached = None
        if weird:
            return
        rec.protocols.add("bacnet")
        rec.ot_traffic = True
        if peer is not None and len(rec.peers) < MAX_PEERS:
            rec.peers.add(peer)
        if bbmd is not None:
            bbmd_peers = bbmd.role("bacnet", "bbmd")[1]
            if dst and dst != ev.src and self._peer_ok(dst) and len(bbmd_peers) < MAX_ROLE_PEERS:
                bbmd_peers.add(dst)
        if kind == REQUEST and op not in rec.bacnet_services and len(rec.bacnet_services) < MAX_SERVICES:
            rec.bacnet_services.add(op)
        if nature == _NETWORK:
            self._bacnet_network_message(rec, op, kind, peer, f)
            return
        if type(bvlc) is str and bvlc in DISTRIBUTE:  # a foreign device's broadcast, sent through its BBMD
            add_bounded(hop.role("bacnet", "foreign_device")[1], (dst,) if self._peer_ok(dst) else (), MAX_ROLE_PEERS)
        if nature == _NO_ROLE:
            return
        announce = nature == _ANNOUNCE
        if kind == REQUEST:
            client = not announce
        elif kind in (RESPONSE, EXCEPTION):
            client = announce
        else:
            return
        role_key = _CLIENT if client else _SERVER
        entry = rec.roles.get(role_key)
        units, peers = entry if entry is not None else rec.role(*role_key)
        if peer is not None and len(peers) < MAX_ROLE_PEERS:
            peers.add(peer)
        if client:
            instance = f.get("instance_number") if f.get("object_type") == "device" else None
            if type(instance) is not int or not 0 <= instance <= MAX_INSTANCE:  # as instance_of
                instance = target.bacnet_instance if target is not None else None
            if instance is not None and len(units) < MAX_UNITS:
                units.add(instance)
        elif rec.bacnet_instance is not None and len(units) < MAX_UNITS:
            units.add(rec.bacnet_instance)
        if announce and kind == REQUEST:
            learn_announcement(rec, op, f)
        elif kind == RESPONSE and op in READ_OPS:
            learn_device_properties(rec, op, f)

    @staticmethod
    def _bacnet_network_message(rec: AssetRecord, op: str, kind: str, peer: str | None, f: dict[str, Any]) -> None:
        """Roles from a network-layer or BVLC message: router, BBMD, foreign device."""
        if op in ROUTER_OPS:
            units = rec.role("bacnet", "router")[0]
            networks = f.get("networks")
            if isinstance(networks, list | tuple):
                for n in networks:
                    if network_of(n) is not None and len(units) < MAX_UNITS:
                        units.add(n)
        elif op in BBMD_ANSWERS and kind == RESPONSE:
            add_bounded(rec.role("bacnet", "bbmd")[1], (peer,) if peer else (), MAX_ROLE_PEERS)
        elif op == "register_foreign_device" and kind == REQUEST:
            add_bounded(rec.role("bacnet", "foreign_device")[1], (peer,) if peer else (), MAX_ROLE_PEERS)

    # ---- output and resume ----

    def snapshot(self) -> tuple[Asset, ...]:
        """Immutable copies of every asset, in discovery order (first_seen, then id)."""
        out = []
        for rec in self._routed.values():
            router = self._router_of(rec)
            if router is not None:
                self._attach(rec, router)
        for rec in (*self._recs.values(), *self._routed.values()):
            asset = rec.cached
            if asset is None:
                asset = rec.cached = freeze(rec)
            out.append(asset)
        out.sort(key=lambda a: (a.first_seen, a.asset_id))
        return tuple(out)

    def __len__(self) -> int:
        return len(self._recs) + len(self._routed)

    def take_removed(self) -> list[str]:
        """Ids of assets merged into others since the last call, for `Store.save_assets(removed=...)`."""
        removed, self.removed_ids = self.removed_ids, []
        return removed

    def load(self, assets: Iterable[Asset]) -> None:
        """Resume from stored assets (zones are looked up again: the configuration may have changed)."""
        for a in assets:
            rec = thaw(a)
            if not a.ip:
                self._load_without_ip(a, rec)
                continue
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

    def _load_without_ip(self, a: Asset, rec: AssetRecord) -> None:
        """Resume a routed BACnet device (zone: its router's) or a MAC-only station."""
        if a.bacnet_network is not None and a.bacnet_mac is not None:
            recs: dict[Any, AssetRecord] = self._routed
            key: Any = (a.bacnet_network, a.bacnet_mac)
            zone = self.zones.lookup(a.via_ip) if a.via_ip else None
            if zone is not None:
                rec.zone, rec.domain, rec.purdue_level = zone.name, zone.domain, zone.purdue_level
        else:
            recs, key = self._recs, (a.mac, "")
        existing = recs.get(key)
        if existing is not None:
            existing.absorb(rec)
        else:
            recs[key] = rec
