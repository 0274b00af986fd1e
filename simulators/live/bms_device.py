"""A live-site BMS controller: a bacpypes3 device rendering the offline controller model, counting every request.

`python -m simulators.live.bms_device --address 127.15.0.10/8 --name crah-01 --kind crah --index 0 --seed 123
--instance 2087 --status DIR/crah-01.json` serves until SIGTERM (or until the process that started it is gone).

The controller is simulators.site.bms.BmsDevice(kind, index, Random(seed)), the model `otwatch simulate` uses (the
live plan passes the same seed, and `--instance` is checked against the model's): its device object (instance,
name, vendor, model, firmware), its analog inputs and values, binary inputs and outputs and its weekly schedule
(simulators.live.bacnet_model). The analog inputs follow the IT load on the wall clock, stepped every `--interval`
seconds. It answers DeviceCommunicationControl and ReinitializeDevice as the offline model does (a restart is
`--restart-seconds` of silence, then an I-Am).

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
import time
from pathlib import Path
from typing import Any

from bacpypes3.local.object import Object

from simulators.live.bacnet_model import LiveModel, SiteDevice, bind_ipv4, build_device, model_from_spec
from simulators.live.status import ParentWatch, Status

KINDS = ("crah", "crac", "chiller", "power_meter", "access_control")

# services that change nothing on the device (reads, discovery, notifications, subscriptions)
NOT_WRITES = {
    "ReadPropertyRequest", "ReadPropertyMultipleRequest", "ReadRangeRequest", "AtomicReadFileRequest",
    "GetAlarmSummaryRequest", "GetEnrollmentSummaryRequest", "GetEventInformationRequest", "WhoIsRequest",
    "WhoHasRequest", "IAmRequest", "IHaveRequest", "SubscribeCOVRequest", "SubscribeCOVPropertyRequest",
    "ConfirmedCOVNotificationRequest", "UnconfirmedCOVNotificationRequest", "ConfirmedEventNotificationRequest",
    "UnconfirmedEventNotificationRequest",
}  # fmt: skip


def op_name(apdu: Any) -> str:
    """`WritePropertyRequest` -> `write_property`, `SubscribeCOVRequest` -> `subscribe_cov` (the service's name as
    the sensor's logs spell it)."""
    name = type(apdu).__name__.removesuffix("Request")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def detail(apdu: Any) -> str:
    """A short description of a write: object, property, priority (when the service has them)."""
    parts = []
    for attr in ("objectIdentifier", "propertyIdentifier", "priority", "enableDisable", "reinitializedStateOfDevice"):
        value = getattr(apdu, attr, None)
        if value is not None:
            parts.append(f"{attr}={value}")
    return " ".join(parts)


class CountingApplication(SiteDevice):
    """The controller's application, counting each incoming request by service and sender before serving it."""

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


def build_application(device: Object, points: list[Object], address: str, status: Status) -> CountingApplication:
    """The counting application on `address` (e.g. `127.15.0.10/8`) serving the device and its points."""
    app = CountingApplication.from_object_list([device, *points])
    assert isinstance(app, CountingApplication)
    bind_ipv4(app, address)
    app.status = status
    return app


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGTERM/SIGINT or until orphaned, stepping the analog inputs every `interval` seconds."""
    host = args.address.split("/")[0]
    model = model_from_spec(args.name, args.kind, args.index, args.seed, host)
    if args.instance is not None and args.instance != model.instance:
        raise SystemExit(f"{args.name}: the model's instance is {model.instance}, not --instance {args.instance}")
    status = Status(Path(args.status), args.name, "bms", host)
    status.note(instance=model.instance, vendor_id=model.vendor_id, model=model.model, firmware=model.firmware)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    device, points = build_device(model)
    live = LiveModel(model, points)
    live.step(time.time())
    app = build_application(device, points, args.address, status)
    app.restart_seconds = args.restart_seconds
    watch = ParentWatch()
    status.flush()
    try:
        while not stop.is_set() and not watch.orphaned():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=args.interval)
            live.step(time.time())
            status.tick()
    finally:
        app.close()
        status.stopped()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--address", default="127.15.0.10/8", help="IPv4 address/mask[:port] to serve on")
    parser.add_argument("--name", default="crah-01")
    parser.add_argument("--kind", choices=KINDS, default="crah")
    parser.add_argument("--index", type=int, default=0, help="the controller's position in the profile")
    parser.add_argument("--seed", type=int, default=0, help="the seed of the model's stream")
    parser.add_argument("--instance", type=int, default=None, help="the instance expected of the model")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between value steps")
    parser.add_argument("--restart-seconds", type=float, default=25.0, help="silence after a ReinitializeDevice")
    parser.add_argument("--status", required=True, help="the JSON status file to keep")
    asyncio.run(serve(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
