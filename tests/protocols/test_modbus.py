"""Tests of the Modbus/TCP decoder: pymodbus-made vectors, framing, pairing, weirds, probing, fuzzing."""

from __future__ import annotations

import random
import re
import struct
from pathlib import Path

import modbus_vectors as mv
import pytest

import protocols.modbus as modbus
from appliance.stats import OP_CLASSES
from protocols import modbus_pdu, modbus_requests, modbus_responses
from protocols.base import FlowId, ProtocolEvent
from protocols.modbus import ModbusDecoder
from protocols.modbus_names import EXCEPTION_NAMES, FUNCTION_NAMES

FLOW = FlowId("CmOdBuS1", "10.1.0.20", 49152, "10.1.0.5", 502, "tcp")
VECTORS = mv.vectors()
KINDS = {"request", "response", "exception", "weird"}


def adu(tid: int, fc: int, body: bytes = b"", unit: int = 1, pid: int = 0, length: int | None = None) -> bytes:
    """A hand-assembled ADU, for malformed cases pymodbus refuses to build."""
    ln = len(body) + 2 if length is None else length
    return struct.pack(">HHHBB", tid, pid, ln, unit, fc) + body


def messages(events: list[ProtocolEvent]) -> list[ProtocolEvent]:
    """The non-weird events."""
    return [e for e in events if e.kind != "weird"]


def weird_names(events: list[ProtocolEvent]) -> list[str]:
    """The names of the weird events."""
    return [e.fields["name"] for e in events if e.kind == "weird"]


def exchange(request: bytes, response: bytes, flow: FlowId = FLOW) -> tuple[ModbusDecoder, list[ProtocolEvent]]:
    """Feed one request then one response to a fresh decoder."""
    dec = ModbusDecoder(flow)
    return dec, dec.feed(request, True, 10.0) + dec.feed(response, False, 10.5)


@pytest.mark.parametrize("v", VECTORS, ids=[v.name for v in VECTORS])
def test_fields_equal_pymodbus_decoding(v: mv.Vector) -> None:
    req_pdu = mv.decode(v.request_adu, request=True)
    resp_pdu = mv.decode(v.response_adu, request=False)
    assert req_pdu is not None and resp_pdu is not None
    _, events = exchange(v.request_adu, v.response_adu)
    assert weird_names(events) == []
    rq, rs = messages(events)
    name = FUNCTION_NAMES[v.fc]
    op = "read_device_identification" if v.fc == 43 else name.lower()
    assert (rq.kind, rq.op, rq.is_orig, rq.src, rq.dst) == ("request", op, True, FLOW.orig_h, FLOW.resp_h)
    assert (rs.kind, rs.op, rs.is_orig, rs.src, rs.dst) == ("response", op, False, FLOW.resp_h, FLOW.orig_h)
    for ev, pdu, pdu_type in ((rq, req_pdu, "REQ"), (rs, resp_pdu, "RESP")):
        head = {
            "tid": pdu.transaction_id,
            "unit": pdu.dev_id,
            "func": name,
            "pdu_type": pdu_type,
            "exception": None,
            "pid": 0,
            "len": len(v.request_adu if ev is rq else v.response_adu) - 6,
        }
        assert {k: ev.fields.get(k) for k in head} == head
    want = mv.expected_request(v, req_pdu)
    assert {k: rq.fields.get(k) for k in want} == want
    want = mv.expected_response(v, req_pdu, resp_pdu)
    assert {k: rs.fields.get(k) for k in want} == want
    assert rs.fields["matched"] is True and rs.fields["request_ts"] == 10.0


@pytest.mark.parametrize("v", VECTORS[::5], ids=[v.name for v in VECTORS[::5]])
def test_exception_for_every_code(v: mv.Vector) -> None:
    tid = struct.unpack_from(">H", v.request_adu)[0]
    unit = v.request_adu[6]
    for code in (*EXCEPTION_NAMES, 0x07, 0x0C, 0xFF):
        exc = mv.exception_adu(v.fc, code, tid, unit)
        pdu = mv.decode(exc, request=False)
        assert pdu is not None and pdu.exception_code == code
        _, events = exchange(v.request_adu, exc)
        rs = messages(events)[1]
        assert rs.kind == "exception"
        assert rs.op == messages(events)[0].op
        assert rs.fields["exception"] == EXCEPTION_NAMES.get(code, f"unknown-{code}")
        assert rs.fields["exception_code"] == code
        assert rs.fields["func"] == FUNCTION_NAMES[v.fc] + "_EXCEPTION"
        assert rs.fields["matched"] is True


def test_docstring_states_every_function_code_and_exception() -> None:
    doc = modbus.__doc__ or ""
    for code, name in FUNCTION_NAMES.items():
        assert f"{name} ({code})" in doc, name
    for name in EXCEPTION_NAMES.values():
        assert name in doc
    assert modbus.FUNCTION_CODES is FUNCTION_NAMES
    modules = (modbus, modbus_pdu, modbus_requests, modbus_responses)
    sources = [Path(m.__file__ or "").read_text() for m in modules]
    weirds = set(re.findall(r'"(modbus_[a-z_]+)"', "".join(sources)))
    assert len(weirds) >= 15
    assert {w for w in weirds if w not in doc} == set()


def test_op_classes_cover_every_named_function() -> None:
    ops = {name.lower() for name in FUNCTION_NAMES.values()} | {"read_device_identification"}
    assert set(ModbusDecoder.op_classes) == ops
    assert set(ModbusDecoder.op_classes.values()) <= set(OP_CLASSES)
    assert ModbusDecoder.op_classes["read_holding_registers"] == "read"
    assert ModbusDecoder.op_classes["write_single_coil"] == "write"
    assert ModbusDecoder.op_classes["diagnostics"] == "diagnostic"
    assert ModbusDecoder.op_classes["read_device_identification"] == "discovery"
    assert ModbusDecoder.op_classes["report_slave_id"] == "discovery"


def test_decoder_metadata() -> None:
    assert (ModbusDecoder.name, ModbusDecoder.transport, ModbusDecoder.ports) == (
        "modbus",
        "tcp",
        frozenset({502}),
    )
    assert ModbusDecoder(FLOW).failed is False


def test_several_adus_in_one_feed_and_one_adu_split_byte_by_byte() -> None:
    requests = b"".join(v.request_adu for v in VECTORS)
    responses = b"".join(v.response_adu for v in VECTORS)
    whole = ModbusDecoder(FLOW)
    batch = whole.feed(requests, True, 1.0) + whole.feed(responses, False, 2.0)
    assert len(messages(batch)) == 2 * len(VECTORS) and weird_names(batch) == []
    split = ModbusDecoder(FLOW)
    trickle: list[ProtocolEvent] = []
    for blob, is_orig, ts in ((requests, True, 1.0), (responses, False, 2.0)):
        for i in range(len(blob)):
            trickle += split.feed(blob[i : i + 1], is_orig, ts)
    assert [(e.op, e.kind, e.fields) for e in trickle] == [(e.op, e.kind, e.fields) for e in batch]
    assert whole.close(3.0) == [] and split.close(3.0) == []


def test_response_carries_request_address_quantity_and_time() -> None:
    dec = ModbusDecoder(FLOW)
    dec.feed(adu(7, 3, struct.pack(">HH", 40001, 2)), True, 5.0)
    dec.feed(adu(8, 1, struct.pack(">HH", 100, 3)), True, 5.1)
    out = dec.feed(adu(8, 1, b"\x01\x05") + adu(7, 3, b"\x04\x00\x2a\xff\xff"), False, 5.3)
    coils, regs = messages(out)
    assert coils.fields["response_values"] == [1, 0, 1]  # cut at the request's quantity
    assert (coils.fields["address"], coils.fields["quantity"], coils.fields["request_ts"]) == (100, 3, 5.1)
    assert regs.fields["response_values"] == [42, 65535]
    assert (regs.fields["address"], regs.fields["quantity"], regs.fields["request_ts"]) == (40001, 2, 5.0)
    unmatched = dec.feed(adu(9, 1, b"\x01\xff"), False, 6.0)[0]
    assert unmatched.fields["matched"] is False and "request_ts" not in unmatched.fields
    assert unmatched.fields["response_values"] == [1] * 8 and "address" not in unmatched.fields


def test_function_mismatch_is_not_paired() -> None:
    dec = ModbusDecoder(FLOW)
    dec.feed(adu(1, 3, struct.pack(">HH", 0, 1)), True, 1.0)
    resp = messages(dec.feed(adu(1, 4, b"\x02\x00\x01"), False, 1.1))[0]
    assert resp.fields["matched"] is False
    left = dec.close(2.0)
    assert weird_names(left) == ["modbus_unmatched_request"]
    assert left[0].fields["func"] == "READ_HOLDING_REGISTERS" and left[0].fields["request_ts"] == 1.0


def test_unmatched_requests_reported_at_close_and_capped() -> None:
    dec = ModbusDecoder(FLOW)
    for tid in range(40):
        dec.feed(adu(tid, 4, struct.pack(">HH", tid, 1)), True, float(tid))
    dec.feed(adu(3, 4, b"\x02\x00\x00"), False, 50.0)
    dec.feed(adu(5, 4, struct.pack(">HH", 0, 1)), True, 51.0)  # replaces the unanswered tid 5
    out = dec.close(60.0)
    assert all(e.kind == "weird" and e.flow == FLOW for e in out)
    per_request = [e for e in out if "tid" in e.fields]
    assert len(per_request) == modbus.MAX_UNMATCHED_REPORTS
    assert per_request[0].fields["tid"] == 5 and per_request[0].fields["request_ts"] == 5.0
    assert 3 not in {e.fields["tid"] for e in per_request}
    assert out[-1].fields["count"] == 40 - modbus.MAX_UNMATCHED_REPORTS
    assert out[-1].src == FLOW.orig_h
    assert dec.close(61.0) == []


def test_unknown_function_code() -> None:
    _, events = exchange(adu(1, 100, b"\x01\x02\x03"), adu(1, 100, b"\xaa"))
    rq, rs = messages(events)
    assert (rq.op, rq.fields["func"], rq.fields["request_data"]) == ("unknown-100", "unknown-100", "010203")
    assert (rs.op, rs.kind, rs.fields["response_data"], rs.fields["matched"]) == (
        "unknown-100",
        "response",
        "aa",
        True,
    )
    _, events = exchange(adu(2, 72, b""), adu(2, 72 | 0x80, b"\x01"))
    assert messages(events)[1].fields["func"] == "unknown-200"
    assert messages(events)[1].op == "unknown-72" and messages(events)[1].fields["exception"] == "ILLEGAL_FUNCTION"
    _, events = exchange(adu(3, 0x5A, b"\x00\x04"), adu(3, 0x5A, b"\x00\xfe"))
    assert [e.op for e in events] == ["program_unity", "program_unity"]


def test_device_identification_objects() -> None:
    body = b"\x0e\x03\x83\xff\x07\x03"  # MEI 14, extended, conformity 0x83, more follows, next 7, 3 objects
    body += b"\x00\x03ACM" + b"\x06\x04pump" + b"\x81\x02\x00\xff"
    _, events = exchange(adu(4, 0x2B, b"\x0e\x03\x00"), adu(4, 0x2B, body))
    rq, rs = messages(events)
    assert rq.op == rs.op == "read_device_identification"
    assert (rq.fields["device_id_code"], rq.fields["object_id_code"]) == (3, 0)
    f = rs.fields
    assert f["func"] == "ENCAP_INTERFACE_TRANSPORT" and f["mei_type"] == "READ-DEVICE-IDENTIFICATION"
    assert (f["conformity_level_code"], f["conformity_level"]) == (
        0x83,
        "Extended Identification (Stream, Individual)",
    )
    assert (f["more_follows"], f["next_object_id"], f["number_of_objects"]) == (True, 7, 3)
    assert f["objects"] == {"vendor_name": "ACM", "user_application_name": "pump", "0x81": "\x00\\xff"}
    cut = exchange(adu(5, 0x2B, b"\x0e\x01\x00"), adu(5, 0x2B, b"\x0e\x01\x01\x00\x00\x02\x00\x05AB"))[1]
    assert messages(cut)[1].fields["objects"] == {"vendor_name": "AB"}
    assert weird_names(cut) == [
        "modbus_invalid_device_identification",
        "modbus_invalid_device_identification",
    ]


def test_canopen_and_other_mei_types() -> None:
    _, events = exchange(adu(6, 0x2B, b"\x0d\x01\x02"), adu(6, 0x2B, b"\x0d\x01\x02\x03"))
    rq, rs = messages(events)
    assert rq.op == rs.op == "encap_interface_transport"
    assert (rq.fields["mei_type"], rq.fields["mei_code"], rq.fields["mei_data"]) == (
        "CANOPEN-GENERAL-REFERENCE",
        13,
        "0102",
    )
    assert rs.fields["mei_data"] == "010203"
    assert messages(exchange(adu(7, 0x2B, b"\x05"), adu(7, 0xAB, b"\x01"))[1])[0].fields["mei_type"] == "unknown-5"


def test_diagnostics_subfunctions_and_zeek_weirds() -> None:
    _, events = exchange(adu(1, 8, b"\x00\x04\x00\x00"), adu(1, 8, b"\x00\x04\x00\x00"))
    rq, rs = messages(events)
    assert (rq.fields["subfunction"], rq.fields["request_subfunction_code"]) == (4, "FORCE_LISTEN_ONLY_MODE")
    assert rs.fields["response_subfunction_code"] == "FORCE_LISTEN_ONLY_MODE"
    _, events = exchange(adu(2, 8, b"\x00\x63\x00\x00\x00\x00"), adu(2, 8, b"\x00\x63"))
    assert messages(events)[0].fields["request_subfunction_code"] == "unknown-99"
    assert weird_names(events) == [
        "modbus_diag_invalid_request_data",
        "modbus_diag_unknown_request_subfunction",
    ]


def test_write_fields_and_masks() -> None:
    coils = struct.pack(">HHB", 20, 10, 2) + b"\xcd\x01"
    events = exchange(adu(1, 15, coils), adu(1, 15, struct.pack(">HH", 20, 10)))[1]
    assert messages(events)[0].fields["request_values"] == [1, 0, 1, 1, 0, 0, 1, 1, 1, 0]
    events = exchange(adu(2, 5, struct.pack(">HH", 9, 0x1234)), adu(2, 5, struct.pack(">HH", 9, 0x1234)))[1]
    assert weird_names(events) == ["modbus_invalid_coil_value", "modbus_invalid_coil_value"]
    rq, rs = messages(
        exchange(adu(3, 22, struct.pack(">HHH", 4, 0xF2, 0x25)), adu(3, 22, struct.pack(">HHH", 4, 0xF2, 0x25)))[1]
    )
    assert (rq.fields["and_mask"], rs.fields["or_mask"], rq.op) == (0xF2, 0x25, "mask_write_register")


def test_malformed_bodies_become_weirds_with_partial_fields() -> None:
    events = exchange(adu(1, 22, struct.pack(">HH", 7, 1)), adu(1, 0x96, b"\x03"))[1]
    assert messages(events)[0].fields["address"] == 7 and "or_mask" not in messages(events)[0].fields
    assert weird_names(events) == ["modbus_truncated_pdu"]
    events = exchange(adu(2, 16, struct.pack(">HHB", 0, 3, 6) + b"\x00\x01"), b"")[1]
    assert weird_names(events) == ["modbus_byte_count_mismatch"]
    assert messages(events)[0].fields["request_values"] == [1]
    events = exchange(adu(3, 3, struct.pack(">HH", 0, 200)), adu(3, 3, b"\x05\x00\x01"))[1]
    assert weird_names(events) == [
        "modbus_invalid_quantity",
        "modbus_byte_count_mismatch",
        "modbus_byte_count_mismatch",
    ]
    events = exchange(adu(4, 1, struct.pack(">HH", 0, 1) + b"\x00"), adu(4, 0x81, b""))[1]
    assert weird_names(events) == ["modbus_extra_data", "modbus_truncated_pdu"]
    assert messages(events)[1].fields.get("exception") is None
    assert all(e.fields["tid"] == 4 for e in events)


def test_bad_headers_mid_stream_resynchronise() -> None:
    dec = ModbusDecoder(FLOW)
    good = adu(1, 3, struct.pack(">HH", 0, 1))
    assert len(dec.feed(good, True, 1.0)) == 1
    out = dec.feed(adu(2, 3, struct.pack(">HH", 0, 1), pid=7) + adu(3, 3, struct.pack(">HH", 0, 1)), True, 2.0)
    assert weird_names(out) == ["modbus_invalid_protocol_id"] and messages(out)[0].fields["tid"] == 3
    out = dec.feed(adu(4, 3, b"", length=1) + b"\x55" * 3 + adu(5, 3, struct.pack(">HH", 0, 1)), True, 3.0)
    assert weird_names(out) == ["modbus_invalid_length"] and messages(out)[0].fields["tid"] == 5
    out = dec.feed(adu(6, 3, b"", length=0x8804) + b"\x00\x01" * 20, True, 4.0)
    assert weird_names(out) == ["modbus_invalid_length"] and not dec.failed
    out = dec.feed(adu(7, 3, struct.pack(">HH", 0, 1)), True, 5.0)
    assert weird_names(out) == ["modbus_resync"] and messages(out)[0].fields["tid"] == 7


def test_gap_drops_partial_adu_and_resynchronises() -> None:
    dec = ModbusDecoder(FLOW)
    first, second, third = (adu(t, 4, struct.pack(">HH", t, 2)) for t in (1, 2, 3))
    assert len(dec.feed(first + second[:5], True, 1.0)) == 1
    assert dec.gap(True, 1.5, 4) == []
    out = dec.feed(second[9:] + third, True, 2.0)  # the stream resumes in the middle of `second`
    assert weird_names(out) == ["modbus_resync"] and out[0].fields["addl"] == "skipped 3 bytes"
    assert [e.fields["tid"] for e in messages(out)] == [3]
    dec.gap(True, 2.5, 12)
    assert [e.fields["tid"] for e in dec.feed(first, True, 3.0)] == [1]  # a gap at an ADU boundary is silent


def test_oversized_adu_is_decoded_with_one_weird() -> None:
    dec = ModbusDecoder(FLOW)
    big = adu(1, 0x5A, bytes(253))
    out = dec.feed(big + big, True, 1.0)
    assert [e.fields["len"] for e in messages(out)] == [255, 255]
    assert weird_names(out) == ["modbus_oversized_adu"]
    assert not ModbusDecoder.probe(big, True)


def test_partial_adu_at_close() -> None:
    dec = ModbusDecoder(FLOW)
    dec.feed(adu(1, 3, struct.pack(">HH", 0, 1))[:9], True, 1.0)
    assert weird_names(dec.close(2.0)) == ["modbus_truncated_adu"]


NOT_MODBUS = {
    "tls": bytes.fromhex("160301020001000200fc0303") + bytes(range(64)),
    "http": b"GET /index.html HTTP/1.1\r\nHost: plc\r\n\r\n",
    "http_response": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "ssh": b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
    "dcerpc_bind": bytes.fromhex("05000b0310000000480000000100000000100010000000000100000000000100"),
    "smb2": bytes.fromhex("000000a4fe534d4240000100000000000000"),
}


@pytest.mark.parametrize("name", sorted(NOT_MODBUS))
def test_probe_and_protocol_violation_on_other_protocols(name: str) -> None:
    payload = NOT_MODBUS[name]
    assert not ModbusDecoder.probe(payload, True) and not ModbusDecoder.probe(payload, False)
    dec = ModbusDecoder(FLOW)
    out = dec.feed(payload, True, 1.0)
    assert [(e.kind, e.op) for e in out] == [("weird", "modbus_protocol_violation")]
    assert out[0].fields["addl"].startswith("first bytes are not an MBAP header")
    assert dec.failed
    assert dec.feed(VECTORS[0].request_adu, True, 2.0) == [] and dec.close(3.0) == []


def test_probe_accepts_real_adus() -> None:
    for v in VECTORS:
        if len(v.request_adu) - 6 <= 254:
            assert ModbusDecoder.probe(v.request_adu, True), v.name
            assert ModbusDecoder.probe(v.request_adu + VECTORS[0].request_adu, True), v.name
        assert ModbusDecoder.probe(v.response_adu, False), v.name
        assert not ModbusDecoder.probe(v.request_adu[:-1], True)
    first, second = VECTORS[2].request_adu, VECTORS[3].request_adu
    assert ModbusDecoder.probe(first + second[:5], True)  # the next ADU begins with protocol id 0
    assert not ModbusDecoder.probe(first + b"\x00\x01\x02\x03", True)
    assert ModbusDecoder.probe(mv.exception_adu(3, 2, 1, 1), False)
    assert not ModbusDecoder.probe(mv.exception_adu(3, 2, 1, 1), True)
    assert not ModbusDecoder.probe(adu(1, 3, struct.pack(">HHH", 0, 1, 0)), True)  # FC3 request must be 6 long
    assert not ModbusDecoder.probe(adu(1, 0x30, b"\x00\x00"), True)


def test_flow_picked_up_the_wrong_way_round() -> None:
    flipped = FlowId("Cflip", "10.1.0.5", 502, "10.1.0.20", 49152, "tcp")
    dec = ModbusDecoder(flipped)
    resp = dec.feed(VECTORS[0].response_adu, True, 1.0)[0]
    req = dec.feed(VECTORS[1].request_adu, False, 1.1)[0]
    assert (resp.kind, resp.fields["pdu_type"], resp.src) == ("response", "RESP", "10.1.0.5")
    assert (req.kind, req.fields["pdu_type"], req.src) == ("request", "REQ", "10.1.0.20")


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        if choice < 0.5 and buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif choice < 0.7 and buf:
            del buf[rng.randrange(len(buf)) :]
        elif choice < 0.85:
            pos = rng.randrange(len(buf) + 1)
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif len(buf) > 5:
            buf[4:6] = struct.pack(">H", rng.choice((0, 1, 2, 3, 254, 255, 256, 300, 301, 0xFFFF)))
    return bytes(buf)


def test_fuzz_never_raises() -> None:
    rng = random.Random(20240502)
    adus = [v.request_adu for v in VECTORS] + [v.response_adu for v in VECTORS]
    kinds: set[str] = set()
    for round_ in range(4000):
        dec = ModbusDecoder(FLOW)
        events: list[ProtocolEvent] = []
        for step in range(rng.randint(1, 6)):
            is_orig = rng.random() < 0.5
            if round_ % 4 == 0:
                data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
            else:
                data = b"".join(_mutate(rng, rng.choice(adus)) for _ in range(rng.randint(1, 3)))
            if rng.random() < 0.1:
                events += dec.gap(is_orig, float(step), rng.randint(1, 100))
            for cut in sorted(rng.sample(range(len(data) + 1), min(2, len(data) + 1))):
                events += dec.feed(data[:cut], is_orig, float(step))
                data = data[cut:]
            events += dec.feed(data, is_orig, float(step))
        events += dec.close(99.0)
        for e in events:
            assert e.protocol == "modbus" and e.kind in KINDS and e.flow == FLOW
            assert isinstance(e.fields, dict)
            kinds.add(e.kind)
    assert kinds == KINDS
