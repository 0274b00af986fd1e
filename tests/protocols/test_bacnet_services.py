"""Deep decode on real captures against the peers, robustness, and protocols/bacnet_services.py by hand.

Every whole (unsegmented) APDU of the BACnet traces is decoded and compared, frame by frame, with tshark's dump
(object identifiers, property identifiers, vendor ids, error classes and codes), with ICSNPP's
bacnet_discovery/bacnet_property baselines and with the Spicy grammar's event prints. Where a peer is wrong,
the test says so. Random and mutated blobs never raise, truncations are reported where bacpypes3 refuses
them, and passwords sent in DeviceCommunicationControl and ReinitializeDevice never come out.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bacpypes3 import apdu as A
from test_bacnet_values import PASSWORDS, VECTORS, b3, expected, ours, strip_texts

from appliance.capture.dissect import Dissector
from appliance.capture.pcapfile import PcapReader
from appliance.model import LLC
from protocols import bacnet_enums as en
from protocols import bacnet_values as bv

TRACES = Path(__file__).resolve().parents[1] / "traces"
TSHARK = TRACES / "peers" / "tshark"
CAPTURES = {  # trace -> tshark dump
    "icsnpp/bacnet_segmented_data.pcap": "icsnpp-bacnet/testing/traces/bacnet_segmented_data.pcap.tsv",
    "icsst/bacnet_test.pcap": "ICS-Security-Tools/pcaps/BACnet/bacnet_test.pcap.tsv",
    "arkime/bacnet-stack-services.pcap": "arkime/tests/pcap/bacnet-stack-services.pcap.tsv",
    "ndpi/bacnet.pcap": "nDPI/tests/cfgs/default/pcap/bacnet.pcap.tsv",
    **{f"hilti/{n}.pcap": f"hilti/bro/tests/Traces/bacnet/{n}.pcap.tsv"
       for n in ("atomic-read-file", "bacnet-property-error", "read-properties", "rpm", "who-has", "who-is-i-am")},
}
KINDS = {0: ("confirmed", 4), 1: ("unconfirmed", 2), 3: ("ack", 3), 5: ("error", 3)}  # APDU type: header length

Apdu = tuple[int, str, str, str, int, int | None, bytes]


def apdus(trace: str) -> Iterator[Apdu]:
    """(frame number, src, dst, kind, service, invoke id, parameters) of every unsegmented APDU of a capture."""
    dis = Dissector()
    with PcapReader(TRACES / trace) as reader:
        for number, (linktype, ts, frame, wire_len) in enumerate(reader, 1):
            pkt = dis.dissect(linktype, ts, frame, wire_len)
            if pkt is None:
                continue
            b = pkt.payload
            if pkt.proto == LLC:  # BACnet/Ethernet: the NPDU follows the LLC header
                p = 0
            elif pkt.proto == 17 and len(b) > 4 and b[0] == 0x81 and b[1] in (4, 9, 10, 11):
                p = 10 if b[1] == 4 else 4
            else:
                continue
            if len(b) < p + 2 or b[p] != 1 or b[p + 1] & 0x80:  # not an NPDU carrying an APDU
                continue
            ctl = b[p + 1]
            p += 2
            for flag in (0x20, 0x08):  # destination, then source specifier: net (2), length (1), address
                if ctl & flag and p + 3 <= len(b):
                    p += 3 + b[p + 2]
            p += 1 if ctl & 0x20 else 0  # hop count
            if p >= len(b) or (b[p] >> 4) not in KINDS or (b[p] & 0x08 and b[p] >> 4 in (0, 3)):
                continue
            kind, hdr = KINDS[b[p] >> 4]
            if p + hdr > len(b):
                continue
            invoke = None if kind == "unconfirmed" else b[p + (2 if kind == "confirmed" else 1)]
            yield number, pkt.src, pkt.dst, kind, b[p + hdr - 1], invoke, b[p + hdr:]


def decode(kind: str, service: int, data: bytes) -> dict[str, Any]:
    fields, problems = ours(kind, service, data)
    assert problems == [], (kind, service, data.hex())
    return fields


def object_ids(d: dict[str, Any]) -> set[tuple[str, int]]:
    """Every object identifier in decoded fields: parameters, values, properties."""
    ids = {(d[t], d[i]) for t, i in (("object_type", "instance_number"), ("device_id_type", "device_id_number"),
                                     ("monitored_object_type", "monitored_instance"),
                                     ("event_object_type", "event_instance")) if t in d}
    ids |= {("device", d["initiating_device"])} if "initiating_device" in d else set()
    ids |= {("file", d["file_object"])} if "file_object" in d else set()
    ids |= {(v["object_type"], v["instance_number"]) for v in d.get("values", []) if isinstance(v, dict)}
    for e in d.get("properties", []):
        ids |= object_ids(e)
    return ids


def listed(row: dict[str, str], col: str) -> list[int]:
    return [int(x, 0) for x in row[col].split(",") if x]


@pytest.mark.parametrize("trace", sorted(CAPTURES))
def test_deep_decode_agrees_with_tshark(trace: str) -> None:
    with open(TSHARK / CAPTURES[trace], newline="") as f:
        rows = {int(r["frame.number"]): r for r in csv.DictReader(f, delimiter="\t")}
    compared = 0
    for number, _, _, kind, service, _, data in apdus(trace):
        fields, row = decode(kind, service, data), rows[number]
        theirs = {(en.object_type_name(t), i) for t, i in zip(listed(row, "bacapp.objectType"),
                                                             listed(row, "bacapp.instance_number"), strict=True)}
        assert object_ids(fields) == theirs, number
        props = {e["property"] for e in [fields, *fields.get("properties", [])] if "property" in e}
        assert props == {en.property_name(p) for p in listed(row, "bacapp.property_identifier")}, number
        if "vendor_id" in fields:
            assert [fields["vendor_id"]] == listed(row, "bacapp.vendor_identifier"), number
        errors = {(e["error_class"], e["error_code"]) for e in [fields, *fields.get("properties", [])]
                  if "error_class" in e}
        assert errors == {(en.name(en.ERROR_CLASSES, c), en.name(en.ERROR_CODES, e)) for c, e in zip(
            listed(row, "bacapp.error_class"), listed(row, "bacapp.error_code"), strict=True)}, number
        compared += 1
    assert compared >= {"icsnpp/bacnet_segmented_data.pcap": 15, "arkime/bacnet-stack-services.pcap": 80}.get(trace, 1)


def icsnpp_rows(log: str) -> list[dict[str, str]]:
    lines = (TRACES / "peers/icsnpp/analyzer.segmented_data" / log).read_text().splitlines()
    names = next(line for line in lines if line.startswith("#fields")).split("\t")[1:]
    return [dict(zip(names, line.split("\t"), strict=True)) for line in lines if not line.startswith("#")]


def test_discovery_agrees_with_icsnpp() -> None:
    cols = ("device_id_type", "device_id_number", "object_type", "instance_number", "vendor", "range", "object_name")
    theirs = [tuple(r[c] for c in cols) for r in icsnpp_rows("bacnet_discovery.log")]
    mine, names = [], []
    for _, _, _, kind, service, _, data in apdus("icsnpp/bacnet_segmented_data.pcap"):
        if kind == "unconfirmed" and service in (0, 1, 7, 8):
            f = decode(kind, service, data)
            if service == 7 and "object_name" not in f:
                f["object_name"] = "N/A"  # ICSNPP's mark for a Who-Has by object identifier
            if service == 1:  # ICSNPP logs only UTF-8 names: these are in code page 932 (character set 1)
                names.append(f["object_name"])
                f["object_name"] = "(empty)"
            mine.append(tuple(str(f.get(c, "-")) for c in cols))
    assert mine == theirs
    assert names == ["温度２", "湿度２"]


def test_properties_agree_with_icsnpp() -> None:
    cols = ("invoke_id", "pdu_service", "object_type", "instance_number", "property", "array_index", "value")
    theirs = [tuple(r[c] for c in cols) for r in icsnpp_rows("bacnet_property.log")][:3]  # then segmented ACKs
    mine = []
    for _, _, _, kind, service, invoke, data in apdus("icsnpp/bacnet_segmented_data.pcap"):
        if service == 12:
            f = {"invoke_id": invoke, "pdu_service": f"read-property-{'ack' if kind == 'ack' else 'request'}",
                 **decode(kind, service, data)}
            mine.append(tuple(str(f.get(c, "-")) for c in cols))
    assert mine == theirs  # (93, read-property-ack, device, 254, object-list, 0, 426), ...


def spicy(name: str) -> list[list[str]]:
    lines = (TRACES / "peers/hilti" / name).read_text().splitlines()
    return [[x.strip().split("_", 1)[-1] if "::" in x else x.strip() for x in line.split(",")] for line in lines]


def test_read_property_agrees_with_spicy() -> None:
    theirs = spicy("spicy.bacnet.properties/out")
    mine = []
    for _, _, _, kind, service, invoke, data in apdus("hilti/read-properties.pcap"):
        if service == 12:
            f = decode(kind, service, data)
            if kind == "error":  # Spicy names the class `property-error`
                mine.append(["Error", str(invoke), "readProperty", f["error_class"] + "-error", f["error_code"]])
            else:
                prop = f["property"] if not f["property"].isdigit() else "<undefined>"  # proprietary: 514, 515
                mine.append(["Read" if kind == "confirmed" else "ACK", str(invoke), f["object_type"],
                             str(f["instance_number"]), prop])
    assert mine == [[t[0], *t[3:]] for t in theirs]


def test_atomic_read_file_agrees_with_spicy() -> None:
    theirs = iter(spicy("spicy.bacnet.atomicreadfile/out"))
    for _, _, _, kind, service, invoke, data in apdus("hilti/atomic-read-file.pcap"):
        f, t = decode(kind, service, data), next(theirs)
        if kind == "confirmed":
            assert t[4:] == [str(invoke), "bacnet-file", str(f["file_object"]), str(f["file_start_position"]),
                             str(f["file_octet_count"])]
        else:
            assert t[3:6] == [str(invoke), "TF"[not f["end_of_file"]], str(f["file_start_position"])]
            # Spicy prints the extended-length marker 254 for data of 254 bytes and more (here 440)
            assert t[6] == str(f["file_data_length"]) or (t[6] == "254" and f["file_data_length"] >= 254)


def _spicy_row(service: int, f: dict[str, Any]) -> list[str]:
    if service == 8:
        return ["Who-is", *f["range"].split("-")]
    if service == 7:
        return ["Who-has", f["object_type"], str(f["instance_number"])]
    if service == 0:  # segmentation as its number; Spicy names vendor 42 by its former name, Lithonia Lighting
        assert (f["segmentation"], f["vendor_id"], f["vendor"]) == ("segmented-both", 42, "Acuity Brands Lighting Inc.")
        return ["I-am", f["object_type"], str(f["instance_number"]), str(f["max_apdu"]), "0"]
    return ["I-have", f["device_id_type"], str(f["device_id_number"]), f["object_type"], str(f["instance_number"]),
            f["object_name"]]


def test_discovery_and_error_agree_with_spicy() -> None:
    mine = [_spicy_row(service, decode(kind, service, data))
            for _, src, _, kind, service, _, data in apdus("hilti/who-has.pcap")
            if kind == "unconfirmed" and service in (0, 1, 7, 8) and "." in src]  # Spicy sees only BACnet/IP
    assert mine == [[t[0], *t[3:7 if t[0] == "I-am" else None]] for t in spicy("spicy.bacnet.apdu_who/out")]
    (err,) = [decode(k, s, d) for _, _, _, k, s, _, d in apdus("hilti/bacnet-property-error.pcap")]
    assert spicy("spicy.bacnet.apdu_basic/error-out")[0][5:] == [err["error_class"], err["error_code"]]


# ------------------------------------------------------------------------------------------- robustness

DECODERS = ([("confirmed", s) for s in range(40)] + [("unconfirmed", s) for s in range(16)]
            + [("ack", s) for s in range(40)] + [("error", s) for s in range(40)])


def mutate(r: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(r.randrange(1, 4)):
        op = r.randrange(4)
        if op == 0 and b:
            b[r.randrange(len(b))] ^= 1 << r.randrange(8)
        elif op == 1 and b:
            del b[r.randrange(len(b)):]
        elif op == 2:
            b[r.randrange(len(b) + 1):0] = bytes(r.randrange(256) for _ in range(r.randrange(1, 4)))
        elif b:
            b[r.randrange(len(b))] = r.choice([0x0E, 0x0F, 0x3E, 0x3F, 0x75, 0xFF, 0x00, 0xC4])
    return bytes(b)


def check(result: Any) -> list[tuple[str, str]]:
    fields, problems = result
    assert isinstance(fields, dict) and isinstance(problems, list)
    assert all(isinstance(p, tuple) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in problems)
    assert all(p[0] != bv.INTERNAL for p in problems), problems
    return problems


def test_fuzzed_and_mutated_blobs_never_raise() -> None:
    r = random.Random(4711)
    seen: set[str] = set()
    for i in range(6000):
        if i % 3 == 0:
            data = bytes(r.randrange(256) for _ in range(r.randrange(0, 48)))
            kind, service = r.choice(DECODERS)
        else:
            kind, service, data = r.choice(VECTORS)
            data = mutate(r, data)
        seen.update(p[0] for p in check(ours(kind, service, data)))
    # the mutations reach every kind of problem the decoders report
    assert {"bacnet_truncated_parameters", "bacnet_invalid_tag", "bacnet_missing_parameter",
            "bacnet_unexpected_parameters"} <= seen


# prefixes bacpypes3 accepts although the standard does not (unclosed constructed values, a Who-Is with one
# limit, an RPM/WPM object without its list, a DCC without enable-disable, an AtomicWriteFile-ACK without start)
BACPYPES3_LENIENT = ("not closed", "both limits", "list of properties", "enable-disable", "position or record")


def test_truncations_agree_with_bacpypes3() -> None:
    # every prefix of every vector: where bacpypes3 reads it (optional parameters left out), we read the same
    # and report nothing; where bacpypes3 refuses it, we report a problem
    for kind, service, data in VECTORS:
        for cut in range(len(data)):
            fields, problems = ours(kind, service, data[:cut])
            check((fields, problems))
            try:
                theirs = b3(kind, service, data[:cut])
            except (Exception, A.ErrorRejectAbortNack):
                # bacpypes3 also refuses a ReadAccessResult without its (optional) list of results
                assert problems or ((kind, service) == ("ack", 14) and data[cut - 5] == 0x0C), (kind, service, cut)
                continue
            if problems:
                assert any(x in problems[0][1] for x in BACPYPES3_LENIENT), (kind, service, cut, problems)
            else:
                assert strip_texts(fields) == expected(kind, theirs), (kind, service, cut)


# ------------------------------------------------------------------------------------------- device control

def dcc(*tags: bytes) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    return bv.decode_request(True, 17, b"".join(tags))


def test_device_control_by_hand() -> None:
    assert dcc(b"\x09\x3c", b"\x19\x01", b"\x2d\x09\x00filister") == (
        {"time_duration": 60, "device_state": "disable", "password": True}, [])
    assert dcc(b"\x19\x02") == ({"device_state": "disable-initiation", "password": False}, [])
    assert dcc(b"\x19\x07")[0]["device_state"] == "unknown-7"
    assert dcc(b"\x09\x3c")[1] == [(bv.MISSING, "device-communication-control enable-disable")]
    assert bv.decode_request(True, 20, b"\x09\x07\x1d\x05\x00abcd") == (
        {"device_state": "activate-changes", "password": True}, [])
    assert bv.decode_request(True, 20, b"\x09\x01") == ({"device_state": "warmstart", "password": False}, [])


def test_who_is_ranges_follow_the_standard() -> None:
    assert bv.decode_request(False, 8, b"\x09\x00\x19\x00") == ({"range": "0-0"}, [])  # ICSNPP would say All
    assert bv.decode_request(False, 8, b"\x0a\x01\x00\x1a\x01\x00") == ({"range": "256-256"}, [])
    assert bv.decode_request(False, 8, b"\x09\x05") == (
        {"range": "All"}, [(bv.MISSING, "device instance range needs both limits")])


def test_passwords_never_come_out() -> None:
    r = random.Random(99)
    secrets = [*PASSWORDS, "pw-" + "x" * 300, "Ünïcødé-ключ"]
    blobs = []
    for pw in secrets:
        for enc in (A.DeviceCommunicationControlRequest(enableDisable="disable", password=pw),
                    A.ReinitializeDeviceRequest(reinitializedStateOfDevice="coldstart", password=pw)):
            blobs.append((pw, enc.service_choice, bytes(enc.encode().pduData)))
    blobs += [(pw, s, d) for _, s, d in VECTORS if s in (17, 20) for pw in PASSWORDS if pw.encode() in d]
    for pw, service, data in blobs:
        assert bv.decode_request(True, service, data)[0]["password"] is True
        for variant in [data] + [mutate(r, data) for _ in range(50)]:
            for kind, svc in (("confirmed", service), ("confirmed", 17 + 20 - service)):
                text = repr(check(ours(kind, svc, variant))) + repr(ours(kind, svc, variant)[0])
                assert pw not in text and pw[:4] not in text
    # the captures' passwords too
    for trace in CAPTURES:
        for _, _, _, kind, service, _, data in apdus(trace):
            if kind == "confirmed" and service in (17, 20):
                fields = decode(kind, service, data)  # nothing but the duration, the state and True
                assert set(fields) <= {"time_duration", "device_state", "password"} and fields["password"] is True


def test_other_services_decode_nothing_and_buffers_of_any_type() -> None:
    assert bv.decode_request(True, 26, b"\x0c\x00\x00\x00\x01\x19\x55") == ({}, [])  # ReadRange
    assert bv.decode_request(False, 4, b"\xff") == ({}, [])  # UnconfirmedPrivateTransfer
    assert bv.decode_ack(99, b"\x00") == ({}, [])
    data = VECTORS[2][2]
    assert bv.decode_request(False, 0, data + b"\x21\x01")[1] == [(bv.EXTRA, "1 tags after the service parameters")]
