"""A live-site BMS controller: the bacpypes3 device of simulators.bacnet_device, counting every request it gets.

`python -m simulators.live.bms_device --address 127.60.1.11/8 --instance 1001 --name crah-01 --kind crah --vendor-id 5
--vendor-name "Johnson Controls Inc" --model FX-PCG2611 --firmware 10.1.0 --status DIR/crah-01.json` serves until
SIGTERM (or until the process that started it is gone). Analog inputs walk every `--interval` seconds.

Every APDU the application layer hands up is counted by service and by the sender's IP address. Writes and control
commands (WriteProperty, WritePropertyMultiple, DeviceCommunicationControl, ReinitializeDevice and every other
service that is not a known read, discovery or subscription) are listed in the status file with their sender.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
from pathlib import Path
from typing import Any

from bacpypes3.app import Application
from bacpypes3.local.networkport import NetworkPortObject
from bacpypes3.local.object import Object

from simulators.bacnet_device import (
    KINDS,
    Identity,
    Walker,
    build_device_object,
    build_points,
    identity_from_args,
)
from simulators.live.status import ParentWatch, Status

# services that change nothing on the device (reads, discovery, notifications, subscriptions)
NOT_WRITES = {
    "ReadPropertyRequest", "ReadPropertyMultipleRequest", "ReadRangeRequest", "AtomicReadFileRequest",
    "GetAlarmSummaryRequest", "GetEnrollmentSummaryRequest", "GetEventInformationRequest", "WhoIsRequest",
    "WhoHasRequest", "IAmRequest", "IHaveRequest", "SubscribeCOVRequest", "SubscribeCOVPropertyRequest",
    "ConfirmedCOVNotificationRequest", "UnconfirmedCOVNotificationRequest", "ConfirmedEventNotificationRequest",
    "UnconfirmedEventNotificationRequest",
}  # fmt: skip


def op_name(apdu: Any) -> str:
    """`WritePropertyRequest` -> `write_property` (the service's name as the sensor's logs spell it)."""
    name = type(apdu).__name__.removesuffix("Request")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def detail(apdu: Any) -> str:
    """A short description of a write: object, property, priority (when the service has them)."""
    parts = []
    for attr in ("objectIdentifier", "propertyIdentifier", "priority", "enableDisable", "reinitializedStateOfDevice"):
        value = getattr(apdu, attr, None)
        if value is not None:
            parts.append(f"{attr}={value}")
    return " ".join(parts)


class CountingApplication(Application):
    """A bacpypes3 Application that counts each incoming request by service and sender before serving it."""

    status: Status

    async def indication(self, apdu: Any) -> None:
        """Count, then let bacpypes3 answer."""
        source = getattr(apdu, "pduSource", None)
        sender = str(source).split(":")[0] if source is not None else "?"
        name = type(apdu).__name__
        if name in NOT_WRITES:
            self.status.request(op_name(apdu), sender)
        else:
            self.status.write(op_name(apdu), sender, detail(apdu))
        await super().indication(apdu)


def build_application(identity: Identity, points: list[Object], address: str, status: Status) -> CountingApplication:
    """The counting application on `address` (e.g. `127.60.1.11/8`) serving the device and its points."""
    network_port = NetworkPortObject(
        address,
        objectIdentifier=("network-port", 1),
        objectName="NetworkPort-1",
        networkNumber=0,
        networkNumberQuality="unknown",
    )
    app = CountingApplication.from_object_list([build_device_object(identity), network_port, *points])
    assert isinstance(app, CountingApplication)
    app.status = status
    return app


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGTERM/SIGINT or until orphaned, stepping the analog inputs every `interval` seconds."""
    host = args.address.split("/")[0]
    status = Status(Path(args.status), args.name, "bms", host)
    status.note(instance=args.instance, vendor_id=args.vendor_id, model=args.model, firmware=args.firmware)
    identity = identity_from_args(args)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    points = build_points(args.kind)
    app = build_application(identity, points, args.address, status)
    walker, watch = Walker(points, args.kind, args.instance), ParentWatch()
    status.flush()
    try:
        while not stop.is_set() and not watch.orphaned():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=args.interval)
            walker.step()
            status.tick()
    finally:
        app.close()
        status.stopped()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--address", default="127.60.1.11/8", help="IPv4 address/mask[:port] to serve on")
    parser.add_argument("--instance", type=int, default=1001)
    parser.add_argument("--name", default="crah-01")
    parser.add_argument("--kind", choices=KINDS, default="crah")
    parser.add_argument("--vendor-id", type=int, default=24)
    parser.add_argument("--vendor-name", default=None, help="default: the ASHRAE name of --vendor-id")
    parser.add_argument("--model", default="OptiFlex G5CE")
    parser.add_argument("--firmware", default="7.0.102")
    parser.add_argument("--software", default="1.4.2")
    parser.add_argument("--location", default="Data Hall 1")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between value steps")
    parser.add_argument("--status", required=True, help="the JSON status file to keep")
    asyncio.run(serve(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
