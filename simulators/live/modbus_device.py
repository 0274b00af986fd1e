"""A live-site PLC: a real pymodbus TCP server with an FC43 identity, evolving registers and a request counter.

`python -m simulators.live.modbus_device --address 127.50.1.11 --port 502 --name plc-crah-01 --vendor Siemens
--product-code "6ES7 315-2EH14-0AB0" --revision V3.2.17 --model "SIMATIC S7-300" --status DIR/plc-crah-01.json`
serves until SIGTERM (or until the process that started it is gone).

Data: coils 0-31 (pump and fan commands), discrete inputs 0-15, holding registers 0-99 (temperatures and setpoints
in tenths of a degree; registers 0-9 walk by a seeded random step every `--interval` seconds), input registers 0-49.

Every request frame is counted by function code and by the sender's IP address, from the raw MBAP frames pymodbus
consumed (so even a function code pymodbus cannot decode is counted). Writes and control commands (FC 5, 6, 15,
16, 22, 23, FC8 sub-functions other than return-query-data, and any function code that is not a known read) are
listed in the status file with their sender; see simulators.live.status.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import struct
from pathlib import Path
from random import Random
from typing import Any

from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice

from simulators.live.status import ParentWatch, Status
from simulators.plc import build_identity

READS = {
    1: "read_coils",
    2: "read_discrete_inputs",
    3: "read_holding_registers",
    4: "read_input_registers",
    7: "read_exception_status",
    11: "get_comm_event_counter",
    12: "get_comm_event_log",
    17: "report_server_id",
    20: "read_file_record",
    24: "read_fifo_queue",
    43: "read_device_identification",
}
WRITES = {
    5: "write_single_coil",
    6: "write_single_register",
    15: "write_multiple_coils",
    16: "write_multiple_registers",
    21: "write_file_record",
    22: "mask_write_register",
    23: "read_write_multiple_registers",
}
DIAG_RETURN_QUERY_DATA = 0  # the only FC8 sub-function that changes nothing (an echo)
DIAG_NAMES = {1: "restart_communications", 4: "force_listen_only", 10: "clear_counters"}
MBAP = struct.Struct(">HHHB")  # transaction, protocol, length, unit
FC_AND_WORDS = struct.Struct(">BHH")  # function code, then two 16-bit words (address and quantity/value/sub-function)
EVOLVING = 10  # holding registers 0..EVOLVING-1 walk


def classify(pdu: bytes) -> tuple[str, bool, str]:
    """(operation name, whether it is a write or control command, detail) of one request PDU (function code first)."""
    fc = pdu[0] & 0x7F
    if fc == 8:
        sub = int.from_bytes(pdu[1:3], "big") if len(pdu) >= 3 else -1
        if sub == DIAG_RETURN_QUERY_DATA:
            return "diagnostics/return_query_data", False, ""
        return f"diagnostics/{DIAG_NAMES.get(sub, f'sub-{sub}')}", True, f"sub-function {sub}"
    if fc in READS:
        return READS[fc], False, ""
    detail = ""
    if len(pdu) >= FC_AND_WORDS.size:
        _fc, first, second = FC_AND_WORDS.unpack_from(pdu)
        detail = f"address {first} value/quantity {second}"
    return WRITES.get(fc, f"unknown-{fc}"), True, detail


def frames(data: bytes) -> list[bytes]:
    """The request PDUs (function code onwards) of the complete MBAP frames at the start of `data`."""
    out: list[bytes] = []
    offset = 0
    while offset + MBAP.size + 1 <= len(data):
        _tid, _proto, length, _unit = MBAP.unpack_from(data, offset)
        end = offset + 6 + length
        if length < 2 or end > len(data):
            break
        out.append(bytes(data[offset + MBAP.size : end]))
        offset = end
    return out


class CountingHandler(ServerRequestHandler):
    """pymodbus's per-connection handler, counting each request frame it consumes by operation and sender."""

    status: Status

    def callback_data(self, data: bytes, addr: tuple | None = None) -> int:
        """Let pymodbus handle the data, then count the frames it consumed."""
        used = super().callback_data(data, addr)
        if used > 0:
            sender = self.peer()
            for pdu in frames(data[:used]):
                op, is_write, detail = classify(pdu)
                if is_write:
                    self.status.write(op, sender, detail)
                else:
                    self.status.request(op, sender)
        return used

    def peer(self) -> str:
        """The client's IP address."""
        transport: Any = self.transport
        peername = transport.get_extra_info("peername") if transport is not None else None
        return str(peername[0]) if peername else "?"


class CountingServer(ModbusTcpServer):
    """A ModbusTcpServer whose connections are counted into one Status."""

    def __init__(self, *args: Any, status: Status, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.status = status

    def callback_new_connection(self) -> ServerRequestHandler:
        """A counting handler for each new client connection."""
        handler = CountingHandler(self, self.trace_packet, self.trace_pdu, self.trace_connect)
        handler.status = self.status
        return handler


def build_device(unit: int) -> SimDevice:
    """Coils 0-31, discrete inputs 0-15, holding registers 0-99 (215 = 21.5 degrees), input registers 0-49."""
    return SimDevice(
        id=unit,
        simdata=(
            [SimData(0, count=32, values=True, datatype=DataType.BITS)],
            [SimData(0, count=16, values=False, datatype=DataType.BITS)],
            [SimData(0, count=100, values=215, datatype=DataType.REGISTERS)],
            [SimData(0, count=50, values=400, datatype=DataType.REGISTERS)],
        ),
    )


async def evolve(server: CountingServer, unit: int, rng: Random, values: list[int]) -> None:
    """One step of the walking registers (bounded 150-300), written into the datastore directly (not a request)."""
    for i, value in enumerate(values):
        values[i] = min(300, max(150, value + rng.randint(-3, 3)))
    await server.async_setValues(unit, 16, 0, list(values))


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGTERM/SIGINT or until orphaned; evolve registers and flush the status every `interval`."""
    status = Status(Path(args.status), args.name, "plc", args.address)
    status.note(port=args.port, vendor=args.vendor, product_code=args.product_code, revision=args.revision)
    identity = build_identity(args.vendor, args.product_code, args.revision, args.model)
    server = CountingServer(build_device(args.unit), identity=identity, address=(args.address, args.port),
                            status=status)  # fmt: skip
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.serve_forever(background=True)
    status.note(listening=True)
    status.flush()
    watch, rng, values = ParentWatch(), Random(args.seed), [215] * EVOLVING
    try:
        while not stop.is_set() and not watch.orphaned():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=args.interval)
            await evolve(server, args.unit, rng, values)
            status.tick()
    finally:
        await server.shutdown()
        status.stopped()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--address", default="127.50.1.11")
    parser.add_argument("--port", type=int, default=502)
    parser.add_argument("--unit", type=int, default=1)
    parser.add_argument("--name", default="plc-01")
    parser.add_argument("--vendor", default="Schneider Electric")
    parser.add_argument("--product-code", default="BMX P34 2020")
    parser.add_argument("--revision", default="v3.20")
    parser.add_argument("--model", default="Modicon M340")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between register steps")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--status", required=True, help="the JSON status file to keep")
    asyncio.run(serve(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
