"""BACnet devices in the asset inventory: I-Am and device-object identity, front ends, routers, BBMDs, routed
devices without an IP, BACnet/Ethernet stations, and every reader of assets (store, table, JSON, Prometheus).

Events are built by hand as the BACnet event schema describes them (ICSNPP field names).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from appliance.export.prometheus import OtwatchCollector
from appliance.inventory import AssetInventory
from appliance.model import Asset, Attribute, Flow, FlowId, ProtocolEvent
from appliance.stats import StatsSnapshot
from appliance.zones import Zone, ZoneMap

T0 = 1_700_000_000.0
FE = "10.20.9.5"  # the BMS front end
CTRL = ("10.20.1.10", "10.20.1.11", "10.20.1.12")  # field controllers
ROUTER = "10.20.1.1"  # BACnet/IP to MS/TP router
ROUTER_MAC = "00:0d:4b:00:00:01"
ZONES = ZoneMap(
    [
        Zone("bms-field", ("10.20.1.0/24",), "BMS", 1),
        Zone("bms-supervisory", ("10.20.9.0/24",), "BMS", 2),
        Zone("remote-site", ("10.40.0.0/16",), "BMS", 1),
    ]
)
LOCAL_BROADCAST = "10.20.1.255"
SIEMENS = "Siemens Building Technologies"


def bev(src: str, dst: str, op: str, kind: str, ts: float = T0, **fields: Any) -> ProtocolEvent:
    """A BACnet/IP event from src to dst (one UDP flow per pair)."""
    fields.setdefault("bvlc_function", "Original_Broadcast_NPDU" if dst.endswith(".255") else "Original_Unicast_NPDU")
    flow = FlowId(f"B{src}>{dst}", src, 47808, dst, 47808, "udp")
    return ProtocolEvent(ts, flow, "bacnet", op, kind, True, src, dst, fields)


def i_am(src: str, instance: int, ts: float = T0, dst: str = LOCAL_BROADCAST, **extra: Any) -> ProtocolEvent:
    fields: dict[str, Any] = {
        "pdu_type": "UNCONFIRMED_REQUEST", "pdu_service": "i-am", "service_choice": 0, "object_type": "device",
        "instance_number": instance, "vendor": SIEMENS, "vendor_id": 7, "max_apdu": 1476,
        "segmentation": "segmented-both",
    }
    fields.update(extra)
    return bev(src, dst, "i_am", "request", ts, **fields)


def read(client: str, server: str, instance: int, prop: str, value: Any, ts: float, **routing: Any) -> list[
    ProtocolEvent
]:
    """A ReadProperty of the device object and its complex ACK carrying `value` (a string or number)."""
    obj = {"object_type": "device", "instance_number": instance, "property": prop}
    req_routing = {k: v for k, v in routing.items() if k in ("dnet", "dadr")}
    ack_routing = {k: v for k, v in routing.items() if k in ("snet", "sadr")}
    text = f'"{value}"' if isinstance(value, str) else str(value)
    return [
        bev(client, server, "read_property", "request", ts, pdu_type="CONFIRMED_REQUEST", invoke_id=1,
            pdu_service="read-property-request", **obj, **req_routing),
        bev(server, client, "read_property", "response", ts + 0.01, pdu_type="COMPLEX_ACK", invoke_id=1,
            pdu_service="read-property-ack", value=text, values=[value], **obj, **ack_routing),
    ]


def feed(inv: AssetInventory, events: list[ProtocolEvent]) -> None:
    for ev in events:
        inv.on_event(ev)


def by_address(assets: tuple[Asset, ...], address: str) -> Asset:
    found = [a for a in assets if a.address == address]
    assert len(found) == 1, f"{len(found)} assets at {address}"
    return found[0]


def site() -> AssetInventory:
    """A small building: three controllers, a front end that discovers and reads them, a router with an MS/TP
    trunk (network 5) holding device 5010 at MAC 10, the router's own I-Am-Router-To-Network, MACs from conn
    records."""
    inv = AssetInventory(ZONES)
    inv.on_event(bev(FE, "255.255.255.255", "who_is", "request", T0, pdu_type="UNCONFIRMED_REQUEST", range="All"))
    # a broadcast to an address no zone marks as one (loopback, an unknown subnet): BVLC says broadcast
    inv.on_event(bev(FE, "127.255.255.255", "who_is", "request", T0, bvlc_function="Original_Broadcast_NPDU"))
    for n, ip in enumerate(CTRL):
        inv.on_event(i_am(ip, 1001 + n, T0 + 0.1))
        feed(inv, read(FE, ip, 1001 + n, "object-name", f"AHU-{n + 1}", T0 + 1 + n))
    feed(inv, read(FE, CTRL[0], 1001, "model-name", "PXC100-E.D", T0 + 5))
    inv.on_event(bev(ROUTER, LOCAL_BROADCAST, "i_am_router_to_network", "response", T0 + 6, networks=[5]))
    inv.on_event(i_am(ROUTER, 5010, T0 + 7, snet=5, sadr="0a", vendor="Johnson Controls, Inc.", vendor_id=5,
                      max_apdu=480, segmentation="no-segmentation"))
    feed(inv, read(FE, ROUTER, 5010, "firmware-revision", "3.2.1", T0 + 8, dnet=5, dadr="0a", snet=5, sadr="0a"))
    record = Flow(FlowId("C1", FE, 47808, ROUTER, 47808, "udp"), T0, 9.0, "bacnet", 100, 100, "SF", 0, "Dd",
                  3, 200, 3, 200, "00:1a:e8:00:00:05", ROUTER_MAC)
    inv.on_flow(record)
    return inv


def test_i_am_makes_a_bms_controller_with_vendor_and_device_instance() -> None:
    inv = AssetInventory(ZONES)
    inv.on_event(i_am(CTRL[0], 1001))
    (ctrl,) = inv.snapshot()
    assert ctrl.ip == CTRL[0] and ctrl.category == "BMS controller"
    assert ctrl.category_rule == "bacnet-server-identified" and ctrl.category_confidence == 0.7
    assert ctrl.category_evidence == f"BACnet device 1001 ({SIEMENS}) announcing itself or serving 0 client(s)"
    assert ctrl.bacnet_device_instance == 1001 and ctrl.bacnet_vendor_id == 7
    assert (ctrl.bacnet_max_apdu, ctrl.bacnet_segmentation) == (1476, "segmented-both")
    assert ctrl.vendor == Attribute(SIEMENS, "bacnet/i-am", 0.8)
    assert ctrl.role_map() == {"bacnet": {"server": {1001}}}
    assert ctrl.protocols == ("bacnet",) and ctrl.ot_traffic
    assert ctrl.zone == "bms-field" and ctrl.domain == "BMS" and ctrl.peers == ()  # a broadcast has no peer
    assert ctrl.events_sent == (("bacnet", "discovery", 1),)
    # the schema's other spelling of the I-Am device (device_id_number) and an unknown vendor id
    inv.on_event(bev(CTRL[1], LOCAL_BROADCAST, "i_am", "request", T0, device_id_number=1002, vendor="unknown-999"))
    other = by_address(inv.snapshot(), CTRL[1])
    assert other.bacnet_device_instance == 1002 and other.vendor is None


def test_read_property_acks_of_the_device_object_give_identity_with_sources() -> None:
    inv = AssetInventory(ZONES)
    inv.on_event(i_am(CTRL[0], 1001))
    pairs = [
        ("model-name", "PXC100-E.D"), ("firmware-revision", "FW 6.0.204"),
        ("application-software-version", "APP 2.1"), ("object-name", "AHU-1"), ("location", "Roof, plant room 3"),
        ("description", "Air handler 1"), ("vendor-name", "Siemens"), ("vendor-identifier", 7),
    ]
    for i, (prop, value) in enumerate(pairs):
        feed(inv, read(FE, CTRL[0], 1001, prop, value, T0 + i))
    rpm_ack = bev(CTRL[0], FE, "read_property_multiple", "response", T0 + 20, pdu_type="COMPLEX_ACK", properties=[
        {"object_type": "device", "instance_number": 1001, "property": "serial-number", "value": '"SN-0042"',
         "values": ["SN-0042"]},
        {"object_type": "device", "instance_number": 1001, "property": "location", "error_class": "property",
         "error_code": "unknown-property"},
        {"object_type": "analog-input", "instance_number": 1, "property": "object-name", "values": ["Supply temp"]},
        {"object_type": "device", "instance_number": 2002, "property": "model-name", "values": ["not me"]},
        "junk",
    ])
    inv.on_event(rpm_ack)
    ctrl = by_address(inv.snapshot(), CTRL[0])
    source, confidence = "bacnet/read-property", 0.9
    assert ctrl.model == Attribute("PXC100-E.D", source, confidence)
    assert ctrl.firmware == Attribute("FW 6.0.204", source, confidence)
    assert ctrl.application_software == Attribute("APP 2.1", source, confidence)
    assert ctrl.object_name == Attribute("AHU-1", source, confidence)
    assert ctrl.location == Attribute("Roof, plant room 3", source, confidence)
    assert ctrl.description == Attribute("Air handler 1", source, confidence)
    assert ctrl.serial_number == Attribute("SN-0042", source, confidence)
    assert ctrl.vendor == Attribute("Siemens", source, confidence)  # the device's own string beats the I-Am's
    assert ctrl.bacnet_vendor_id == 7
    inv.on_event(i_am(CTRL[0], 1001, T0 + 30))  # and a later I-Am leaves it so
    assert by_address(inv.snapshot(), CTRL[0]).vendor == Attribute("Siemens", source, confidence)
    fe = by_address(inv.snapshot(), FE)
    assert fe.model is None and fe.object_name is None  # a request carries no identity of its sender


def test_write_property_requests_teach_no_identity() -> None:
    inv = AssetInventory(ZONES)
    inv.on_event(i_am(CTRL[0], 1001))
    feed(inv, read(FE, CTRL[0], 1001, "object-name", "AHU-1", T0))
    inv.on_event(bev(FE, CTRL[0], "write_property", "request", T0 + 1, pdu_type="CONFIRMED_REQUEST",
                     object_type="device", instance_number=1001, property="object-name", value='"PWNED"',
                     values=["PWNED"], priority=16))
    inv.on_event(bev(CTRL[0], FE, "write_property", "response", T0 + 1.01, pdu_type="SIMPLE_ACK"))
    assets = inv.snapshot()
    ctrl = by_address(assets, CTRL[0])
    assert ctrl.object_name is not None and ctrl.object_name.value == "AHU-1"
    assert by_address(assets, FE).object_name is None
    assert ("bacnet", "write", 1) in ctrl.events_received


def test_front_end_sending_who_is_and_reading_three_devices_is_a_bms_workstation() -> None:
    inv = site()
    fe = by_address(inv.snapshot(), FE)
    assert fe.category == "BMS workstation" and fe.category_rule == "bacnet-front-end"
    # three IP controllers and one routed device
    assert fe.category_evidence == "sends Who-Is and reads 4 BACnet devices (ReadProperty/ReadPropertyMultiple)"
    assert fe.role_map()["bacnet"] == {"client": {1001, 1002, 1003, 5010}}
    assert fe.bacnet_services == ("read_property", "who_is")
    assert fe.zone == "bms-supervisory"


def test_reads_alone_make_a_poller_and_two_devices_are_not_enough() -> None:
    inv = AssetInventory(ZONES)
    for n, ip in enumerate(CTRL[:2]):
        feed(inv, read(FE, ip, 1001 + n, "present-value", 21.5, T0 + n))
    assert by_address(inv.snapshot(), FE).category == "unknown"
    feed(inv, read(FE, CTRL[2], 1003, "present-value", 21.5, T0 + 3))
    fe = by_address(inv.snapshot(), FE)
    assert (fe.category, fe.category_rule, fe.category_confidence) == ("BMS workstation", "bacnet-poller", 0.5)
    # a controller that reads three peers is still a controller: it serves others
    for n, ip in enumerate(CTRL):
        feed(inv, read(CTRL[0], ip, 1001 + n, "present-value", 1, T0 + 10 + n))
    feed(inv, read(FE, CTRL[0], 1001, "present-value", 1, T0 + 20))
    assert by_address(inv.snapshot(), CTRL[0]).category == "BMS controller"


def test_routed_i_am_is_its_own_asset_behind_the_router() -> None:
    inv = site()
    assets = inv.snapshot()
    router = by_address(assets, ROUTER)
    device = by_address(assets, "bacnet:5:0a")
    assert device.ip == "" and device.mac is None
    assert (device.bacnet_network, device.bacnet_mac, device.bacnet_device_instance) == (5, "0a", 5010)
    assert (device.via_ip, device.via_mac, device.via_asset) == (ROUTER, ROUTER_MAC, router.asset_id)
    assert device.zone == "bms-field" and device.purdue_level == 1  # the router's zone
    assert device.category == "BMS controller" and device.vendor == Attribute("Johnson Controls, Inc.",
                                                                              "bacnet/i-am", 0.8)
    assert device.firmware == Attribute("3.2.1", "bacnet/read-property", 0.9)
    assert (device.bacnet_max_apdu, device.bacnet_segmentation) == (480, "no-segmentation")
    assert device.role_map() == {"bacnet": {"server": {5010}}}
    assert device.peers == (FE,)
    assert ("bacnet", "read", 1) in device.events_received  # the request addressed DNET 5 / DADR 0a
    # the router: its own asset, with the router role; the routed I-Am is not its identity
    assert router.category == "BACnet router" and router.category_rule == "bacnet-router"
    assert router.category_evidence == "routes to BACnet network(s) 5; relays messages of 1 routed device(s)"
    assert router.role_map() == {"bacnet": {"router": {5}}} and router.mac == ROUTER_MAC
    assert router.bacnet_device_instance is None and router.vendor is None
    assert ("bacnet", "discovery", 1) in router.events_sent  # its own I-Am-Router-To-Network only
    fe = by_address(assets, FE)
    assert "bacnet:5:0a" in fe.peers and "bacnet:5:0a" in fe.roles[0].peers
    assert "255.255.255.255" not in fe.peers and len(fe.roles[0].peers) == 4
    # the id is stable: the same device seen first elsewhere, later, gets the same id
    other = AssetInventory()
    other.on_event(i_am("192.0.2.1", 5010, T0 + 999, snet=5, sadr="0a"))
    assert by_address(other.snapshot(), "bacnet:5:0a").asset_id == device.asset_id
    assert len(inv) == len(assets) == 6


def test_routers_and_their_networks() -> None:
    inv = AssetInventory(ZONES)
    inv.on_event(bev(ROUTER, LOCAL_BROADCAST, "i_am_router_to_network", "response", T0, networks=[7, 8, 65535, "x"]))
    for mac in ("01", "02"):
        inv.on_event(i_am(ROUTER, 7000 + int(mac), T0 + 1, snet=7, sadr=mac))
    assets = inv.snapshot()
    router = by_address(assets, ROUTER)
    assert router.role_map() == {"bacnet": {"router": {7, 8}}}
    assert router.roles[0].peers == ("bacnet:7:01", "bacnet:7:02")
    assert {a.bacnet_device_instance for a in assets if a.via_ip == ROUTER} == {7001, 7002}


def test_bbmd_forwarded_npdu_is_credited_to_its_origin() -> None:
    bbmd, origin = "10.20.1.2", "10.40.0.20"
    inv = AssetInventory(ZONES)
    inv.on_event(i_am(bbmd, 1999, T0, dst=LOCAL_BROADCAST, bvlc_function="Forwarded_NPDU",
                      forwarded_from=f"{origin}:47808"))
    inv.on_event(bev(bbmd, "10.40.0.1", "read_bdt_ack", "response", T0 + 1, bdt=["10.40.0.1:47808"]))
    assets = inv.snapshot()
    device = by_address(assets, origin)
    assert device.bacnet_device_instance == 1999 and device.category == "BMS controller"
    assert device.zone == "remote-site" and device.events_sent == (("bacnet", "discovery", 1),)
    box = by_address(assets, bbmd)
    assert box.category == "BBMD" and box.category_rule == "bacnet-bbmd"
    assert box.role_map() == {"bacnet": {"bbmd": set()}} and box.roles[0].peers == ("10.40.0.1",)
    assert box.bacnet_device_instance is None
    # a BVLC-Result NAK (e.g. "not a BBMD") makes nobody a BBMD; a registration makes a foreign device
    inv.on_event(bev("10.20.1.3", CTRL[0], "register_foreign_device", "request", T0 + 2, ttl=60))
    inv.on_event(bev(CTRL[0], "10.20.1.3", "bvlc_result", "exception", T0 + 2.1, bvlc_result_code=48))
    assets = inv.snapshot()
    assert by_address(assets, CTRL[0]).category == "unknown"
    assert by_address(assets, "10.20.1.3").role_map() == {"bacnet": {"foreign_device": set()}}
    # a foreign device's broadcast through its BBMD (ICSNPP spells it Distribute_Broadcast_to_Network)
    inv.on_event(bev("10.40.0.30", bbmd, "who_is", "request", T0 + 3, bvlc_function="Distribute_Broadcast_to_Network"))
    inv.on_event(bev("10.40.0.31", bbmd, "who_is", "request", T0 + 3, bvlc_function=["not", "text"]))
    foreign = by_address(inv.snapshot(), "10.40.0.30")
    assert foreign.role_map() == {"bacnet": {"client": set(), "foreign_device": set()}}
    assert foreign.roles[1].peers == (bbmd,)


def test_device_management_makes_an_engineering_workstation() -> None:
    inv = AssetInventory(ZONES)
    inv.on_event(bev(FE, CTRL[0], "device_communication_control", "request", T0, pdu_type="CONFIRMED_REQUEST",
                     device_state="disable", password=True))
    inv.on_event(bev(CTRL[0], FE, "device_communication_control", "response", T0 + 0.1, pdu_type="SIMPLE_ACK"))
    inv.on_event(bev(FE, CTRL[0], "reinitialize_device", "request", T0 + 1, device_state="warmstart"))
    fe = by_address(inv.snapshot(), FE)
    assert (fe.category, fe.category_rule) == ("engineering workstation", "bacnet-engineering")
    assert fe.category_evidence == (
        "sends BACnet device management services (device_communication_control, reinitialize_device)"
    )
    assert ("bacnet", "command", 2) in fe.events_sent
    assert by_address(inv.snapshot(), CTRL[0]).category == "BMS controller"


def test_notifications_come_from_the_server() -> None:
    inv = AssetInventory(ZONES)
    inv.on_event(bev(CTRL[0], FE, "confirmed_cov_notification", "request", T0, pdu_type="CONFIRMED_REQUEST",
                     initiating_device=1001, subscriber_process_id=3))
    inv.on_event(bev(FE, CTRL[0], "confirmed_cov_notification", "response", T0 + 0.1, pdu_type="SIMPLE_ACK"))
    assets = inv.snapshot()
    ctrl = by_address(assets, CTRL[0])
    assert ctrl.role_map() == {"bacnet": {"server": {1001}}} and ctrl.bacnet_device_instance == 1001
    assert by_address(assets, FE).role_map() == {"bacnet": {"client": {1001}}}


def test_bacnet_ethernet_station_is_keyed_by_its_mac() -> None:
    station, other = "00:0d:4b:00:00:22", "00:0d:4b:00:00:23"
    flow = FlowId("E1", station, 0x82, "ff:ff:ff:ff:ff:ff", 0x82, "llc")
    inv = AssetInventory(ZONES)
    inv.on_event(ProtocolEvent(T0, flow, "bacnet", "i_am", "request", True, station, "ff:ff:ff:ff:ff:ff",
                               {"pdu_type": "UNCONFIRMED_REQUEST", "object_type": "device", "instance_number": 22}))
    inv.on_flow(Flow(FlowId("E2", other, 0x82, station, 0x82, "llc"), T0, 1.0, "bacnet", 9, 9, "SF", 0, "Dd",
                     1, 30, 1, 30))
    assets = inv.snapshot()
    assert len(assets) == 2
    dev = by_address(assets, station)
    assert (dev.ip, dev.mac, dev.bacnet_device_instance, dev.category) == ("", station, 22, "BMS controller")
    assert dev.mac_vendor is not None and dev.mac_vendor.source == "oui"
    assert dev.flows == 1 and dev.zone is None
    assert by_address(assets, other).peers == (station,)


def test_malformed_fields_never_raise() -> None:
    inv = AssetInventory(ZONES)
    junk: list[dict[str, Any]] = [
        {"snet": "5", "sadr": "0a"}, {"snet": 5, "sadr": 10}, {"snet": 5, "sadr": "zz"}, {"snet": 0, "sadr": "0a"},
        {"dnet": 5, "dadr": ""}, {"instance_number": -1, "object_type": "device"},
        {"device_id_number": True}, {"vendor": 7, "max_apdu": "big", "segmentation": 3},
        {"bvlc_function": "Forwarded_NPDU", "forwarded_from": 12},
        {"bvlc_function": "Forwarded_NPDU", "forwarded_from": "255.255.255.255:47808"},
    ]
    for fields in junk:
        inv.on_event(bev(CTRL[0], LOCAL_BROADCAST, "i_am", "request", T0, **fields))
        inv.on_event(bev(CTRL[0], FE, "read_property_multiple", "response", T0, properties=fields))
        inv.on_event(bev(CTRL[0], FE, "read_property", "response", T0, **{"object_type": "device", "property": 3,
                                                                           **fields}))
        inv.on_event(bev(ROUTER, LOCAL_BROADCAST, "i_am_router_to_network", "response", T0, networks=fields))
    inv.on_event(bev(CTRL[0], FE, "bacnet_bad_bvlc_length", "weird", T0, name="bacnet_bad_bvlc_length"))
    assets = inv.snapshot()
    ctrl = by_address(assets, CTRL[0])
    assert ctrl.bacnet_device_instance is None and ctrl.vendor is None and ctrl.bacnet_max_apdu is None
    # it did send Forwarded-NPDUs (with origins that are no station: kept as its own messages)
    assert ctrl.category == "BBMD" and ("bacnet", "other", 1) in ctrl.events_sent
    assert {a.address for a in assets} == {CTRL[0], ROUTER}  # no routed device out of bad SNET/SADR


def test_a_read_of_the_wildcard_device_learns_the_instance_from_object_identifier() -> None:
    inv = AssetInventory(ZONES)
    ack = {"object_type": "device", "instance_number": 4194303, "pdu_type": "COMPLEX_ACK"}
    inv.on_event(bev(CTRL[0], FE, "read_property", "response", T0, property="object-identifier",
                     values=[{"object_type": "device", "instance_number": 500}], value="device: 500", **ack))
    inv.on_event(bev(CTRL[0], FE, "read_property", "response", T0 + 1, property="model-name", values=["NAE"], **ack))
    ctrl = by_address(inv.snapshot(), CTRL[0])
    assert ctrl.bacnet_device_instance == 500 and ctrl.model is not None and ctrl.model.value == "NAE"
    assert ctrl.category_rule == "bacnet-server-identified"


def test_a_bacnet_ethernet_station_and_the_ip_host_with_its_mac_are_one_asset() -> None:
    mac = ROUTER_MAC
    inv = AssetInventory(ZONES)
    llc = FlowId("E1", mac, 0x82, "ff:ff:ff:ff:ff:ff", 0x82, "llc")
    inv.on_event(ProtocolEvent(T0, llc, "bacnet", "i_am", "request", True, mac, "ff:ff:ff:ff:ff:ff",
                               {"object_type": "device", "instance_number": 201}))
    inv.on_event(i_am(ROUTER, 7001, T0 + 1, snet=7, sadr="01"))  # routed through the IP side: no MAC known yet
    station = by_address(inv.snapshot(), mac)
    inv.on_flow(Flow(FlowId("C1", FE, 47808, ROUTER, 47808, "udp"), T0 + 2, 1.0, "bacnet", 9, 9, "SF", 0, "Dd",
                     1, 30, 1, 30, "00:1a:e8:00:00:05", mac))
    assets = inv.snapshot()
    router = by_address(assets, ROUTER)
    assert router.mac == mac and router.bacnet_device_instance == 201 and router.zone == "bms-field"
    assert station.asset_id in (router.asset_id, *inv.take_removed())
    assert [a.address for a in assets if a.mac == mac] == [ROUTER]
    # later BACnet/Ethernet frames from that MAC land on the same asset
    inv.on_event(ProtocolEvent(T0 + 5, llc, "bacnet", "i_am", "request", True, mac, "ff:ff:ff:ff:ff:ff",
                               {"object_type": "device", "instance_number": 201}))
    assert by_address(inv.snapshot(), ROUTER).last_seen == T0 + 5 and len(inv) == 3


def test_prometheus_asset_info_with_an_empty_ip() -> None:
    assets = site().snapshot()
    empty: MappingProxyType[Any, int] = MappingProxyType({})
    stats = StatsSnapshot(0, 0, empty, empty, empty, empty, 0, 0, 0, 0, 0.0, 0.0, None)
    registry = CollectorRegistry()
    registry.register(OtwatchCollector(lambda: stats, lambda: assets, lambda p, o: "other", {"version": "t"}))
    text = generate_latest(registry).decode()
    routed = by_address(assets, "bacnet:5:0a")
    line = next(x for x in text.splitlines() if x.startswith("otwatch_asset_info{") and routed.asset_id in x)
    assert 'ip=""' in line and 'category="BMS controller"' in line and 'zone="bms-field"' in line
    assert 'vendor="Johnson Controls, Inc."' in line
    assert 'otwatch_assets{category="BACnet router",protocol="bacnet",zone="bms-field"} 1.0' in text


def test_modbus_behaviour_is_unchanged_beside_bacnet() -> None:
    inv = site()
    hmi, plc = "10.1.3.5", "10.1.2.10"
    f = FlowId("M1", hmi, 40000, plc, 502, "tcp")
    inv.on_event(ProtocolEvent(T0, f, "modbus", "read_coils", "request", True, hmi, plc, {"unit": 1}))
    inv.on_event(ProtocolEvent(T0, f, "modbus", "read_coils", "response", False, plc, hmi, {"unit": 1}))
    assets = inv.snapshot()
    assert by_address(assets, plc).category == "PLC"
    assert by_address(assets, plc).category_evidence == "answers Modbus requests (unit ids 1) from 1 client(s)"
    assert by_address(assets, plc).bacnet_device_instance is None
    assert by_address(assets, hmi).role_map() == {"modbus": {"client": {1}}}


@pytest.mark.parametrize(
    ("op", "klass"),
    [("who_is", "discovery"), ("i_am", "discovery"), ("read_property_multiple", "read"),
     ("atomic_read_file", "read"), ("write_property", "write"), ("delete_object", "write"),
     ("reinitialize_device", "command"), ("time_synchronization", "command"),
     ("unconfirmed_cov_notification", "other"), ("unknown-99", "other")],
)
def test_default_op_classes_for_bacnet(op: str, klass: str) -> None:
    assert AssetInventory().op_class("bacnet", op) == klass
