"""Store: the inventory survives a restart; WAL while writing; read-only opens create nothing."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.inventory import AssetInventory
from appliance.model import Asset, Attribute, FlowId, ProtocolEvent
from appliance.store import DB_NAME, SCHEMA_VERSION, Store, StoreError
from appliance.zones import Zone, ZoneMap
from tests.test_inventory_bacnet import FE, ROUTER, ZONES, by_address, i_am, site

T0 = 1_700_000_000.0


def _assets() -> tuple[Asset, ...]:
    inv = AssetInventory(ZoneMap([Zone("cell", ("10.1.2.0/24",), "OT", 1)]))
    for i, plc in enumerate(("10.1.2.10", "10.1.2.11")):
        f = FlowId(f"C{i}", "10.1.3.5", 40000 + i, plc, 502, "tcp")
        hmi = f.orig_h
        op = "read_coils"
        inv.on_event(ProtocolEvent(T0 + i, f, "modbus", op, "request", True, hmi, plc, {"unit": 1}))
        inv.on_event(ProtocolEvent(T0 + i, f, "modbus", op, "response", False, plc, hmi, {"unit": 1}))
    objects = {"vendor_name": "Schneider Electric", "revision": "v2.7"}
    inv.on_event(
        ProtocolEvent(T0 + 5, f, "modbus", "read_device_identification", "response", False, "10.1.2.11",
                      "10.1.3.5", {"unit": 1, "objects": objects})
    )
    return inv.snapshot()


def test_save_reopen_load_gives_equal_assets(tmp_path: Path) -> None:
    assets = _assets()
    assert len(assets) == 3 and any(a.vendor is not None for a in assets)
    store = Store(tmp_path)
    store.save_assets(assets)
    store.close()
    with Store(tmp_path) as again:
        loaded = again.load_assets()
    assert loaded == list(assets)
    resumed = AssetInventory(ZoneMap([Zone("cell", ("10.1.2.0/24",), "OT", 1)]))
    resumed.load(loaded)
    assert resumed.snapshot() == assets


def test_upsert_and_removed_ids(tmp_path: Path) -> None:
    a, b, c = _assets()
    with Store(tmp_path) as store:
        store.save_assets([a, b, c])
        firmware = Attribute("v3.0", "modbus/fc43", 0.9)
        newer = dataclasses.replace(b, last_seen=b.last_seen + 60, firmware=firmware)
        store.save_assets([newer], removed=[c.asset_id])
        assert store.load_assets() == [a, newer]


def test_wal_mode_and_schema_version(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db = sqlite3.connect(tmp_path / DB_NAME)
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert row == (str(SCHEMA_VERSION),)
    db.close()


def test_store_creates_a_missing_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "a" / "b"
    Store(state).close()
    assert (state / DB_NAME).is_file()


def test_readonly_open_of_a_missing_db_is_a_clear_error_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(StoreError, match=r"no otwatch database at .*nowhere/otwatch\.sqlite"):
        Store.open_readonly(missing)
    assert not missing.exists()
    with pytest.raises(StoreError):
        Store.open_readonly(tmp_path)
    assert os.listdir(tmp_path) == []


def test_readonly_open_reads_and_creates_no_files(tmp_path: Path) -> None:
    assets = _assets()
    with Store(tmp_path) as store:
        store.save_assets(assets)
    before = sorted(os.listdir(tmp_path))
    assert before == [DB_NAME]
    ro = Store.open_readonly(tmp_path)
    assert ro.load_assets() == list(assets)
    with pytest.raises(StoreError, match="read-only"):
        ro.save_assets(assets)
    ro.close()
    assert sorted(os.listdir(tmp_path)) == before


def test_readonly_open_while_the_sensor_writes(tmp_path: Path) -> None:
    assets = _assets()
    writer = Store(tmp_path)
    writer.save_assets(assets[:1])
    with Store.open_readonly(tmp_path) as ro:
        assert ro.load_assets() == list(assets[:1])
        writer.save_assets(assets[1:])
        assert ro.load_assets() == list(assets)
    writer.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    Store(tmp_path).close()
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer"):
        Store(tmp_path)
    with pytest.raises(StoreError, match="newer"):
        Store.open_readonly(tmp_path)


def test_foreign_files_are_refused(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.execute("CREATE TABLE other (x)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="not an otwatch database"):
        Store.open_readonly(tmp_path)
    garbage = tmp_path / "g"
    garbage.mkdir()
    (garbage / DB_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a database"):
        Store(garbage)


def test_unreadable_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    assets = _assets()
    with Store(tmp_path) as store:
        store.save_assets(assets)
        store._db.execute("UPDATE assets SET data = '{broken' WHERE asset_id = ?", (assets[0].asset_id,))
        store._db.execute("UPDATE assets SET data = '{}' WHERE asset_id = ?", (assets[1].asset_id,))
        store._db.commit()
        assert store.load_assets() == [assets[2]]
        assert store.skipped_rows == 2


def test_assets_without_ip_and_rows_written_before_bacnet_fields(tmp_path: Path) -> None:
    routed = Asset(
        "r5", "", None, T0, T0 + 1, category="BMS controller", via_ip="10.1.2.1", via_mac="00:0d:4b:00:00:01",
        via_asset="a1", bacnet_device_instance=5010, bacnet_network=5, bacnet_mac="0a", bacnet_max_apdu=480,
        bacnet_segmentation="no-segmentation", bacnet_services=("i_am",), protocols=("bacnet",),
        object_name=Attribute("VAV-5", "bacnet/read-property", 0.9),
        location=Attribute("Floor 2", "bacnet/read-property", 0.9),
    )
    old_style = _assets()[0].to_dict()
    for key in [k for k in old_style if k.startswith(("bacnet_", "via_ip", "via_asset"))] + [
        "application_software", "object_name", "location", "description", "serial_number"
    ]:
        del old_style[key]
    with Store(tmp_path) as store:
        store.save_assets([routed])
        store._db.execute(
            "INSERT INTO assets (asset_id, ip, mac, category, zone, first_seen, last_seen, data) "
            "VALUES ('old', ?, NULL, 'PLC', NULL, 0, 0, ?)",
            (old_style["ip"], json.dumps({**old_style, "asset_id": "old", "first_seen": 0.0, "last_seen": 0.0})),
        )
        store._db.commit()
    with Store.open_readonly(tmp_path) as ro:
        old, loaded = ro.load_assets()
        assert ro.skipped_rows == 0
        assert ro._db.execute("SELECT ip FROM assets WHERE asset_id = 'r5'").fetchone() == ("",)
    assert loaded == routed and loaded.address == "bacnet:5:0a"
    assert old.ip == old_style["ip"] and old.bacnet_device_instance is None and old.bacnet_services == ()
    assert old.object_name is None and old.via_ip is None


def test_bacnet_site_round_trip_and_resume(tmp_path: Path) -> None:
    inv = site()
    assets = inv.snapshot()
    with Store(tmp_path) as store:
        store.save_assets(assets)
    with Store.open_readonly(tmp_path) as ro:
        loaded = ro.load_assets()
    assert sorted(loaded, key=lambda a: a.asset_id) == sorted(assets, key=lambda a: a.asset_id)
    resumed = AssetInventory(ZONES)
    resumed.load(loaded)
    assert resumed.snapshot() == assets
    # more traffic from the routed device and the router after the restart: no new assets
    resumed.on_event(i_am(ROUTER, 5010, T0 + 100, snet=5, sadr="0a"))
    after = resumed.snapshot()
    assert resumed.new_assets == 0 and len(after) == len(assets)
    assert by_address(after, "bacnet:5:0a").last_seen == T0 + 100
    # a zone change reaches the routed device through its router
    moved = AssetInventory(ZoneMap([Zone("plant", ("10.20.1.0/25",), "OT", 0)]))
    moved.load(loaded)
    assert by_address(moved.snapshot(), "bacnet:5:0a").zone == "plant"


def test_inventory_command_table_and_json_with_an_asset_without_ip(tmp_path: Path) -> None:
    assets = site().snapshot()
    with Store(tmp_path) as store:
        store.save_assets(assets)
    cmd = [sys.executable, "-m", "appliance", "inventory", "--state", str(tmp_path)]
    table = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr
    assert "net 5 mac 10" in table.stdout and "BACnet router" in table.stdout
    done = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    routed = next(r for r in rows if r["bacnet_network"] == 5)
    assert routed["ip"] == "" and routed["via_ip"] == ROUTER and routed["bacnet_device_instance"] == 5010
    assert routed["roles"] == {"bacnet": {"server": {"units": [5010], "peers": [FE]}}}
    assert Asset.from_dict(routed) in assets
