"""A live-site PLC: a real pymodbus TCP server rendering the offline PLC model, with a request counter.

`python -m simulators.live.modbus_device --address 127.14.0.10 --port 502 --name plc-crah-01 --kind cooling
--vendor-index 0 --seed 123 --model "Modicon M340" --status DIR/plc-crah-01.json` serves until SIGTERM (or until the
process that started it is gone).

The PLC is simulators.site.ot.Plc(kind, vendor profile, Random(seed)), the model `otwatch simulate` uses (the live
plan passes the same seed): its FC43 identity (vendor, product code, revision), the unit ids it serves, its memory
(coils 0-31, discrete inputs 0-31, holding registers 0-99, input registers 0-15; see simulators.live.plc_model)
and its process (supply and return temperatures, flows, pump and fan speeds, or phase voltages, currents and power,
following the diurnal IT load) stepped to the wall clock every `--interval` seconds. A write it receives (FC 5, 6,
15, 16) also goes into the model: a new chilled-water setpoint moves the supply temperature.

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
import time
from pathlib import Path
from typing import Any

from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler

from simulators.live import plc_model
from simulators.live.status import ParentWatch, Status
from simulators.site.ot import Plc

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


def frames(data: bytes) -> list[tuple[int, bytes]]:
    """(unit id, request PDU from the function code on) of the complete MBAP frames at the start of `data`."""
    out: list[tuple[int, bytes]] = []
    offset = 0
    while offset + MBAP.size + 1 <= len(data):
        _tid, _proto, length, unit = MBAP.unpack_from(data, offset)
        end = offset + 6 + length
        if length < 2 or end > len(data):
            break
        out.append((unit, bytes(data[offset + MBAP.size : end])))
        offset = end
    return out


class CountingHandler(ServerRequestHandler):
    """pymodbus's per-connection handler, counting each request frame it consumes by operation and sender."""

    status: Status
    model: Plc

    def callback_data(self, data: bytes, addr: tuple | None = None) -> int:
        """Let pymodbus handle the data, then count the frames it consumed (and give the writes to the model)."""
        used = super().callback_data(data, addr)
        if used > 0:
            sender = self.peer()
            for unit, pdu in frames(data[:used]):
                op, is_write, detail = classify(pdu)
                if is_write:
                    self.status.write(op, sender, detail)
                    if unit in self.model.units:
                        plc_model.apply_write(self.model, unit, pdu)
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

    def __init__(self, *args: Any, status: Status, model: Plc, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.status = status
        self.model = model

    def callback_new_connection(self) -> ServerRequestHandler:
        """A counting handler for each new client connection."""
        handler = CountingHandler(self, self.trace_packet, self.trace_pdu, self.trace_connect)
        handler.status = self.status
        handler.model = self.model
        return handler


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGTERM/SIGINT or until orphaned; step the process and flush the status every `interval`."""
    model = plc_model.model_from_spec(args.name, args.kind, args.vendor_index, args.seed, args.address)
    model.update(time.time())
    status = Status(Path(args.status), args.name, "plc", args.address)
    status.note(port=args.port, vendor=model.vendor, product_code=model.product, revision=model.revision,
                units=list(model.units), kind=model.kind)  # fmt: skip
    identity = plc_model.build_identity(model, args.model)
    server = CountingServer(plc_model.build_devices(model), identity=identity, address=(args.address, args.port),
                            trace_pdu=plc_model.unit_guard(model.units), status=status, model=model)  # fmt: skip
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.serve_forever(background=True)
    status.note(listening=True)
    status.flush()
    watch = ParentWatch()
    try:
        while not stop.is_set() and not watch.orphaned():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=args.interval)
            model.update(time.time())
            await plc_model.push(model, server)
            status.tick()
    finally:
        await server.shutdown()
        status.stopped()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--address", default="127.14.0.10")
    parser.add_argument("--port", type=int, default=502)
    parser.add_argument("--name", default="plc-crah-01")
    parser.add_argument("--kind", choices=("cooling", "power"), default="cooling")
    parser.add_argument("--vendor-index", type=int, default=0, help="the vendor profile (simulators.mixgen.net)")
    parser.add_argument("--model", default="Modicon M340", help="FC43 product and model name")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between process steps")
    parser.add_argument("--seed", type=int, default=1, help="the seed of the process model's stream")
    parser.add_argument("--status", required=True, help="the JSON status file to keep")
    asyncio.run(serve(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
