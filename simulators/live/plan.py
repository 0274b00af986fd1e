"""What the live site is made of: a description (frozen dataclasses) of its zones, devices, clients and addresses.

A plan is built from a site profile (simulators.live.profile_plan.plan_from_profile): the same device models as the
offline synthesis, with each host's address mapped onto loopback (zone i of the profile -> 127.(10+i).0.0/16, the
host keeping its offset in the zone) or, in network namespaces, the profile's own addresses. `small_plan()` is the
small preset the tests and the demo use: a few devices of the small profile, with short periods and operator writes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

MODBUS_PORT = 502
BACNET_PORT = 47808
FRONTEND_PORT = 47809  # bacpypes3 short-circuits unicasts to 127.* on its own port: the client needs another one
MQTT_PORT = 1883
BROADCAST = "127.255.255.255"
DEFAULT_PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "site-small.yml"

# the product family each PLC vendor's FC43 product code belongs to (FC43 ProductName/ModelName)
PLC_MODELS = {
    "Schneider Electric": "Modicon M340",
    "Siemens": "SIMATIC S7-300",
    "Rockwell Automation": "ControlLogix 5580",
    "WAGO": "PFC200",
    "Phoenix Contact": "PLCnext AXC F 2152",
    "Moxa": "MGate MB3170",
}


@dataclass(frozen=True, slots=True)
class Zone:
    """A zone of the live site: name, subnet (as the live site uses it), domain and Purdue level."""

    name: str
    cidr: str
    domain: str
    purdue_level: float | None = None


@dataclass(frozen=True, slots=True)
class Plc:
    """A PLC: name, address and port, FC43 identity, and its process model (kind, vendor profile, stream seed)."""

    name: str
    address: str
    vendor: str
    product_code: str
    revision: str
    model: str
    port: int = MODBUS_PORT
    kind: str = "cooling"
    vendor_index: int = 0
    seed: int = 1
    units: tuple[int, ...] = (1,)


@dataclass(frozen=True, slots=True)
class BmsDevice:
    """A BACnet/IP controller: name, address, instance, kind, vendor, model, firmware, and its model's index and
    stream seed (simulators.site.bms.BmsDevice(host, kind, index, Random(seed)) rebuilds the same controller)."""

    name: str
    address: str
    instance: int
    kind: str
    vendor_id: int
    vendor_name: str
    model: str
    firmware: str
    index: int = 0
    seed: int = 0


@dataclass(frozen=True, slots=True)
class MqttClient:
    """A paho client of the site: camera, sensor, gateway, historian or the video management server (VMS)."""

    client_id: str
    address: str
    kind: str
    number: int = 1
    username: str = ""
    password: str = ""

    @property
    def base(self) -> str:
        """The root of its topics, as offline (simulators.site.iot): site/dc1/cam/01, site/dc1/env/02, ..."""
        short = {"camera": "cam", "sensor": "env", "gateway": "gw"}.get(self.kind, self.kind)
        return f"site/dc1/{short}/{self.number:02d}"


@dataclass(frozen=True, slots=True)
class Poller:
    """A SCADA/HMI server: name, address, poll period, the PLCs it polls (by name) and its stream seed."""

    name: str
    address: str
    period: float
    plcs: tuple[str, ...]
    seed: int = 1


@dataclass(frozen=True, slots=True)
class SitePlan:
    """The whole live site: devices, the broker, the site's own clients, their periods and the zones."""

    plcs: tuple[Plc, ...]
    bms: tuple[BmsDevice, ...]
    mqtt: tuple[MqttClient, ...]
    pollers: tuple[Poller, ...]
    broker: str
    frontend: str
    zones: tuple[Zone, ...]
    broker_port: int = MQTT_PORT
    frontend_name: str = "bms-fe-01"
    frontend_port: int = FRONTEND_PORT
    broadcast: str = BROADCAST  # where the front end's Who-Is goes
    bms_poll_seconds: float = 30.0
    telemetry_seconds: float = 30.0
    snapshot_every: int = 20  # telemetry cycles between camera snapshots
    keepalive: int = 30
    write_every: int = 0
    command_every: int = 0
    identify_every: int = 0
    restart_seconds: float = 25.0
    profile: str = "site-small"
    seed: int = 1
    netns: bool = False
    notes: tuple[str, ...] = field(default=())  # what was left out (max_per_kind), for describe()

    @property
    def hmi(self) -> str:
        """The first poller's address."""
        return self.pollers[0].address

    @property
    def poll_seconds(self) -> float:
        """The first poller's period."""
        return self.pollers[0].period

    @property
    def clients(self) -> dict[str, str]:
        """The site's own clients (the only ones allowed to write or command): address -> name."""
        out = {p.address: p.name for p in self.pollers}
        out[self.frontend] = self.frontend_name
        out.update({c.address: c.client_id for c in self.mqtt})
        return out

    @property
    def devices(self) -> dict[str, str]:
        """The field devices (and the broker): address -> name."""
        out = {p.address: p.name for p in self.plcs}
        out.update({d.address: d.name for d in self.bms})
        if self.mqtt:
            out[self.broker] = "mqtt-broker"
        return out

    def zone_of(self, address: str) -> Zone:
        """The zone an address is in (KeyError if none)."""
        ip = ipaddress.ip_address(address)
        for zone in self.zones:
            if ip in ipaddress.ip_network(zone.cidr):
                return zone
        raise KeyError(f"{address} is in no zone of the plan")

    def interface_address(self, address: str) -> str:
        """`address/prefix` with its zone's prefix length (as it is configured in a network namespace)."""
        return f"{address}/{ipaddress.ip_network(self.zone_of(address).cidr).prefixlen}"

    def zones_config(self) -> dict[str, object]:
        """An otwatch config with the live site's zones (what `otwatch run --config` needs to place its assets)."""
        return {"zones": [{"name": z.name, "cidrs": [z.cidr], "domain": z.domain, "purdue_level": z.purdue_level}
                          for z in self.zones]}  # fmt: skip


def small_plan(plcs: int = 3, bms: int = 3, cameras: int = 2, sensors: int = 1, broker_port: int = MQTT_PORT,
               poll_seconds: float = 0.5) -> SitePlan:  # fmt: skip
    """The small preset of the tests and the demo: from the small profile, `plcs` PLCs, `bms` BACnet controllers,
    cameras and sensors (the kinds varied first), one poller, the historian and the VMS; polls every `poll_seconds`,
    BACnet polls and telemetry every second, an identification every third cycle, an operator write and a VMS
    command every fifth."""
    from simulators.live.profile_plan import plan_from_profile
    from simulators.site.profile import load_profile

    counts = {"plc": plcs, "bacnet": bms, "camera": cameras, "sensor": sensors, "gateway": 0, "scada": 1}
    return plan_from_profile(load_profile(DEFAULT_PROFILE), counts=counts, broker_port=broker_port,
                             poll_seconds=poll_seconds, bms_poll_seconds=1.0, telemetry_seconds=1.0, write_every=5,
                             command_every=5, identify_every=3, snapshot_every=10)  # fmt: skip
