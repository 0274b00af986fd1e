"""The live site's BMS front end: a bacpypes3 workstation that discovers the devices and polls them at a fixed period.

`python -m simulators.live.frontend --address 127.60.1.100:47809 --broadcast 127.255.255.255:47808 --expect 3
--status DIR/bms-frontend.json` polls until SIGTERM. It sends a global Who-Is (again each cycle until `--expect`
devices answered), then each cycle reads present-value of analog-input,1 of every device; every `--identify-every`
cycles (the first included) it reads the device object's object-name, vendor-name, model-name and firmware-revision;
every `--write-every` cycles (0: never) it writes the setpoint (analog-value,1 present-value, priority 8) of the
device with the lowest instance, as an operator would. The client is simulators.bms_frontend's (see its notes on
ports and broadcasts on loopback).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from pathlib import Path
from typing import Any

from bacpypes3.apdu import WhoIsRequest
from bacpypes3.pdu import Address, GlobalBroadcast

from simulators.bms_frontend import FAILURES, FrontEnd, build_frontend, plain
from simulators.live.status import ParentWatch, Status

IDENTITY = ("object-name", "vendor-name", "model-name", "firmware-revision")
SETPOINT = "analog-value,1"


async def read(app: FrontEnd, address: str, oid: str, prop: str) -> Any:
    """One ReadProperty; the plain value, or None when it failed."""
    try:
        return plain(await app.read_property(Address(address), oid, prop))
    except FAILURES:
        return None


async def discover(app: FrontEnd, expect: int, timeout: float, devices: dict[int, str]) -> None:
    """A global Who-Is; adds the devices heard (instance -> address) to `devices`."""
    since = len(app.i_ams)
    app.request(WhoIsRequest(destination=GlobalBroadcast()))
    await app.hear(lambda got: len(got | set(devices)) >= expect, time.monotonic() + timeout, since)
    for i_am in app.i_ams[since:]:
        devices[int(i_am.iAmDeviceIdentifier[1])] = str(i_am.pduSource)


async def cycle_once(app: FrontEnd, devices: dict[int, str], identify: bool, write: float | None) -> dict[str, Any]:
    """One poll cycle over the known devices; returns what was read (and whether every read answered)."""
    seen: dict[str, Any] = {}
    ok = True
    for instance in sorted(devices):
        address = devices[instance]
        got: dict[str, Any] = {"present-value": await read(app, address, "analog-input,1", "present-value")}
        if identify:
            for prop in IDENTITY:
                got[prop] = await read(app, address, f"device,{instance}", prop)
        ok = ok and all(v is not None for v in got.values())
        seen[str(instance)] = got
    if write is not None and devices:
        target = devices[min(devices)]
        try:
            await app.write_property(Address(target), SETPOINT, "present-value", write, priority=8)
            seen["write"] = True
        except FAILURES:
            seen["write"] = False
            ok = False
    seen["ok"] = ok
    return seen


async def run(args: argparse.Namespace) -> None:
    """Discover, then poll every `interval` seconds until SIGTERM or orphaned."""
    host = args.address.rpartition(":")[0]
    status = Status(Path(args.status), "bms-frontend", "bms-frontend", host)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = build_frontend(args.address, args.broadcast, args.instance, args.name, args.vendor_id)
    devices: dict[int, str] = {}
    watch, cycle, writes = ParentWatch(), 0, 0
    status.flush()
    try:
        while not stop.is_set() and not watch.orphaned():
            if len(devices) < args.expect:
                await discover(app, args.expect, args.interval * 2, devices)
            identify = cycle % max(1, args.identify_every) == 0
            write = None
            if args.write_every and cycle % args.write_every == args.write_every - 1:
                write = 20.0 + cycle % 5
            seen = await cycle_once(app, devices, identify, write)
            writes += bool(seen.get("write"))
            cycle += 1
            status.note(cycles=cycle, devices={str(i): a for i, a in devices.items()}, writes_sent=writes, last=seen)
            if identify and seen["ok"] and len(devices) >= args.expect:
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
    parser.add_argument("--address", default="127.60.1.100:47809", help="ip:port (not 47808 on loopback)")
    parser.add_argument("--broadcast", default="127.255.255.255:47808")
    parser.add_argument("--instance", type=int, default=9001)
    parser.add_argument("--name", default="bms-fe-01")
    parser.add_argument("--vendor-id", type=int, default=36)
    parser.add_argument("--expect", type=int, default=1, help="devices to discover")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between poll cycles")
    parser.add_argument("--identify-every", type=int, default=3, help="cycles between identity reads")
    parser.add_argument("--write-every", type=int, default=5, help="cycles between setpoint writes (0: never)")
    parser.add_argument("--status", required=True, help="the JSON status file to keep")
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
