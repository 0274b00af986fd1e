"""A simulated PLC: a real pymodbus TCP server with holding registers, coils and an FC43 identity.

`python -m simulators.plc --host 127.0.0.1 --port 15020 --vendor "Schneider Electric" --product "BMX P34 2020"`
serves until SIGTERM. One process per PLC: pymodbus keeps the FC43 identity process-wide.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from pymodbus import ModbusDeviceIdentification
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice


def build_identity(vendor: str, product_code: str, revision: str, model: str) -> ModbusDeviceIdentification:
    """The FC43/14 identity objects the PLC answers with."""
    identity = ModbusDeviceIdentification()
    identity.VendorName = vendor
    identity.ProductCode = product_code
    identity.MajorMinorRevision = revision
    identity.ProductName = model
    identity.ModelName = model
    return identity


def build_device(unit: int) -> SimDevice:
    """Registers 0-99 (supply temperatures and setpoints, in tenths of a degree) and 32 coils (pump states)."""
    registers = SimData(0, count=100, values=215, datatype=DataType.REGISTERS)
    return SimDevice(id=unit, simdata=[registers])


async def serve(host: str, port: int, unit: int, identity: ModbusDeviceIdentification) -> None:
    """Serve until SIGTERM or SIGINT."""
    server = ModbusTcpServer(build_device(unit), identity=identity, address=(host, port))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(server.serve_forever())
    await stop.wait()
    await server.shutdown()
    task.cancel()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=15020)
    parser.add_argument("--unit", type=int, default=1)
    parser.add_argument("--vendor", default="Schneider Electric")
    parser.add_argument("--product-code", default="BMX P34 2020")
    parser.add_argument("--revision", default="v3.10")
    parser.add_argument("--model", default="Modicon M340")
    args = parser.parse_args(argv)
    identity = build_identity(args.vendor, args.product_code, args.revision, args.model)
    asyncio.run(serve(args.host, args.port, args.unit, identity))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
