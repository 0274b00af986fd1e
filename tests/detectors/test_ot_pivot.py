"""IT-to-OT pivots and device control: a VPN host reading and writing a PLC raises, the HMI in the OT zone does
not, nothing is judged without zones, and restart/silence commands raise whoever sends them."""

from __future__ import annotations

from typing import Any

from appliance.alert import Alert
from appliance.detectors.engine import DetectorEngine
from appliance.detectors.ot_pivot import OtPivotDetector
from appliance.inventory import AssetInventory
from appliance.model import FlowId, ProtocolEvent
from appliance.zones import Zone, ZoneMap

VPN, HMI, PLC, BMS = "10.8.0.23", "10.50.1.100", "10.50.1.11", "10.60.1.11"
T0 = 1_700_000_000.0
ZONES = ZoneMap([
    Zone("vpn-pool", ("10.8.0.0/24",), "VPN", 5), Zone("ot-control", ("10.50.1.0/24",), "OT", 1),
    Zone("bms", ("10.60.1.0/24",), "BMS", 1),
])  # fmt: skip


def modbus(src: str, op: str, ts: float = T0, **fields: Any) -> ProtocolEvent:
    fid = FlowId(f"M{src}", src, 40000, PLC, 502, "tcp")
    return ProtocolEvent(ts, fid, "modbus", op, "request", True, src, PLC, {"unit": 1, **fields})


def bacnet(src: str, op: str, ts: float = T0, **fields: Any) -> ProtocolEvent:
    fid = FlowId(f"B{src}", src, 47808, BMS, 47808, "udp")
    return ProtocolEvent(ts, fid, "bacnet", op, "request", True, src, BMS, fields)


def run(events: list[ProtocolEvent], zones: ZoneMap = ZONES) -> list[Alert]:
    alerts: list[Alert] = []
    inventory = AssetInventory(zones)
    engine = DetectorEngine([OtPivotDetector()], alerts.append, inventory=inventory)
    for ev in events:
        engine.on_event(ev)
        inventory.on_event(ev)
    return alerts


def test_a_vpn_host_reading_then_writing_a_plc() -> None:
    alerts = run([modbus(VPN, "read_holding_registers"), modbus(VPN, "read_holding_registers", T0 + 1),
                  modbus(VPN, "write_single_register", T0 + 2, address=1, value=5)])  # fmt: skip
    assert [(a.note, a.severity, a.ts - T0) for a in alerts] == [("it_to_ot", "high", 0.0),
                                                                  ("it_to_ot_write", "critical", 2.0)]  # fmt: skip
    assert alerts[1].techniques == ("T0886", "T0855", "T0836")
    assert alerts[1].explanation == (
        "10.8.0.23 (vpn-pool, VPN) wrote to 10.50.1.11 (ot-control, OT) with modbus write_single_register: hosts of "
        "IT, VPN and DMZ zones do not speak industrial protocols to OT and BMS devices"
    )


def test_the_hmi_in_the_ot_zone_and_a_site_without_zones_stay_quiet() -> None:
    assert run([modbus(HMI, "write_single_register"), bacnet(HMI, "write_property")]) == []
    assert run([modbus(VPN, "write_single_register")], zones=ZoneMap()) == []


def test_device_control_commands_raise_whoever_sends_them() -> None:
    alerts = run([
        bacnet(HMI, "reinitialize_device", device_state="warmstart", password="<redacted>"),
        bacnet(HMI, "device_communication_control", T0 + 1, device_state="disable", time_duration=60),
        modbus(HMI, "diagnostics", T0 + 2, request_subfunction_code="FORCE_LISTEN_ONLY_MODE"),
        modbus(HMI, "diagnostics", T0 + 3, request_subfunction_code="RETURN_QUERY_DATA"),
    ])  # fmt: skip
    assert [(a.note, a.details["op"], a.details["detail"]) for a in alerts] == [
        ("device_control", "reinitialize_device", "warmstart"),
        ("device_control", "device_communication_control", "disable"),
        ("device_control", "diagnostics", "FORCE_LISTEN_ONLY_MODE"),
    ]  # fmt: skip
    assert alerts[0].techniques == ("T0816", "T0814", "T0858")


def test_a_sweep_of_a_zone_is_one_alert() -> None:
    sweep = [ProtocolEvent(T0 + i, FlowId(f"W{i}", VPN, 47808, f"10.60.1.{i}", 47808, "udp"), "bacnet", "who_is",
                           "request", True, VPN, f"10.60.1.{i}", {}) for i in range(1, 60)]  # fmt: skip
    alerts = run(sweep)
    assert [(a.note, a.details["dst_zone"]) for a in alerts] == [("it_to_ot", "bms")]


def test_bacnet_file_transfers_are_program_download_and_upload() -> None:
    alerts = run([
        bacnet(HMI, "atomic_write_file", file_object="file:1", file_start_position=0),
        bacnet(HMI, "atomic_write_file", T0 + 1, file_object="file:1", file_start_position=480),  # counted
        bacnet(VPN, "atomic_read_file", T0 + 2, file_object="file:2", file_start_position=0),
    ])  # fmt: skip
    assert [(a.note, a.src, a.techniques) for a in alerts if a.note.startswith("program")] == [
        ("program_download", HMI, ("T0843",)), ("program_upload", VPN, ("T0845",)),
    ]  # fmt: skip
    assert alerts[0].explanation == ("10.50.1.100 sent bacnet atomic_write_file into 10.60.1.11 (file:1, from "
                                     "position 0)")
