"""Tests of the BACnet decoder's framing: bacpypes3-made BVLL/NPDU/APDU vectors, names, pairing, weirds, fuzzing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import bacnet_vectors as v
import pytest
from bacpypes3.apdu import (
    DeviceCommunicationControlRequest,
    IAmRequest,
    ReadPropertyMultipleRequest,
    ReadPropertyRequest,
    ReinitializeDeviceRequest,
    WhoHasRequest,
    WhoIsRequest,
    WritePropertyRequest,
)
from bacpypes3.basetypes import PropertyReference, ReadAccessSpecification
from bacpypes3.constructeddata import Any as BAny
from bacpypes3.npdu import (
    DisconnectConnectionToNetwork,
    EstablishConnectionToNetwork,
    IAmRouterToNetwork,
    ICouldBeRouterToNetwork,
    InitializeRoutingTable,
    InitializeRoutingTableAck,
    NetworkNumberIs,
    RejectMessageToNetwork,
    RouterAvailableToNetwork,
    RouterBusyToNetwork,
    RoutingTableEntry,
    WhatIsNetworkNumber,
    WhoIsRouterToNetwork,
)
from bacpypes3.primitivedata import ObjectIdentifier, Real

import protocols.bacnet as bacnet
from appliance.bacnet_assets import BACNET_OP_CLASSES
from appliance.stats import OP_CLASSES
from protocols import bacnet_core, bacnet_link, bacnet_segments
from protocols.bacnet import BacnetDecoder, BacnetEthernetDecoder
from protocols.bacnet_enums import ABORT_REASONS, REJECT_REASONS
from protocols.bacnet_names import (
    BVLC_FUNCTIONS,
    CONFIRMED_SERVICES,
    NETWORK_MESSAGES,
    PDU_TYPES,
    UNCONFIRMED_SERVICES,
    bvlc_result_text,
)
from protocols.base import FlowId, ProtocolEvent

FLOW = FlowId("CbAcNeT1", "10.0.0.1", 47808, "10.0.0.2", 47808, "udp")
ETH = FlowId("CeThEr1", "00:00:00:00:00:01", 0x82, "00:00:00:00:00:02", 0x82, "llc")
KINDS = {"request", "response", "exception", "weird"}


def ip(npdu: bytes, function: int = 0x0A) -> bytes:
    """A BACnet/IP datagram (Original-Unicast-NPDU unless told) around an NPDU."""
    return v.bvll(function, npdu)


def msg(apdu: bytes, **routing: Any) -> bytes:
    """A BACnet/IP Original-Unicast-NPDU datagram around an APDU."""
    return ip(v.npdu(apdu, **routing))


def run(datagrams: list[tuple[bytes, bool]], flow: FlowId = FLOW) -> tuple[BacnetDecoder, list[ProtocolEvent]]:
    """Feed datagrams (bytes, is_orig) to a fresh decoder, one second apart."""
    dec = BacnetDecoder(flow)
    out: list[ProtocolEvent] = []
    for i, (data, is_orig) in enumerate(datagrams):
        out += dec.feed(data, is_orig, 100.0 + i)
    return dec, out


def messages(events: list[ProtocolEvent]) -> list[ProtocolEvent]:
    """The non-weird events."""
    return [e for e in events if e.kind != "weird"]


def weird_names(events: list[ProtocolEvent]) -> list[str]:
    """The names of the weird events."""
    return [e.fields["name"] for e in events if e.kind == "weird"]


def one(data: bytes, is_orig: bool = True) -> ProtocolEvent:
    """The single message event of one datagram (weirds of the value codec allowed)."""
    _, events = run([(data, is_orig)])
    (ev,) = messages(events)
    return ev


# ---- services and PDU types -------------------------------------------------------------------------------


@pytest.mark.parametrize("service", range(40))
def test_every_confirmed_service_is_named(service: int) -> None:
    apdu = v.confirmed(service, b"", invoke_id=200 - service)
    apci = v.decode_apci(apdu)
    ev = one(msg(apdu, expecting_reply=True))
    name = CONFIRMED_SERVICES.get(service, f"unknown-{service}")
    assert (ev.op, ev.kind, ev.src, ev.dst) == (name, "request", FLOW.orig_h, FLOW.resp_h)
    text = name if service in CONFIRMED_SERVICES else f"Unknown Service Choice-0x{service:02x}"
    assert ev.fields["pdu_type"] == "CONFIRMED_REQUEST" and ev.fields["pdu_service"] == text
    assert (ev.fields["service_choice"], ev.fields["invoke_id"]) == (apci.apduService, apci.apduInvokeID)
    assert ev.fields["max_apdu_accepted"] == 1476 and ev.fields["max_segments_accepted"] == 0
    assert ev.fields["segmented_response_accepted"] is True and ev.fields["segmented"] is False
    assert ev.fields["npdu_control"] == 0x04


@pytest.mark.parametrize("service", range(20))
def test_every_unconfirmed_service_is_named(service: int) -> None:
    apdu = v.unconfirmed(service)
    ev = one(ip(v.npdu(apdu), 0x0B))
    name = UNCONFIRMED_SERVICES.get(service, f"unknown-{service}")
    assert (ev.op, ev.kind) == (name, "request")
    assert ev.fields["pdu_type"] == "UNCONFIRMED_REQUEST"
    assert ev.fields["service_choice"] == v.decode_apci(apdu).apduService == service
    assert ev.fields["bvlc_function"] == "Original_Broadcast_NPDU"
    assert "invoke_id" not in ev.fields


def test_icsnpp_vocabulary() -> None:
    # ICSNPP's consts.zeek / newest baselines (analyzer.error-reject-abort) spell these so
    assert list(PDU_TYPES.values()) == ["CONFIRMED_REQUEST", "UNCONFIRMED_REQUEST", "SIMPLE_ACK", "COMPLEX_ACK",
                                        "SEGMENT_ACK", "ERROR_PDU", "REJECT_PDU", "ABORT_PDU"]
    assert CONFIRMED_SERVICES[20] == "reinitialize_device" and CONFIRMED_SERVICES[31] == (
        "confirmed_cov_notification_multiple")
    assert [UNCONFIRMED_SERVICES[i] for i in (10, 11, 13, 14)] == [
        "write_group", "unconfirmed_cov_notification_multiple", "who_am_i", "you_are"]
    assert BVLC_FUNCTIONS[9][0] == "Distribute_Broadcast_to_Network"
    assert bvlc_result_text(0x30) == "Register-Foreign-Device_NAK"
    assert bvlc_result_text(0x31) == "Unknown BVLC Result Code-0x31"


REQUESTS = [
    ("who_is", WhoIsRequest()),
    ("who_is", WhoIsRequest(deviceInstanceRangeLowLimit=10, deviceInstanceRangeHighLimit=20)),
    ("i_am", IAmRequest(iAmDeviceIdentifier=ObjectIdentifier("device,1234"), maxAPDULengthAccepted=1476,
                        segmentationSupported="segmented-both", vendorID=15)),
    ("who_has", WhoHasRequest(object={"objectName": "CRAH-01"})),
    ("read_property", ReadPropertyRequest(objectIdentifier=ObjectIdentifier("analog-input,7"),
                                          propertyIdentifier="present-value")),
    ("write_property", WritePropertyRequest(objectIdentifier=ObjectIdentifier("analog-value,3"),
                                            propertyIdentifier="present-value", propertyValue=BAny(Real(21.5)),
                                            priority=8)),
    ("read_property_multiple", ReadPropertyMultipleRequest(listOfReadAccessSpecs=[ReadAccessSpecification(
        objectIdentifier=ObjectIdentifier("device,1234"),
        listOfPropertyReferences=[PropertyReference(propertyIdentifier="object-name")])])),
    ("device_communication_control", DeviceCommunicationControlRequest(timeDuration=5, enableDisable="disable")),
    ("reinitialize_device", ReinitializeDeviceRequest(reinitializedStateOfDevice="warmstart")),
]


@pytest.mark.parametrize(("op", "request_object"), REQUESTS, ids=[f"{op}-{i}" for i, (op, _) in enumerate(REQUESTS)])
def test_bacpypes3_requests(op: str, request_object: Any) -> None:
    apdu = v.apdu(request_object, invoke_id=42)
    _, events = run([(msg(apdu), True)])
    assert weird_names(events) == []
    (ev,) = events
    assert ev.op == op and ev.kind == "request"
    apci = v.decode_apci(apdu)
    assert ev.fields["service_choice"] == apci.apduService
    assert ev.fields.get("invoke_id") == getattr(apci, "apduInvokeID", None)


def pending_exchange(answer: bytes, is_orig: bool = False, service: int = 12, invoke: int = 7,
                     **routing: Any) -> ProtocolEvent:
    """A confirmed request from the originator, then `answer`; the answer's event."""
    req = msg(v.confirmed(service, b"", invoke_id=invoke), **routing)
    _, events = run([(req, True), (answer, is_orig)])
    return messages(events)[-1]


def test_simple_and_complex_ack() -> None:
    ev = pending_exchange(msg(v.simple_ack(15, 7)), service=15)
    assert (ev.op, ev.kind, ev.src) == ("write_property", "response", FLOW.resp_h)
    assert ev.fields["pdu_type"] == "SIMPLE_ACK" and ev.fields["invoke_id"] == 7
    ev = pending_exchange(msg(v.complex_ack(14, 7)), service=14)
    assert (ev.op, ev.kind, ev.fields["pdu_type"], ev.fields["segmented"]) == (
        "read_property_multiple", "response", "COMPLEX_ACK", False)


def test_error_pdu_has_class_code_and_result_code() -> None:
    # error class property (2), code unknown-property (32)
    ev = pending_exchange(msg(v.error(12, 7, bytes.fromhex("91029120"))))
    assert (ev.op, ev.kind, ev.fields["pdu_type"]) == ("read_property", "exception", "ERROR_PDU")
    assert ev.fields["error_class"] == "property" and ev.fields["error_code"] == "unknown-property"
    assert ev.fields["result_code"] == "unknown-property"
    assert list(ev.fields)[:5] == ["bvlc_function", "pdu_type", "pdu_service", "invoke_id", "result_code"]


@pytest.mark.parametrize("reason", [0, 4, 9, 10, 70])
def test_reject_takes_the_pending_op(reason: int) -> None:
    ev = pending_exchange(msg(v.reject(7, reason)), service=17)
    name = REJECT_REASONS.get(reason, f"unknown-{reason}")
    assert (ev.op, ev.kind) == ("device_communication_control", "exception")
    assert ev.fields["pdu_type"] == "REJECT_PDU" and ev.fields["pdu_service"] == "reject"
    assert ev.fields["reject_reason"] == ev.fields["result_code"] == name
    assert ev.fields["result"] == "REJECT"


@pytest.mark.parametrize("reason", [0, 4, 11, 64])
def test_abort_by_server_and_by_client(reason: int) -> None:
    name = ABORT_REASONS.get(reason, f"unknown-{reason}")
    ev = pending_exchange(msg(v.abort(7, reason)), service=20)
    assert (ev.op, ev.fields["abort_reason"], ev.fields["abort_server"], ev.fields["result"]) == (
        "reinitialize_device", name, True, "ABORT")
    ev = pending_exchange(msg(v.abort(7, reason, server=False)), is_orig=True, service=12)
    assert (ev.op, ev.fields["abort_server"], ev.src) == ("read_property", False, FLOW.orig_h)
    assert ev.fields["pdu_service"] == "abort" and ev.fields["result_code"] == name


def test_reject_abort_without_pending_request() -> None:
    assert one(msg(v.reject(9, 9)), False).op == "reject"
    assert one(msg(v.abort(9, 1)), False).op == "abort"
    # a request from the responder side does not pair with a reject sent by the responder
    assert pending_exchange(msg(v.reject(7, 1)), is_orig=True).op == "reject"
    # nor does another invoke id
    assert pending_exchange(msg(v.reject(8, 1))).op == "reject"


def test_pending_requests_are_told_apart_by_route() -> None:
    req_a = msg(v.confirmed(12, b"", invoke_id=5), dadr="3:0x85")
    req_b = msg(v.confirmed(17, b"", invoke_id=5), dadr="3:0x86")
    rej_b = msg(v.reject(5, 9), sadr="3:0x86")
    rej_a = msg(v.reject(5, 9), sadr="3:0x85")
    _, events = run([(req_a, True), (req_b, True), (rej_b, False), (rej_a, False)])
    events = messages(events)
    assert [e.op for e in events] == ["read_property", "device_communication_control",
                                      "device_communication_control", "read_property"]
    assert events[2].fields["snet"] == 3 and events[2].fields["sadr"] == "86"


def test_answers_to_device_control_carry_icsnpp_result() -> None:
    dcc = v.confirmed(17, b"", invoke_id=1)
    reinit = v.confirmed(20, b"", invoke_id=2)
    _, events = run([(msg(dcc), True), (msg(v.simple_ack(17, 1)), False),
                     (msg(reinit), True), (msg(v.error(20, 2, bytes.fromhex("9100911a"))), False)])
    ack, err = messages(events)[1], messages(events)[3]
    assert ack.fields["result"] == "SUCCESS" and err.fields["result"] == "ERROR"
    assert err.fields["result_code"] == "password-failure"
    assert "result" not in one(msg(v.simple_ack(15, 1)), False).fields


def test_pending_table_is_bounded() -> None:
    dec = BacnetDecoder(FLOW)
    for i in range(bacnet.MAX_PENDING + 300):
        route = f"{1 + i // 256}:0x{i % 256:02x}"
        dec.feed(msg(v.confirmed(12, b"", invoke_id=i % 256), dadr=route), True, float(i))
    assert len(dec._pending) == bacnet.MAX_PENDING
    assert dec.close(1e4) == [] and not dec._pending


def test_segment_ack_fields() -> None:
    ev = one(msg(v.segment_ack(94, 2, 3, nak=True, server=False)))
    assert (ev.op, ev.kind) == ("segment_ack", "response")
    f = ev.fields
    assert (f["pdu_type"], f["invoke_id"], f["sequence_number"], f["window_size"]) == ("SEGMENT_ACK", 94, 2, 3)
    assert f["negative_ack"] is True and f["server"] is False and "pdu_service" not in f


# ---- NPDU ---------------------------------------------------------------------------------------------------


ROUTES = [
    {},
    {"dadr": "*:*"},
    {"dadr": "5:*", "hop": 17},
    {"dadr": "3:0x85", "priority": 3},
    {"sadr": "13:0x3d", "expecting_reply": True},
    {"dadr": "*:*", "sadr": "1:0xc0a8000dbac0", "hop": 254, "priority": 1},
]


@pytest.mark.parametrize("routing", ROUTES, ids=[str(r) for r in ROUTES])
def test_npdu_fields_match_bacpypes3(routing: dict[str, Any]) -> None:
    npdu = v.npdu(v.unconfirmed(8), **routing)
    ref = v.decode_npdu(npdu)
    f = one(ip(npdu)).fields
    assert f["npdu_control"] == ref.npduControl
    if ref.npduDADR is None:
        assert "dnet" not in f and "hop_count" not in f
    else:
        net = ref.npduDADR.addrNet
        assert f["dnet"] == (0xFFFF if net is None else net)
        assert f["dadr"] == (ref.npduDADR.addrAddr or b"").hex() and f["hop_count"] == ref.npduHopCount
    if ref.npduSADR is None:
        assert "snet" not in f
    else:
        assert (f["snet"], f["sadr"]) == (ref.npduSADR.addrNet, ref.npduSADR.addrAddr.hex())
    prio = ["normal", "urgent", "critical-equipment", "life-safety"][ref.pduNetworkPriority]
    assert f.get("network_priority", "normal") == prio


NETWORK = [
    (WhoIsRouterToNetwork(), "request", {"networks": []}),
    (WhoIsRouterToNetwork(4203), "request", {"networks": [4203]}),
    (IAmRouterToNetwork([1, 2, 65534]), "response", {"networks": [1, 2, 65534]}),
    (ICouldBeRouterToNetwork(7, 200), "response", {"networks": [7], "performance_index": 200}),
    (RejectMessageToNetwork(2, 9), "exception", {"networks": [9], "reject_reason": "router-busy"}),
    (RouterBusyToNetwork([4, 5]), "response", {"networks": [4, 5]}),
    (RouterAvailableToNetwork([4]), "response", {"networks": [4]}),
    (EstablishConnectionToNetwork(12, 30), "request", {"networks": [12], "termination_time": 30}),
    (DisconnectConnectionToNetwork(12), "request", {"networks": [12]}),
    (WhatIsNetworkNumber(), "request", {}),
    (NetworkNumberIs(42, 1), "response", {"networks": [42], "network_number_configured": True}),
]


@pytest.mark.parametrize(("message", "kind", "want"), NETWORK, ids=[type(m[0]).__name__ for m in NETWORK])
def test_network_messages_match_bacpypes3(message: Any, kind: str, want: dict[str, Any]) -> None:
    data = v.network(message)
    ref = v.decode_npdu(data)
    _, events = run([(ip(data, 0x0B), True)])
    assert weird_names(events) == []
    (ev,) = events
    name = NETWORK_MESSAGES[ref.npduNetMessage]
    assert (ev.op, ev.kind) == (name, kind)
    assert ev.fields["pdu_type"] == "NPDU" and ev.fields["pdu_service"] == ev.fields["network_message"] == name
    assert {k: ev.fields.get(k) for k in want} == want


def test_routing_tables() -> None:
    entries = [RoutingTableEntry(1, 1, b"\xba\xc1"), RoutingTableEntry(2, 2, b"")]
    for cls, op in ((InitializeRoutingTable, "initialize_routing_table"),
                    (InitializeRoutingTableAck, "initialize_routing_table_ack")):
        ev = one(ip(v.network(cls(entries))))
        assert ev.op == op and ev.fields["networks"] == [1, 2]
        assert ev.fields["routing_table"] == [{"dnet": 1, "port_id": 1, "port_info": "bac1"},
                                              {"dnet": 2, "port_id": 2, "port_info": ""}]


def test_security_proprietary_and_unknown_network_messages() -> None:
    ev = one(ip(bytes.fromhex("01800b") + bytes(20)))
    assert ev.op == "security_payload" and ev.fields["network_data_length"] == 20
    ev = one(ip(bytes.fromhex("0180810104aabbcc")))
    assert ev.op == "unknown-network-129" and ev.fields["vendor_id"] == 260
    assert ev.fields["pdu_service"] == "Unknown NPDU Type-0x81"
    assert one(ip(bytes.fromhex("018014"))).op == "unknown-network-20"
    # a routed network-layer message: the header fields come before the message type
    ev = one(ip(v.network(IAmRouterToNetwork([9]), dadr="*:*", hop=5)))
    assert (ev.op, ev.fields["dnet"], ev.fields["hop_count"], ev.fields["networks"]) == (
        "i_am_router_to_network", 65535, 5, [9])


# ---- BVLC ---------------------------------------------------------------------------------------------------


def test_bvlc_messages_match_bacpypes3() -> None:
    cases = [
        (0x00, {"code": 0x10}, "bvlc_result", "exception",
         {"bvlc_result_code": 16, "result_code": "Write-Broadcast-Distribution-Table_NAK"}),
        (0x00, {"code": 0}, "bvlc_result", "response", {"result_code": "Successful_completion"}),
        (0x01, {"bdt": ["10.0.0.1/24:47808", "10.9.0.1/32:47809"]}, "write_bdt", "request",
         {"bdt": ["10.0.0.1:47808/255.255.255.0", "10.9.0.1:47809/255.255.255.255"]}),
        (0x02, {}, "read_bdt", "request", {}),
        (0x03, {"bdt": ["192.168.1.100/32:47808"]}, "read_bdt_ack", "response",
         {"bdt": ["192.168.1.100:47808/255.255.255.255"]}),
        (0x05, {"ttl": 60}, "register_foreign_device", "request", {"ttl": 60}),
        (0x06, {}, "read_fdt", "request", {}),
        (0x07, {"fdt": [("10.0.0.7:47808", 60, 30), ("10.0.0.8:47809", 900, 0)]}, "read_fdt_ack", "response",
         {"fdt": ["10.0.0.7:47808 ttl=60 remaining=30", "10.0.0.8:47809 ttl=900 remaining=0"]}),
        (0x08, {"address": "10.0.0.7:47808"}, "delete_fdt_entry", "request", {"fdt": ["10.0.0.7:47808"]}),
    ]
    for function, kw, op, kind, want in cases:
        data = v.bvll(function, **kw)
        ref = v.decode_bvll(data)
        assert ref.bvlciFunction == function
        _, events = run([(data, True)])
        assert weird_names(events) == [], op
        (ev,) = events
        assert (ev.op, ev.kind) == (op, kind)
        assert ev.fields["bvlc_function"] == BVLC_FUNCTIONS[function][0]
        assert {k: ev.fields.get(k) for k in want} == want
        assert "pdu_type" not in ev.fields


@pytest.mark.parametrize("function", [0x04, 0x09, 0x0A, 0x0B])
def test_npdu_carrying_functions(function: int) -> None:
    data = v.bvll(function, v.npdu(v.unconfirmed(8)), source="192.168.7.9:47809")
    ev = one(data)
    assert ev.op == "who_is" and ev.fields["bvlc_function"] == BVLC_FUNCTIONS[function][0]
    if function == 0x04:
        ref = v.decode_bvll(data)
        assert ev.fields["forwarded_from"] == "192.168.7.9:47809" == str(ref.bvlciAddress)
    else:
        assert "forwarded_from" not in ev.fields


def test_secure_bvll_and_unassigned_function() -> None:
    ev = one(bytes.fromhex("810c0009") + bytes(5))
    assert (ev.op, ev.fields["bvlc_function"], ev.fields["bvll_data_length"]) == ("secure_bvll", "Secure_BVLL", 5)
    dec = BacnetDecoder(FLOW)
    dec.feed(v.bvll(0x02), True, 1.0)
    (ev,) = dec.feed(bytes.fromhex("810d0004"), True, 2.0)
    assert ev.op == "unknown-bvlc-13" and ev.fields["bvlc_function"] == "Unknown BVLC Function Code-0x0d"


def test_bacnet_ethernet() -> None:
    dec = BacnetEthernetDecoder(ETH)
    events = dec.feed(v.npdu(v.confirmed(17, b"", invoke_id=191), sadr="13:0x3d"), True, 1.0)
    events += dec.feed(v.npdu(v.reject(191, 9), dadr="13:0x3d"), False, 2.0)
    events = messages(events)
    assert [(e.op, e.kind, e.src) for e in events] == [
        ("device_communication_control", "request", ETH.orig_h),
        ("device_communication_control", "exception", ETH.resp_h)]
    assert all("bvlc_function" not in e.fields for e in events)
    dec = BacnetEthernetDecoder(ETH)
    assert [e.op for e in dec.feed(b"\xaa\xaa\x03", True, 1.0)] == ["bacnet_protocol_violation"] and dec.failed


# ---- coverage statement, registry facts -------------------------------------------------------------------


def test_coverage_statement_is_true() -> None:
    doc = " ".join((bacnet.__doc__ or "").split())
    sources = [bacnet, bacnet_core, bacnet_link, bacnet_segments]
    text = "".join(Path(m.__file__ or "").read_text() for m in sources)
    emitted = set(re.findall(r'"(bacnet_[a-z_]+)"', text))
    emitted.discard("bacnet_")
    assert emitted and {n for n in emitted if n not in doc} == set()
    assert f"confirmed service 0-{max(CONFIRMED_SERVICES)}" in doc
    assert f"unconfirmed service 0-{max(UNCONFIRMED_SERVICES)}" in doc
    for text in ("BVLC-Result", "Write-BDT", "Read-BDT-Ack", "Forwarded-NPDU", "Register-Foreign-Device",
                 "Read-FDT-Ack", "Delete-FDT-Entry", "Distribute-Broadcast-To-Network", "Secure-BVLL",
                 "who_is_router_to_network", "network_number_is", "unknown-network-N"):
        assert text in doc
    assert set(BVLC_FUNCTIONS) == set(range(13)) and set(NETWORK_MESSAGES) == set(range(0x14))


def test_op_classes() -> None:
    assert set(BacnetDecoder.op_classes.values()) <= set(OP_CLASSES)
    assert BacnetDecoder.op_classes == BACNET_OP_CLASSES == BacnetEthernetDecoder.op_classes
    assert (BacnetDecoder.name, BacnetDecoder.transport, BacnetDecoder.ports) == ("bacnet", "udp", {47808})
    assert (BacnetEthernetDecoder.transport, BacnetEthernetDecoder.ports) == ("llc", {0x82})
