"""The live site's SCADA/HMI poller: a pymodbus client bound to its own address, polling its PLCs as offline.

`python -m simulators.live.hmi --address 127.14.0.100 --plc 127.14.0.10:502:1:cooling --plc
127.14.0.12:502:1:power --interval 5 --status DIR/scada-01.json` polls until SIGTERM.

The pattern is the offline poller's (simulators.site.ot.ScadaPoller): one session per PLC, a device identification
(FC43/14, basic objects) on connect, then every `--interval` seconds read holding registers 0-19 (FC3) and coils
0-15 (FC1), and input registers 0-7 (FC4) every sixth cycle. Writes, which offline happen only in maintenance
windows, happen every `--write-every` cycles (0: never): to a cooling PLC the chilled-water setpoint (FC6, register
4, 16.0-20.0 degC) and the lag pump's start (FC5, coil 2), to a power PLC a breaker command (FC5, coil 7).
`--identify-every N` repeats the identification every N cycles (0: only on connect). A PLC that does not answer is
reconnected the next cycle.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusException

from simulators.live.status import ParentWatch, Status
from simulators.site.ot import SETPOINT

FC4_EVERY = 6


@dataclass
class Target:
    """One PLC of the poller: address, port, unit id, kind, its client and what was last read."""

    host: str
    port: int
    unit: int
    kind: str
    client: ModbusTcpClient | None = None
    identified: bool = False
    last: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """host:port."""
        return f"{self.host}:{self.port}"


def parse_target(text: str) -> Target:
    """`host:port:unit:kind` -> Target."""
    host, port, unit, kind = text.rsplit(":", 3)
    if kind not in ("cooling", "power"):
        raise argparse.ArgumentTypeError(f"unknown PLC kind {kind!r} in {text!r}")
    return Target(host, int(port), int(unit), kind)


def identify(client: ModbusTcpClient, unit: int) -> str:
    """FC43/14 basic identification; the vendor name."""
    ident: Any = client.read_device_information(read_code=1, object_id=0, device_id=unit)
    if ident.isError():
        raise ModbusException("exception response to FC43")
    return bytes(ident.information.get(0, b"")).decode(errors="replace")


def poll(client: ModbusTcpClient, unit: int, cycle: int) -> dict[str, Any]:
    """One poll cycle of one PLC: holding registers 0-19, coils 0-15, input registers 0-7 every sixth cycle."""
    regs = client.read_holding_registers(0, count=20, device_id=unit)
    coils = client.read_coils(0, count=16, device_id=unit)
    if regs.isError() or coils.isError():
        raise ModbusException("exception response to a poll")
    got: dict[str, Any] = {"registers": list(regs.registers), "coils": [int(b) for b in coils.bits[:16]]}
    if cycle % FC4_EVERY == FC4_EVERY - 1:
        inputs = client.read_input_registers(0, count=8, device_id=unit)
        if inputs.isError():
            raise ModbusException("exception response to FC4")
        got["inputs"] = list(inputs.registers)
    return got


def write(client: ModbusTcpClient, target: Target, cycle: int) -> int:
    """The operator's writes to one PLC (as in an offline maintenance window); how many were accepted."""
    unit = target.unit
    if target.kind == "cooling":
        setpoint = 160 + 5 * (cycle % 9)  # 16.0 .. 20.0 degC
        done = [client.write_register(SETPOINT, setpoint, device_id=unit), client.write_coil(2, True, device_id=unit)]
    else:
        done = [client.write_coil(7, True, device_id=unit)]
    return sum(not r.isError() for r in done)


def run(args: argparse.Namespace) -> None:
    """Poll every `interval` seconds until SIGTERM or orphaned."""
    status = Status(Path(args.status), args.name, "hmi", args.address)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_a: stop.set())
    targets: list[Target] = args.plc
    watch, cycle, writes, errors = ParentWatch(), 0, 0, 0
    status.flush()
    try:
        while not stop.is_set() and not watch.orphaned():
            again = bool(args.identify_every) and cycle % args.identify_every == 0
            answered = identified = 0
            for t in targets:
                try:
                    if t.client is None or not t.client.connected:
                        t.client = ModbusTcpClient(t.host, port=t.port, timeout=2, retries=0,
                                                   source_address=(args.address, 0))  # fmt: skip
                        if not t.client.connect():
                            raise ModbusException(f"cannot connect to {t.name}")
                        t.identified = False
                    if not t.identified or again:
                        t.last["vendor"] = identify(t.client, t.unit)
                        t.identified = True
                        identified += 1
                    t.last.update(poll(t.client, t.unit, cycle))
                    if args.write_every and cycle % args.write_every == args.write_every - 1:
                        writes += write(t.client, t, cycle)
                    answered += 1
                except ModbusException:
                    errors += 1
                    if t.client is not None:
                        t.client.close()
                    t.client = None
            cycle += 1
            status.note(cycles=cycle, writes_sent=writes, errors=errors, answered=answered,
                        last={t.name: t.last for t in targets})  # fmt: skip
            if answered == len(targets) and identified and all(t.identified for t in targets):
                status.note(last_identify=round(time.time(), 3))
                status.flush()
            status.tick()
            stop.wait(args.interval)
    finally:
        for t in targets:
            if t.client is not None:
                t.client.close()
        status.stopped()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--address", default="127.14.0.100", help="the poller's own address (its connections' source)")
    parser.add_argument("--name", default="scada-01")
    parser.add_argument("--plc", type=parse_target, action="append", required=True,
                        help="host:port:unit:kind of a PLC (repeat)")  # fmt: skip
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between poll cycles")
    parser.add_argument("--identify-every", type=int, default=0, help="cycles between FC43 identifications")
    parser.add_argument("--write-every", type=int, default=0, help="cycles between operator writes (0: never)")
    parser.add_argument("--status", required=True, help="the JSON status file to keep")
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
