"""A BMS front end (workstation) doing one scripted BACnet/IP session with bacpypes3, then printing a JSON summary.

`python -m simulators.bms_frontend --address 127.0.0.10:47809 --broadcast 127.255.255.255:47808 --expect 2
--range 1000-1999` runs, in this order: a global Who-Is (waits for `--expect` devices, bounded by `--timeout`), a
ranged Who-Is (waits for the devices of the first pass that fall in the range), then for each device by instance:
ReadProperty of the device object's object-name, vendor-name, model-name, firmware-revision,
application-software-version, location and object-list, one ReadPropertyMultiple of present-value, units and
object-name of its analog inputs and values; then one WriteProperty of analog-value,1 present-value at priority 8 on
the first device (or `--write-device`) and a ReadProperty of it back; optionally (`--cov`) a SubscribeCOV to that
device's analog-input,1, waiting for the first notification, then cancelling it. The summary (stdout) lists every
value read; the exit status is 0 when every expected device answered and no request failed.

On loopback the front end must use another UDP port than the devices' 47808 (bacpypes3 short-circuits any unicast to
127.* on its own port), and its broadcasts must go to 127.255.255.255:47808 (`--broadcast`), not to its own port.
bacpypes3's `who_is()` is not used: without a range it waits its whole timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from bacpypes3.apdu import ErrorRejectAbortNack, IAmRequest, WhoIsRequest
from bacpypes3.app import Application
from bacpypes3.basetypes import PriorityValue
from bacpypes3.local.device import DeviceObject
from bacpypes3.local.networkport import NetworkPortObject
from bacpypes3.pdu import Address, GlobalBroadcast, IPv4Address, LocalBroadcast
from bacpypes3.primitivedata import BitString, Boolean, Enumerated, ObjectIdentifier, ObjectType

DEVICE_PROPERTIES = (
    "object-name",
    "vendor-name",
    "model-name",
    "firmware-revision",
    "application-software-version",
    "location",
)
POINT_TYPES = ("analog-input", "analog-value")
POINT_PROPERTIES = ("present-value", "units", "object-name")
COV_PROPERTIES = {"present-value", "status-flags"}  # what a COV notification of an analog object carries
SETPOINT = "analog-value,1"
# what a failed request raises: bacpypes3's Error/Reject/Abort derive from BaseException, timeouts from Exception
FAILURES = (Exception, ErrorRejectAbortNack)


def plain(value: Any) -> Any:
    """A JSON-ready rendering of a bacpypes3 value: numbers, strings, lists, `type,instance` for object ids."""
    if value is None:
        return None
    if isinstance(value, PriorityValue):
        return None if value._choice in (None, "null") else plain(getattr(value, value._choice))
    if isinstance(value, ObjectIdentifier) or (
        isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], ObjectType)
    ):
        return f"{value[0]},{value[1]}"
    if isinstance(value, Enumerated):
        return str(value)
    if isinstance(value, BitString):
        return [int(bit) for bit in value]
    if isinstance(value, Boolean | bool):
        return bool(value)
    if isinstance(value, float):
        return round(float(value), 4)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return str(value)


def error_text(err: BaseException) -> str:
    """A short description of a failed request (bacpypes3 Error/Reject/Abort or a timeout)."""
    return f"{type(err).__name__}: {err}"


class FrontEnd(Application):
    """A bacpypes3 application that keeps every I-Am it hears and counts the confirmed requests it sends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.i_ams: list[IAmRequest] = []
        self.heard = asyncio.Event()
        self.confirmed = 0

    async def do_IAmRequest(self, apdu: IAmRequest) -> None:
        """Keep the I-Am (and its device info, for later requests) and wake the waiter."""
        self.i_ams.append(apdu)
        await self.device_info_cache.set_device_info(apdu)
        self.heard.set()

    async def hear(self, done: Callable[[set[int]], bool], deadline: float, since: int) -> set[int]:
        """The device instances heard in I-Ams after index `since`, once `done(them)` holds or at `deadline`."""
        while True:
            got = {int(a.iAmDeviceIdentifier[1]) for a in self.i_ams[since:]}
            left = deadline - time.monotonic()
            if done(got) or left <= 0:
                return got
            self.heard.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.heard.wait(), timeout=left)


def build_frontend(address: str, broadcast: str, instance: int, name: str, vendor_id: int) -> FrontEnd:
    """The workstation's bacpypes3 application on `address` (ip:port), its broadcasts going to `broadcast`.

    Given no mask, bacpypes3 opens no broadcast listener and has no broadcast address; setting the datagram server's
    broadcast address makes Who-Is go out as true Original-Broadcast-NPDUs to the devices' port.
    """
    device = DeviceObject(
        objectIdentifier=("device", instance),
        objectName=name,
        vendorIdentifier=vendor_id,
        vendorName="BMS Front End",
        modelName="Workstation",
    )
    port = NetworkPortObject(address, objectIdentifier=("network-port", 1), objectName="NetworkPort-1")
    app = FrontEnd.from_object_list([device, port])
    assert isinstance(app, FrontEnd)
    for link_layer in app.link_layers.values():
        link_layer.server.broadcast_address = IPv4Address(broadcast).addrTuple
    return app


async def discover(app: FrontEnd, args: argparse.Namespace) -> dict[str, Any]:
    """The global then the local ranged Who-Is; returns what each heard as {instance: {address, vendor_id, ...}}."""
    since = len(app.i_ams)
    app.request(WhoIsRequest(destination=GlobalBroadcast()))
    heard = await app.hear(lambda got: len(got) >= args.expect > 0, time.monotonic() + args.timeout, since)
    global_i_ams = app.i_ams[since:]
    low, high = args.range
    since = len(app.i_ams)
    ranged = WhoIsRequest(destination=LocalBroadcast())
    ranged.deviceInstanceRangeLowLimit, ranged.deviceInstanceRangeHighLimit = low, high
    app.request(ranged)
    wanted = {i for i in heard if low <= i <= high}
    await app.hear(lambda got: bool(wanted) and wanted <= got, time.monotonic() + args.timeout, since)
    ranged_i_ams = app.i_ams[since:]
    devices: dict[int, dict[str, Any]] = {}
    for i_am in global_i_ams:
        devices[int(i_am.iAmDeviceIdentifier[1])] = {
            "instance": int(i_am.iAmDeviceIdentifier[1]),
            "address": str(i_am.pduSource),
            "vendor_id": int(i_am.vendorID),
            "max_apdu": int(i_am.maxAPDULengthAccepted),
            "segmentation": str(i_am.segmentationSupported),
        }
    return {
        "global": sorted({int(a.iAmDeviceIdentifier[1]) for a in global_i_ams}),
        "ranged": sorted({int(a.iAmDeviceIdentifier[1]) for a in ranged_i_ams}),
        "range": [low, high],
        "devices": devices,
    }


async def read(app: FrontEnd, address: Address, oid: str, prop: str, errors: list[str]) -> Any:
    """One ReadProperty; the value, or None with the failure noted in `errors`."""
    app.confirmed += 1
    try:
        return await app.read_property(address, oid, prop)
    except FAILURES as err:
        errors.append(f"{address} {oid} {prop}: {error_text(err)}")
        return None


async def survey(app: FrontEnd, device: dict[str, Any], errors: list[str]) -> None:
    """Read the device object's identity properties, its object list, then its analog points in one RPM."""
    address = Address(device["address"])
    oid = f"device,{device['instance']}"
    device["properties"] = {p: plain(await read(app, address, oid, p, errors)) for p in DEVICE_PROPERTIES}
    objects = await read(app, address, oid, "object-list", errors) or []
    device["object_list"] = [plain(o) for o in objects]
    points = [p for p in device["object_list"] if p.split(",")[0] in POINT_TYPES]
    device["points"] = {}
    if not points:
        return
    request: list[Any] = []
    for point in points:
        request += [point, list(POINT_PROPERTIES)]
    app.confirmed += 1
    try:
        results = await app.read_property_multiple(address, request)
    except FAILURES as err:
        errors.append(f"{address} read-property-multiple: {error_text(err)}")
        return
    for obj, prop, _index, value in results:
        device["points"].setdefault(plain(obj), {})[str(prop)] = plain(value)


async def write_setpoint(app: FrontEnd, device: dict[str, Any], args: argparse.Namespace, errors: list[str]) -> dict:
    """WriteProperty of the setpoint's present-value at the given priority, then read it and its slot back."""
    address = Address(device["address"])
    out: dict[str, Any] = {"device": device["instance"], "object": SETPOINT, "value": args.write_value,
                           "priority": args.priority}  # fmt: skip
    app.confirmed += 1
    try:
        await app.write_property(address, SETPOINT, "present-value", args.write_value, priority=args.priority)
        out["ok"] = True
    except FAILURES as err:
        errors.append(f"{address} write-property: {error_text(err)}")
        out["ok"] = False
    out["readback"] = plain(await read(app, address, SETPOINT, "present-value", errors))
    slots = await read(app, address, SETPOINT, "priority-array", errors) or []
    out["priority_array"] = [plain(s) for s in slots]
    return out


async def subscribe(app: FrontEnd, device: dict[str, Any], args: argparse.Namespace, errors: list[str]) -> dict:
    """SubscribeCOV (confirmed notifications) to analog-input,1; wait for the first notification; cancel."""
    address = Address(device["address"])
    out: dict[str, Any] = {"device": device["instance"], "object": "analog-input,1", "values": {}}
    app.confirmed += 2  # the subscription and its cancellation
    try:
        async with app.change_of_value(address, ObjectIdentifier("analog-input,1"), 17, True, 60) as scm:
            while not out["values"].keys() >= COV_PROPERTIES:
                prop, value = await asyncio.wait_for(scm.get_value(), timeout=args.timeout)
                out["values"][str(prop)] = plain(value)
    except FAILURES as err:
        errors.append(f"{address} subscribe-cov: {error_text(err)}")
    return out


async def session(args: argparse.Namespace) -> dict[str, Any]:
    """The whole scripted session; returns the summary."""
    app = build_frontend(args.address, args.broadcast, args.instance, args.name, args.vendor_id)
    errors: list[str] = []
    summary: dict[str, Any] = {"frontend": {"address": args.address, "instance": args.instance}}
    try:
        who_is = await discover(app, args)
        found = who_is.pop("devices")
        devices = [found[i] for i in sorted(found)]
        summary["who_is"] = who_is
        if len(devices) < args.expect:
            errors.append(f"heard {len(devices)} of {args.expect} expected devices")
        for device in devices:
            await survey(app, device, errors)
        summary["devices"] = devices
        targets = [d for d in devices if args.write_device in (None, d["instance"])]
        targets = [d for d in targets if SETPOINT in d.get("object_list", ())]
        if targets:
            summary["write"] = await write_setpoint(app, targets[0], args, errors)
            if args.cov:
                summary["cov"] = await subscribe(app, targets[0], args, errors)
        elif devices:
            errors.append(f"no device with {SETPOINT} to write")
    finally:
        app.close()
    summary["confirmed_requests"] = app.confirmed
    summary["i_ams"] = len(app.i_ams)
    summary["errors"] = errors
    return summary


def instance_range(text: str) -> tuple[int, int]:
    """`LOW-HIGH` as a pair of device instances."""
    low, _, high = text.partition("-")
    return int(low), int(high)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--address", default="127.0.0.10:47809", help="ip:port of the front end (not 47808 on lo)")
    parser.add_argument("--broadcast", default="127.255.255.255:47808", help="where the Who-Is broadcasts go")
    parser.add_argument("--instance", type=int, default=9001, help="the front end's own device instance")
    parser.add_argument("--name", default="BMS-WS-01")
    parser.add_argument("--vendor-id", type=int, default=36)
    parser.add_argument("--expect", type=int, default=0, help="devices to wait for (0: wait the whole timeout)")
    parser.add_argument("--range", type=instance_range, default=(1000, 1999), help="LOW-HIGH of the ranged Who-Is")
    parser.add_argument("--write-device", type=int, default=None, help="instance whose setpoint to write")
    parser.add_argument("--write-value", type=float, default=21.5)
    parser.add_argument("--priority", type=int, default=8)
    parser.add_argument("--cov", action="store_true", help="also subscribe to COV of the target's analog-input,1")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for I-Ams, per Who-Is")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: run the session, print the summary as JSON."""
    args = parse_args(argv)
    summary = asyncio.run(session(args))
    json.dump(summary, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
