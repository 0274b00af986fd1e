"""The offline Modbus/TCP bytes are what pymodbus puts on the wire (issue 6).

1. Every Modbus/TCP message of a simulated day (`wire_day`: the SCADA polls, a maintenance window's writes, the
   engineer's session, the intrusion's unit sweep, register scan and setpoint write) is read by pymodbus's framer
   (requests by the server's decoder, responses by the client's) and framed again by pymodbus: the same bytes.
2. Each distinct request the offline site sends, put in turn to the offline PLC model (`Plc.answer`) and to a
   pymodbus server datastore holding the same model's memory and identity (the live PLC: simulators.live.plc_model,
   with its unit-id guard), gets the same response, writes included, for every PLC of the profile. Nothing is
   masked: transaction ids are the request's on both sides.
"""

from __future__ import annotations

import asyncio
import struct
from collections import Counter
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerSocket
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU
from pymodbus.pdu.device import ModbusControlBlock
from pymodbus.pdu.mei_message import ReadDeviceInformationResponse
from pymodbus.simulator.simcore import SimCore

from simulators.live.plan import PLC_MODELS
from simulators.live.plc_model import build_devices, build_identity, model_from_spec, unit_guard
from simulators.site.models import live_models, plc_vendor_index
from tests.simulators.conftest import SEED, wire_profile

MBAP = struct.Struct(">HHHB")


def frame(framer: FramerSocket, data: bytes) -> ModbusPDU:
    """pymodbus's reading of one whole MBAP frame."""
    used, pdu = framer.handleFrame(data, 0, 0)
    assert used == len(data) and pdu is not None, data.hex()
    return pdu


def test_pymodbus_reads_and_frames_again_every_offline_message(wire_day: dict[str, Any]) -> None:
    kinds: Counter[tuple[str, int]] = Counter()
    seen: set[tuple[bool, bytes]] = set()
    for is_request, _src, _dst, data in wire_day["modbus"]:
        if (is_request, data) in seen:  # a write's answer is its request's echo
            continue
        seen.add((is_request, data))
        framer = FramerSocket(DecodePDU(is_server=is_request))
        pdu = frame(framer, data)
        if isinstance(pdu, ReadDeviceInformationResponse):
            pdu.number_of_objects = 0  # encode() counts the objects onto the decoded count: start as a new response
        assert framer.buildFrame(pdu) == data, (type(pdu).__name__, data.hex())
        kinds[("request" if is_request else "response", data[7])] += 1
    print(f"\npymodbus read and framed again {len(seen)} distinct messages of {len(wire_day['modbus'])}: "
          f"{dict(sorted(kinds.items()))}")
    requests = {fc for (kind, fc) in kinds if kind == "request"}
    responses = {fc for (kind, fc) in kinds if kind == "response"}
    assert {1, 3, 4, 5, 6, 16, 43} <= requests, requests
    assert {1, 3, 4, 5, 6, 16, 43, 0x83, 0x81, 0x84, 0xAB} <= responses, responses  # exceptions 0x02 and 0x0B


async def answers(wire_day: dict[str, Any]) -> dict[str, int]:
    """Every distinct request to each PLC answered by the offline model and by pymodbus; counts per PLC."""
    profile = wire_profile()
    models = live_models(profile, SEED)
    by_ip = {p.host.ip: (p, seed) for p, seed in zip(models.plcs, models.plc_seeds, strict=True)}
    requests: dict[str, list[tuple[int, bytes]]] = {}
    for is_request, _src, dst, data in wire_day["modbus"]:
        if is_request and (data[6], data[7:]) not in requests.setdefault(dst, []):
            requests[dst].append((data[6], data[7:]))
    counts = {}
    for ip, todo in requests.items():
        plc, seed = by_ip[ip]
        offline = model_from_spec(plc.host.name, plc.kind, plc_vendor_index(profile, models.plcs.index(plc)), seed)
        offline.update(profile.start_ts() + 40_000.0)
        core = SimCore(build_devices(offline))
        ModbusControlBlock().Identity.update(build_identity(offline, PLC_MODELS[offline.vendor]))
        guard = unit_guard(offline.units)
        server = FramerSocket(DecodePDU(is_server=True))
        for tid, (unit, pdu) in enumerate(todo, start=1):
            request = frame(FramerSocket(DecodePDU(is_server=True)), MBAP.pack(tid, 0, len(pdu) + 1, unit) + pdu)
            try:
                response = await request.datastore_update(core, request.dev_id)  # type: ignore[arg-type]
            except NoSuchIdException:  # what pymodbus's request handler answers for a unit id it has no device for
                response = ExceptionResponse(request.function_code, ExcCodes.GATEWAY_NO_RESPONSE)
            response.transaction_id, response.dev_id = request.transaction_id, request.dev_id
            live = server.buildFrame(guard(True, response))
            answer = offline.answer(unit, pdu)
            assert live == MBAP.pack(tid, 0, len(answer) + 1, unit) + answer, (plc.host.name, unit, pdu.hex())
        counts[plc.host.name] = len(todo)
    return counts


def test_a_pymodbus_server_with_the_same_memory_answers_every_offline_request_the_same(
    wire_day: dict[str, Any],
) -> None:
    counts = asyncio.run(answers(wire_day))
    print(f"\ndistinct requests answered alike, by PLC: {counts}")
    assert set(counts) == {"plc-crah-01", "plc-chiller-01", "plc-swgr-01", "plc-ups-01"}
    assert counts["plc-crah-01"] > 100  # the unit sweep and the register scan
