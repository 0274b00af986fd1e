"""The broker session's view (appliance/broker_view.py): what a session sees, turned into mqtt_broker events."""

from __future__ import annotations

import json
import random

from appliance.broker_payload import ClientTable, json_object, payload_type
from appliance.broker_view import HOLD_SECONDS, MAX_HELD, BrokerView
from appliance.model import ProtocolEvent
from protocols.base import FlowId
from protocols.mqtt import MqttDecoder

LOG = "$SYS/broker/log/N"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256))


def _view() -> BrokerView:
    view = BrokerView("broker.site:1883", "3.1.1")
    view.session_up(100.0, "10.0.0.1", "connected")
    return view


def _connect(view: BrokerView, client_id: str, ip: str, user: str = "") -> list[ProtocolEvent]:
    u = f", u'{user}'" if user else ""
    line = f"1700000000: New client connected from {ip}:40000 as {client_id} (p2, c1, k60{u})."
    return view.message(101.0, LOG, line.encode(), 0, False)


def _seen(
    view: BrokerView, ts: float, topic: str, payload: bytes, qos: int = 0, retain: bool = False
) -> list[ProtocolEvent]:
    """The events of one message, held ones included (their hold is over)."""
    return view.message(ts, topic, payload, qos, retain) + view.release(ts + HOLD_SECONDS)


def test_session_events() -> None:
    view = BrokerView("broker.site:1883", "5")
    up = view.session_up(100.0, "10.0.0.1", "connected")
    assert (up.protocol, up.op, up.kind, up.flow, up.is_orig, up.src, up.dst) == (
        "mqtt_broker", "session_up", "notice", None, True, "", "10.0.0.1"
    )  # fmt: skip
    assert up.fields == {"broker": "broker.site:1883", "reason": "connected", "protocol": "5"}
    down = view.session_down(105.0, "connection lost")
    assert [e.op for e in down] == ["session_down"]
    assert down[0].fields["reason"] == "connection lost" and down[0].ts == 105.0


def test_client_connected_and_disconnected() -> None:
    view = _view()
    [ev] = _connect(view, "cam-01", "10.0.0.11", "alice")
    assert (ev.op, ev.src, ev.dst, ev.ts) == ("client_connected", "10.0.0.11", "10.0.0.1", 101.0)
    assert ev.fields == {
        "client_id": "cam-01", "username": "alice", "client_port": 40000, "proto_level": 4, "keep_alive": 60,
        "clean_session": True,
    }  # fmt: skip
    [ev] = view.message(102.0, LOG, b"1700000001: Client cam-01 has exceeded timeout, disconnecting.", 0, False)
    assert (ev.op, ev.src, ev.fields) == (
        "client_disconnected", "10.0.0.11", {"client_id": "cam-01", "reason": "has exceeded timeout"}
    )  # fmt: skip
    [ev] = view.message(102.0, LOG, b"1700000001: Client stranger disconnected.", 0, False)
    assert ev.src == ""  # a client this session never saw connect


def test_subscriptions_from_the_subscribe_log() -> None:
    view = _view()
    _connect(view, "nvr", "10.0.0.50")
    [ev] = view.message(103.0, "$SYS/broker/log/M/subscribe", b"1700000002: nvr 1 cams/+/snapshot", 0, False)
    assert (ev.op, ev.src, ev.fields) == (
        "client_subscribed",
        "10.0.0.50",
        {"client_id": "nvr", "topic": "cams/+/snapshot", "qos": 1},
    )


def test_the_sessions_own_subscriptions_are_not_news() -> None:
    view = BrokerView("b:1883", "3.1.1", own_client_id="otwatch-edge")
    assert view.message(1.0, "$SYS/broker/log/M/subscribe", b"1: otwatch-edge 2 $SYS/#", 0, False) == []
    assert len(view.message(1.0, "$SYS/broker/log/M/subscribe", b"1: nvr 2 #", 0, False)) == 1


def test_publish_attributed_by_topic_level() -> None:
    view = _view()
    _connect(view, "cam-01", "10.0.0.11")
    [ev] = view.message(104.0, "cams/cam-01/snapshot", JPEG, 1, False)
    assert ev.op == "publish" and ev.src == "10.0.0.11"
    assert ev.fields == {
        "topic": "cams/cam-01/snapshot", "qos": 1, "retain": False, "payload_len": len(JPEG),
        "payload": JPEG[:100].decode("utf-8", "backslashreplace"), "payload_type": "jpeg", "client_id": "cam-01",
    }  # fmt: skip


def test_publish_attributed_by_json_keys() -> None:
    view = _view()
    _connect(view, "cam-01", "10.0.0.11")
    _connect(view, "meter-7", "10.0.0.12")
    for key, value, who in [
        ("client_id", "cam-01", ("cam-01", "10.0.0.11")),
        ("clientid", "meter-7", ("meter-7", "10.0.0.12")),
        ("device_id", "cam-01", ("cam-01", "10.0.0.11")),
        ("ip", "10.0.0.12", ("meter-7", "10.0.0.12")),
    ]:
        payload = json.dumps({"temp": 21.5, key: value}).encode()
        [ev] = view.message(105.0, "site/telemetry", payload, 0, False)
        assert (ev.fields.get("client_id"), ev.src) == who, key
        assert ev.fields["payload_type"] == "json"


def test_unattributable_publishes_have_no_source() -> None:
    view = _view()
    _connect(view, "cam-01", "10.0.0.11")
    for topic, payload in [
        ("site/telemetry", b'{"device_id": "cam-99"}'),  # a client the log never introduced
        ("site/telemetry", b'{"ip": "10.9.9.9"}'),  # an address that is no known client's
        ("site/telemetry", b'["cam-01"]'),  # not an object
        ("site/cam-01x/status", b"online"),  # no level is exactly a client id
    ]:
        assert view.message(106.0, topic, payload, 0, False) == []  # held: its publisher may be introduced yet
        assert view.release(106.0 + HOLD_SECONDS - 0.01) == []
        [ev] = view.release(106.0 + HOLD_SECONDS)
        assert ev.ts == 106.0 and ev.src == "" and "client_id" not in ev.fields, (topic, payload)


def test_retained_state_delivered_on_subscribe_is_marked() -> None:
    view = _view()
    [ev] = _seen(view, 107.0, "site/gw-00/config", b'{"fw": "1.2"}', 1, True)
    assert ev.fields["retain"] is True and ev.fields["qos"] == 1 and ev.src == ""


def test_a_publish_that_overtook_its_publishers_connect_line_is_attributed_when_the_line_comes() -> None:
    view = _view()
    assert view.message(110.0, "site/telemetry", b'{"device_id": "cam-05", "t": 1}', 1, False) == []
    assert view.message(110.1, "cams/cam-05/snapshot", JPEG, 1, False) == []
    assert view.message(110.2, "site/other", b"x", 0, False) == []
    connected, telemetry, snapshot = _connect(view, "cam-05", "10.0.0.15")
    assert connected.op == "client_connected"
    assert [(e.op, e.ts, e.src, e.fields["client_id"]) for e in (telemetry, snapshot)] == [
        ("publish", 110.0, "10.0.0.15", "cam-05"), ("publish", 110.1, "10.0.0.15", "cam-05")
    ]  # fmt: skip
    [other] = view.session_down(110.5, "stopped")[:1]  # the session's end lets every held publish go
    assert (other.fields["topic"], other.src) == ("site/other", "")


def test_held_publishes_are_bounded() -> None:
    view = _view()
    for i in range(MAX_HELD):
        assert view.message(float(i), f"t/{i}", b"x", 0, False) == []
    [oldest] = view.message(1e6, "t/last", b"x", 0, False)
    assert (oldest.fields["topic"], oldest.ts) == ("t/0", 0.0) and len(view.held) == MAX_HELD


def test_sys_counters_wait_for_flush_and_give_broker_info() -> None:
    view = _view()
    assert view.message(108.0, "$SYS/broker/version", b"mosquitto version 2.0.11", 0, True) == []
    assert view.message(108.0, "$SYS/broker/clients/connected", b"4", 0, True) == []
    assert view.message(108.0, "$SYS/broker/heap/current", b"5000", 0, True) == []  # neither kept nor published
    [ev] = view.flush(109.0)
    assert (ev.op, ev.src, ev.dst) == ("broker_info", "10.0.0.1", "10.0.0.1")
    assert ev.fields == {"version": "mosquitto version 2.0.11", "clients_connected": 4}
    assert view.flush(110.0) == []
    view.message(111.0, "$SYS/broker/clients/connected", b"5", 0, False)
    [down, *rest] = view.session_down(112.0, "stopped")  # what is pending goes out before the session ends
    assert (down.op, down.fields["clients_connected"]) == ("broker_info", 5)
    assert [e.op for e in rest] == ["session_down"]


def test_payload_reads_as_the_wire_decoder_reads_it() -> None:
    """The same PUBLISH decoded from the wire and seen through the broker: same preview and payload type."""
    for payload in [JPEG, b'{"temp": 21.5}', "caf\u00e9 ".encode() * 40, b"\x00\x01binary", b""]:
        topic = b"cams/cam-01/snapshot"
        body = len(topic).to_bytes(2, "big") + topic + payload
        connect = bytes.fromhex("101000044d5154540402003c000463616d31")
        packet = bytes([0x30, len(body)]) if len(body) < 128 else bytes([0x30, len(body) & 0x7F | 0x80, len(body) >> 7])
        decoder = MqttDecoder(FlowId("C1", "10.0.0.11", 40000, "10.0.0.1", 1883, "tcp"))
        wire = [e for e in decoder.feed(connect + packet + body, True, 1.0) if e.op == "publish"]
        [seen] = _seen(_view(), 1.0, topic.decode(), payload)
        assert wire[0].fields["payload"] == seen.fields["payload"], payload
        assert wire[0].fields["payload_type"] == seen.fields["payload_type"], payload
        assert wire[0].fields["payload_len"] == seen.fields["payload_len"]


def test_payload_types() -> None:
    assert payload_type(b"") == "empty"
    assert payload_type(JPEG) == "jpeg"
    assert payload_type(b"\x89PNG\r\n\x1a\n\x00\x00") == "png"
    assert payload_type(b"GIF89a\x01\x00") == "gif"
    assert payload_type(b'  {"a": 1}') == "json"
    assert payload_type(b"online") == "text"
    assert payload_type(b"\x00\x01\x02") == "binary"


def test_json_objects_are_parsed_only_when_small_and_objects() -> None:
    assert json_object(b'{"a": 1}') == {"a": 1}
    assert json_object(b"[1, 2]") is None
    assert json_object(b"{broken") is None
    assert json_object(b'{"a": "' + b"x" * 70000 + b'"}') is None
    assert json_object(b"[" * 100000) is None  # deep nesting: no RecursionError out of the parser


def test_client_table_is_bounded() -> None:
    table = ClientTable(limit=3)
    for i in range(5):
        table.add(f"c{i}", f"10.0.0.{i}")
    assert len(table) == 3 and table.ip_of("c0") is None and table.ip_of("c4") == "10.0.0.4"
    assert table.attribute("x", {"ip": "10.0.0.1"}) is None  # forgotten with its client
    assert table.attribute("x", {"ip": "10.0.0.3"}) == ("c3", "10.0.0.3")


def test_random_messages_never_raise() -> None:
    rng = random.Random(11)
    view = _view()
    _connect(view, "cam-01", "10.0.0.11")
    topics = ["$SYS/broker/log/N", "$SYS/broker/log/M/subscribe", "$SYS/broker/clients/connected", "a/cam-01", "#"]
    for _ in range(2000):
        payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40)))
        if rng.random() < 0.3:
            payload = b'{"client_id": ' + payload
        for ev in view.message(1.0, rng.choice(topics), payload, rng.randint(0, 2), rng.random() < 0.5):
            assert ev.protocol == "mqtt_broker"
    view.flush(2.0)
    view.release(10.0)
    assert not view.held
