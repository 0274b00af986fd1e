"""A small site for the baseline tests: hand-made events through the real Baseline, detectors and inventory, in the
pipeline's order (detectors judge, the baseline learns, the inventory learns)."""

from __future__ import annotations

from typing import Any

from appliance.alert import Alert
from appliance.baseline import Baseline, BaselineSettings
from appliance.detectors import build_detectors
from appliance.detectors.engine import DetectorEngine
from appliance.detectors.settings import DetectorSettings
from appliance.inventory import AssetInventory
from appliance.model import Asset, Flow, FlowId, ProtocolEvent
from appliance.pipeline import op_class
from appliance.zones import Zone, ZoneMap

T0 = 1_717_372_800.0  # 2024-06-03 00:00 UTC, a Monday
HOUR = 3600.0
SCADA, HMI, PLC, PLC2 = "10.50.1.100", "10.50.1.14", "10.50.1.10", "10.50.1.11"
FE, CRAH1, CRAH2, CRAH3, CHILLER = "10.60.1.16", "10.60.1.10", "10.60.1.11", "10.60.1.17", "10.60.1.13"
BROKER, CAM1, CAM2, HIST, VMS = "10.70.1.10", "10.70.1.11", "10.70.1.12", "10.70.1.20", "10.70.1.21"
VPN = "10.8.0.23"
ZONES = ZoneMap([
    Zone("vpn-pool", ("10.8.0.0/24",), "VPN", 4), Zone("corp-it", ("10.20.4.0/22",), "IT", 4),
    Zone("ot-control", ("10.50.1.0/24",), "OT", 1), Zone("bms", ("10.60.1.0/24",), "BMS", 2),
    Zone("iot-cameras", ("10.70.1.0/24",), "IoT", 3),
])  # fmt: skip
_PORTS = {"modbus": 502, "bacnet": 47808, "mqtt": 1883, "dns": 53}
DNS = "10.20.0.10"


def event(protocol: str, src: str, dst: str, op: str, ts: float, kind: str = "request", **fields: Any) -> ProtocolEvent:
    """One decoded message on the flow from src to dst's well-known port."""
    port = _PORTS[protocol]
    sport = port if protocol == "bacnet" else 40000 + sum(map(int, src.split(".")))
    fid = FlowId(f"C{protocol}{src}{dst}", src, sport, dst, port, "udp" if protocol in ("bacnet", "dns") else "tcp")
    return ProtocolEvent(ts, fid, protocol, op, kind, kind == "request", src, dst, fields)


def answer(ev: ProtocolEvent) -> ProtocolEvent:
    """The response to a request (from its destination)."""
    return ProtocolEvent(ev.ts + 0.001, ev.flow, ev.protocol, ev.op, "response", False, ev.dst, ev.src, dict(ev.fields))


def modbus(src: str, dst: str, op: str, ts: float, unit: int = 1, **fields: Any) -> ProtocolEvent:
    """A Modbus request."""
    return event("modbus", src, dst, op, ts, unit=unit, **fields)


def write_register(src: str, dst: str, ts: float, address: int, value: int, unit: int = 1) -> ProtocolEvent:
    """A Modbus FC6 request."""
    return modbus(src, dst, "write_single_register", ts, unit, address=address, quantity=1, request_values=[value])


def bacnet_write(src: str, dst: str, ts: float, value: float, instance: int = 1, priority: int = 8) -> ProtocolEvent:
    """A BACnet WriteProperty of an analog value's present value."""
    return event("bacnet", src, dst, "write_property", ts, pdu_type="CONFIRMED_REQUEST", object_type="analog-value",
                 instance_number=instance, property="present-value", values=[value], priority=priority)  # fmt: skip


def rpm_poll(src: str, dst: str, ts: float) -> ProtocolEvent:
    """The front end's ReadPropertyMultiple poll of a controller."""
    props = [{"object_type": t, "instance_number": 1, "property": p} for t in ("analog-input", "analog-value")
             for p in ("present-value", "status-flags")]  # fmt: skip
    return event("bacnet", src, dst, "read_property_multiple", ts, pdu_type="CONFIRMED_REQUEST", properties=props)


def publish(src: str, topic: str, ts: float) -> ProtocolEvent:
    """An MQTT PUBLISH from a client to the broker."""
    return event("mqtt", src, BROKER, "publish", ts, topic=topic, qos=0, from_client=True)


def subscribe(src: str, filters: list[str], ts: float) -> ProtocolEvent:
    """An MQTT SUBSCRIBE."""
    return event("mqtt", src, BROKER, "subscribe", ts, topics=filters, qos_levels=[0] * len(filters))


def flow(orig: str, resp: str, resp_p: int, ts: float, service: str | None = None, state: str = "SF",
         proto: str = "tcp") -> Flow:  # fmt: skip
    """A finished connection."""
    fid = FlowId(f"F{orig}{resp}{resp_p}{ts}", orig, 50000, resp, resp_p, proto)
    return Flow(fid, ts, 1.0, service, 100, 200, state, 0, "ShADadFf", 5, 300, 5, 400)


class Site:
    """The baseline, every detector and an inventory, fed like the pipeline feeds them."""

    def __init__(self, settings: BaselineSettings | None = None, snapshot: list[Asset] | None = None) -> None:
        self.inventory = AssetInventory(ZONES, op_class=op_class)
        self.assets: list[Asset] | None = snapshot
        self.baseline = Baseline(settings or BaselineSettings(learning_days=1 / 24, device_learning_days=1 / 24),
                                 zone_of=ZONES.lookup, snapshot=self._snapshot, op_class=op_class,
                                 unicast=self.inventory.could_be_asset)  # fmt: skip
        self.alerts: list[Alert] = []
        self.engine = DetectorEngine(build_detectors(DetectorSettings(), self.baseline), self.alerts.append,
                                     suppress=3600.0, inventory=self.inventory)  # fmt: skip

    def _snapshot(self) -> list[Asset] | tuple[Asset, ...]:
        return self.assets if self.assets is not None else self.inventory.snapshot()

    def feed(self, *events: ProtocolEvent) -> list[Alert]:
        """Judge, learn and inventory each event; the alerts they raised."""
        before = len(self.alerts)
        for ev in events:
            self.engine.on_event(ev)
            self.baseline.observe(ev)
            self.inventory.on_event(ev)
        return self.alerts[before:]

    def feed_flow(self, f: Flow) -> list[Alert]:
        """Judge, learn and inventory a finished connection."""
        before = len(self.alerts)
        self.engine.on_flow(f)
        self.baseline.observe_flow(f)
        self.inventory.on_flow(f)
        return self.alerts[before:]

    def tick(self, now: float) -> list[Alert]:
        """Let packet time pass."""
        before = len(self.alerts)
        self.engine.tick(now)
        return self.alerts[before:]

    def mine(self, alerts: list[Alert] | None = None) -> list[tuple[str, str, str]]:
        """(detector, note, src) of the learned-behaviour alerts."""
        learned = {"ot_baseline", "ot_discovery", "ot_internet", "mqtt_baseline", "ot_timing", "ot_anomaly"}
        return [(a.detector, a.note, a.src) for a in (self.alerts if alerts is None else alerts)
                if a.detector in learned]  # fmt: skip


def learn_normal_site(site: Site, until: float = T0 + 3600.0) -> float:
    """An hour of a normal site: SCADA polls two PLCs every 5 s and identifies them at first; the front end polls
    the controllers every 30 s and writes CRAH setpoints; cameras publish, the historian subscribes, the video server
    commands camera 1; the VPN worker's laptop resolves names. Returns the packet time it ends at."""
    ts = T0
    site.feed(event("dns", VPN, DNS, "query", ts, query="intranet.corp.local"))
    site.feed(*(modbus(SCADA, plc, "read_device_identification", ts) for plc in (PLC, PLC2)))
    site.feed(subscribe(HIST, ["site/dc1/+/+/telemetry"], ts), subscribe(CAM1, ["site/dc1/cam/01/cmd"], ts))
    n = 0
    while ts < until:
        polls = [modbus(SCADA, PLC, "read_holding_registers", ts, address=0, quantity=20),
                 modbus(SCADA, PLC2, "read_holding_registers", ts + 0.01, address=0, quantity=20)]
        site.feed(*polls, *map(answer, polls))
        if n % 6 == 0:
            polls = [rpm_poll(FE, CRAH1, ts), rpm_poll(FE, CRAH2, ts), rpm_poll(FE, CHILLER, ts)]
            site.feed(*polls, *map(answer, polls), publish(CAM1, "site/dc1/cam/01/telemetry", ts),
                      publish(CAM2, "site/dc1/cam/02/telemetry", ts))  # fmt: skip
        if n % 120 == 60:
            site.feed(bacnet_write(FE, CRAH1, ts + 1, 18.0 + (n % 240) / 480), bacnet_write(FE, CRAH2, ts + 1, 18.5),
                      publish(VMS, "site/dc1/cam/01/cmd", ts + 1))  # fmt: skip
        if n == 100:
            site.feed(write_register(SCADA, PLC, ts + 2, 4, 180), write_register(SCADA, PLC, ts + 3, 4, 185))
        ts += 5.0
        n += 1
    site.tick(ts)
    return ts
