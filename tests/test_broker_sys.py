"""mosquitto's $SYS log lines and counters, read without a broker (appliance/broker_sys.py).

The lines are mosquitto's own formats (src/handle_connect.c and src/loop.c of 1.x and 2.0), with the prefixes
`log_timestamp` and `log_timestamp_format` put before them.
"""

from __future__ import annotations

import random

import pytest

from appliance.broker_sys import (
    ClientConnected,
    ClientDisconnected,
    ClientSubscribed,
    SysState,
    parse_log,
    split_address,
)

N = "$SYS/broker/log/N"
SUB = "$SYS/broker/log/M/subscribe"


def test_mosquitto_2_connect_line_with_username() -> None:
    line = "1700000000: New client connected from 127.0.0.1:43210 as cam-01 (p2, c1, k60, u'alice')."
    assert parse_log(N, line) == ClientConnected(
        client_id="cam-01", ip="127.0.0.1", port=43210, proto_level=4, clean_session=True, keep_alive=60,
        username="alice",
    )  # fmt: skip


def test_mosquitto_2_connect_line_without_username_mqtt5_persistent_session() -> None:
    rec = parse_log(N, "1700000000: New client connected from 10.1.2.3:5000 as sensor 7 (p5, c0, k15).")
    assert rec == ClientConnected("sensor 7", "10.1.2.3", 5000, 5, False, 15, None)


def test_older_connect_line_has_no_port_and_no_protocol() -> None:
    rec = parse_log(N, "1616120273: New client connected from 24.114.80.91 as Rutherford1616 (c1, k60, u'patb').")
    assert rec == ClientConnected("Rutherford1616", "24.114.80.91", None, None, True, 60, "patb")
    rec = parse_log(N, "New client connected from 72.53.209.21 as mosq-kwcm (c1, k60).")
    assert rec == ClientConnected("mosq-kwcm", "72.53.209.21", None, None, True, 60, None)


def test_mqtt31_and_bridges() -> None:
    rec = parse_log(N, "1: New client connected from 10.0.0.9:1000 as old (p1, c1, k10).")
    assert isinstance(rec, ClientConnected) and rec.proto_level == 3 and not rec.bridge
    rec = parse_log(N, "1: New bridge connected from 10.0.0.2:4000 as site-b.bridge (p2, c0, k60, u'b').")
    assert isinstance(rec, ClientConnected) and rec.bridge and rec.client_id == "site-b.bridge"


def test_ipv6_addresses() -> None:
    rec = parse_log(N, "1: New client connected from ::1:43210 as v6 (p2, c1, k60).")
    assert isinstance(rec, ClientConnected) and (rec.ip, rec.port) == ("::1", 43210)
    rec = parse_log(N, "1: New client connected from fe80::1 as v6old (c1, k60).")
    assert isinstance(rec, ClientConnected) and (rec.ip, rec.port) == ("fe80::1", None)


def test_odd_client_ids_and_usernames() -> None:
    rec = parse_log(N, "1: New client connected from 10.0.0.1:1 as a (b) c (p2, c1, k60, u'o'reilly')').")
    assert isinstance(rec, ClientConnected)
    assert (rec.client_id, rec.username) == ("a (b) c", "o'reilly')")


@pytest.mark.parametrize(
    "prefix", ["", "1700000000: ", "2024-05-01T10:00:00: ", "2024-05-01 10:00:00: ", "01/05/2024 10:00:00.123: "]
)
def test_timestamp_prefixes_are_skipped(prefix: str) -> None:
    rec = parse_log(N, prefix + "New client connected from 10.0.0.1:1883 as cam-09 (p2, c1, k60).")
    assert isinstance(rec, ClientConnected) and rec.client_id == "cam-09"
    assert parse_log(N, prefix + "Client cam-09 disconnected.") == ClientDisconnected("cam-09", "disconnected")
    assert parse_log(SUB, prefix + "cam-09 1 cams/+/cmd") == ClientSubscribed("cam-09", "cams/+/cmd", 1)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("Client cam-01 disconnected.", "disconnected"),
        ("Client cam-01 closed its connection.", "closed its connection"),
        ("Client cam-01 has exceeded timeout, disconnecting.", "has exceeded timeout"),
        ("Client cam-01 disconnected, not authorised.", "disconnected, not authorised"),
        ("Client cam-01 disconnected due to protocol error.", "disconnected due to protocol error"),
        ("Client cam-01 disconnected: Connection reset by peer.", "disconnected: Connection reset by peer"),
        ("Client cam-01 been disconnected by administrative action.", "been disconnected by administrative action"),
        ("Client cam-01 already connected, closing old connection.", "already connected, closing old connection"),
        ("Socket error on client cam-01, disconnecting.", "socket error"),
    ],
)
def test_disconnect_lines(line: str, reason: str) -> None:
    assert parse_log(N, "1700000000: " + line) == ClientDisconnected("cam-01", reason)


def test_client_ids_with_spaces_in_disconnect_lines() -> None:
    assert parse_log(N, "Client my cam disconnected.") == ClientDisconnected("my cam", "disconnected")


def test_unknown_clients_and_other_lines_are_not_events() -> None:
    for line in [
        "1: Client <unknown> disconnected, not authorised.",
        "1: Socket error on client <unknown>, disconnecting.",
        "1: New connection from 127.0.0.1:43001 on port 1883.",
        "1: mosquitto version 2.0.11 running",
        "1: Opening ipv4 listen socket on port 1883.",
        "1: Client cam-01 sent something unexpected",
        "1: New client connected from 127.0.0.1:1 as x (garbled",
        "",
    ]:
        assert parse_log(N, line) is None, line
    assert parse_log(SUB, "1: <unknown> 0 #") is None
    assert parse_log(SUB, "1: nonsense") is None


def test_split_address() -> None:
    assert split_address("127.0.0.1:43210") == ("127.0.0.1", 43210)
    assert split_address("127.0.0.1") == ("127.0.0.1", None)
    assert split_address("::1:443") == ("::1", 443)
    assert split_address("fe80::1") == ("fe80::1", None)
    assert split_address("host:99999") == ("host:99999", None)


def test_random_lines_never_raise() -> None:
    rng = random.Random(4)
    pieces = ["New client connected from ", "Client ", " as ", "(p2, c1, k60", ", u'", "')", ".", ":", " ", "1", "x"]
    for _ in range(3000):
        line = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        for topic in (N, SUB):
            parse_log(topic, line)
    for _ in range(500):
        parse_log(N, bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 80))).decode("latin-1"))


MOSQUITTO_BURST = {
    "$SYS/broker/version": "mosquitto version 2.0.11",
    "$SYS/broker/uptime": "0 seconds",
    "$SYS/broker/clients/total": "0",
    "$SYS/broker/clients/connected": "0",
    "$SYS/broker/load/messages/received/1min": "0.00",
    "$SYS/broker/messages/received": "0",
    "$SYS/broker/subscriptions/count": "0",
    "$SYS/broker/retained messages/count": "40",
    "$SYS/broker/heap/current": "33192",
}


def test_sys_state_snapshot_after_the_first_burst() -> None:
    state = SysState()
    for topic, value in MOSQUITTO_BURST.items():
        state.update(topic, value)
    assert state.due()
    assert state.take() == {
        "version": "mosquitto version 2.0.11", "clients_connected": 0, "clients_total": 0, "subscriptions": 0,
        "retained_messages": 40, "uptime_seconds": 0, "messages_received": 0,
    }  # fmt: skip
    assert state.take() is None and not state.dirty


def test_traffic_counters_alone_are_not_news() -> None:
    state = SysState()
    for topic, value in MOSQUITTO_BURST.items():
        state.update(topic, value)
    state.take()
    assert state.update("$SYS/broker/uptime", "1 seconds")
    assert state.update("$SYS/broker/messages/received", "120")
    assert not state.update("$SYS/broker/load/bytes/sent/1min", "9.00")  # not kept
    assert state.dirty and not state.due()
    assert state.take() is None
    assert state.update("$SYS/broker/clients/connected", "3")
    snap = state.take()
    assert snap is not None and snap["clients_connected"] == 3 and snap["messages_received"] == 120


def test_same_values_after_a_reconnection_are_not_news_but_a_change_is() -> None:
    state = SysState()
    for topic, value in MOSQUITTO_BURST.items():
        state.update(topic, value)
    state.take()
    state.reset()
    for topic, value in MOSQUITTO_BURST.items():
        state.update(topic, value)
    assert state.take() is None
    state.reset()
    state.update("$SYS/broker/version", "mosquitto version 2.0.18")
    snap = state.take()
    assert snap == {"version": "mosquitto version 2.0.18"}


def test_unparsable_counter_values_are_ignored() -> None:
    state = SysState()
    assert not state.update("$SYS/broker/clients/connected", "lots")
    assert not state.update("$SYS/broker/version", "  ")
    assert not state.dirty and state.take() is None
