"""What the live site is made of: a small description (dataclasses) of its zones, devices, clients and addresses.

The zones mirror the offline profile simulators/profiles/site-small.yml with its `10.` prefix read as `127.`: the OT
control zone is 127.50.1.0/24, the BMS zone 127.60.1.0/24, the IoT camera zone 127.70.1.0/24. Loopback answers any
127/8 address with no configuration, so each device has its own address and the sensor sees distinct assets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simulators.mixgen.net import PLC_VENDORS

ZONES = {"ot-control": "127.50.1.0/24", "bms": "127.60.1.0/24", "iot-cameras": "127.70.1.0/24"}
MODBUS_PORT = 502
BACNET_PORT = 47808
FRONTEND_PORT = 47809  # bacpypes3 short-circuits unicasts to 127.* on its own port: the client needs another one
MQTT_PORT = 1883
BROADCAST = "127.255.255.255"

# the product family each PLC vendor's FC43 product code belongs to (FC43 ProductName/ModelName)
PLC_MODELS = {
    "Schneider Electric": "Modicon M340",
    "Siemens": "SIMATIC S7-300",
    "Rockwell Automation": "ControlLogix 5580",
    "WAGO": "PFC200",
    "Phoenix Contact": "PLCnext AXC F 2152",
    "Moxa": "MGate MB3170",
}
PLC_NAMES = ("plc-crah-01", "plc-chiller-01", "plc-swgr-01", "plc-ups-01", "plc-crah-02", "plc-gen-01")
# kind (simulators.bacnet_device.KINDS), device name, instance, ASHRAE vendor id and name, model, firmware
BMS_DEVICES = (
    ("crah", "crah-01", 1001, 5, "Johnson Controls Inc", "FX-PCG2611", "10.1.0"),
    ("chiller", "chiller-01", 2001, 2, "The Trane Company", "Tracer UC800", "6.10.2"),
    ("power-meter", "pm-01", 3001, 10, "Schneider Electric", "PowerLogic PM5560", "2.7.4"),
    ("access-panel", "acp-01", 4001, 24, "Automated Logic Corporation", "OptiFlex G5CE", "7.0.102"),
    ("crah", "crah-02", 1002, 8, "Delta Controls", "eBCON", "4.40.0"),
)


@dataclass(frozen=True, slots=True)
class Plc:
    """A PLC: its name, address and port, and its FC43 identity."""

    name: str
    address: str
    vendor: str
    product_code: str
    revision: str
    model: str
    port: int = MODBUS_PORT


@dataclass(frozen=True, slots=True)
class BmsDevice:
    """A BACnet/IP controller: name, address, device instance, kind of points, vendor, model and firmware."""

    name: str
    address: str
    instance: int
    kind: str
    vendor_id: int
    vendor_name: str
    model: str
    firmware: str


@dataclass(frozen=True, slots=True)
class MqttClient:
    """A paho client of the site: camera, sensor, or the video management server that sends camera commands."""

    client_id: str
    address: str
    kind: str


@dataclass(frozen=True, slots=True)
class SitePlan:
    """The whole live site: devices, the broker, the site's own clients and their periods."""

    plcs: tuple[Plc, ...]
    bms: tuple[BmsDevice, ...]
    mqtt: tuple[MqttClient, ...]
    broker: str = "127.70.1.10"
    broker_port: int = MQTT_PORT
    hmi: str = "127.50.1.100"
    frontend: str = "127.60.1.100"
    poll_seconds: float = 0.5
    bms_poll_seconds: float = 1.0
    telemetry_seconds: float = 1.0
    zones: dict[str, str] = field(default_factory=lambda: dict(ZONES))

    @property
    def clients(self) -> dict[str, str]:
        """The site's own clients (the only ones allowed to write or command): address -> name."""
        out = {self.hmi: "hmi", self.frontend: "bms-frontend"}
        out.update({c.address: c.client_id for c in self.mqtt})
        return out

    @property
    def devices(self) -> dict[str, str]:
        """The field devices (and the broker): address -> name."""
        out = {p.address: p.name for p in self.plcs}
        out.update({d.address: d.name for d in self.bms})
        out[self.broker] = "mqtt-broker"
        return out


def small_plan(plcs: int = 3, bms: int = 3, cameras: int = 2, sensors: int = 1, broker_port: int = MQTT_PORT,
               poll_seconds: float = 0.5) -> SitePlan:  # fmt: skip
    """A small site: `plcs` PLCs of different vendors, `bms` BACnet controllers, cameras, sensors and a VMS."""
    if not 1 <= plcs <= len(PLC_NAMES) or not 1 <= bms <= len(BMS_DEVICES):
        raise ValueError(f"1-{len(PLC_NAMES)} PLCs and 1-{len(BMS_DEVICES)} BMS devices")
    plc_list = tuple(
        Plc(PLC_NAMES[i], f"127.50.1.{11 + i}", vendor, product, revision, PLC_MODELS.get(vendor, product))
        for i, (vendor, product, revision, _oui) in enumerate(PLC_VENDORS[:plcs])
    )
    bms_list = tuple(
        BmsDevice(name, f"127.60.1.{11 + i}", instance, kind, vendor_id, vendor, model, firmware)
        for i, (kind, name, instance, vendor_id, vendor, model, firmware) in enumerate(BMS_DEVICES[:bms])
    )
    mqtt = [MqttClient(f"cam-{i + 1:02d}", f"127.70.1.{21 + i}", "camera") for i in range(cameras)]
    mqtt += [MqttClient(f"env-{i + 1:02d}", f"127.70.1.{41 + i}", "sensor") for i in range(sensors)]
    mqtt.append(MqttClient("vms-01", "127.70.1.100", "vms"))
    return SitePlan(plc_list, bms_list, tuple(mqtt), broker_port=broker_port, poll_seconds=poll_seconds)
