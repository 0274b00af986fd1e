"""The live rendering of an offline PLC model (simulators.site.ot.Plc) as pymodbus server memory and identity.

One description, two renderings: offline, `Plc.answer()` encodes the PLC's answers by hand; live, a pymodbus server
answers from a datastore that holds the same memory: coils 0-31, discrete inputs 0-31 (the coils inverted in their
low 16 bits, as offline), holding registers 0-99 and input registers 0-15, one device per unit id the PLC serves
(`Plc.units`), and the FC43 identity (vendor, product code, revision); `unit_guard` makes an FC43 request to a unit
id the PLC does not serve get exception 0x0B, as offline (pymodbus alone answers FC43 on any unit id). `push()`
copies the model's memory into the datastore after each process step; `apply_write()` feeds a write the server
received back into the model (so a written setpoint moves the process, as offline).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from random import Random
from typing import Protocol

from pymodbus import ModbusDeviceIdentification
from pymodbus.constants import ExcCodes
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.simulator import DataType, SimData, SimDevice

from simulators.mixgen.wire import Host
from simulators.site.ot import COILS, Plc

__all__ = ["Datastore", "apply_write", "build_devices", "build_identity", "memory", "model_from_spec", "push",
           "unit_guard"]

WRITE_CODES = (5, 6, 15, 16)


class Datastore(Protocol):
    """What `push` needs of a pymodbus server or SimCore: `async_setValues(device_id, func_code, address, values)`."""

    async def async_setValues(self, device_id: int, func_code: int, address: int, values: list[int] | list[bool],
                              ) -> object | None:  # fmt: skip
        """Write values into one device's memory."""


def model_from_spec(name: str, kind: str, vendor_index: int, seed: int, ip: str = "0.0.0.0") -> Plc:
    """The offline model of a PLC from its description (the live plan's): same seed, same process."""
    return Plc(Host(name, "plc", ip, b"\x00" * 6, 64, Random(0)), kind, vendor_index, Random(seed))


def memory(plc: Plc) -> dict[int, list[int] | list[bool]]:
    """The model's memory by the function code that reads it: 1 coils, 2 discrete inputs, 3 holding, 4 input."""
    inputs = plc.coils ^ 0xFFFF
    return {
        1: [bool(plc.coils >> i & 1) for i in range(COILS)],
        2: [bool(inputs >> i & 1) for i in range(COILS)],
        3: list(plc.holding),
        4: list(plc.inputs),
    }


def build_devices(plc: Plc) -> list[SimDevice]:
    """One pymodbus device per unit id, each with the model's memory (separate blocks, as the offline PLC has)."""
    mem = memory(plc)
    devices = []
    for unit in plc.units:
        blocks = (
            [SimData(0, values=list(mem[1]), datatype=DataType.BITS)],
            [SimData(0, values=list(mem[2]), datatype=DataType.BITS)],
            [SimData(0, values=list(mem[3]), datatype=DataType.REGISTERS)],
            [SimData(0, values=list(mem[4]), datatype=DataType.REGISTERS)],
        )
        devices.append(SimDevice(id=unit, simdata=blocks))
    return devices


def build_identity(plc: Plc, model: str) -> ModbusDeviceIdentification:
    """The FC43/14 identity objects (basic: vendor, product code, revision; regular: product and model name)."""
    identity = ModbusDeviceIdentification()
    identity.VendorName = plc.vendor
    identity.ProductCode = plc.product
    identity.MajorMinorRevision = plc.revision
    identity.ProductName = model
    identity.ModelName = model
    return identity


async def push(plc: Plc, store: Datastore) -> None:
    """Copy the model's memory into every unit's datastore (a direct write, not a request)."""
    for unit in plc.units:
        for fc, values in memory(plc).items():
            await store.async_setValues(unit, fc, 0, values)


def apply_write(plc: Plc, unit: int, pdu: bytes) -> None:
    """Let the model take a write request the server accepted (FC5, 6, 15, 16): setpoint, coils, registers."""
    if pdu and pdu[0] in WRITE_CODES and pdu[0] != 15:
        plc.answer(unit, pdu)
    elif pdu and pdu[0] == 15 and len(pdu) >= 6:
        addr, qty = int.from_bytes(pdu[1:3], "big"), int.from_bytes(pdu[3:5], "big")
        bits = int.from_bytes(pdu[6 : 6 + (qty + 7) // 8], "little")
        for i in range(min(qty, COILS - addr)):
            mask = 1 << (addr + i)
            plc.coils = plc.coils | mask if bits >> i & 1 else plc.coils & ~mask


def unit_guard(units: Collection[int]) -> Callable[[bool, ModbusPDU], ModbusPDU]:
    """A pymodbus `trace_pdu` hook: an answer to a unit id the PLC does not serve becomes exception 0x0B (gateway
    target device failed to respond), the answer pymodbus itself gives for such a unit to every other function."""

    def hook(sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if sending and pdu.dev_id not in units and not isinstance(pdu, ExceptionResponse):
            answer = ExceptionResponse(pdu.function_code, ExcCodes.GATEWAY_NO_RESPONSE)
            answer.transaction_id, answer.dev_id = pdu.transaction_id, pdu.dev_id
            return answer
        return pdu

    return hook
