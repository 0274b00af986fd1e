"""The offline BACnet bytes are what bacpypes3 puts on the wire (issue 6): the same exchanges made by the offline
site's builders (simulators.site.bms, simulators.site.attacks) and by real bacpypes3 stacks (the live site's
controllers, front end and an attacker's tool: simulators.live.bacnet_model, simulators.live.frontend) on an
in-process virtual LAN (tests/simulators/bacnet_lan.py), from the same device models in the same state, give the
same datagrams. Two fields legitimately differ and are masked: the invoke id (each side numbers its own requests)
and a COV notification's time remaining (offline: packet time, live: the wall clock). Broadcast destinations are
compared as "broadcast" (the zone's broadcast address offline, the LAN's live).

A second test reads the BACnet datagrams of a simulated day (with the intrusion) with bacpypes3 and encodes them
again: the same bytes, for every message type the offline site emits (up to 200 distinct datagrams per sender,
receiver, PDU type and service: the polls repeat a lot).
"""

from __future__ import annotations

import asyncio
import struct
from argparse import Namespace
from collections import Counter
from pathlib import Path
from random import Random
from typing import Any

from bacpypes3.apdu import (
    APDU,
    APCISequence,
    DeviceCommunicationControlRequest,
    ReinitializeDeviceRequest,
    WhoIsRequest,
)
from bacpypes3.app import Application
from bacpypes3.ipv4.bvll import LPCI, pdu_types
from bacpypes3.npdu import NPDU
from bacpypes3.pdu import PDU, Address

from simulators.live.bacnet_model import LiveModel, SiteDevice, build_device
from simulators.live.frontend import IDENTITY, Device, FrontEndApp, Session, frontend_device, oid
from simulators.site import bacnet_msgs as m
from simulators.site import load_profile
from simulators.site.attacks import (
    bacnet_dcc,
    bacnet_device_walk,
    bacnet_reinitialize,
    bacnet_who_is_sweep,
    bacnet_write_priority,
)
from simulators.site.capture import SiteCapture
from simulators.site.simulate import build_world
from tests.simulators.bacnet_lan import Lan, Message

PROFILE = Path(__file__).resolve().parents[2] / "simulators" / "profiles" / "site-small.yml"
SEED = 5
PER_SENDER_AND_SERVICE = 200  # distinct datagrams re-encoded per sender, receiver, PDU type and service


def udp_messages(frames: list[tuple[int, int, bytes]], port: int = 47808) -> list[Message]:
    """(source IP, destination IP, payload) of the UDP datagrams to or from `port` among capture frames."""
    out = []
    for _us, _serial, f in frames:
        if f[12:14] != b"\x08\x00" or f[23] != 17:
            continue
        udp = 14 + (f[14] & 0x0F) * 4
        sport, dport = struct.unpack_from(">HH", f, udp)
        if port in (sport, dport):
            ip = (".".join(map(str, f[26:30])), ".".join(map(str, f[30:34])))
            out.append((ip[0], ip[1], bytes(f[udp + 8 :])))
    return out


def masked(payload: bytes) -> bytes:
    """The payload with its invoke id and a COV notification's time remaining zeroed (see the module docstring)."""
    b = bytearray(payload)
    assert b[0] == 0x81 and b[4] == 0x01 and b[5] & 0x28 == 0, payload.hex()  # BVLC, NPDU without addresses
    apdu = 6
    kind = b[apdu] >> 4
    if kind == 0:
        b[apdu + 2] = 0
    elif kind in (2, 3, 5):
        b[apdu + 1] = 0
    cov = (kind == 0 and b[apdu + 3] == m.CONFIRMED_COV) or (kind == 1 and b[apdu + 1] == m.UNCONFIRMED_COV)
    if cov:
        i = apdu + (4 if kind == 0 else 2)
        i += 1 + (b[i] & 7)  # subscriber process id
        i += 10  # initiating device and monitored object identifiers
        n = b[i] & 7
        assert b[i] >> 4 == 3, payload.hex()
        b[i : i + 1 + n] = b"\x39\x00"  # its value and so its length differ
        b[2:4] = len(b).to_bytes(2, "big")
    return bytes(b)


def same(offline: list[Message], live: list[Message], broadcasts: set[str]) -> None:
    """The two sides sent the same datagrams (as multisets, masked, broadcasts as one address)."""

    def norm(msgs: list[Message]) -> Counter[tuple[str, str, str]]:
        return Counter((s, "broadcast" if d in broadcasts else d, masked(p).hex()) for s, d, p in msgs)

    off, on = norm(offline), norm(live)
    assert off == on, {"offline only": off - on, "bacpypes3 only": on - off}
    assert off, "no traffic compared"


class Sites:
    """One offline world (its BMS front end, controllers and attack context) and the same site in bacpypes3."""

    def __init__(self, tmp: Path) -> None:
        profile = load_profile(PROFILE)
        rng = Random(SEED)
        self.cap = SiteCapture(Random(rng.getrandbits(64)), round(profile.start_ts() * 1e6), tmp / "w.pcap")
        self.world = build_world(profile, rng, self.cap)
        self.fe = self.world.front_end
        self.t = profile.start_ts() + 3600.0
        self.lan = Lan()
        self.apps: dict[str, SiteDevice] = {}
        self.live: dict[str, LiveModel] = {}
        for dev in self.fe.devices:
            device, objects = build_device(dev)
            app = SiteDevice.from_object_list([device, *objects])
            assert isinstance(app, SiteDevice)
            app.restart_seconds = 0.05
            self.lan.attach(app, dev.host.ip)
            self.apps[dev.host.name], self.live[dev.host.name] = app, LiveModel(dev, objects)
        fe_device = frontend_device(self.fe.host.name, 9001)
        fe_device.apduTimeout = 50  # ms: the unanswered polls' retries come quickly (the bytes are compared)
        fe_app = FrontEndApp.from_object_list([fe_device])
        assert isinstance(fe_app, FrontEndApp)
        self.lan.attach(fe_app, self.fe.host.ip)
        self.devices = [Device(dev, dev.host.ip) for dev in self.fe.devices]
        self.session = Session(fe_app, self.devices, Namespace(interval=0.1, identify_every=0))
        self.attacker = Application.from_object_list([frontend_device("attacker", 9999)])
        self.broadcasts = {self.world.ctx.layout.broadcast["bms"].ip, str(self.lan.net.broadcast_address)}

    def device(self, name: str) -> Device:
        """The front end's view of a controller."""
        return next(d for d in self.devices if d.model.host.name == name)

    def offline(self, action: Any) -> list[Message]:
        """The datagrams an offline action writes into the capture."""
        mark = len(self.cap.frames)
        action()
        self.t = self.cap.now + 60.0
        return udp_messages(self.cap.frames[mark:])

    async def bacpypes3(self, action: Any) -> list[Message]:
        """The datagrams a bacpypes3 action puts on the LAN."""
        mark = self.lan.mark()
        await action()
        await self.lan.settle()
        return self.lan.log[mark:]


async def exchanges(tmp: Path) -> None:
    s = Sites(tmp)
    fe, ctx = s.fe, s.world.ctx
    session, attacker = s.session, s.attacker

    # discovery: Who-Is, I-Am, device identity (RPM), weekly schedule (RP), SubscribeCOV and first notifications
    offline = s.offline(lambda: fe._discover(s.cap, s.t))

    async def discover() -> None:
        await session.discover()
        for d in s.devices:
            assert await session.identify(d)
            await session.subscribe(d)

    same(offline, await s.bacpypes3(discover), s.broadcasts)

    # a poll cycle of every controller (the model moves; the live objects take its values), with the notifications
    for i, d in enumerate(s.devices):
        offline = s.offline(lambda i=i, d=d: fe._poll(s.cap, i, d.model, s.t))

        async def poll(d: Device = d) -> None:
            s.live[d.model.host.name].sync()
            assert await session.poll(d)

        same(offline, await s.bacpypes3(poll), s.broadcasts)

    # an operator's setpoint write at priority 8
    offline = s.offline(lambda: fe._act(s.cap, s.t, "write", 0.5))
    target = next(d for d in s.devices if any(dst == d.address for _s, dst, _p in offline))
    sp = next(o for o in target.model.objects if o.otype == m.AV)
    same(offline, await s.bacpypes3(lambda: session.write(target, float(sp.value))), s.broadcasts)

    # the intruder (a bacpypes3 tool on the intruder's address): a device walk and a priority-1 write on the chiller,
    # a unicast Who-Is to each controller
    s.lan.attach(attacker, ctx.actor.ip)
    chiller = s.device("chiller-01")
    offline = s.offline(lambda: bacnet_device_walk(ctx, s.t, 0.01, [chiller.model.host]))

    async def walk() -> None:
        dev, where = chiller.model, Address(chiller.address)
        await attacker.read_property(where, oid(m.DEVICE, dev.instance), "object-list")
        await attacker.read_property_multiple(where, [oid(m.DEVICE, dev.instance), IDENTITY])
        for o in dev.objects:
            await attacker.read_property_multiple(where, [oid(o.otype, o.instance), ["object-name", "present-value",
                                                                                     "status-flags"]])  # fmt: skip

    same(offline, await s.bacpypes3(walk), s.broadcasts)
    offline = s.offline(lambda: bacnet_write_priority(ctx, s.t, 0.01, [chiller.model.host]))

    async def write_priority() -> None:
        sp_oid = oid(m.AV, next(o for o in chiller.model.objects if o.otype == m.AV).instance)
        await attacker.read_property(Address(chiller.address), sp_oid, "present-value")
        await attacker.write_property(Address(chiller.address), sp_oid, "present-value", 14.0, priority=1)

    same(offline, await s.bacpypes3(write_priority), s.broadcasts)
    ips = {d.address for d in s.devices}
    offline = [msg for msg in s.offline(lambda: bacnet_who_is_sweep(ctx, s.t, 0.01, [])) if ips & {msg[0], msg[1]}]

    async def sweep() -> None:
        for d in s.devices:
            attacker.request(WhoIsRequest(destination=Address(d.address)))

    same(offline, await s.bacpypes3(sweep), s.broadcasts)

    # ReinitializeDevice: acknowledged, silence, then an I-Am broadcast
    crah = s.device("crah-01")
    offline = s.offline(lambda: bacnet_reinitialize(ctx, s.t, 1.0, [crah.model.host]))

    async def reinitialize() -> None:
        await attacker.request(ReinitializeDeviceRequest(reinitializedStateOfDevice="warmstart", password="admin",
                                                         destination=Address(crah.address)))  # fmt: skip
        await asyncio.sleep(0.2)  # the restart (0.05 s) and its I-Am

    same(offline, await s.bacpypes3(reinitialize), s.broadcasts)

    # DeviceCommunicationControl disable: acknowledged, then the front end's poll goes unanswered (sent four times)
    crah2 = s.device("crah-02")
    index = s.devices.index(crah2)
    offline = s.offline(lambda: bacnet_dcc(ctx, s.t, 1.0, [crah2.model.host]))
    offline += s.offline(lambda: fe._poll(s.cap, index, crah2.model, s.t))

    async def dcc() -> None:
        await attacker.request(DeviceCommunicationControlRequest(timeDuration=60, enableDisable="disable",
                                                                 password="admin", destination=Address(crah2.address)))
        assert not await session.poll(crah2)

    same(offline, await s.bacpypes3(dcc), s.broadcasts)
    assert sum(dst == crah2.address for _s, dst, _p in offline) == 5  # the DCC and the poll, four times


def test_offline_bacnet_exchanges_are_what_bacpypes3_stacks_send(tmp_path: Path) -> None:
    asyncio.run(exchanges(tmp_path))


def reencode(payload: bytes) -> tuple[str, bytes]:
    """(service name, bytes) of a UDP payload decoded by bacpypes3 down to the service's fields (BVLL, NPDU, APDU,
    then the service's sequence) and encoded again by bacpypes3."""
    pdu = PDU(payload)
    lpci = LPCI.decode(pdu)
    lpdu = pdu_types[lpci.bvlciFunction].decode(pdu)
    npdu = NPDU.decode(PDU(bytes(lpdu.pduData)))
    apdu = APDU.decode(npdu)
    service = APCISequence.decode(apdu) if apdu.apduType in (0, 1, 3, 5) else apdu  # acks, rejects: their header
    again = NPDU(bytes(service.encode().encode().pduData) if apdu.apduType in (0, 1, 3, 5)
                 else bytes(service.encode().pduData))  # fmt: skip
    again.pduExpectingReply, again.pduNetworkPriority = npdu.pduExpectingReply, npdu.pduNetworkPriority
    message = pdu_types[lpci.bvlciFunction](bytes(again.encode().pduData))
    return type(service).__name__, bytes(message.encode().pduData)


def test_bacpypes3_decodes_and_encodes_every_offline_datagram_to_the_same_bytes(wire_day: dict[str, Any]) -> None:
    seen: set[bytes] = set()
    kinds: Counter[str] = Counter()
    per_key: Counter[tuple[str, str, int, int]] = Counter()
    for src, dst, payload in wire_day["bacnet"]:
        apdu = payload[6]
        key = (src, dst, apdu >> 4, payload[6 + (3, 1, 2, 2)[apdu >> 4]] if apdu >> 4 < 4 else 0)  # PDU type, service
        if payload in seen or per_key[key] >= PER_SENDER_AND_SERVICE:
            continue
        per_key[key] += 1
        seen.add(payload)
        name, again = reencode(payload)
        assert again == payload, (name, payload.hex(), again.hex())
        kinds[name] += 1
    print(f"\nbacpypes3 read and wrote again {len(seen)} distinct datagrams of {len(wire_day['bacnet'])}: "
          f"{dict(sorted(kinds.items()))}")
    want = {"WhoIsRequest", "IAmRequest", "ReadPropertyRequest", "ReadPropertyACK", "ReadPropertyMultipleRequest",
            "ReadPropertyMultipleACK", "SubscribeCOVRequest", "SimpleAckPDU", "ConfirmedCOVNotificationRequest",
            "UnconfirmedCOVNotificationRequest", "WritePropertyRequest", "ReinitializeDeviceRequest",
            "DeviceCommunicationControlRequest"}  # fmt: skip
    assert want <= set(kinds), want - set(kinds)
