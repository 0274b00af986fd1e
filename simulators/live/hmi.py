"""The live site's SCADA HMI: a pymodbus client bound to its own loopback address, polling every PLC at a fixed period.

`python -m simulators.live.hmi --address 127.50.1.100 --plc 127.50.1.11:502 --plc 127.50.1.12:502 --status
DIR/hmi.json` polls until SIGTERM. Each cycle, for each PLC: read holding registers 0-9, coils 0-15 and input
registers 0-7; every `--identify-every` cycles (the first included) a device identification (FC43/14, basic
objects); every `--write-every` cycles (0: never) one setpoint write (FC6, register 50) to the first PLC, as an
operator would. A PLC that does not answer is retried the next cycle.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from pathlib import Path
from typing import Any

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusException

from simulators.live.status import ParentWatch, Status

SETPOINT_REGISTER = 50


def poll(client: ModbusTcpClient, unit: int, identify: bool) -> dict[str, Any]:
    """One poll of one PLC: the values read (and its FC43 vendor when identifying)."""
    got: dict[str, Any] = {}
    regs = client.read_holding_registers(0, count=10, device_id=unit)
    coils = client.read_coils(0, count=16, device_id=unit)
    inputs = client.read_input_registers(0, count=8, device_id=unit)
    if regs.isError() or coils.isError() or inputs.isError():
        raise ModbusException("exception response to a poll")
    got["registers"] = list(regs.registers)
    if identify:
        ident: Any = client.read_device_information(read_code=1, object_id=0, device_id=unit)
        if ident.isError():
            raise ModbusException("exception response to FC43")
        got["vendor"] = bytes(ident.information.get(0, b"")).decode(errors="replace")
    return got


def run(args: argparse.Namespace) -> None:
    """Poll every `interval` seconds until SIGTERM or orphaned."""
    status = Status(Path(args.status), "hmi", "hmi", args.address)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_a: stop.set())
    clients: dict[str, ModbusTcpClient] = {}
    for target in args.plc:
        host, _, port = target.rpartition(":")
        clients[target] = ModbusTcpClient(host, port=int(port), timeout=2, retries=0,
                                          source_address=(args.address, 0))  # fmt: skip
    watch, cycle, writes, errors = ParentWatch(), 0, 0, 0
    last: dict[str, Any] = {}
    status.flush()
    try:
        while not stop.is_set() and not watch.orphaned():
            identify = cycle % max(1, args.identify_every) == 0
            answered = 0
            for target, client in clients.items():
                try:
                    if not client.connected and not client.connect():
                        raise ModbusException(f"cannot connect to {target}")
                    last[target] = poll(client, args.unit, identify)
                    answered += 1
                except ModbusException:
                    errors += 1
                    client.close()
            if args.write_every and cycle % args.write_every == args.write_every - 1:
                first = clients[args.plc[0]]
                try:
                    if first.connected and not first.write_register(SETPOINT_REGISTER, 180 + cycle % 40,
                                                                    device_id=args.unit).isError():  # fmt: skip
                        writes += 1
                except ModbusException:
                    errors += 1
            cycle += 1
            status.note(cycles=cycle, writes_sent=writes, errors=errors, last=last, answered=answered)
            if identify and answered == len(clients):
                status.note(last_identify=round(time.time(), 3))
                status.flush()
            status.tick()
            stop.wait(args.interval)
    finally:
        for client in clients.values():
            client.close()
        status.stopped()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--address", default="127.50.1.100", help="the HMI's own address (its connections' source)")
    parser.add_argument("--plc", action="append", required=True, help="host:port of a PLC (repeat)")
    parser.add_argument("--unit", type=int, default=1)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between poll cycles")
    parser.add_argument("--identify-every", type=int, default=4, help="cycles between FC43 identifications")
    parser.add_argument("--write-every", type=int, default=6, help="cycles between setpoint writes (0: never)")
    parser.add_argument("--status", required=True, help="the JSON status file to keep")
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
