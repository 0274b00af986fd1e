"""Tests of ICSNPP's BACnet detail rows (protocols/bacnet_logs.py): unit rows, and the decoder's rows against ICSNPP."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import bacnet_vectors as v
from bacpypes3.apdu import DeviceCommunicationControlRequest, ReinitializeDeviceRequest
from test_bacnet_traces import decode, icsnpp_rows, zeek

from appliance.export.jsonl import JsonlLogs
from protocols.bacnet import BacnetDecoder
from protocols.bacnet_logs import DETAIL_LOGS, REDACTED, log_rows
from protocols.base import FlowId, ProtocolEvent

BASE = {"ts": 5.0, "uid": "CbAc1", "id.orig_h": "10.0.0.1", "id.orig_p": 47808, "id.resp_h": "10.0.0.2",
        "id.resp_p": 47809, "src": "10.0.0.2", "dst": "10.0.0.1", "is_orig": False, "proto": "udp"}
HEAD = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "is_orig", "source_h", "source_p",
        "destination_h", "destination_p"]


def row(op: str, kind: str = "request", **fields: Any) -> dict[str, Any]:
    """A bacnet.jsonl row as the JSONL writer builds it."""
    return {**BASE, "op": op, "kind": kind, "bvlc_function": "Original_Unicast_NPDU", **fields}


def test_head_columns_name_the_true_sender() -> None:
    ((log, out),) = log_rows(row("who_is", pdu_type="UNCONFIRMED_REQUEST"))
    assert log == "bacnet_discovery" and list(out)[: len(HEAD)] == HEAD
    assert (out["is_orig"], out["source_h"], out["source_p"], out["destination_h"], out["destination_p"]) == (
        False, "10.0.0.2", 47809, "10.0.0.1", 47808)
    ((_, out),) = log_rows({**row("who_is", pdu_type="UNCONFIRMED_REQUEST"), "is_orig": True, "src": "10.0.0.1",
                            "dst": "10.0.0.2"})
    assert (out["source_p"], out["destination_p"]) == (47808, 47809)


def test_discovery_rows() -> None:
    u = {"pdu_type": "UNCONFIRMED_REQUEST"}
    ((_, who_is),) = log_rows(row("who_is", **u))
    assert (who_is["pdu_service"], who_is["range"]) == ("who-is", "All") and "object_name" not in who_is
    ((_, who_is),) = log_rows(row("who_is", range="10-20", **u))
    assert who_is["range"] == "10-20"
    ((_, who_has),) = log_rows(row("who_has", range="All", object_type="accumulator", instance_number=5, **u))
    assert (who_has["pdu_service"], who_has["object_type"], who_has["instance_number"], who_has["object_name"]) == (
        "who-has", "accumulator", 5, "N/A")
    ((_, i_am),) = log_rows(row("i_am", object_type="device", instance_number=254, vendor="Unitec Corporation",
                                vendor_id=208, max_apdu=1476, **u))
    assert {k: i_am.get(k) for k in ("pdu_service", "device_id_type", "object_type", "instance_number", "vendor",
                                     "range")} == {"pdu_service": "i-am", "device_id_type": None,
                                                   "object_type": "device", "instance_number": 254,
                                                   "vendor": "Unitec Corporation", "range": None}
    ((_, i_have),) = log_rows(row("i_have", device_id_type="device", device_id_number=254, object_type="accumulator",
                                  instance_number=4, object_name="", **u))
    assert (i_have["device_id_type"], i_have["device_id_number"], i_have["object_name"]) == ("device", 254, "")


def test_property_rows() -> None:
    request = row("read_property", pdu_type="CONFIRMED_REQUEST", invoke_id=9, object_type="device",
                  instance_number=29, property="object-list", array_index=1)
    ((log, out),) = log_rows(request)
    assert log == "bacnet_property"
    assert list(out)[len(HEAD):] == ["invoke_id", "pdu_service", "object_type", "instance_number", "property",
                                     "array_index"]
    assert out["pdu_service"] == "read-property-request" and "value" not in out
    ack = row("read_property", "response", pdu_type="COMPLEX_ACK", invoke_id=9, object_type="device",
              instance_number=29, property="object-list", value=["binary-input: 0", "binary-input: 20001"],
              values=[{"object_type": "binary-input", "instance_number": 0}, {}])
    assert [(r["pdu_service"], r["value"]) for _, r in log_rows(ack)] == [
        ("read-property-ack", "binary-input: 0"), ("read-property-ack", "binary-input: 20001")]
    ((_, out),) = log_rows({**ack, "value": "21.500000"})
    assert out["value"] == "21.500000"
    ((_, out),) = log_rows(row("write_property", pdu_type="CONFIRMED_REQUEST", invoke_id=2, object_type="analog-value",
                               instance_number=3, property="present-value", value="5.000000", priority=10))
    assert (out["pdu_service"], out["value"], out["priority"]) == ("write-property", "5.000000", 10)
    assert list(out)[-1] == "priority"
    assert log_rows(row("write_property", "response", pdu_type="SIMPLE_ACK", invoke_id=2)) == []


def test_multiple_property_rows() -> None:
    props = [{"object_type": "analog-input", "instance_number": 1, "property": "present-value", "value": "55.000000"},
             {"object_type": "analog-input", "instance_number": 2, "property": "present-value",
              "value": "PropertyError", "error_class": "object", "error_code": "unknown-object"},
             {"object_type": "device", "instance_number": 7, "property": "object-list", "value": ["a: 1", "b: 2"]}]
    rows = log_rows(row("read_property_multiple", "response", pdu_type="COMPLEX_ACK", invoke_id=136,
                        properties=props))
    assert [(r["pdu_service"], r["instance_number"], r["value"]) for _, r in rows] == [
        ("read-property-multiple-ack", 1, "55.000000"), ("read-property-multiple-ack", 2, "PropertyError"),
        ("read-property-multiple-ack", 7, "a: 1"), ("read-property-multiple-ack", 7, "b: 2")]
    rows = log_rows(row("read_property_multiple", pdu_type="CONFIRMED_REQUEST", properties=props[:2]))
    assert [r["pdu_service"] for _, r in rows] == ["read-property-multiple-request"] * 2
    rows = log_rows(row("write_property_multiple", pdu_type="CONFIRMED_REQUEST", properties=[{**props[0],
                                                                                              "priority": 8}]))
    assert [(r["pdu_service"], r["priority"]) for _, r in rows] == [("write-property-multiple", 8)]
    assert log_rows(row("read_property_multiple", pdu_type="CONFIRMED_REQUEST")) == []


def test_error_rows_and_read_range() -> None:
    ((_, out),) = log_rows(row("read_property", "exception", pdu_type="ERROR_PDU", invoke_id=4,
                               error_class="property", error_code="unknown-property", result_code="unknown-property"))
    assert (out["pdu_service"], out["object_type"]) == ("ERROR: read_property", "unknown-property")
    assert log_rows(row("atomic_read_file", "exception", pdu_type="ERROR_PDU", error_code="file-access-denied")) == []
    assert log_rows(row("read_range", pdu_type="CONFIRMED_REQUEST", invoke_id=3)) == []  # not decoded
    ((_, out),) = log_rows(row("read_range", "response", pdu_type="COMPLEX_ACK", invoke_id=3, object_type="trend-log",
                               instance_number=1, property="log-buffer", item_count=12))
    assert (out["pdu_service"], out["value"]) == ("read-range-ack", "item_count: 12")


def test_device_control_rows() -> None:
    ((log, out),) = log_rows(row("device_communication_control", pdu_type="CONFIRMED_REQUEST", invoke_id=133,
                                 time_duration=1, device_state="disable", password=True))
    assert log == "bacnet_device_control"
    assert list(out)[len(HEAD):] == ["invoke_id", "pdu_service", "time_duration", "device_state", "password"]
    assert (out["pdu_service"], out["password"]) == ("device_communication_control", REDACTED)
    ((_, out),) = log_rows(row("reinitialize_device", pdu_type="CONFIRMED_REQUEST", invoke_id=137,
                               device_state="coldstart", password=False))
    assert out["password"] == "" and "time_duration" not in out
    for pdu_type, result, code in (("SIMPLE_ACK", "SUCCESS", None), ("ERROR_PDU", "ERROR", "password-failure"),
                                   ("REJECT_PDU", "REJECT", "unrecognized-service"), ("ABORT_PDU", "ABORT", "other")):
        ((_, out),) = log_rows(row("reinitialize_device", "response", pdu_type=pdu_type, invoke_id=137,
                                   result_code=code, result=result))
        assert (out["result"], out.get("result_code")) == (result, code)
    assert log_rows(row("reinitialize_device", "response", pdu_type="SEGMENT_ACK")) == []


def test_routing_columns() -> None:
    r = row("who_is", pdu_type="UNCONFIRMED_REQUEST", dnet=65535, dadr="", snet=3, sadr="85",
            bvlc_function="Forwarded_NPDU", forwarded_from="192.168.0.13:47808")
    ((_, out),) = log_rows(r)
    assert {k: out.get(k) for k in ("snet", "slen", "sadr", "dnet", "dlen", "dadr", "fwd_ip", "fwd_port")} == {
        "snet": 3, "slen": 1, "sadr": "85", "dnet": 65535, "dlen": 0, "dadr": None, "fwd_ip": "192.168.0.13",
        "fwd_port": 47808}
    ((_, out),) = log_rows(row("who_is", pdu_type="UNCONFIRMED_REQUEST"))
    assert not {"snet", "slen", "dnet", "fwd_ip"} & set(out)


def test_no_rows_for_others() -> None:
    assert log_rows(row("time_synchronization", pdu_type="UNCONFIRMED_REQUEST")) == []
    assert log_rows(row("bvlc_result", "response")) == []
    assert log_rows({**row("bacnet_truncated_apdu", "weird"), "name": "bacnet_truncated_apdu"}) == []
    assert log_rows(row("i_am", "response", pdu_type="NPDU")) == []
    assert DETAIL_LOGS == ("bacnet_discovery", "bacnet_property", "bacnet_device_control")


def event_rows(events: list[ProtocolEvent]) -> dict[str, list[dict[str, Any]]]:
    """bacnet.jsonl rows of the events (through the real JSONL writer's row builder) and their detail rows."""
    writer = JsonlLogs(Path("unused"))
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in DETAIL_LOGS}
    for ev in events:
        name, r = writer.event_row(ev)
        if name == "bacnet":
            for log, detail in log_rows(r):
                out[log].append(detail)
    return out


def test_segmented_data_capture_agrees_with_icsnpp() -> None:
    events = [e for evs in decode("icsnpp/bacnet_segmented_data.pcap").values() for e in evs]
    ours = event_rows(events)
    for log in ("bacnet_discovery", "bacnet_property"):
        theirs = icsnpp_rows(log)
        columns = [c for c in theirs[0] if c not in ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h",
                                                     "id.resp_p", "is_orig")]
        mine = Counter(tuple(zeek(r.get(c)) for c in columns) for r in ours[log])
        want = Counter(tuple(r[c] for c in columns) for r in theirs)
        if log == "bacnet_discovery":
            # ICSNPP drops object names not in UTF-8 (these two are in charset 1, DBCS); we decode them
            names = [r["object_name"] for r in ours[log] if r["pdu_service"] == "i-have"]
            assert len(names) == 2 and all(names)
            mine = Counter(k[:-1] + (("(empty)",) if k[4] == "i-have" else k[-1:]) for k in mine.elements())
        assert sum(mine.values()) == len(theirs) and mine == want, log


FLOW = FlowId("CHhAvVGS1DHFjwGM9", "192.168.0.50", 47808, "192.168.0.24", 47808, "udp")
# ICSNPP's analyzer.services/bacnet_device_control.log (its pcap is not public here): (invoke id, request, answer)
DEVICE_CONTROL_BASELINE = [
    (132, ("device_communication_control", "-", "disable"), ("ERROR", "password-failure")),
    (133, ("device_communication_control", "1", "disable"), ("SUCCESS", "-")),
    (134, ("device_communication_control", "-", "enable"), ("ERROR", "password-failure")),
    (135, ("device_communication_control", "-", "enable"), ("SUCCESS", "-")),
    (137, ("reinitialize_device", "-", "coldstart"), ("ERROR", "password-failure")),
    (138, ("reinitialize_device", "-", "warmstart"), ("ERROR", "password-failure")),
    (139, ("reinitialize_device", "-", "warmstart"), ("SUCCESS", "-")),
    (140, ("reinitialize_device", "-", "coldstart"), ("SUCCESS", "-")),
]


def test_device_control_rows_as_icsnpp_logs_them() -> None:
    dec = BacnetDecoder(FLOW)
    events: list[ProtocolEvent] = []
    for invoke, (service, duration, state), (result, _) in DEVICE_CONTROL_BASELINE:
        if service == "device_communication_control":
            req = DeviceCommunicationControlRequest(enableDisable=state, password="filister",
                                                    timeDuration=None if duration == "-" else int(duration))
            choice = 17
        else:
            req = ReinitializeDeviceRequest(reinitializedStateOfDevice=state, password="ethereal")
            choice = 20
        answer = v.simple_ack(choice, invoke) if result == "SUCCESS" else v.error(choice, invoke, b"\x91\x00\x91\x1a")
        events += dec.feed(v.bvll(0x0A, v.npdu(v.apdu(req, invoke))), True, float(invoke))
        events += dec.feed(v.bvll(0x0A, v.npdu(answer)), False, invoke + 0.5)
    assert [e for e in events if e.kind == "weird"] == []
    rows = event_rows(events)["bacnet_device_control"]
    got = [(r["invoke_id"], r["pdu_service"], zeek(r.get("time_duration")), zeek(r.get("device_state")),
            zeek(r.get("result")), zeek(r.get("result_code")), r["source_h"]) for r in rows]
    want = []
    for invoke, (service, duration, state), (result, code) in DEVICE_CONTROL_BASELINE:
        want.append((invoke, service, duration, state, "-", "-", FLOW.orig_h))
        want.append((invoke, service, "-", "-", result, code, FLOW.resp_h))
    assert got == want
    assert {r["password"] for r in rows if "password" in r} == {REDACTED}  # never the password itself
