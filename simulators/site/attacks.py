"""The OT steps of the intrusion, as traffic from the scenario's actor into the OT, BMS and IoT zones.

Each step function takes the step context, a start time, a pace (1 = fast; 10 = ten times slower) and its target
hosts, writes its traffic from packet time `t`, and may return follow-ups (time, function) that the simulator runs
later (an MQTT subscription held open for a while). The devices answer as the site's models do: PLCs through
`Plc.answer`, BACnet controllers from their objects (not while a DeviceCommunicationControl or a restart keeps them
silent), the broker forwards to the actor's session. A step whose effect outlasts its packets (a controller silenced
by DCC, a controller restarting) records it in `ctx.effects` for the ground truth.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random

from simulators.itgen.chain_site import Site as ChainSite
from simulators.mixgen.wire import Host, TcpConn, udp_frame
from simulators.site import bacnet_msgs as m
from simulators.site.bms import BmsDevice
from simulators.site.capture import SiteCapture
from simulators.site.iot import Client, MqttSite, connect
from simulators.site.layout import Layout
from simulators.site.ot import SETPOINT, OtPlant, Plc, exchange

__all__ = ["DCC_MINUTES", "OT_STEPS", "RESTART_SECONDS", "Effect", "FollowUp", "StepContext"]

FollowUp = tuple[float, Callable[[], None]]
DCC_MINUTES = 60
RESTART_SECONDS = 25.0


@dataclass
class Effect:
    """An after-effect of a step on a device: what (`dcc-disable`, `restart`), on which device, over which span."""

    effect: str
    device: BmsDevice
    t_start: float
    t_end: float
    scenario: str = ""
    step: str = ""

    def to_dict(self) -> dict[str, object]:
        """The ground-truth row, with the requests the device left unanswered in its span."""
        missed = sum(self.t_start <= t < self.t_end for t in self.device.missed)
        return {"scenario": self.scenario, "step": self.step, "effect": self.effect, "device": self.device.host.name,
                "ip": self.device.host.ip, "t_start": self.t_start, "t_end": self.t_end, "unanswered_requests": missed}


@dataclass
class StepContext:
    """What a step may touch: the capture, the site's hosts and device models, the actor."""

    cap: SiteCapture
    layout: Layout
    plant: OtPlant
    bms: list[BmsDevice]
    mqtt: MqttSite
    actor: Host
    chain: ChainSite
    rng: Random
    tids: dict[str, int] = field(default_factory=dict)
    effects: list[Effect] = field(default_factory=list)
    action: float | None = None  # packet time of the current step's decisive frame (a write, a command), if any

    def act(self) -> None:
        """Mark the next frame as the step's decisive one (the write or command it exists for): `t_action`."""
        if self.action is None:
            self.action = self.cap.now

    def plcs(self, targets: list[Host]) -> list[Plc]:
        """The PLCs among the targets (all cooling PLCs if none named)."""
        found = [self.plant.by_ip[h.ip] for h in targets if h.ip in self.plant.by_ip]
        return found or self.plant.cooling()

    def bacnet(self, targets: list[Host]) -> list[BmsDevice]:
        """The BACnet controllers among the targets (the chillers, else all, if none named)."""
        ips = {h.ip for h in targets}
        found = [d for d in self.bms if d.host.ip in ips]
        return found or [d for d in self.bms if d.kind == "chiller"] or self.bms

    def tid(self, key: str) -> int:
        """The next Modbus transaction id of the actor's session `key`."""
        self.tids[key] = (self.tids.get(key, 0) + 1) & 0xFFFF
        return self.tids[key]


def _modbus_session(ctx: StepContext, plc: Plc, t: float, pdus: list[tuple[int, bytes]], gap: float,
                    action: int | None = None) -> None:  # fmt: skip
    cap = ctx.cap
    cap.at(t)
    conn = TcpConn(ctx.actor, plc.host, 502, cap.rng)
    cap.add(*conn.handshake())
    for i, (unit, pdu) in enumerate(pdus):
        if i == action:
            ctx.act()
        exchange(cap, conn, ctx.tid(plc.host.ip), unit, pdu, plc, 1.0)
        cap.wait(gap)
    cap.add(*conn.close())


def modbus_unit_sweep(ctx: StepContext, t: float, pace: float, targets: list[Host]) -> list[FollowUp]:
    """FC43/14 Read Device Identification to unit ids 1-247 of each target PLC (one session per PLC)."""
    for plc in ctx.plcs(targets) if targets else ctx.plant.plcs:
        _modbus_session(ctx, plc, t, [(u, b"\x2b\x0e\x01\x00") for u in range(1, 248)], 0.04 * pace)
        t = ctx.cap.now + 2.0 * pace
    return []


def modbus_register_scan(ctx: StepContext, t: float, pace: float, targets: list[Host]) -> list[FollowUp]:
    """Holding registers 0-990 in blocks of 10 (exceptions past the PLC's memory), coils and inputs."""
    for plc in ctx.plcs(targets)[:1]:
        unit = plc.units[0]
        pdus = [(unit, struct.pack(">BHH", 3, a, 10)) for a in range(0, 1000, 10)]
        pdus += [(unit, struct.pack(">BHH", 1, a, 16)) for a in range(0, 64, 16)]
        pdus += [(unit, struct.pack(">BHH", 4, a, 8)) for a in range(0, 32, 8)]
        _modbus_session(ctx, plc, t, pdus, 0.1 * pace)
    return []


def modbus_setpoint_write(ctx: StepContext, t: float, pace: float, targets: list[Host]) -> list[FollowUp]:
    """Read the cooling PLC's setpoint, write 26.0 degC to it (FC6, register 4), read it back."""
    plc = ctx.plcs(targets)[0]
    unit = plc.units[0]
    read = (unit, struct.pack(">BHH", 3, 0, 10))
    _modbus_session(ctx, plc, t, [read, (unit, struct.pack(">BHH", 6, SETPOINT, 260)), read], 1.0 * pace, action=1)
    return []


def _bacnet_ask(ctx: StepContext, dev: BmsDevice, service: int, params: bytes, ack: bytes | None,
                always: bool = False) -> None:  # fmt: skip
    """A confirmed request from the actor and the device's answer (none while it is silent, unless `always`)."""
    inv = ctx.rng.getrandbits(8)
    ctx.cap.add(udp_frame(ctx.actor, dev.host, 47808, 47808, m.confirmed(inv, service, params)))
    if not always and not dev.answers(ctx.cap.now):
        dev.missed.append(ctx.cap.now)
        return
    answer = m.simple_ack(inv, service) if ack is None else m.complex_ack(inv, service, ack)
    ctx.cap.add(udp_frame(dev.host, ctx.actor, 47808, 47808, answer))


def bacnet_who_is_sweep(ctx: StepContext, t: float, pace: float, targets: list[Host]) -> list[FollowUp]:
    """A unicast Who-Is to each of the first 64 addresses of the BMS zone; the controllers answer I-Am."""
    cap, zone = ctx.cap, ctx.layout.profile.bms.zone
    devices = {d.host.ip: d for d in ctx.bms}
    base = ctx.layout.in_zone(zone)[0].ip.rsplit(".", 1)[0]
    for i in range(1, 65):
        ip = f"{base}.{i}"
        cap.at(t + i * 0.25 * pace)
        dev = devices.get(ip)
        dst = dev.host if dev else ctx.chain.host(ip)
        cap.add(udp_frame(ctx.actor, dst, 47808, 47808, m.who_is(broadcast=False)))
        if dev and dev.answers(cap.now):
            cap.add(udp_frame(dev.host, ctx.actor, 47808, 47808, m.i_am(dev.instance, dev.vendor_id, False)))
    return []


def bacnet_device_walk(ctx: StepContext, t: float, pace: float, targets: list[Host]) -> list[FollowUp]:
    """ReadProperty of the object list, then ReadPropertyMultiple of every object's name, value and units."""
    cap = ctx.cap
    for dev in ctx.bacnet(targets):
        cap.at(t)
        ref = m.ctx_objid(0, m.DEVICE, dev.instance) + m.ctx_uint(1, m.OBJECT_LIST)
        _bacnet_ask(ctx, dev, m.READ_PROPERTY, ref, ref + m.open_(3) + dev.object_list() + m.close(3))
        props = [p for p, _ in dev.device_props()]
        walk = [(m.DEVICE, dev.instance, props)]
        walk += [(o.otype, o.instance, [m.OBJECT_NAME, m.PRESENT_VALUE, m.STATUS_FLAGS]) for o in dev.objects]
        for otype, inst, plist in walk:
            cap.wait(0.3 * pace)
            req = m.ctx_objid(0, otype, inst) + m.open_(1) + b"".join(m.ctx_uint(0, p) for p in plist) + m.close(1)
            _bacnet_ask(ctx, dev, m.READ_PROPERTY_MULTIPLE, req, dev.rpm_ack([(otype, inst, plist)]))
        t = cap.now + 3.0 * pace
    return []


def bacnet_write_priority(ctx: StepContext, t: float, pace: float, targets: list[Host]) -> list[FollowUp]:
    """WriteProperty of the chilled-water setpoint (first analog value) to 14.0 degC at priority 1."""
    dev = ctx.bacnet(targets)[0]
    sp = next(o for o in dev.objects if o.otype == m.AV)
    ctx.cap.at(t)
    ref = m.ctx_objid(0, m.AV, sp.instance) + m.ctx_uint(1, m.PRESENT_VALUE)
    _bacnet_ask(ctx, dev, m.READ_PROPERTY, ref, ref + m.open_(3) + sp.pv() + m.close(3))
    ctx.cap.wait(2.0 * pace)
    sp.value = 14.0
    ctx.act()
    _bacnet_ask(ctx, dev, m.WRITE_PROPERTY, ref + m.open_(3) + m.app_real(14.0) + m.close(3) + m.ctx_uint(4, 1), None)
    return []


def bacnet_reinitialize(ctx: StepContext, t: float, pace: float, targets: list[Host]) -> list[FollowUp]:
    """ReinitializeDevice (warm start, password) to a controller; it is silent while it restarts (25 s), loses its
    COV subscriptions and announces itself with I-Am."""
    dev = ctx.bacnet(targets)[0]
    ctx.cap.at(t)
    ctx.act()
    _bacnet_ask(ctx, dev, m.REINITIALIZE, m.ctx_enum(0, 1) + m.ctx_string(1, "admin"), None, always=True)
    down = ctx.cap.now
    dev.restart(down, RESTART_SECONDS)
    ctx.effects.append(Effect("restart", dev, down, down + RESTART_SECONDS))
    ctx.cap.at(down + RESTART_SECONDS)
    bcast = ctx.layout.broadcast[ctx.layout.profile.bms.zone]
    ctx.cap.add(udp_frame(dev.host, bcast, 47808, 47808, m.i_am(dev.instance, dev.vendor_id)))
    return []


def bacnet_dcc(ctx: StepContext, t: float, pace: float, targets: list[Host]) -> list[FollowUp]:
    """DeviceCommunicationControl: disable for 60 minutes, with a password; the controller answers nothing (its
    COV notifications and the front end's polls go unanswered) until the time is up."""
    dev = ctx.bacnet(targets)[0]
    ctx.cap.at(t)
    params = m.ctx_uint(0, DCC_MINUTES) + m.ctx_enum(1, 1) + m.ctx_string(2, "admin")
    ctx.act()
    _bacnet_ask(ctx, dev, m.DCC, params, None, always=True)
    dev.communication_control(ctx.cap.now, "disable", DCC_MINUTES)
    ctx.effects.append(Effect("dcc-disable", dev, ctx.cap.now, dev.comm_until))
    return []


def _mqtt_login(ctx: StepContext, t: float) -> Client:
    mq = ctx.mqtt
    c = Client(ctx.actor, "intruder", 0, ctx.rng)
    ctx.cap.at(t)
    conn = c.conn = TcpConn(ctx.actor, mq.broker, 1883, ctx.cap.rng)
    ctx.cap.add(*conn.handshake())
    client_id = f"mqtt-explorer-{ctx.rng.getrandbits(24):06x}"
    mq.send(ctx.cap, conn, True, connect(client_id, 60, "camera", "axis-0001"))
    mq.send(ctx.cap, conn, False, b"\x20\x02\x00\x00")
    return c


def _mqtt_logout(ctx: StepContext, c: Client) -> None:
    assert c.conn is not None
    ctx.mqtt.send(ctx.cap, c.conn, True, b"\xe0\x00", ack=False)
    ctx.cap.add(*c.conn.close())
    c.conn = None


def mqtt_wildcard_subscribe(ctx: StepContext, t: float, pace: float, targets: list[Host]) -> list[FollowUp]:
    """Log in with a camera's credentials, subscribe to `#` (every retained message arrives at once), listen for
    two minutes (times the pace), disconnect."""
    c = _mqtt_login(ctx, t)
    c.filters = [("#", 0)]
    ctx.mqtt.client_subscribe(ctx.cap, c, c.filters)
    ctx.mqtt.extra.append(c)

    def leave() -> None:
        ctx.mqtt.extra.remove(c)
        ctx.cap.at(t + 120.0 * pace)
        _mqtt_logout(ctx, c)

    return [(t + 120.0 * pace, leave)]


def mqtt_forged_command(ctx: StepContext, t: float, pace: float, targets: list[Host]) -> list[FollowUp]:
    """Publish a forged command to a camera's command topic (QoS 1); the broker forwards it to the camera."""
    cams = [c for c in ctx.mqtt.devices if c.kind == "camera" and c.conn is not None]
    named = {h.ip for h in targets}
    cam = next((c for c in cams if c.host.ip in named), cams[0] if cams else None)
    c = _mqtt_login(ctx, t)
    if cam is not None:
        ctx.cap.wait(1.0 * pace)
        ctx.act()
        ctx.mqtt.client_publish(ctx.cap, c, cam.base + "/cmd", b'{"cmd":"privacy_mask","enable":true}', 1)
    ctx.cap.wait(1.0 * pace)
    _mqtt_logout(ctx, c)
    return []


OT_STEPS: dict[str, tuple[Callable[[StepContext, float, float, list[Host]], list[FollowUp]], tuple[str, ...]]] = {
    "modbus_unit_sweep": (modbus_unit_sweep, ("T0846", "T0888")),
    "modbus_register_scan": (modbus_register_scan, ("T0861", "T0801")),
    "modbus_setpoint_write": (modbus_setpoint_write, ("T0836", "T0855", "T0831")),
    "bacnet_who_is_sweep": (bacnet_who_is_sweep, ("T0846", "T0888")),
    "bacnet_device_walk": (bacnet_device_walk, ("T0888", "T0861")),
    "bacnet_write_priority": (bacnet_write_priority, ("T0836", "T0855")),
    "bacnet_reinitialize": (bacnet_reinitialize, ("T0816",)),
    "bacnet_dcc": (bacnet_dcc, ("T0814", "T0815", "T0804")),
    "mqtt_wildcard_subscribe": (mqtt_wildcard_subscribe, ("T0801", "T0861")),
    "mqtt_forged_command": (mqtt_forged_command, ("T0855",)),
}
"""Step name -> (function, ATT&CK for ICS technique ids)."""
