"""The category rule table and the identity helpers behind the inventory."""

from __future__ import annotations

from appliance.asset_rules import (
    RULES,
    AssetRecord,
    apply_fc43,
    categorize,
    clean_text,
    default_op_class,
    freeze,
    normalize_mac,
    thaw,
)
from appliance.model import Attribute


def _rec() -> AssetRecord:
    return AssetRecord("a1", "10.0.0.1", None, 1.0, 2.0)


def test_normalize_mac() -> None:
    assert normalize_mac("00:80:F4:0A:0B:0C") == "00:80:f4:0a:0b:0c"
    assert normalize_mac("00-80-f4-0a-0b-0c") == "00:80:f4:0a:0b:0c"
    assert normalize_mac(b"\x00\x80\xf4\x0a\x0b\x0c") == "00:80:f4:0a:0b:0c"
    for bad in (None, "", "00:00:00:00:00:00", b"\x00" * 6, "ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:fb",
                "33:33:00:00:00:01", "00:80:f4", "zz:80:f4:0a:0b:0c", b"\x00\x80"):
        assert normalize_mac(bad) is None, bad


def test_default_op_class() -> None:
    cases = {
        "read_holding_registers": "read",
        "read_coils": "read",
        "write_single_coil": "write",
        "read_write_multiple_registers": "write",
        "mask_write_register": "write",
        "read_device_identification": "discovery",
        "diagnostics": "diagnostic",
        "program_unity": "command",
        "report_slave_id": "discovery",
        "unknown-90": "other",
    }
    assert {op: default_op_class("modbus", op) for op in cases} == cases


def test_clean_text() -> None:
    assert clean_text(b"Schneider\x00 Electric\r\n") == "Schneider Electric"
    assert clean_text("  v2.7 ") == "v2.7"
    assert clean_text(b"\xff\xfe") == "\ufffd\ufffd"
    assert len(clean_text("x" * 1000)) == 128
    assert clean_text(12) == "12"


def test_rule_ids_are_unique_and_first_match_wins() -> None:
    ids = [rule[0] for rule in RULES]
    assert len(ids) == len(set(ids))
    rec = _rec()
    assert categorize(rec) == ("unknown", "", "", 0.0)
    rec.flows = 1
    assert categorize(rec)[:2] == ("IT host", "non-ot-only")
    rec.role("modbus", "client")[1].update({"10.0.0.2", "10.0.0.3"})
    rec.ot_traffic = True
    assert categorize(rec)[:2] == ("HMI/SCADA", "modbus-poller")
    rec.sent[("modbus", "diagnostic")] += 2
    assert categorize(rec)[:3] == (
        "engineering workstation",
        "modbus-engineering",
        "sends Modbus diagnostic or programming functions (2 messages)",
    )
    rec.role("modbus", "server")[0].add(1)
    assert categorize(rec)[:2] == ("PLC", "modbus-server")


def test_other_protocol_rules() -> None:
    rec = _rec()
    rec.role("bacnet", "server")
    assert categorize(rec)[0] == "BMS controller"
    rec = _rec()
    rec.role("mqtt", "server")
    assert categorize(rec)[0] == "MQTT broker"


def test_fc43_keeps_the_more_confident_value() -> None:
    rec = _rec()
    apply_fc43(rec, {"product_code": "BMX P34 2020"})
    assert rec.attrs["model"] == Attribute("BMX P34 2020", "modbus/fc43", 0.6)
    apply_fc43(rec, {"product_name": "M340"})
    assert rec.attrs["model"] == Attribute("M340", "modbus/fc43", 0.7)
    apply_fc43(rec, {"product_code": "BMX P34 2020"})
    assert rec.attrs["model"].value == "M340"
    apply_fc43(rec, {"vendor_name": "", "revision": None})
    assert "vendor" not in rec.attrs and "firmware" not in rec.attrs
    apply_fc43(rec, "not a dict")
    assert set(rec.attrs) == {"model", "product_code", "product_name"}


def test_freeze_and_thaw_round_trip() -> None:
    rec = _rec()
    rec.role("modbus", "server")[0].update({3, 1})
    rec.role("modbus", "server")[1].add("10.0.0.9")
    rec.sent[("modbus", "read")] += 4
    rec.attrs["vendor"] = Attribute("Schneider Electric", "modbus/fc43", 0.9)
    asset = freeze(rec)
    assert asset.roles[0].units == (1, 3)
    assert freeze(thaw(asset)) == asset
