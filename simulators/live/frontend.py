"""The live site's BMS front end: a bacpypes3 workstation doing what the offline front end does, on real sockets.

`python -m simulators.live.frontend --address 127.15.0.16:47809 --broadcast 127.255.255.255:47808 --device
crah-01:crah:0:SEED@127.15.0.10 ... --interval 30 --status DIR/bms-fe-01.json` runs until SIGTERM.

The pattern is simulators.site.bms.BmsFrontEnd's: a Who-Is (a local broadcast; again each cycle until every
`--device` answered), then for each device a ReadPropertyMultiple of its device object's name, vendor, model,
firmware and application version, a ReadProperty of its weekly schedule, SubscribeCOV on its analog inputs
(unconfirmed) and door contacts (confirmed), lifetime 3600 s, renewed hourly; every `--interval` seconds a
ReadPropertyMultiple of the present value and status flags of each of its objects. Every `--write-every` cycles
(0: never) an operator's WriteProperty of an HVAC setpoint at priority 8; every `--identify-every` cycles (0: only
once) the device objects are read again. COV notifications are counted (confirmed ones acknowledged).

Each device is given as NAME:KIND:INDEX:SEED@ADDRESS, the description its own process gets: the front end rebuilds
the same model (simulators.site.bms.BmsDevice) to know its instance and objects. On loopback the front end must use
another UDP port than the devices' 47808 and send its broadcasts to 127.255.255.255:47808 (see
simulators.bms_frontend); in network namespaces it uses 47808 and its zone's broadcast address.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bacpypes3.apdu import ErrorRejectAbortNack, IAmRequest, SimpleAckPDU, SubscribeCOVRequest, WhoIsRequest
from bacpypes3.app import Application
from bacpypes3.basetypes import Segmentation
from bacpypes3.local.device import DeviceObject
from bacpypes3.pdu import Address, IPv4Address, LocalBroadcast
from bacpypes3.primitivedata import ObjectIdentifier

from simulators.live.bacnet_model import bind_ipv4, model_from_spec
from simulators.live.status import ParentWatch, Status
from simulators.site import bacnet_msgs as m
from simulators.site.bms import COV_LIFETIME, BmsDevice

TYPES = {m.AI: "analog-input", m.AO: "analog-output", m.AV: "analog-value", m.BI: "binary-input",
         m.BO: "binary-output", m.DEVICE: "device", m.SCHEDULE: "schedule"}  # fmt: skip
IDENTITY = ["object-name", "vendor-name", "model-name", "firmware-revision", "application-software-version"]
FAILURES = (Exception, ErrorRejectAbortNack)  # bacpypes3's Error/Reject/Abort derive from BaseException
HVAC = ("crah", "crac", "chiller")


@dataclass
class Device:
    """One controller as the front end knows it: its model, address and state of the session with it."""

    model: BmsDevice
    address: str
    found: bool = False
    identified: bool = False
    subscribed_at: float = 0.0


def parse_device(text: str) -> Device:
    """`NAME:KIND:INDEX:SEED@ADDRESS` -> Device (with its rebuilt model)."""
    spec, _, address = text.partition("@")
    name, kind, index, seed = spec.split(":")
    return Device(model_from_spec(name, kind, int(index), int(seed), address), address)


def oid(otype: int, instance: int) -> str:
    """`analog-input,1`."""
    return f"{TYPES[otype]},{instance}"


class FrontEndApp(Application):
    """A bacpypes3 application that keeps the I-Ams it hears and counts (and acknowledges) COV notifications."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.i_ams: list[IAmRequest] = []
        self.heard = asyncio.Event()
        self.notifications: Counter[str] = Counter()

    async def do_IAmRequest(self, apdu: IAmRequest) -> None:
        """Keep the I-Am and wake the waiter."""
        self.i_ams.append(apdu)
        await self.device_info_cache.set_device_info(apdu)
        self.heard.set()

    async def do_UnconfirmedCOVNotificationRequest(self, apdu: Any) -> None:
        """Count it, by sender."""
        self.notifications[str(apdu.pduSource).split(":")[0]] += 1

    async def do_ConfirmedCOVNotificationRequest(self, apdu: Any) -> None:
        """Count it and acknowledge it."""
        self.notifications[str(apdu.pduSource).split(":")[0]] += 1
        await self.response(SimpleAckPDU(context=apdu))


def frontend_device(name: str, instance: int) -> DeviceObject:
    """The workstation's device object: max APDU 1476, no segmentation (its requests' header, as offline)."""
    return DeviceObject(objectIdentifier=("device", instance), objectName=name, vendorIdentifier=36,
                        vendorName="BMS Front End", modelName="Workstation", maxApduLengthAccepted=1476,
                        segmentationSupported=Segmentation.noSegmentation)  # fmt: skip


def build_app(address: str, broadcast: str, name: str, instance: int) -> FrontEndApp:
    """The workstation's application on `address` (ip[/prefix]:port), its local broadcasts going to `broadcast`."""
    app = FrontEndApp.from_object_list([frontend_device(name, instance)])
    assert isinstance(app, FrontEndApp)
    bind_ipv4(app, address)
    for link in app.link_layers.values():
        link.server.broadcast_address = IPv4Address(broadcast).addrTuple
    return app


class Session:
    """The front end's session with its controllers."""

    def __init__(self, app: FrontEndApp, devices: list[Device], args: argparse.Namespace) -> None:
        self.app, self.devices, self.args = app, devices, args
        self.pids: dict[tuple[str, int, int], int] = {}
        self.reads = self.failures = self.writes = 0

    async def ask(self, coro: Any) -> Any:
        """One confirmed request; its result, or None when it failed (counted)."""
        self.reads += 1
        try:
            return await coro
        except FAILURES:
            self.failures += 1
            return None

    async def discover(self) -> None:
        """A Who-Is (local broadcast); marks the devices whose I-Am arrives within two seconds or the interval."""
        since = len(self.app.i_ams)
        self.app.request(WhoIsRequest(destination=LocalBroadcast()))
        want = {d.model.instance for d in self.devices}
        deadline = time.monotonic() + max(2.0, self.args.interval)
        got = await self._hear(want, deadline, since)
        for d in self.devices:
            d.found = d.found or d.model.instance in got

    async def _hear(self, want: set[int], deadline: float, since: int) -> set[int]:
        while True:
            got = {int(a.iAmDeviceIdentifier[1]) for a in self.app.i_ams[since:]}
            left = deadline - time.monotonic()
            if want <= got or left <= 0:
                return got
            self.app.heard.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.app.heard.wait(), timeout=left)

    async def identify(self, d: Device) -> bool:
        """The device object's identity (one ReadPropertyMultiple) and the weekly schedule; whether all answered."""
        dev = d.model
        got = await self.ask(self.app.read_property_multiple(Address(d.address), [oid(m.DEVICE, dev.instance),
                                                                                  IDENTITY]))  # fmt: skip
        ok = got is not None
        if (m.SCHEDULE, 1) in dev.by_id:
            ok = await self.ask(self.app.read_property(Address(d.address), "schedule,1", "weekly-schedule")) \
                is not None and ok  # fmt: skip
        return ok

    async def subscribe(self, d: Device) -> None:
        """SubscribeCOV on the analog inputs (unconfirmed) and the door contacts (confirmed), 3600 s."""
        for o in d.model.objects:
            door = d.model.kind == "access_control" and o.otype == m.BI
            if o.otype != m.AI and not door:
                continue
            key = (d.address, o.otype, o.instance)
            pid = self.pids.setdefault(key, 100 + len(self.pids))
            request = SubscribeCOVRequest(subscriberProcessIdentifier=pid,
                                          monitoredObjectIdentifier=ObjectIdentifier(oid(o.otype, o.instance)),
                                          issueConfirmedNotifications=door, lifetime=COV_LIFETIME,
                                          destination=Address(d.address))  # fmt: skip
            await self.ask(self.app.request(request))
        d.subscribed_at = time.monotonic()

    async def poll(self, d: Device) -> bool:
        """Present value and status flags of every object, in one ReadPropertyMultiple."""
        refs: list[Any] = []
        for o in d.model.objects:
            refs += [oid(o.otype, o.instance), ["present-value", "status-flags"]]
        return await self.ask(self.app.read_property_multiple(Address(d.address), refs)) is not None

    async def write(self, d: Device, value: float) -> bool:
        """An operator's write of a controller's setpoint (its first analog value) at priority 8."""
        sp = next(o for o in d.model.objects if o.otype == m.AV)
        try:
            await self.app.write_property(Address(d.address), oid(m.AV, sp.instance), "present-value", value,
                                          priority=8)  # fmt: skip
        except FAILURES:
            self.failures += 1
            return False
        self.writes += 1
        sp.value = value
        return True

    async def cycle(self, n: int) -> bool:
        """One cycle; whether every device answered its identification (when it was due)."""
        if not all(d.found for d in self.devices):
            await self.discover()
        again = bool(self.args.identify_every) and n % self.args.identify_every == 0
        identified = True
        for d in self.devices:
            if not d.found:
                identified = False
                continue
            if not d.identified or again:
                d.identified = await self.identify(d)
                identified = identified and d.identified
            if not d.subscribed_at or time.monotonic() - d.subscribed_at >= COV_LIFETIME:
                await self.subscribe(d)
            await self.poll(d)
        hvac = [d for d in self.devices if d.found and d.model.kind in HVAC]
        if hvac and self.args.write_every and n % self.args.write_every == self.args.write_every - 1:
            sp = next(o for o in hvac[0].model.objects if o.otype == m.AV)
            await self.write(hvac[0], round(float(sp.base) + (0.5 if n % 2 else -0.5), 1))  # as offline: +-0.5
        return identified and all(d.identified for d in self.devices)


async def run(args: argparse.Namespace) -> None:
    """Discover, then poll every `interval` seconds until SIGTERM or orphaned."""
    host = args.address.rpartition(":")[0].split("/")[0]
    status = Status(Path(args.status), args.name, "bms-frontend", host)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = build_app(args.address, args.broadcast, args.name, args.instance)
    session = Session(app, args.device, args)
    watch, n = ParentWatch(), 0
    status.flush()
    try:
        while not stop.is_set() and not watch.orphaned():
            identified = await session.cycle(n)
            n += 1
            status.note(cycles=n, devices={str(d.model.instance): d.address for d in args.device if d.found},
                        requests=session.reads, failures=session.failures, writes_sent=session.writes,
                        notifications=dict(app.notifications))  # fmt: skip
            if identified:
                status.note(last_identify=round(time.time(), 3))
                status.flush()
            status.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=args.interval)
    finally:
        app.close()
        status.stopped()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--address", default="127.15.0.16:47809", help="ip[/prefix]:port (not 47808 on loopback)")
    parser.add_argument("--broadcast", default="127.255.255.255:47808", help="where the Who-Is goes")
    parser.add_argument("--name", default="bms-fe-01")
    parser.add_argument("--instance", type=int, default=9001, help="the front end's own device instance")
    parser.add_argument("--device", type=parse_device, action="append", required=True,
                        help="NAME:KIND:INDEX:SEED@ADDRESS of a controller (repeat)")  # fmt: skip
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between poll cycles")
    parser.add_argument("--identify-every", type=int, default=0, help="cycles between identity reads (0: once)")
    parser.add_argument("--write-every", type=int, default=0, help="cycles between setpoint writes (0: never)")
    parser.add_argument("--status", required=True, help="the JSON status file to keep")
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
