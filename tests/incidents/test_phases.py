"""The phase table: every registered detector's note has a phase (or a stated reason for none), the table names no
note that does not exist, the refinements read targets and operations, and every ATT&CK id exists."""

from __future__ import annotations

from appliance.detectors import DETECTORS
from appliance.detectors.techniques import unknown_techniques
from appliance.incidents.phases import NO_PHASE, PHASE_OF, PHASES, furthest, known, order, phases_of


def test_every_registered_note_has_a_phase() -> None:
    missing = [f"{d.name}/{n}" for d in DETECTORS for n in d.notes if not known(d.name, n)]
    assert missing == [], f"notes with no phase in appliance/incidents/phases.py PHASE_OF or NO_PHASE: {missing}"


def test_the_table_names_only_notes_that_exist() -> None:
    registered = {(d.name, n) for d in DETECTORS for n in d.notes}
    assert set(PHASE_OF) - registered == set()
    assert set(NO_PHASE) - registered == set()
    assert set(PHASE_OF).isdisjoint(NO_PHASE)
    assert all(p in PHASES for phases in PHASE_OF.values() for p in phases)
    assert all(phases and order(phases) == phases for phases in PHASE_OF.values())


def test_every_technique_a_note_carries_is_in_the_shipped_tables() -> None:
    for d in DETECTORS:
        for note in d.notes.values():
            assert unknown_techniques(note.techniques) == [], (d.name, note.name)


def test_a_write_from_it_into_ot_is_a_pivot_and_an_impairment() -> None:
    assert phases_of("ot_pivot", "it_to_ot_write", {"op_class": "write", "protocol": "modbus"}, ["OT"]) == (
        "pivot_into_ot",
        "impair",
    )
    assert phases_of("ot_pivot", "device_control") == ("impair",)


def test_recon_of_ot_targets_is_ot_discovery_and_of_mixed_targets_it_recon() -> None:
    assert phases_of("scan", "port_scan", {}, ["OT"]) == ("ot_discovery",)
    assert phases_of("scan", "address_scan", {}, ["BMS", "OT", None]) == ("ot_discovery",)
    assert phases_of("scan", "address_scan", {}, ["IT", "OT"]) == ("it_recon",)
    assert phases_of("scan", "address_scan", {}, []) == ("it_recon",)


def test_a_discovery_operation_across_zones_is_also_ot_discovery() -> None:
    who_is = {"protocol": "bacnet", "op": "who_is", "op_class": "discovery"}
    assert phases_of("ot_pivot", "it_to_ot", who_is, ["BMS"]) == ("pivot_into_ot", "ot_discovery")
    read = {"protocol": "modbus", "op": "read_holding_registers", "op_class": "read"}
    assert phases_of("ot_pivot", "it_to_ot", read, ["OT"]) == ("pivot_into_ot",)


def test_meta_and_context_notes_reach_no_phase() -> None:
    assert phases_of("alert_burst", "multiple_alerts") == ()
    assert phases_of("new_device", "new_device") == ()
    assert furthest(["impair", "it_recon", "nonsense"]) == "impair" and furthest([]) is None


def test_a_write_or_command_on_an_industrial_protocol_also_reaches_impair() -> None:
    write = {"protocol": "modbus", "op": "write_single_register", "op_class": "write"}
    assert phases_of("ot_baseline", "rogue_modbus_master", write, ["OT"]) == ("pivot_into_ot", "impair")
    read = {"protocol": "modbus", "op": "read_coils", "op_class": "read"}
    assert phases_of("ot_baseline", "rogue_modbus_master", read, ["OT"]) == ("pivot_into_ot",)
    assert phases_of("ot_discovery", "bacnet_who_is_sweep", {"op_class": "discovery", "protocol": "bacnet"}) == (
        "ot_discovery",
    )
