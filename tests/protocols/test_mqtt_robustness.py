"""The MQTT decoder on bad input: every anomaly weird, midstream starts, gaps, secrets never logged, fuzzing."""

from __future__ import annotations

import json
import random
from typing import Any

import mqtt_vectors as mv
import pytest
from test_mqtt import FLOW, messages, run, weird_names

from protocols.base import FlowId, ProtocolEvent
from protocols.mqtt import MqttDecoder
from protocols.mqtt_logs import log_rows

HELLO = [(True, mv.connect()), (False, mv.connack())]
HELLO5 = [(True, mv.connect(level=5)), (False, mv.connack(properties=b"\x00"))]
KINDS = {"request", "response", "exception", "weird", "notice"}


def anomalies(session: list[tuple[bool, bytes]], **kw: int) -> list[str]:
    """The weird names a session gives."""
    return weird_names(run(session, **kw))


@pytest.mark.parametrize(("name", "session"), [
    ("mqtt_malformed_traffic", [*HELLO5[:1], (True, mv.connect(level=5, properties=mv.varint(4351) + b"!\x00"))]),
    ("mqtt_malformed_traffic", [*HELLO, (False, mv.packet(4, 0, b"\x00\x01\x00"))]),
    ("mqtt_malformed_traffic", [*HELLO, (True, mv.packet(8, 2, b"\x00\x01\x00\tplant"))]),
    ("mqtt_malformed_traffic", [*HELLO, (True, mv.packet(12, 0, b"\x01"))]),
    ("mqtt_malformed_traffic", [*HELLO, (True, b"0\xff\xff\xff\xff\x01" + mv.pingreq())]),
    ("mqtt_malformed_traffic", [*HELLO5, (True, mv.publish("a", b"x", properties=b"\x03c\x00\x00"))]),
    ("mqtt_invalid_qos_level", [*HELLO, (True, mv.publish("a", b"x", qos=3, pid=1))]),
    ("mqtt_invalid_qos_level", [(True, mv.connect(will=("w", b"x", 3, False)))]),
    ("mqtt_invalid_qos_level", [*HELLO, (True, mv.subscribe(1, [("a/#", 3)]))]),
    ("mqtt_unassigned_msg_type", [*HELLO, (True, mv.packet(0, 0, b"x" * 24))]),
    ("mqtt_unassigned_msg_type", [*HELLO, (True, mv.auth(0))]),
    ("mqtt_missing_connect", [(False, mv.connack())]),
    ("mqtt_missing_publish", [*HELLO, (False, mv.ack(4, 9))]),
    ("mqtt_missing_publish", [*HELLO, (True, mv.ack(6, 9))]),
    ("mqtt_missing_subscribe", [*HELLO, (False, mv.suback(3, [0]))]),
    ("mqtt_missing_unsubscribe", [*HELLO, (False, mv.unsuback(3))]),
    ("mqtt_double_connect", [*HELLO, (True, mv.connect())]),
    ("mqtt_unintroduced_message", [(True, mv.connect()), (True, mv.publish("a", b"x"))]),
    ("mqtt_unintroduced_message", [(True, mv.pingreq())]),
    ("mqtt_missing_msg_id", [*HELLO, (True, mv.publish("a", b"x", qos=1, pid=0))]),
    ("mqtt_missing_msg_id", [*HELLO, (True, mv.subscribe(0, [("a", 0)]))]),
    ("mqtt_invalid_protocol_version", [(True, mv.connect(level=3, name="MQTT"))]),
    ("mqtt_invalid_protocol_version", [(True, mv.connect(level=6))]),
    ("mqtt_invalid_protocol_version", [(True, mv.connect(name="MQTX"))]),
    ("mqtt_invalid_flags", [*HELLO, (True, mv.packet(8, 0, b"\x00\x01\x00\x01a\x00"))]),
    ("mqtt_invalid_flags", [*HELLO, (False, mv.packet(4, 1, b"\x00\x01"))]),
    ("mqtt_invalid_flags", [(True, mv.connect(flags_extra=1))]),
    ("mqtt_invalid_flags", [(True, mv.connect(flags_extra=0x40))]),
    ("mqtt_unknown_topic_alias", [*HELLO5, (True, mv.publish("", b"x", properties=mv.props(("topic_alias", 4))))]),
    ("mqtt_oversized_message", [*HELLO, (True, mv.subscribe(1, [("a" * 300, 1)]))]),
    ("mqtt_truncated_message", [*HELLO, (True, mv.publish("a", b"xyz")[:-1])]),
])  # fmt: skip
def test_each_anomaly(name: str, session: list[tuple[bool, bytes]]) -> None:
    events = run(session, max_message_size=100)
    assert name in weird_names(events)
    for e in events:
        assert e.protocol == "mqtt" and e.flow == FLOW
        if e.kind == "weird":
            assert e.op == e.fields["name"] and isinstance(e.fields["addl"], str)


def test_good_sessions_have_no_anomaly_and_oversized_cut_is_not_malformed() -> None:
    assert anomalies(mv.session_311()) == anomalies(mv.session_5()) == []
    assert anomalies([*HELLO, (True, mv.subscribe(1, [("a" * 300, 1), ("b" * 300, 2)]))], max_message_size=100) == [
        "mqtt_oversized_message"]
    events = run([*HELLO5[:1], (True, mv.connect(level=5, properties=mv.varint(4351) + b"!\x00"))])
    assert messages(events)[1].fields["proto_version"] == "5.0"  # the event is there, with what could be read


def test_too_many_transactions_and_incomplete_ones_reported_at_close() -> None:
    session = HELLO + [(True, mv.publish("t", b"x", qos=1, pid=i)) for i in range(1, 1031)]
    events = run(session)
    assert weird_names(events).count("mqtt_too_many_transactions") == 6
    notices = [e for e in events if e.kind == "notice"]
    assert len(notices) == 64 and {e.op for e in notices} == {"publish"}
    assert [e.fields["packet_id"] for e in notices[:6]] == [1, 2, 3, 4, 5, 6]  # the oldest, dropped first
    (summary,) = [e for e in events if e.op == "mqtt_incomplete_transactions"]
    assert summary.fields["count"] == 1030 - 64


def test_weirds_are_capped_per_name_and_counted_at_close() -> None:
    events = run(HELLO + [(False, mv.ack(4, i)) for i in range(1, 41)])
    missing = [e for e in events if e.op == "mqtt_missing_publish"]
    assert len(missing) == 17 and missing[-1].fields["count"] == 24 and missing[-1].ts == 99.0
    assert len([e for e in events if e.op == "puback"]) == 40


def test_midstream_start_inside_a_packet_resynchronises() -> None:
    pubs = [mv.publish(f"plant/line{i}/temp", b'{"t": 21.5, "unit": "C"}', qos=1, pid=i) for i in range(1, 4)]
    dec = MqttDecoder(FLOW)
    out = dec.feed(pubs[0][11:] + pubs[1] + pubs[2], True, 1.0)
    assert weird_names(out) == ["mqtt_resync", "mqtt_unintroduced_message"]
    assert out[0].fields["addl"] == f"skipped {len(pubs[0]) - 11} bytes"
    assert [e.fields["packet_id"] for e in messages(out)] == [2, 3]
    dec = MqttDecoder(FLOW)  # a tail too short to tell waits for more bytes
    assert dec.feed(pubs[0][-6:], True, 1.0) == []
    assert [e.fields.get("packet_id") for e in messages(dec.feed(pubs[1] + pubs[2], True, 2.0))] == [2, 3]


def test_midstream_v5_is_inferred_from_the_broker() -> None:
    alias_set = mv.publish("plant/a", b"1", qos=1, pid=4, properties=mv.props(("topic_alias", 2)))
    events = run([(False, mv.connack(0, properties=mv.props(("topic_alias_maximum", 5)))), (True, alias_set),
                  (True, mv.publish("", b"2", properties=mv.props(("topic_alias", 2)))), (False, mv.ack(4, 4, 0))])
    assert weird_names(events) == ["mqtt_missing_connect"]
    pubs = [e.fields for e in events if e.op == "publish"]
    assert [(p["topic"], p["payload"]) for p in pubs] == [("plant/a", "1"), ("plant/a", "2")]
    assert [e.fields.get("status") for e in events if e.op == "puback"] == ["ok"]


def test_gaps_inside_a_packet_keep_sync_and_elsewhere_resynchronise() -> None:
    big = mv.publish("plant/blob", b"B" * 3000, qos=1, pid=1)
    small = mv.publish("plant/next", b"ok", qos=1, pid=2)
    dec = MqttDecoder(FLOW)
    dec.feed(mv.connack(), False, 0.0)
    assert dec.feed(mv.connect() + big[:1000], True, 1.0)[0].op == "connect"
    assert dec.gap(True, 1.5, 1500) == []  # inside the big PUBLISH: it is lost, the next one is not
    assert [e.fields["topic"] for e in dec.feed(big[2500:] + small, True, 2.0)] == ["plant/next"]
    assert dec.gap(True, 2.5, 40) == []  # at a packet boundary: where the next packet starts is unknown
    out = dec.feed(small[5:] + small, True, 3.0)
    assert weird_names(out) == ["mqtt_resync"] and [e.op for e in messages(out)] == ["publish"]
    dec = MqttDecoder(FLOW, max_message_size=500)  # a gap in the skipped part of an oversized packet
    dec.feed(mv.connack(), False, 0.0)
    first = dec.feed(big[:800], True, 1.0)
    assert [e.op for e in first] == ["mqtt_oversized_message", "publish"]
    assert dec.gap(True, 1.5, 1000) == [] and [e.op for e in dec.feed(big[1800:] + small, True, 2.0)] == ["publish"]


@pytest.mark.parametrize("stream", [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64),
    b"GET /mqtt HTTP/1.1\r\nHost: broker\r\nUpgrade: websocket\r\n\r\n",
    b"SSH-2.0-OpenSSH_9.2\r\n" + bytes(range(256)) * 300,
])  # fmt: skip
def test_other_protocols_are_a_violation(stream: bytes) -> None:
    dec = MqttDecoder(FLOW)
    out: list[ProtocolEvent] = []
    for i in range(0, len(stream), 1400):
        out += dec.feed(stream[i : i + 1400], True, 1.0)
    assert weird_names(out)[-1] == "mqtt_protocol_violation" and dec.failed
    assert dec.feed(mv.connect(), True, 2.0) == [] and dec.close(3.0) == []


SECRET = b"Zq9#pW0rd!x7"


def _strings(value: Any) -> list[str]:
    """Every text, hex and repr rendering of the values inside a field value."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, bytes | bytearray):
        return [bytes(value).hex(), repr(value), bytes(value).decode("latin-1")]
    return [str(value)]


def _secret_sessions() -> list[list[tuple[bool, bytes]]]:
    auth = mv.props(("authentication_method", "PLAIN"), ("authentication_data", SECRET))
    sessions = []
    for level in (3, 4, 5):
        hello = mv.connect("dev", level=level, username="op", password=SECRET, properties=auth)
        ack = mv.connack(properties=b"\x00" if level == 5 else None)
        sessions.append([(True, hello), (False, ack), (True, mv.publish("a", b"1"))])
    sessions.append([(True, mv.auth(0x18, auth)), (False, mv.auth(0x18, auth))])
    return sessions


@pytest.mark.parametrize("session", _secret_sessions())
def test_no_password_byte_in_any_field(session: list[tuple[bool, bytes]]) -> None:
    secret = SECRET.decode()
    variants: list[list[ProtocolEvent]] = [run(session), run(session, max_message_size=16)]
    trickle = MqttDecoder(FLOW)
    cut = MqttDecoder(FLOW)
    gapped = MqttDecoder(FLOW)
    out: list[ProtocolEvent] = []
    for by_client, pkt in session:
        for k in range(len(pkt)):
            out += trickle.feed(pkt[k : k + 1], by_client, 1.0)
    variants.append(out + trickle.close(2.0))
    first = session[0][1]
    variants.append(cut.feed(first[:-4], True, 1.0) + cut.close(2.0))  # ends inside the password
    gapped.feed(first[:-8], True, 1.0)
    gapped.gap(True, 1.5, 3)
    variants.append(gapped.feed(first[-5:] + session[-1][1], True, 2.0) + gapped.close(3.0))
    assert any(e.fields.get("password_sent") for e in variants[0]) or session[0][1][0] == 0xF0
    for events in variants:
        for e in events:
            text = json.dumps(e.fields, default=repr) + " ".join(_strings(e.fields))
            rows = json.dumps(log_rows({"op": e.op, "kind": e.kind, "ts": e.ts, **e.fields}), default=repr)
            for needle in (secret, SECRET.hex(), secret[2:9], SECRET.hex()[4:18]):
                assert needle not in text and needle not in rows, (e.op, needle)


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        if choice < 0.45 and buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif choice < 0.6 and buf:
            del buf[rng.randrange(len(buf)) :]
        elif choice < 0.75:
            pos = rng.randrange(len(buf) + 1)
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif len(buf) > 2:
            buf[1:2] = mv.varint(rng.choice((0, 1, 2, 127, 128, 300, 16383, 16384, 2**21, 2**28 - 1)))
    return bytes(buf)


def test_fuzz_never_raises() -> None:
    rng = random.Random(20260501)
    pool = [p for s in (mv.session_311(), mv.session_5(), *_secret_sessions()) for p in s]
    pool += [(True, b"\x30\xff\xff\xff\xff\x01"), (True, mv.packet(0, 0, b"xx")), (True, mv.publish("a", b"", 3, 1))]
    kinds: set[str] = set()
    flows = [FLOW, FlowId("Cfz", "10.3.0.5", 1883, "10.3.0.20", 50400, "tcp")]
    for round_ in range(6000):
        dec = MqttDecoder(rng.choice(flows), max_message_size=rng.choice((64, 1 << 20)),
                          payload_cap=rng.choice((0, 5, 100)))  # fmt: skip
        events: list[ProtocolEvent] = []
        for step in range(rng.randint(1, 8)):
            if round_ % 5 == 0:
                is_orig = rng.random() < 0.5
                data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
            else:
                picks = [rng.choice(pool) for _ in range(rng.randint(1, 4))]
                is_orig = picks[0][0]
                data = b"".join(_mutate(rng, p) if rng.random() < 0.5 else p for _, p in picks)
            if rng.random() < 0.1:
                events += dec.gap(is_orig, float(step), rng.randint(1, 300))
            if round_ % 50 == 0:
                chunks = [data[i : i + 1] for i in range(len(data))]
            else:
                cuts = sorted(rng.sample(range(len(data) + 1), min(2, len(data) + 1)))
                chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
            for chunk in chunks:
                events += dec.feed(chunk, is_orig, float(step))
        events += dec.close(99.0)
        for e in events:
            assert e.protocol == "mqtt" and e.kind in KINDS and isinstance(e.fields, dict)
            kinds.add(e.kind)
            log_rows({"op": e.op, "kind": e.kind, "ts": e.ts, **e.fields})
    assert kinds == KINDS
