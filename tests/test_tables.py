"""The `otwatch inventory` table: addresses (IP, routed BACnet, MAC-only), BACnet columns, role words."""

from __future__ import annotations

from appliance.model import Asset, Attribute, Role
from appliance.tables import INVENTORY_COLUMNS, address_text, asset_rows, bacnet_mac_text, render_table
from tests.test_inventory_bacnet import CTRL, FE, ROUTER, site


def test_inventory_table_renders_bacnet_assets() -> None:
    assets = site().snapshot()
    rows = {row[0]: dict(zip(INVENTORY_COLUMNS, row, strict=True)) for row in asset_rows(assets)}
    routed = rows["net 5 mac 10"]  # MS/TP MAC 0x0a, as an engineer reads it
    assert routed["MAC"] == f"via {ROUTER}" and routed["DEVICE"] == "5010"
    assert routed["CATEGORY"] == "BMS controller" and routed["ROLES"] == "bacnet server (device 5010)"
    assert routed["VENDOR"] == "Johnson Controls, Inc." and routed["FIRMWARE"] == "3.2.1"
    ctrl = rows[CTRL[0]]
    assert (ctrl["NAME"], ctrl["MODEL"], ctrl["DEVICE"]) == ("AHU-1", "PXC100-E.D", "1001")
    assert rows[ROUTER]["ROLES"] == "bacnet router (net 5)" and rows[ROUTER]["DEVICE"] == "-"
    assert rows[FE]["CATEGORY"] == "BMS workstation"
    text = render_table(asset_rows(assets))
    assert text.splitlines()[0].split()[:3] == ["ADDRESS", "MAC", "CATEGORY"]
    assert len(text.splitlines()) == len(assets) + 1


def test_bacnet_mac_text() -> None:
    assert bacnet_mac_text("0a") == "10"  # MS/TP MAC 10
    assert bacnet_mac_text("c0a8000dbac0") == "192.168.0.13:47808"  # a BACnet/IP address
    assert bacnet_mac_text("000c6eb03c15") == "00:0c:6e:b0:3c:15"  # an Ethernet MAC
    assert bacnet_mac_text("0102") == "0102" and bacnet_mac_text("zz") == "zz"


def test_rows_for_modbus_mac_only_and_gateway_assets() -> None:
    plc = Asset("p1", "10.1.2.10", "00:80:f4:00:00:01", 0.0, 0.0, category="PLC", ot_traffic=True,
                vendor=Attribute("Schneider Electric", "modbus/fc43", 0.9),
                roles=(Role("modbus", "server", (1, 2)),))
    station = Asset("s1", "", "00:0d:4b:00:00:22", 0.0, 0.0, category="BMS controller", ot_traffic=True,
                    bacnet_device_instance=22, mac_vendor=Attribute("Roku, Inc.", "oui", 0.5))
    remote = Asset("r1", "10.50.0.9", None, 0.0, 0.0, via_mac="00:1d:9c:00:00:fe", protocols=("dns",))
    rows = [dict(zip(INVENTORY_COLUMNS, row, strict=True)) for row in asset_rows([remote, station, plc])]
    assert [r["ADDRESS"] for r in rows] == ["-", "10.1.2.10", "10.50.0.9"]
    assert rows[0]["MAC"] == "00:0d:4b:00:00:22" and rows[0]["VENDOR"] == "Roku, Inc." and rows[0]["DEVICE"] == "22"
    assert rows[1]["ROLES"] == "modbus server (unit 1,2)" and rows[1]["DEVICE"] == "-" and rows[1]["NAME"] == "-"
    assert rows[2]["MAC"] == "via 00:1d:9c:00:00:fe" and rows[2]["ROLES"] == "dns"
    assert address_text(station) == "-" and station.address == "00:0d:4b:00:00:22"
