"""Tests of the MQTT decoder: every packet type of 3.1, 3.1.1 and 5.0, fields, pairing, splits, probing, metadata."""

from __future__ import annotations

import random
import re
from pathlib import Path

import mqtt_vectors as mv
import pytest

import protocols.mqtt as mqtt
from appliance.stats import OP_CLASSES
from protocols import mqtt_control, mqtt_packets, mqtt_sync
from protocols.base import FlowId, ProtocolEvent
from protocols.mqtt import MqttDecoder
from protocols.mqtt_logs import log_rows
from protocols.mqtt_names import PACKET_TYPES

FLOW = FlowId("CmQtT1", "10.3.0.20", 50400, "10.3.0.5", 1883, "tcp")
CLIENT, BROKER = FLOW.orig_h, FLOW.resp_h


def messages(events: list[ProtocolEvent]) -> list[ProtocolEvent]:
    """The events that are not weirds."""
    return [e for e in events if e.kind != "weird"]


def weird_names(events: list[ProtocolEvent]) -> list[str]:
    """The names of the weird events."""
    return [e.fields["name"] for e in events if e.kind == "weird"]


def run(session: list[tuple[bool, bytes]], flow: FlowId = FLOW, close: bool = True, **kw: int) -> list[ProtocolEvent]:
    """Feed (sent by the client, packet) pairs to a fresh decoder, one feed per packet, packet time 1, 2, ..."""
    dec = MqttDecoder(flow, **kw)
    events: list[ProtocolEvent] = []
    for i, (by_client, pkt) in enumerate(session, 1):
        events += dec.feed(pkt, by_client, float(i))
    return events + (dec.close(99.0) if close else [])


def test_decoder_metadata() -> None:
    assert (MqttDecoder.name, MqttDecoder.transport, MqttDecoder.ports) == ("mqtt", "tcp", frozenset({1883}))
    assert MqttDecoder(FLOW).failed is False
    assert MqttDecoder.log_rows is log_rows
    assert (MqttDecoder.payload_cap, MqttDecoder.max_message_size) == (100, 1 << 20)


def test_docstring_states_every_packet_type_and_weird() -> None:
    doc = " ".join((mqtt.__doc__ or "").split())
    for code, op in PACKET_TYPES.items():
        assert f"{op.upper()} ({code}) `{op}`" in doc, op
    modules = (mqtt, mqtt_control, mqtt_packets, mqtt_sync)
    sources = "".join(Path(m.__file__ or "").read_text() for m in modules)
    names = set(re.findall(r'"(mqtt_[a-z_]+)"', sources)) | {f"mqtt_missing_{w}" for w in ("subscribe", "unsubscribe")}
    assert len(names) >= 18
    assert {n for n in names if n not in doc} == set()
    for field in ("client_id", "password_sent", "keep_alive", "clean_session", "will_topic", "payload_len", "topics",
                  "qos_levels", "granted_qos", "reason_code", "properties", "connect_status", "status", "dup"):
        assert field in doc, field


def test_op_classes_cover_every_packet_type() -> None:
    assert set(MqttDecoder.op_classes) == set(PACKET_TYPES.values())
    assert set(MqttDecoder.op_classes.values()) <= set(OP_CLASSES)
    table = MqttDecoder.op_classes
    assert [table[op] for op in ("publish", "puback", "subscribe", "suback", "connect", "pingreq", "unsubscribe")] == [
        "write", "write", "read", "read", "other", "other", "other"]  # fmt: skip


def test_311_session_every_packet_type() -> None:
    events = run(mv.session_311())
    assert weird_names(events) == []
    ops = [(e.op, e.kind, e.src, e.dst) for e in events]
    by_client = [by for by, _ in mv.session_311()]
    assert [o[0] for o in ops] == ["connect", "connack", "publish", "publish", "puback", "publish", "pubrec",
                                   "pubrel", "pubcomp", "subscribe", "suback", "unsubscribe", "unsuback", "publish",
                                   "puback", "pingreq", "pingresp", "disconnect"]  # fmt: skip
    for (op, kind, src, dst), client in zip(ops, by_client, strict=True):
        assert (src, dst) == ((CLIENT, BROKER) if client else (BROKER, CLIENT)), op
        assert kind == ("request" if client else "exception" if op == "suback" else "response"), op
    connect, connack = events[0].fields, events[1].fields
    assert connect == {"proto_name": "MQTT", "proto_level": 4, "proto_version": "3.1.1", "clean_session": True,
                       "keep_alive": 60, "password_sent": True, "client_id": "sensor-1", "empty_client_id": False,
                       "will_topic": "plant/status", "will_qos": 1, "will_retain": True, "will_payload_len": 7,
                       "will_payload": "offline", "username": "op"}  # fmt: skip
    assert connack == {"session_present": False, "return_code": 0, "connect_status": "Connection Accepted",
                       "matched": True, "request_ts": 1.0, "proto_name": "MQTT", "proto_version": "3.1.1",
                       "client_id": "sensor-1", "will_topic": "plant/status", "will_payload": "offline",
                       "username": "op"}  # fmt: skip
    assert events[2].fields == {"from_client": True, "qos": 0, "retain": False, "dup": False,
                                "topic": "plant/line1/temp", "payload_len": 11, "payload": '{"t": 21.5}',
                                "payload_type": "json"}  # fmt: skip
    puback = events[4].fields
    assert puback == {"packet_id": 10, "matched": True, "request_ts": 4.0, "from_client": True, "qos": 1,
                      "retain": False, "topic": "plant/line1/cmd", "payload": '{"setpoint": 40}', "payload_len": 16,
                      "status": "ok"}  # fmt: skip
    assert events[6].fields == {"packet_id": 11, "matched": True, "request_ts": 6.0, "topic": "plant/line1/cmd"}
    assert events[8].fields["status"] == "ok" and events[8].fields["qos"] == 2
    assert events[9].fields == {"packet_id": 12, "topics": ["plant/+/temp", "plant/#"], "qos_levels": [1, 2]}
    assert events[10].fields == {"packet_id": 12, "granted_qos": [1, 0x80], "reasons": ["Granted QoS 1", "Failure"],
                                 "matched": True, "request_ts": 10.0, "topics": ["plant/+/temp", "plant/#"],
                                 "qos_levels": [1, 2]}  # fmt: skip
    assert events[12].fields == {"packet_id": 13, "matched": True, "request_ts": 12.0, "topics": ["plant/#"]}
    assert events[13].fields["from_client"] is False and events[13].kind == "response"
    assert events[14].fields["from_client"] is False and events[14].fields["status"] == "ok"
    assert [e.fields for e in events[15:]] == [{}, {}, {}]


def test_5_session_properties_aliases_and_reason_codes() -> None:
    events = run(mv.session_5())
    assert weird_names(events) == []
    f = [e.fields for e in events]
    assert [e.op for e in events][:4] == ["connect", "auth", "auth", "connack"]
    assert f[0]["proto_version"] == "5.0" and f[0]["client_id"] == "" and f[0]["empty_client_id"] is True
    assert f[0]["properties"] == {"session_expiry_interval": 600, "receive_maximum": 20,
                                  "authentication_method": "SCRAM-SHA-1", "authentication_data": "<redacted>",
                                  "user_property": [["site", "dc1"], ["rack", "r4"]]}  # fmt: skip
    assert f[0]["will_properties"] == {"will_delay_interval": 5, "content_type": "text/plain"}
    assert (events[1].kind, f[1]["reason"], f[1]["properties"]["authentication_data"]) == (
        "response", "Continue authentication", "<redacted>")
    assert f[3]["properties"] == {"topic_alias_maximum": 10, "assigned_client_identifier": "auto-1234"}
    assert (f[3]["reason_code"], f[3]["reason"], f[3]["connect_status"]) == (0, "Success", "Connection Accepted")
    assert f[5]["topic"] == "plant/line1/temp" and f[5]["properties"] == {"topic_alias": 3}  # resolved alias
    assert (f[6]["reason_code"], f[6]["reason"], f[6]["topic"], f[6]["status"]) == (
        16, "No matching subscribers", "plant/line1/temp", "ok")
    assert [f[i].get("reason_code") for i in (8, 9, 10)] == [0, 0, 0]  # omitted reason codes mean success
    assert f[10]["status"] == "ok"
    assert f[11]["subscription_options"] == [0x25, 1] and f[11]["qos_levels"] == [1, 1]
    assert f[11]["properties"] == {"subscription_identifier": [7]}
    assert events[12].kind == "exception"
    assert f[12]["reasons"] == ["Granted QoS 1", "Shared Subscriptions not supported"]
    assert (events[14].kind, f[14]["reason_codes"], f[14]["reasons"]) == (
        "response", [0, 17], ["Success", "No subscription existed"])
    assert f[15]["properties"] == {"subscription_identifier": [7, 8]}
    assert (events[-1].op, events[-1].kind, f[-1]["reason"]) == ("disconnect", "exception", "Server shutting down")


def test_31_mqisdp_connect_and_refusals() -> None:
    events = run([(True, mv.connect("legacy", level=3)), (False, mv.connack(4))])
    assert weird_names(events) == []
    assert (events[0].fields["proto_name"], events[0].fields["proto_version"]) == ("MQIsdp", "3.1")
    assert (events[1].kind, events[1].fields["connect_status"]) == ("exception", "Refused: bad user name or password")
    events = run([(True, mv.connect("x", level=5)), (False, mv.connack(0x86, properties=b"\x00"))])
    assert (events[1].kind, events[1].fields["connect_status"], events[1].fields["reason_code"]) == (
        "exception", "Bad User Name or Password", 0x86)
    assert run([(True, mv.connect("y")), (False, mv.connack(9))])[1].fields["connect_status"] == "unknown-return-code-9"


@pytest.mark.parametrize("session", [mv.session_311, mv.session_5])
def test_one_stream_many_packets_and_byte_by_byte(session: object) -> None:
    packets = session()  # type: ignore[operator]
    whole = run(packets, close=False)
    batched = MqttDecoder(FLOW)  # each direction's packets in as few feeds as the order allows
    out: list[ProtocolEvent] = []
    i = 0
    while i < len(packets):
        j = i
        while j < len(packets) and packets[j][0] == packets[i][0]:
            j += 1
        out += batched.feed(b"".join(p for _, p in packets[i:j]), packets[i][0], float(i + 1))
        i = j
    trickle = MqttDecoder(FLOW)
    slow: list[ProtocolEvent] = []
    for n, (by_client, pkt) in enumerate(packets, 1):
        for k in range(len(pkt)):
            slow += trickle.feed(pkt[k : k + 1], by_client, float(n))
    rng = random.Random(4)
    chunky = MqttDecoder(FLOW)
    mixed: list[ProtocolEvent] = []
    for n, (by_client, pkt) in enumerate(packets, 1):
        cuts = sorted(rng.sample(range(1, len(pkt)), min(3, len(pkt) - 1)))
        for a, b in zip([0, *cuts], [*cuts, len(pkt)], strict=True):
            mixed += chunky.feed(pkt[a:b], by_client, float(n))

    def view(evs: list[ProtocolEvent]) -> list[tuple[str, str, dict]]:
        return [(e.op, e.kind, {k: v for k, v in e.fields.items() if k != "request_ts"}) for e in evs]

    assert view(out) == view(whole) and [(e.op, e.kind, e.fields) for e in slow] == [
        (e.op, e.kind, e.fields) for e in whole]
    assert [(e.op, e.kind, e.fields) for e in mixed] == [(e.op, e.kind, e.fields) for e in whole]
    assert len(messages(whole)) == len(packets)


def test_payload_preview_cap_and_binary_payloads() -> None:
    body = bytes(range(256)) * 2
    default = messages(run([(True, mv.publish("cam/1/jpeg", b"\xff\xd8\xff\xe0" + body, qos=0))]))[0].fields
    assert default["payload_len"] == 516 and default["payload"].startswith("\\xff\\xd8\\xff\\xe0\x00\x01")
    assert default["payload"].encode("utf-8", "backslashreplace").count(b"\\x") >= 4
    assert default["payload_type"] == "jpeg"

    class Wide(MqttDecoder):
        payload_cap = 8

    dec = Wide(FLOW)
    assert messages(dec.feed(mv.publish("t", b"0123456789"), True, 1.0))[0].fields["payload"] == "01234567"
    narrow = messages(run([(True, mv.publish("t", b'{"v": 1}'))], payload_cap=3))[0].fields
    assert (narrow["payload"], narrow["payload_type"]) == ('{"v', "json")  # the type still sees PEEK bytes
    empty = messages(run([(True, mv.publish("t", b""))]))[0].fields
    assert (empty["payload"], empty["payload_type"]) == ("", "empty")


def test_oversized_message_is_decoded_from_its_start_and_skipped() -> None:
    big = mv.publish("plant/blob", b"A" * 5000, qos=1, pid=3)
    after = mv.publish("plant/next", b"ok")
    dec = MqttDecoder(FLOW, max_message_size=1000)
    out: list[ProtocolEvent] = []
    dec.feed(mv.connack(), False, 0.5)
    stream = mv.connect() + big + after
    for i in range(0, len(stream), 700):  # the rest of the big one arrives in pieces that are skipped
        out += dec.feed(stream[i : i + 700], True, 1.0)
    ops = [(e.op, e.kind) for e in out]
    assert ops == [("connect", "request"), ("mqtt_oversized_message", "weird"), ("publish", "request"),
                   ("publish", "request")]  # fmt: skip
    assert out[1].fields["length"] == len(big)
    pub = out[2].fields
    assert (pub["topic"], pub["packet_id"], pub["payload_len"], pub["truncated"]) == ("plant/blob", 3, 5000, True)
    assert pub["payload"] == "A" * 100 and out[3].fields["topic"] == "plant/next"
    assert dec._parts == [[], []] and len(dec._buf[0]) == 0


def test_probe_recognises_a_connect() -> None:
    for level in (3, 4, 5):
        pkt = mv.connect("c", level=level)
        assert MqttDecoder.probe(pkt, True) and MqttDecoder.probe(pkt + mv.publish("a", b"b"), True)
        assert MqttDecoder.probe(pkt, False)  # a flow picked up the wrong way round
    assert not MqttDecoder.probe(mv.connect("c", level=6), True)
    assert not MqttDecoder.probe(mv.connect("c", level=4, name="MQIsdp"), True)
    for other in (mv.connack(0), mv.pingreq(), b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc",
                  b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x10\x0c\x00\x04MQTX\x04\x02\x00\x3c\x00\x00",
                  mv.connect("c")[:9]):
        assert not MqttDecoder.probe(other, True), other


def test_probe_recognises_a_flow_picked_up_midstream() -> None:
    """Whole packets filling the segment, one of them naming a printable topic (as nDPI finds coap_mqtt's flows)."""
    named = [mv.publish("a/b", b"x" * 20), mv.publish("plant/t", b"", qos=1, pid=7) + mv.ack(4, 6),
             mv.ack(4, 6) + mv.publish("Bus17Cmd", b'{"m": 1}', qos=1, pid=2), mv.subscribe(3, [("plant/#", 1)]),
             mv.unsubscribe(4, ["plant/#"]), mv.publish("température", b"21")]  # fmt: skip
    for pkt in named:
        assert MqttDecoder.probe(pkt, True) and MqttDecoder.probe(pkt, False), pkt
    too_weak = [mv.pingreq(), mv.pingresp(), mv.ack(4, 6), mv.ack(4, 6) + mv.ack(7, 9), mv.connack(0),
                mv.disconnect(), mv.suback(3, [1])]
    not_mqtt = [mv.publish("a/b", b"x" * 20)[:-1], mv.publish("a/b", b"x" * 20) + b"\x00",  # not whole packets
                mv.publish("a/#", b"1"), mv.publish("a\x00b", b"1"), mv.publish("a\x07b", b"1"),  # wildcard, NUL, BEL
                mv.publish(b"\xff\xfe", b"1"), mv.publish("", b"1"), mv.publish("t", b"1", qos=3, pid=1),
                mv.publish("t", b"1", qos=1, pid=0), b"0\x05\x00\x09abc", bytes(range(48, 80)),
                b"200 OK\r\n", b"\x30\x82\x01\x00" + bytes(256)]  # fmt: skip
    for other in too_weak + not_mqtt:
        assert not MqttDecoder.probe(other, True), other


def test_roles_from_ports_and_from_direction_specific_packets() -> None:
    flipped = FlowId("Cflip", "10.3.0.5", 1883, "10.3.0.20", 50400, "tcp")
    events = run([(False, mv.connect()), (True, mv.connack(0)), (True, mv.publish("a", b"1"))], flipped)
    assert [(e.op, e.kind, e.src) for e in events] == [("connect", "request", "10.3.0.20"),
                                                       ("connack", "response", "10.3.0.5"),
                                                       ("publish", "response", "10.3.0.5")]  # fmt: skip
    odd = FlowId("Codd", "10.3.0.5", 40000, "10.3.0.20", 41000, "tcp")  # no port tells who the broker is
    events = run([(True, mv.pingresp()), (False, mv.pingreq()), (True, mv.publish("a", b"1", qos=1, pid=2)),
                  (False, mv.ack(4, 2))], odd)  # fmt: skip
    assert [(e.op, e.kind) for e in messages(events)] == [("pingresp", "response"), ("pingreq", "request"),
                                                          ("publish", "response"), ("puback", "request")]
    assert events[3].fields["from_client"] is False
    midstream = FlowId("Cmid", "10.3.0.5", 17501, "10.3.0.20", 53524, "tcp")  # the broker's packet seen first
    events = messages(run([(True, mv.publish("Bus17Cmd", b"1", qos=1, pid=2)), (False, mv.ack(4, 2))], midstream))
    assert [(e.op, e.kind, e.src) for e in events] == [("publish", "response", "10.3.0.5"),
                                                       ("puback", "request", "10.3.0.20")]  # fmt: skip
    assert events[0].fields["from_client"] is False


def test_qos2_steps_and_incomplete_transactions_at_close() -> None:
    events = run([(True, mv.connect()), (False, mv.connack()), (True, mv.publish("a", b"1", qos=2, pid=5)),
                  (False, mv.ack(7, 5)), (True, mv.publish("b", b"2", qos=1, pid=6)),
                  (True, mv.subscribe(7, [("x/#", 0)])), (True, mv.unsubscribe(8, ["y"]))])  # fmt: skip
    pubcomp = events[3]
    assert (pubcomp.op, pubcomp.fields["status"]) == ("pubcomp", "incomplete_qos")  # no PUBREC, PUBREL seen
    notices = [e for e in events if e.kind == "notice"]
    assert [(e.op, e.ts, e.src) for e in notices] == [("publish", 99.0, CLIENT), ("subscribe", 99.0, CLIENT),
                                                      ("unsubscribe", 99.0, CLIENT)]  # fmt: skip
    assert notices[0].fields["status"] == "incomplete_qos" and notices[0].fields["request_ts"] == 5.0
    assert notices[1].fields["ack"] is False and notices[2].fields["topics"] == ["y"]


def test_close_forgets_everything() -> None:
    dec = MqttDecoder(FLOW)
    dec.feed(mv.connect() + mv.publish("a", b"1", qos=1, pid=1) + mv.publish("b", b"")[:3], True, 1.0)
    first = dec.close(2.0)
    assert [e.op for e in first] == ["mqtt_truncated_message", "publish"]
    assert dec.close(3.0) == []
    assert [e.op for e in dec.feed(mv.connect(), True, 4.0)] == ["connect"]


@pytest.mark.parametrize("level", [3, 4, 5])
def test_fast_paths_agree_with_the_general_ones(level: int) -> None:
    props = b"\x00" if level == 5 else None
    hello = [(True, mv.connect(level=level)), (False, mv.connack(properties=props))]
    packets = [mv.publish("plant/a", b'{"v": 1}', qos=q, pid=q or None, properties=props) for q in (0, 1, 2)]
    acks = [mv.ack(4, 1)] + ([mv.ack(4, 1, 0), mv.ack(4, 1, 0x97)] if level == 5 else [])
    for pkt in packets + acks:
        fast = MqttDecoder(FLOW)
        slow = MqttDecoder(FLOW)
        for dec in (fast, slow):
            for by_client, hello_pkt in hello:
                dec.feed(hello_pkt, by_client, 1.0)
            if pkt[0] == 0x40:
                dec.feed(packets[1], True, 2.0)
        by_client = pkt[0] != 0x40
        quick = fast.feed(pkt, by_client, 3.0)
        general: list[ProtocolEvent] = []
        body = 2 if pkt[1] < 0x80 else 3
        if pkt[0] == 0x40:
            slow._ack(pkt, body, len(pkt), 4, pkt[0], by_client, by_client, 0 if by_client else 1, 3.0, general)
        else:
            slow._publish(pkt, body, len(pkt), len(pkt), pkt[0], True, True, 0, 3.0, general)
        assert [(e.op, e.kind, e.fields) for e in quick] == [(e.op, e.kind, e.fields) for e in general], pkt
        assert [list(e.fields) for e in quick] == [list(e.fields) for e in general]  # the same column order
