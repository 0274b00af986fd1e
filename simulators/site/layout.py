"""The site's hosts, laid out from a profile: one address per host in its zone's subnet (fixed ones first, the
rest from .10 upwards), a stable MAC (the vendor's OUI where the vendor is known), a TTL by operating system, and a
DNS name. VPN workers all sit behind the concentrator's MAC. `chain_site()` maps the site onto the host set of the
IT attack chain (simulators/itgen/chain_site.py) so its steps can be reused unchanged.
"""

from __future__ import annotations

import ipaddress
from random import Random

from simulators.itgen.chain_site import VPN_MAC
from simulators.itgen.chain_site import Site as ChainSite
from simulators.mixgen.net import AXIS_OUI, PLC_VENDORS
from simulators.mixgen.wire import Host
from simulators.site.profile import SiteProfile

__all__ = ["ATTACKER_NAME", "Layout"]

ATTACKER_NAME = "desktop-7qk2m1"  # the intruder's machine on a worker's VPN address (chain_steps.ATTACKER_HOSTNAME)
_WINDOWS = {"scada", "eng", "bms_fe", "dc", "file", "app", "db", "backup", "ws", "admin", "vpn", "vms", "historian"}
_OUI = {"bacnet": b"\x00\x50\x06", "sensor": b"\x00\x1e\xc0", "gateway": b"\x00\x04\xa3", "broker": None}


class Layout:
    """Every host of the site by name and role, with zones, broadcast hosts and DNS names."""

    def __init__(self, profile: SiteProfile, rng: Random) -> None:
        self.profile = profile
        self.rng = rng
        self.domain = profile.domain
        self.hosts: dict[str, Host] = {}
        self.by_role: dict[str, list[Host]] = {}
        self.zone_of: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self._nets = {z.name: ipaddress.ip_network(z.cidr, strict=False) for z in profile.zones}
        self._next = {z: 10 for z in self._nets}
        self._taken: set[str] = set()
        self.broadcast = {z: Host(f"broadcast-{z}", "broadcast", str(n.broadcast_address), b"\xff" * 6, 64, rng)
                          for z, n in self._nets.items()}  # fmt: skip
        self._fixed_first(profile)
        self._build(profile)

    def _fixed_first(self, p: SiteProfile) -> None:
        fixed = [w.ip for w in p.vpn.workers] + [n.ip for n in (
            *p.ot.plcs, *p.ot.scada, *p.ot.engineering, *p.bms.devices, p.bms.front_end, p.iot.broker,
            *p.iot.cameras, *p.iot.sensors, *p.iot.gateways, p.iot.historian, *p.it.servers, *p.it.admins,
            *p.it.dmz, *([p.iot.vms] if p.iot.vms else []))]  # fmt: skip
        self._taken.update(ip for ip in fixed if ip)

    def _build(self, p: SiteProfile) -> None:
        for i, plc in enumerate(p.ot.plcs):
            vendor = PLC_VENDORS[(plc.vendor if plc.vendor is not None else i) % len(PLC_VENDORS)]
            self.add(plc.name, "plc", p.ot.zone, plc.ip, vendor[3], vendor=vendor[0])
        for n in p.ot.scada:
            self.add(n.name, "scada", p.ot.zone, n.ip)
        for n in p.ot.engineering:
            self.add(n.name, "eng", p.ot.zone, n.ip)
        for d in p.bms.devices:
            self.add(d.name, "bacnet", p.bms.zone, d.ip)
        self.add(p.bms.front_end.name, "bms_fe", p.bms.zone, p.bms.front_end.ip)
        self.add(p.iot.broker.name, "broker", p.iot.zone, p.iot.broker.ip)
        for n in p.iot.cameras:
            self.add(n.name, "camera", p.iot.zone, n.ip, AXIS_OUI, vendor="Axis")
        for n in p.iot.sensors:
            self.add(n.name, "sensor", p.iot.zone, n.ip)
        for n in p.iot.gateways:
            self.add(n.name, "gateway", p.iot.zone, n.ip)
        self.add(p.iot.historian.name, "historian", p.iot.zone, p.iot.historian.ip)
        if p.iot.vms:
            self.add(p.iot.vms.name, "vms", p.iot.zone, p.iot.vms.ip)
        for s in p.it.servers:
            self.add(s.name, s.role if s.role != "dc" else "dc", p.it.server_zone, s.ip)
        for n in p.it.admins:
            self.add(n.name, "admin", p.it.office_zone, n.ip)
        for i in range(p.it.workstations):
            self.add(f"ws-{i + 1:03d}", "ws", p.it.office_zone)
        if p.it.dmz_zone:
            for n in p.it.dmz:
                self.add(n.name, "dmz", p.it.dmz_zone, n.ip)
        for w in p.vpn.workers:
            self.add(w.name, "vpn", p.vpn.zone, w.ip, mac=bytes.fromhex(VPN_MAC))

    def _free_ip(self, zone: str) -> str:
        net = self._nets[zone]
        while True:
            k = self._next[zone]
            self._next[zone] = k + 1
            if k >= net.num_addresses - 1:
                raise ValueError(f"zone {zone} ({net}) has no free address left")
            ip = str(net.network_address + k)
            if ip not in self._taken:
                return ip

    def add(
        self,
        name: str,
        role: str,
        zone: str,
        ip: str | None = None,
        oui: bytes | None = None,
        *,
        mac: bytes | None = None,
        vendor: str = "",
    ) -> Host:
        """Make a host in `zone` (the next free address unless `ip` is given) and register it."""
        if name in self.hosts:
            raise ValueError(f"two hosts named {name!r}")
        ip = ip or self._free_ip(zone)
        if ip in self.names and role != "vpn":
            raise ValueError(f"two hosts on {ip}")
        if ipaddress.ip_address(ip) not in self._nets[zone]:
            raise ValueError(f"{name}: {ip} is outside zone {zone} ({self._nets[zone]})")
        self._taken.add(ip)
        if mac is None:
            oui = oui if oui is not None else _OUI.get(role)
            tail = self.rng.getrandbits(24).to_bytes(3, "big")
            mac = oui + tail if oui else bytes([0x02, 0x5A]) + ipaddress.ip_address(ip).packed
        ttl = 128 if role in _WINDOWS else 64
        host = Host(name, role, ip, mac, ttl, self.rng, vendor)
        self.hosts[name] = host
        self.by_role.setdefault(role, []).append(host)
        self.zone_of[name] = zone
        self.names[ip] = f"{name}.{self.domain}"
        return host

    def role(self, role: str) -> list[Host]:
        """The hosts of one role (empty if none)."""
        return self.by_role.get(role, [])

    def first(self, *roles: str) -> Host:
        """The first host of the first role that has one."""
        for r in roles:
            if self.by_role.get(r):
                return self.by_role[r][0]
        raise KeyError(f"no host with role {roles}")

    def server(self, role: str, index: int = 0) -> Host:
        """The index-th server of a role, else the first file server (every profile has one)."""
        group = self.role(role)
        return group[index % len(group)] if group else self.role("file")[0]

    def in_zone(self, zone: str) -> list[Host]:
        """The hosts of one zone, in the order they were made."""
        return [h for n, h in self.hosts.items() if self.zone_of[n] == zone]

    def resolve(self, target: str) -> list[Host]:
        """Hosts named by a scenario target: a host name, a zone name (all its hosts) or `role:NAME`."""
        if target in self.hosts:
            return [self.hosts[target]]
        if target.startswith("role:"):
            return self.role(target[5:])
        if target in self._nets:
            return self.in_zone(target)
        raise KeyError(f"no host, zone or role named {target!r}")

    def attacker(self, worker_ip: str) -> Host:
        """The intruder's machine on a worker's VPN address: another OS (TTL 63), the concentrator's MAC."""
        return Host(ATTACKER_NAME, "attacker", worker_ip, bytes.fromhex(VPN_MAC), 63, Random(worker_ip))

    def chain_site(self, attacker: Host) -> ChainSite:
        """The IT chain's host set filled with this site's hosts, so chain_steps run against them."""
        s = ChainSite(Random(0))
        s.attacker = attacker
        s.dc1, s.dc2 = self.server("dc", 0), self.server("dc", 1)
        s.fs01, s.app01, s.sql01 = self.server("file"), self.server("app"), self.server("db")
        s.web01, s.bkp01 = self.server("web"), self.server("backup")
        office = self.role("ws")
        s.adm01 = self.role("admin")[0] if self.role("admin") else office[0]
        s.ws050, s.ws061 = office[0], office[-1]
        vpn = self.role("vpn")
        s.laptop = next((h for h in vpn if h.ip == attacker.ip), vpn[0]) if vpn else attacker
        s.vpn_users = [h for h in vpn if h is not s.laptop]
        cooling = [h for h in self.role("plc")]
        s.plc = cooling[0]
        s.hmi = self.role("scada")[0]
        s.names = dict(self.names)
        return s
