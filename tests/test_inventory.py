"""AssetInventory: identity (MAC, IP), gateways, who counts as an asset, categories, FC43 identity, resume."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from appliance.asset_rules import MAX_PEERS
from appliance.inventory import AssetInventory
from appliance.model import Asset, Flow, FlowId, ProtocolEvent
from appliance.zones import Zone, ZoneMap

PLC1, PLC2, HMI, EWS = "10.1.2.10", "10.1.2.11", "10.1.3.5", "10.1.3.9"
MAC_PLC1 = "00:80:f4:00:00:01"  # Telemecanique OUI
MAC_PLC2 = "00:80:f4:00:00:02"
MAC_HMI = "00:1d:9c:00:00:05"  # Rockwell OUI
ROUTER = "00:1d:9c:00:00:fe"
FC43 = "read_device_identification"
T0 = 1_700_000_000.0

ZONES = ZoneMap(
    [
        Zone("cell-1", ("10.1.2.0/24",), "OT", 1),
        Zone("control", ("10.1.3.0/24",), "OT", 2),
        Zone("corp", ("10.50.0.0/16",), "IT", 4),
    ]
)


def fid(
    orig: str, resp: str, resp_p: int = 502, orig_p: int = 40000, proto: str = "tcp", uid: str = "C1"
) -> FlowId:
    return FlowId(uid, orig, orig_p, resp, resp_p, proto)


def conn(
    f: FlowId,
    ts: float = T0,
    duration: float = 1.0,
    *,
    orig_mac: str | None = None,
    resp_mac: str | None = None,
    resp_pkts: int = 3,
    service: str | None = None,
) -> Flow:
    return Flow(
        f, ts, duration, service, 12, 12 if resp_pkts else 0, "SF" if resp_pkts else "S0", 0, "ShADadFf",
        3, 200, resp_pkts, 200 if resp_pkts else 0, orig_mac, resp_mac,
    )


def event(f: FlowId, is_orig: bool, op: str, kind: str, ts: float = T0, **fields: Any) -> ProtocolEvent:
    src, _, dst, _ = f.endpoints(is_orig)
    return ProtocolEvent(ts, f, "modbus", op, kind, is_orig, src, dst, fields)


def poll(
    inv: AssetInventory,
    client: str,
    server: str,
    ts: float,
    unit: int = 1,
    op: str = "read_holding_registers",
    uid: str = "C1",
) -> None:
    f = fid(client, server, uid=uid)
    inv.on_event(event(f, True, op, "request", ts, tid=1, unit=unit, func=3, address=0, quantity=10))
    inv.on_event(event(f, False, op, "response", ts + 0.01, tid=1, unit=unit, func=3))


def by_ip(assets: tuple[Asset, ...], ip: str) -> Asset:
    found = [a for a in assets if a.ip == ip]
    assert len(found) == 1, f"{len(found)} assets with ip {ip}"
    return found[0]


def test_modbus_server_is_plc_and_poller_of_two_is_hmi() -> None:
    inv = AssetInventory(ZONES)
    poll(inv, HMI, PLC1, T0, unit=1)
    poll(inv, HMI, PLC1, T0 + 1, unit=2)
    poll(inv, HMI, PLC2, T0 + 2, unit=1, uid="C2")
    assets = inv.snapshot()
    assert {a.ip for a in assets} == {HMI, PLC1, PLC2}
    plc = by_ip(assets, PLC1)
    assert plc.category == "PLC" and plc.category_rule == "modbus-server"
    assert plc.category_evidence == "answers Modbus requests (unit ids 1, 2) from 1 client(s)"
    assert plc.role_map() == {"modbus": {"server": {1, 2}}}
    assert plc.zone == "cell-1" and plc.domain == "OT" and plc.purdue_level == 1
    hmi = by_ip(assets, HMI)
    assert hmi.category == "HMI/SCADA" and hmi.category_evidence == "polls 2 Modbus servers"
    assert hmi.role_map() == {"modbus": {"client": {1, 2}}}
    assert hmi.peers == (PLC1, PLC2)
    assert hmi.zone == "control" and hmi.purdue_level == 2
    assert hmi.first_seen == T0 and hmi.last_seen == T0 + 2
    assert plc.first_seen == T0 + 0.01 and plc.last_seen == T0 + 1.01
    assert inv.new_assets == 3


def test_poller_of_one_server_is_unknown_and_diagnostics_make_an_engineering_workstation() -> None:
    inv = AssetInventory(ZONES)
    poll(inv, HMI, PLC1, T0)
    assert by_ip(inv.snapshot(), HMI).category == "unknown"
    poll(inv, EWS, PLC1, T0 + 5, op="diagnostics")
    ews = by_ip(inv.snapshot(), EWS)
    assert ews.category == "engineering workstation"
    assert ews.category_rule == "modbus-engineering"
    assert ("modbus", "diagnostic", 1) in ews.events_sent


def test_only_senders_become_assets() -> None:
    inv = AssetInventory(ZONES)
    scan = fid(HMI, "10.1.2.99")
    inv.on_flow(conn(scan, resp_pkts=0, orig_mac=MAC_HMI, resp_mac="00:80:f4:00:00:99"))
    inv.on_event(event(scan, True, "read_coils", "request", T0, unit=1))
    assets = inv.snapshot()
    assert [a.ip for a in assets] == [HMI]
    assert assets[0].peers == ("10.1.2.99",)


def test_broadcast_multicast_and_unspecified_are_never_assets() -> None:
    inv = AssetInventory(ZONES)
    for src in ("255.255.255.255", "224.0.0.251", "0.0.0.0", "ff02::1", "::", "10.1.2.255", "garbage", ""):
        f = FlowId("Cx", src, 47808, "10.1.2.10", 47808, "udp")
        inv.on_flow(conn(f, orig_mac="00:80:f4:00:00:01"))
        inv.on_event(ProtocolEvent(T0, f, "bacnet", "i_am", "request", True, src, "10.1.2.10", {}))
    # the responder 10.1.2.10 answered each of these flows, so it is the only asset
    assert [a.ip for a in inv.snapshot()] == ["10.1.2.10"]


def test_zero_mac_keys_by_ip() -> None:
    inv = AssetInventory()
    f = fid("127.0.0.1", "127.0.0.2")
    inv.on_flow(conn(f, orig_mac="00:00:00:00:00:00", resp_mac=None))
    assets = sorted(inv.snapshot(), key=lambda a: a.ip)
    assert [(a.ip, a.mac) for a in assets] == [("127.0.0.1", None), ("127.0.0.2", None)]
    assert all(a.mac_vendor is None for a in assets)


def test_same_ip_with_two_macs_is_two_assets() -> None:
    inv = AssetInventory(ZONES)
    inv.on_flow(conn(fid(HMI, PLC1, uid="C1"), orig_mac=MAC_HMI, resp_mac=MAC_PLC1))
    inv.on_flow(conn(fid(HMI, PLC1, uid="C2"), ts=T0 + 9, orig_mac=MAC_HMI, resp_mac="00:80:f4:00:00:66"))
    plcs = [a for a in inv.snapshot() if a.ip == PLC1]
    assert sorted(a.mac or "" for a in plcs) == ["00:80:f4:00:00:01", "00:80:f4:00:00:66"]
    assert len({a.asset_id for a in plcs}) == 2


def test_event_first_then_conn_record_adds_the_mac_and_keeps_the_id() -> None:
    inv = AssetInventory(ZONES)
    poll(inv, HMI, PLC1, T0)
    before = {a.ip: a.asset_id for a in inv.snapshot()}
    assert all(a.mac is None for a in inv.snapshot())
    record = conn(fid(HMI, PLC1), T0 - 1, 30, orig_mac=MAC_HMI, resp_mac=MAC_PLC1, service="modbus")
    inv.on_flow(record)
    assets = inv.snapshot()
    assert {a.ip: a.asset_id for a in assets} == before
    plc = by_ip(assets, PLC1)
    assert plc.mac == MAC_PLC1 and plc.first_seen == T0 - 1 and plc.last_seen == T0 + 29
    assert plc.mac_vendor is not None and plc.mac_vendor.source == "oui"
    assert plc.mac_vendor.value == "TELEMECANIQUE ELECTRIQUE" and 0 < plc.mac_vendor.confidence < 1
    assert plc.flows == 1 and plc.protocols == ("modbus",)
    assert inv.removed_ids == []


def test_mac_with_many_ips_is_a_gateway() -> None:
    router = ROUTER
    inv = AssetInventory(ZONES, router_mac_threshold=3)
    remote = [f"10.50.0.{i}" for i in range(1, 6)]
    for i, ip in enumerate(remote):
        inv.on_flow(conn(fid(ip, PLC1, uid=f"C{i}"), ts=T0 + i, orig_mac=router, resp_mac=MAC_PLC1))
    assets = inv.snapshot()
    for ip in remote:
        a = by_ip(assets, ip)
        assert a.mac is None and a.via_mac == router and a.mac_vendor is None
        assert a.zone == "corp"
    assert by_ip(assets, PLC1).mac == MAC_PLC1
    assert router in inv.gateways
    assert len(assets) == 6
    # three IPs behind one MAC is below the threshold: one MAC, three assets, MAC kept
    inv2 = AssetInventory(ZONES, router_mac_threshold=3)
    for i, ip in enumerate(remote[:3]):
        inv2.on_flow(conn(fid(ip, PLC1, uid=f"C{i}"), orig_mac=router, resp_mac=MAC_PLC1))
    assert [a.mac for a in inv2.snapshot() if a.ip != PLC1] == [router] * 3


def test_gateway_demotion_merges_with_an_ip_only_asset() -> None:
    router = ROUTER
    inv = AssetInventory(ZONES, router_mac_threshold=2)
    poll(inv, "10.50.0.1", PLC1, T0)  # events only: 10.50.0.1 keyed by IP
    # the conn record brings the router's MAC for it
    inv.on_flow(conn(fid("10.50.0.1", PLC1), ts=T0 - 1, orig_mac=router, resp_mac=MAC_PLC1))
    inv.on_flow(conn(fid("10.50.0.2", PLC1), orig_mac=router, resp_mac=MAC_PLC1))
    inv.on_flow(conn(fid("10.50.0.3", PLC1), orig_mac=router, resp_mac=MAC_PLC1))
    a = by_ip(inv.snapshot(), "10.50.0.1")
    assert a.mac is None and a.via_mac == router
    assert a.first_seen == T0 - 1 and ("modbus", "read", 1) in a.events_sent


def test_fc43_identity_with_source_and_confidence() -> None:
    inv = AssetInventory(ZONES)
    poll(inv, HMI, PLC1, T0)
    f = fid(HMI, PLC1)
    inv.on_event(event(f, True, FC43, "request", T0 + 1, unit=1, mei_type=14))
    objects = {
        "vendor_name": "Schneider Electric",
        "product_code": "BMX P34 2020",
        "revision": b"v2.7\x00\x01",
        "model_name": "Modicon M340",
    }
    inv.on_event(event(f, False, FC43, "response", T0 + 1.01, unit=1, objects=objects))
    plc = by_ip(inv.snapshot(), PLC1)
    assert plc.vendor is not None and plc.vendor.value == "Schneider Electric"
    assert plc.vendor.source == "modbus/fc43" and plc.vendor.confidence == 0.9
    assert plc.product_code is not None and plc.product_code.value == "BMX P34 2020"
    assert plc.firmware is not None and plc.firmware.value == "v2.7"
    assert plc.model is not None and plc.model.value == "Modicon M340"
    assert plc.category == "PLC" and plc.category_rule == "modbus-server-fc43"
    assert "Schneider Electric BMX P34 2020" in plc.category_evidence
    assert plc.category_confidence > 0.6
    # a request cannot carry identity; the client gets none
    assert by_ip(inv.snapshot(), HMI).vendor is None


def test_fc43_model_falls_back_to_product_name() -> None:
    inv = AssetInventory()
    f = fid(HMI, PLC1)
    inv.on_event(event(f, False, FC43, "response", T0, objects={"product_name": "M221"}))
    plc = by_ip(inv.snapshot(), PLC1)
    assert plc.model is not None and (plc.model.value, plc.model.confidence) == ("M221", 0.7)
    inv.on_event(event(f, False, FC43, "response", T0 + 1, objects={"model_name": "TM221"}))
    plc = by_ip(inv.snapshot(), PLC1)
    assert plc.model is not None and (plc.model.value, plc.model.confidence) == ("TM221", 0.9)


def test_malformed_event_fields_never_raise() -> None:
    inv = AssetInventory(ZONES)
    f = fid(HMI, PLC1)
    inv.on_event(event(f, False, FC43, "response", T0, unit="x", objects=["not", "a dict"]))
    inv.on_event(event(f, False, FC43, "response", T0, unit=None, objects={"vendor_name": 7}))
    inv.on_event(ProtocolEvent(T0, None, "modbus", "x", "weird", True, "", "", {}))
    plc = by_ip(inv.snapshot(), PLC1)
    assert plc.role_map() == {"modbus": {"server": set()}}
    assert plc.vendor is not None and plc.vendor.value == "7"


def test_weird_events_count_but_do_not_give_roles() -> None:
    inv = AssetInventory(ZONES)
    f = fid(HMI, PLC1)
    inv.on_event(ProtocolEvent(T0, f, "modbus", "modbus_bad_length", "weird", True, HMI, PLC1, {"name": "x"}))
    a = by_ip(inv.snapshot(), HMI)
    assert a.roles == () and a.protocols == () and a.events_sent == (("modbus", "other", 1),)


def test_it_host_from_non_ot_traffic_only() -> None:
    inv = AssetInventory(ZONES)
    dns = fid("10.50.0.7", "10.50.0.53", resp_p=53, proto="udp")
    inv.on_flow(conn(dns, orig_mac="00:11:22:33:44:55", resp_mac="00:11:22:33:44:53", service="dns"))
    assets = inv.snapshot()
    client = by_ip(assets, "10.50.0.7")
    assert client.category == "IT host" and client.category_rule == "non-ot-only"
    assert client.category_evidence == "seen only in non-OT traffic (dns)"
    assert by_ip(assets, "10.50.0.53").role_map() == {"dns": {"server": set()}}
    # the same host later talks Modbus (port 502, not decoded): no longer "only non-OT"
    inv.on_flow(conn(fid("10.50.0.7", PLC1, uid="C9"), orig_mac="00:11:22:33:44:55", resp_mac=MAC_PLC1))
    assert by_ip(inv.snapshot(), "10.50.0.7").category == "unknown"


def test_locally_administered_and_unregistered_macs_have_no_vendor() -> None:
    inv = AssetInventory()
    inv.on_flow(conn(fid("10.0.0.1", "10.0.0.2"), orig_mac="02:42:ac:11:00:02", resp_mac="3c:ff:ff:00:00:01"))
    assets = sorted(inv.snapshot(), key=lambda a: a.ip)
    assert [a.mac for a in assets] == ["02:42:ac:11:00:02", "3c:ff:ff:00:00:01"]
    assert [a.mac_vendor for a in assets] == [None, None]


def test_event_counts_by_op_class_with_a_given_classifier() -> None:
    inv = AssetInventory(ZONES, op_class=lambda protocol, op: "write" if op.startswith("write") else "read")
    poll(inv, HMI, PLC1, T0, op="write_single_register")
    poll(inv, HMI, PLC1, T0 + 1, op="write_single_register")
    poll(inv, HMI, PLC1, T0 + 2)
    assets = inv.snapshot()
    assert by_ip(assets, HMI).events_sent == (("modbus", "read", 1), ("modbus", "write", 2))
    # the PLC received the requests after it became an asset (its first response)
    assert by_ip(assets, PLC1).events_received == (("modbus", "read", 1), ("modbus", "write", 1))
    assert by_ip(assets, PLC1).events_sent == (("modbus", "read", 1), ("modbus", "write", 2))


def test_peers_are_bounded() -> None:
    inv = AssetInventory()
    for i in range(MAX_PEERS + 50):
        peer = f"10.8.{i // 250}.{i % 250 + 1}"
        inv.on_event(event(fid("10.9.0.1", peer), True, "read_coils", "request", T0))
    a = inv.snapshot()[0]
    assert len(a.peers) == MAX_PEERS
    assert len(a.roles[0].peers) <= MAX_PEERS


def test_snapshot_is_immutable_and_reused_when_nothing_changed() -> None:
    inv = AssetInventory(ZONES)
    poll(inv, HMI, PLC1, T0)
    first = inv.snapshot()
    with pytest.raises(dataclasses.FrozenInstanceError):
        first[0].category = "x"  # type: ignore[misc]
    again = inv.snapshot()
    assert all(a is b for a, b in zip(first, again, strict=True))
    poll(inv, HMI, PLC1, T0 + 10)
    later = inv.snapshot()
    assert by_ip(first, HMI).last_seen == T0
    assert by_ip(later, HMI).last_seen == T0 + 10


def test_load_resumes_the_same_inventory() -> None:
    inv = AssetInventory(ZONES, router_mac_threshold=2)
    poll(inv, HMI, PLC1, T0)
    poll(inv, HMI, PLC2, T0 + 1, uid="C2")
    inv.on_flow(conn(fid(HMI, PLC1), orig_mac=MAC_HMI, resp_mac=MAC_PLC1, service="modbus"))
    for i in range(3):
        inv.on_flow(conn(fid(f"10.50.0.{i}", PLC2, uid=f"R{i}"), orig_mac=ROUTER, resp_mac=MAC_PLC2))
    saved = inv.snapshot()
    resumed = AssetInventory(ZONES, router_mac_threshold=2)
    resumed.load(saved)
    assert resumed.snapshot() == saved
    assert resumed.new_assets == 0
    assert ROUTER in resumed.gateways
    # more traffic updates the loaded assets instead of creating new ones
    poll(resumed, HMI, PLC1, T0 + 100)
    resumed.on_flow(conn(fid("10.50.0.0", PLC2, uid="R9"), orig_mac=ROUTER, resp_mac=MAC_PLC2))
    after = resumed.snapshot()
    assert len(after) == len(saved) and resumed.new_assets == 0
    assert by_ip(after, HMI).last_seen == T0 + 100


def test_load_looks_zones_up_again() -> None:
    inv = AssetInventory(ZONES)
    poll(inv, HMI, PLC1, T0)
    moved = AssetInventory(ZoneMap([Zone("new-cell", ("10.1.2.0/25",), "OT", 0)]))
    moved.load(inv.snapshot())
    plc = by_ip(moved.snapshot(), PLC1)
    assert (plc.zone, plc.purdue_level) == ("new-cell", 0)
    assert by_ip(moved.snapshot(), HMI).zone is None


def test_asset_dict_round_trip() -> None:
    inv = AssetInventory(ZONES)
    poll(inv, HMI, PLC1, T0)
    objects = {"vendor_name": "Schneider Electric"}
    inv.on_event(event(fid(HMI, PLC1), False, FC43, "response", T0, objects=objects))
    for a in inv.snapshot():
        assert Asset.from_dict(a.to_dict()) == a


def test_merged_assets_are_reported_for_deletion() -> None:
    older = Asset("old", "10.50.0.9", None, T0, T0 + 5, via_mac=ROUTER, protocols=("dns",), flows=2)
    newer = Asset("new", "10.50.0.9", ROUTER, T0 + 1, T0 + 9, protocols=("modbus",), flows=1, ot_traffic=True)
    inv = AssetInventory(ZONES)
    inv.load([older, newer])  # the router MAC is a gateway: both are the same IP-keyed asset
    (merged,) = inv.snapshot()
    assert merged.asset_id == "old" and merged.mac is None and merged.via_mac == ROUTER
    assert (merged.first_seen, merged.last_seen, merged.flows) == (T0, T0 + 9, 3)
    assert merged.protocols == ("dns", "modbus") and merged.ot_traffic
    assert inv.take_removed() == ["new"]
    assert inv.take_removed() == []
