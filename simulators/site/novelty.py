"""Benign novelty: new but legitimate things a sensor must not cry wolf about.

camera_onboarded: a new camera appears in the IoT zone (a new address and MAC), connects to the broker, publishes
its retained status and telemetry from then on. firmware_update: an engineering workstation uploads firmware to a
PLC over its web interface (HTTP POST), the PLC restarts (the SCADA session closes, the poller reconnects and reads
the new revision with FC43), or a BACnet controller gets a new firmware-revision that the BMS front end reads.
engineer_write_session: an engineering workstation reads a cooling PLC's configuration and writes a few
registers (FC6, FC16), then reads them back. bms_device_added: a new BACnet controller of the same make and model
as an existing one (`target`, default the first CRAH controller) joins the BMS network: it announces itself with
I-Am, the front end reads its device object and schedule, subscribes to its COV, then polls and writes it like the
others (a fifth identical CRAH controller: a peer-group test for the baseline).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from random import Random

from simulators.mixgen.net import AXIS_OUI
from simulators.mixgen.wire import Host, TcpConn, udp_frame
from simulators.site import bacnet_msgs as m
from simulators.site.attacks import StepContext
from simulators.site.bms import PORT as BACNET_PORT
from simulators.site.bms import BmsDevice, BmsFrontEnd, weekly_schedule
from simulators.site.iot import MqttSite
from simulators.site.it import ItSite
from simulators.site.ot import SETPOINT, Plc, ScadaPoller, exchange
from simulators.site.profile import Novelty
from simulators.site.schedule import Rhythm

__all__ = ["NOVELTY", "World"]


@dataclass
class World:
    """The running site: the step context plus every traffic source and the rhythm."""

    ctx: StepContext
    pollers: list[ScadaPoller]
    front_end: BmsFrontEnd
    mqtt: MqttSite
    rhythm: Rhythm
    it: ItSite


def _engineer(w: World) -> Host:
    eng = w.ctx.layout.role("eng")
    return eng[0] if eng else w.ctx.layout.role("scada")[0]


def _plc(w: World, name: str | None, cooling: bool = False) -> Plc:
    plant = w.ctx.plant
    if name:
        host = w.ctx.layout.hosts.get(name)
        if host is not None and host.ip in plant.by_ip:
            return plant.by_ip[host.ip]
    return plant.cooling()[0] if cooling else plant.plcs[-1]


def camera_onboarded(w: World, t: float, spec: Novelty) -> tuple[str, list[str]]:
    """A new camera connects to the broker."""
    layout = w.ctx.layout
    name = spec.name or f"cam-new-{len(layout.role('camera')) + 1:02d}"
    host = layout.add(name, "camera", layout.profile.iot.zone, spec.ip, AXIS_OUI, vendor="Axis")
    client = w.mqtt.add_device(host, "camera", t)  # the MQTT source connects it at t
    return f"a new camera {name} ({host.ip}) onboarded, publishing on {client.base}", [name]


def firmware_update(w: World, t: float, spec: Novelty) -> tuple[str, list[str]]:
    """Firmware to a PLC over HTTP and a restart, or a new firmware revision on a BACnet controller."""
    cap = w.ctx.cap
    target = spec.target or ""
    for dev in w.front_end.devices:
        if dev.host.name == target:
            old = dev.firmware
            major, _, rest = old.partition(".")
            dev.firmware = f"{major}.{int(rest.split('.')[0]) + 1}.0" if rest else old + ".1"
            cap.at(t)
            props = [p for p, _ in dev.device_props()]
            w.front_end.request(cap, dev, m.READ_PROPERTY_MULTIPLE, m.ctx_objid(0, m.DEVICE, dev.instance) + m.open_(1)
                                + b"".join(m.ctx_uint(0, p) for p in props) + m.close(1),
                                dev.rpm_ack([(m.DEVICE, dev.instance, props)]))  # fmt: skip
            return f"{dev.host.name} firmware {old} -> {dev.firmware}, read by the BMS front end", [dev.host.name]
    plc = _plc(w, target)
    eng = _engineer(w)
    old = plc.revision
    parts = old.rsplit(".", 1)
    plc.revision = f"{parts[0]}.{int(parts[1]) + 1:0{len(parts[1])}d}" if len(parts) == 2 and parts[1].isdigit() \
        else old + "a"  # fmt: skip
    cap.at(t)
    conn = TcpConn(eng, plc.host, 80, cap.rng)
    cap.add(*conn.handshake())
    image = w.ctx.rng.randbytes(60_000)
    head = (f"POST /cgi-bin/firmware_upload HTTP/1.1\r\nHost: {plc.host.ip}\r\nContent-Type: application/octet-stream"
            f"\r\nContent-Length: {len(image)}\r\n\r\n").encode()  # fmt: skip
    cap.send(conn, True, head + image)
    body = b'{"status":"ok","reboot":true}'
    cap.send(conn, False, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
             + str(len(body)).encode() + b"\r\n\r\n" + body)  # fmt: skip
    cap.add(*conn.close())
    for poller in w.pollers:
        poller.plc_rebooted(cap, plc, cap.now + 2.0)
    return f"{plc.host.name} firmware {old} -> {plc.revision} from {eng.name}, PLC restarted", [plc.host.name]


def engineer_write_session(w: World, t: float, spec: Novelty) -> tuple[str, list[str]]:
    """An engineer reads a cooling PLC's configuration and writes a few registers, then reads them back."""
    cap = w.ctx.cap
    plc = _plc(w, spec.target, cooling=True)
    eng = _engineer(w)
    cap.at(t)
    conn = TcpConn(eng, plc.host, 502, cap.rng)
    cap.add(*conn.handshake())
    unit = plc.units[0]
    tid = w.ctx.rng.getrandbits(16)
    values = [w.ctx.rng.randrange(100, 900) for _ in range(4)]
    pdus = [b"\x2b\x0e\x01\x00", struct.pack(">BHH", 3, 0, 20),
            struct.pack(">BHHB4H", 16, 12, 4, 8, *values), struct.pack(">BHH", 6, SETPOINT, plc.setpoint + 5),
            struct.pack(">BHH", 3, 0, 20)]  # fmt: skip
    for pdu in pdus:
        tid += 1
        exchange(cap, conn, tid, unit, pdu, plc, 1.0)
        cap.wait(4.0 + w.ctx.rng.random() * 20)
    cap.add(*conn.close())
    return f"{eng.name} wrote configuration registers 12-15 and the setpoint of {plc.host.name}", [plc.host.name]


def bms_device_added(w: World, t: float, spec: Novelty) -> tuple[str, list[str]]:
    """A controller identical to an existing one joins the BMS network and the front end takes it on."""
    fe, cap = w.front_end, w.ctx.cap
    like = next((d for d in fe.devices if d.host.name == spec.target), None) \
        or next((d for d in fe.devices if d.kind == "crah"), fe.devices[0])  # fmt: skip
    layout = w.ctx.layout
    name = spec.name or f"{like.kind}-{len(fe.devices) + 1:02d}"
    host = layout.add(name, "bacnet", layout.profile.bms.zone, spec.ip)
    dev = BmsDevice(host, like.kind, len(fe.devices), Random(w.ctx.rng.getrandbits(64)))
    d = len(fe.devices)
    fe.devices.append(dev)
    fe.due.append(t + 30.0 + w.ctx.rng.random() * fe.period)
    cap.at(t)
    cap.add(udp_frame(host, fe.bcast, BACNET_PORT, BACNET_PORT, m.i_am(dev.instance, dev.vendor_id)))
    cap.wait(2.0)
    props = [p for p, _ in dev.device_props()]
    fe.request(cap, dev, m.READ_PROPERTY_MULTIPLE, m.ctx_objid(0, m.DEVICE, dev.instance) + m.open_(1)
               + b"".join(m.ctx_uint(0, p) for p in props) + m.close(1),
               dev.rpm_ack([(m.DEVICE, dev.instance, props)]))  # fmt: skip
    if dev.by_id.get((m.SCHEDULE, 1)) is not None:
        ref = m.ctx_objid(0, m.SCHEDULE, 1) + m.ctx_uint(1, m.WEEKLY_SCHEDULE)
        fe.request(cap, dev, m.READ_PROPERTY, ref, ref + m.open_(3) + weekly_schedule() + m.close(3))
    cap.wait(1.0)
    for o in dev.objects:
        if o.otype != m.AI:
            continue
        pid = 100 + len(fe.subs)
        fe.request(cap, dev, m.SUBSCRIBE_COV, m.ctx_uint(0, pid) + m.ctx_objid(1, o.otype, o.instance)
                   + m.ctx_bool(2, False) + m.ctx_uint(3, 3600), None)  # fmt: skip
        fe.subs[(d, o.otype, o.instance)] = (pid, False, float(o.value))
    return f"a new {dev.vendor} {dev.model} controller {name} ({host.ip}) joined the BMS, like {like.host.name}", [name]


NOVELTY = {"camera_onboarded": camera_onboarded, "firmware_update": firmware_update,
           "engineer_write_session": engineer_write_session, "bms_device_added": bms_device_added}  # fmt: skip
