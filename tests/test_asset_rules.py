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


def test_bacnet_rules_in_order() -> None:
    rec = _rec()
    rec.role("bacnet", "server")
    assert categorize(rec)[:2] == ("BMS controller", "bacnet-server")
    rec.bacnet_instance = 1001
    rec.attrs["vendor"] = Attribute("Acme Controls", "bacnet/i-am", 0.8)
    rec.attrs["model"] = Attribute("AC-1", "bacnet/read-property", 0.9)
    assert categorize(rec) == (
        "BMS controller", "bacnet-server-identified",
        "BACnet device 1001 (Acme Controls, AC-1) announcing itself or serving 0 client(s)", 0.7,
    )
    # a server that also reads three devices and sends Who-Is is taken for a front end (evidence says why)
    rec.role("bacnet", "client")[1].update({"10.0.0.2", "10.0.0.3", "10.0.0.4"})
    rec.bacnet_services.update({"read_property_multiple"})
    assert categorize(rec)[1] == "bacnet-server-identified"  # no Who-Is, and it serves: not a poller
    rec.bacnet_services.add("who_is")
    assert categorize(rec)[:2] == ("BMS workstation", "bacnet-front-end")
    rec.bacnet_services.add("reinitialize_device")
    assert categorize(rec)[:3] == (
        "engineering workstation", "bacnet-engineering", "sends BACnet device management services (reinitialize_device)"
    )
    rec.role("bacnet", "bbmd")
    assert categorize(rec)[:2] == ("BBMD", "bacnet-bbmd")
    rec.role("bacnet", "router")[0].update({5, 6})
    assert categorize(rec)[:3] == ("BACnet router", "bacnet-router", "routes to BACnet network(s) 5, 6")
    # Modbus rules still come first; a BACnet vendor is no FC43 identity
    rec.role("modbus", "server")[0].add(1)
    assert categorize(rec)[1] == "modbus-server"


def test_bacnet_op_classes_and_modbus_unchanged() -> None:
    assert default_op_class("bacnet", "read_property") == "read"
    assert default_op_class("bacnet", "write_group") == "write"
    assert default_op_class("bacnet", "device_communication_control") == "command"
    assert default_op_class("bacnet", "who_is_router_to_network") == "discovery"
    assert default_op_class("bacnet", "confirmed_event_notification") == "other"
    assert default_op_class("modbus", "read_coils") == "read"


def test_set_attr_keeps_the_more_confident_value() -> None:
    rec = _rec()
    rec.set_attr("vendor", "Acme", "bacnet/i-am", 0.8)
    rec.cached = freeze(rec)
    rec.set_attr("vendor", "Acme", "bacnet/i-am", 0.8)
    assert rec.cached is not None  # nothing changed: the frozen copy stays valid
    rec.set_attr("vendor", "ACME Controls Inc.", "bacnet/read-property", 0.9)
    rec.set_attr("vendor", "Other", "bacnet/i-am", 0.8)
    rec.set_attr("vendor", " \x00 ", "bacnet/read-property", 1.0)
    assert rec.attrs["vendor"] == Attribute("ACME Controls Inc.", "bacnet/read-property", 0.9)
    assert rec.cached is None


def test_bacnet_fields_freeze_thaw_and_absorb() -> None:
    rec = AssetRecord("r1", "", None, 1.0, 2.0, via_ip="10.0.0.1", via_asset="a0", bacnet_network=5,
                      bacnet_mac="0a", bacnet_instance=5010, bacnet_max_apdu=480)
    rec.bacnet_services.add("i_am")
    rec.attrs["location"] = Attribute("Plant room", "bacnet/read-property", 0.9)
    asset = freeze(rec)
    assert (asset.bacnet_device_instance, asset.bacnet_network, asset.bacnet_mac) == (5010, 5, "0a")
    assert asset.address == "bacnet:5:0a" and asset.location is not None
    assert freeze(thaw(asset)) == asset
    newer = AssetRecord("r2", "", None, 3.0, 9.0, bacnet_instance=5011, bacnet_segmentation="no-segmentation")
    rec.absorb(newer)
    assert (rec.bacnet_instance, rec.bacnet_max_apdu, rec.bacnet_segmentation) == (5011, 480, "no-segmentation")
    assert (rec.first_seen, rec.last_seen, rec.bacnet_network) == (1.0, 9.0, 5)


def test_an_it_or_vpn_host_polling_plcs_is_an_it_host_not_an_hmi() -> None:
    polling = {("modbus", "client"): ({1}, {"10.50.1.10", "10.50.1.11"}), ("bacnet", "client"): (set(), {"10.60.1.10"})}
    vpn = AssetRecord("a2", "10.8.0.23", None, 1.0, 2.0, zone="vpn-pool", domain="VPN", roles=dict(polling))
    assert categorize(vpn) == ("IT host", "it-zone-ot-client", "a host of zone vpn-pool (VPN) acting as a bacnet and "
                               "modbus client", 0.5)  # fmt: skip
    hmi = AssetRecord("a3", "10.50.1.100", None, 1.0, 2.0, zone="ot-control", domain="OT", roles=dict(polling))
    assert categorize(hmi)[0] == "HMI/SCADA"
    unzoned = AssetRecord("a4", "10.0.0.9", None, 1.0, 2.0, roles=dict(polling))  # no zones configured: as before
    assert categorize(unzoned)[0] == "HMI/SCADA"
