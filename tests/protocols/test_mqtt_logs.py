"""Tests of Zeek's MQTT logs (protocols/mqtt_logs.py): unit rows, and the rows of decoded sessions through JsonlLogs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mqtt_vectors as mv
from test_mqtt import FLOW, run

from appliance.export.jsonl import JsonlLogs
from protocols.mqtt import MqttDecoder
from protocols.mqtt_logs import CONNECT_LOG, DETAIL_LOGS, PUBLISH_LOG, SUBSCRIBE_LOG, log_rows

BASE = {"ts": 7.0, "uid": "CmQ1", "id.orig_h": "10.3.0.20", "id.orig_p": 50400, "id.resp_h": "10.3.0.5",
        "id.resp_p": 1883, "src": "10.3.0.5", "dst": "10.3.0.20", "is_orig": False, "proto": "tcp"}
ID = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p"]
# Zeek's columns, in order (scripts/policy/protocols/mqtt/main.zeek ConnectInfo, PublishInfo, SubscribeInfo)
COLUMNS = {
    CONNECT_LOG: [*ID, "proto_name", "proto_version", "client_id", "connect_status", "will_topic", "will_payload"],
    PUBLISH_LOG: [*ID, "from_client", "retain", "qos", "status", "topic", "payload", "payload_len"],
    SUBSCRIBE_LOG: [*ID, "action", "topics", "qos_levels", "granted_qos_level", "ack"],
}
PUBLISH: dict[str, Any] = {"from_client": True, "qos": 1, "retain": False, "topic": "plant/cmd", "payload": "go",
                           "payload_len": 2}


def row(op: str, kind: str = "response", **fields: Any) -> dict[str, Any]:
    """An mqtt.jsonl row as the JSONL writer builds it."""
    return {**BASE, "op": op, "kind": kind, **fields}


def test_connack_gives_the_connect_row() -> None:
    r = row("connack", return_code=0, connect_status="Connection Accepted", matched=True, request_ts=6.5,
            proto_name="MQTT", proto_version="3.1.1", client_id="plc-7", will_topic="w", will_payload="bye",
            username="op", session_present=False)  # fmt: skip
    ((log, out),) = log_rows(r)
    assert log == CONNECT_LOG and list(out) == [*COLUMNS[CONNECT_LOG], "src", "dst", "username"]
    assert (out["src"], out["dst"], out["username"]) == ("10.3.0.20", "10.3.0.5", "op")  # the client, not the ack's
    assert (out["ts"], out["client_id"], out["connect_status"], out["will_payload"]) == (6.5, "plc-7",
                                                                                        "Connection Accepted", "bye")
    ((_, alone),) = log_rows(row("connack", return_code=5, connect_status="Refused: not authorized", matched=False))
    assert alone == {**{k: BASE[k] for k in ID}, "connect_status": "Refused: not authorized", "src": "10.3.0.20",
                     "dst": "10.3.0.5"}  # fmt: skip


def test_publish_rows_when_the_transaction_ends() -> None:
    ((log, out),) = log_rows(row("publish", "request", **{**PUBLISH, "qos": 0}, dup=False))
    assert log == PUBLISH_LOG and list(out) == [*COLUMNS[PUBLISH_LOG], "src", "dst"]
    assert (out["ts"], out["qos"], out["status"], out["src"]) == (7.0, "at most once", "ok", "10.3.0.5")
    assert log_rows(row("publish", "request", **PUBLISH, packet_id=3)) == []
    assert log_rows(row("publish", "request", **{**PUBLISH, "qos": 2}, packet_id=3)) == []
    ((_, out),) = log_rows(row("puback", packet_id=3, matched=True, request_ts=6.0, status="ok", **PUBLISH))
    assert list(out) == [*COLUMNS[PUBLISH_LOG], "src", "dst"] and out["src"] == "10.3.0.20"  # the PUBACK's dst
    assert (out["ts"], out["qos"], out["status"]) == (6.0, "at least once", "ok")
    done = row("pubcomp", packet_id=3, matched=True, request_ts=6.0, status="incomplete_qos", **{**PUBLISH, "qos": 2})
    assert log_rows(done)[0][1]["qos"] == "exactly once" and log_rows(done)[0][1]["status"] == "incomplete_qos"
    assert log_rows(row("puback", packet_id=3, matched=False)) == []
    assert log_rows(row("pubrec", packet_id=3, matched=True, request_ts=6.0, topic="x")) == []
    ((_, out),) = log_rows(row("publish", "notice", **PUBLISH, packet_id=3, request_ts=5.0, status="incomplete_qos"))
    assert (out["ts"], out["status"]) == (5.0, "incomplete_qos")
    ((_, out),) = log_rows(row("publish", "request", **{**PUBLISH, "qos": 3}))
    assert (out["qos"], out["status"]) == ("unknown-qos-level-3", "incomplete_qos")
    ((_, out),) = log_rows(row("publish", "request", from_client=True, qos=0, retain=True, dup=False))
    assert out == {**{k: BASE[k] for k in ID}, "from_client": True, "retain": True, "qos": "at most once",
                   "status": "ok", "src": "10.3.0.5", "dst": "10.3.0.20"}  # malformed, no topic  # fmt: skip


def test_subscribe_rows() -> None:
    sub: dict[str, Any] = {"topics": ["a/#", "b"], "qos_levels": [1, 2]}
    ((log, out),) = log_rows(row("suback", packet_id=4, granted_qos=[1, 0x80], matched=True, request_ts=6.0, **sub))
    assert log == SUBSCRIBE_LOG and list(out) == [*COLUMNS[SUBSCRIBE_LOG], "src", "dst"]
    assert (out["ts"], out["action"], out["granted_qos_level"], out["ack"]) == (6.0, "MQTT::SUBSCRIBE", 1, True)
    ((_, out),) = log_rows(row("unsuback", packet_id=5, matched=True, request_ts=6.2, topics=["a/#"]))
    assert out == {**{k: BASE[k] for k in ID}, "ts": 6.2, "action": "MQTT::UNSUBSCRIBE", "topics": ["a/#"],
                   "ack": True, "src": "10.3.0.20", "dst": "10.3.0.5"}  # fmt: skip
    ((_, out),) = log_rows(row("subscribe", "notice", packet_id=4, request_ts=3.0, ack=False, **sub))
    assert (out["ts"], out["ack"], "granted_qos_level" in out) == (3.0, False, False)
    assert log_rows(row("suback", packet_id=9, granted_qos=[0], matched=False)) == []
    assert log_rows(row("subscribe", "request", packet_id=4, **sub)) == []


def test_no_row_for_other_messages() -> None:
    for op in ("connect", "pingreq", "pingresp", "disconnect", "auth", "unsubscribe", "pubrel"):
        assert log_rows(row(op, "request")) == [], op
    assert log_rows({**BASE, "name": "mqtt_missing_connect", "op": "mqtt_missing_connect", "kind": "weird"}) == []
    assert DETAIL_LOGS == (CONNECT_LOG, PUBLISH_LOG, SUBSCRIBE_LOG)


def read(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSONL file (none if it is missing)."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_sessions_through_the_jsonl_writer(tmp_path: Path) -> None:
    logs = JsonlLogs(tmp_path, truncate=True, detail_logs={"mqtt": MqttDecoder.log_rows})
    session = [*mv.session_311(), (True, mv.publish("plant/x", b"late", qos=1, pid=99)),
               (True, mv.subscribe(98, [("late/#", 0)]))]  # fmt: skip
    for ev in run(session):
        logs.write_event(ev)
    logs.close()
    connect = read(tmp_path / "mqtt_connect.jsonl")
    assert connect == [{"ts": 1.0, "uid": FLOW.uid, "id.orig_h": FLOW.orig_h, "id.orig_p": FLOW.orig_p,
                        "id.resp_h": FLOW.resp_h, "id.resp_p": FLOW.resp_p, "proto_name": "MQTT",
                        "proto_version": "3.1.1", "client_id": "sensor-1", "connect_status": "Connection Accepted",
                        "will_topic": "plant/status", "will_payload": "offline", "src": FLOW.orig_h,
                        "dst": FLOW.resp_h, "username": "op"}]  # fmt: skip
    publish = read(tmp_path / "mqtt_publish.jsonl")
    assert [(r["ts"], r["topic"], r["qos"], r["status"], r["from_client"]) for r in publish] == [
        (3.0, "plant/line1/temp", "at most once", "ok", True),
        (4.0, "plant/line1/cmd", "at least once", "ok", True),
        (6.0, "plant/line1/cmd", "exactly once", "ok", True),
        (14.0, "plant/line2/temp", "at least once", "ok", False),
        (19.0, "plant/x", "at least once", "incomplete_qos", True),
    ]
    assert all(list(r) == [*COLUMNS[PUBLISH_LOG], "src", "dst"] for r in publish)
    assert [r["src"] for r in publish] == [FLOW.orig_h] * 3 + [FLOW.resp_h, FLOW.orig_h]  # the broker sent 14.0
    subscribe = read(tmp_path / "mqtt_subscribe.jsonl")
    assert [(r["ts"], r["action"], r["topics"], r.get("qos_levels"), r.get("granted_qos_level"), r["ack"])
            for r in subscribe] == [
        (10.0, "MQTT::SUBSCRIBE", ["plant/+/temp", "plant/#"], [1, 2], 1, True),
        (12.0, "MQTT::UNSUBSCRIBE", ["plant/#"], None, None, True),
        (20.0, "MQTT::SUBSCRIBE", ["late/#"], [0], None, False),
    ]  # fmt: skip
    main = read(tmp_path / "mqtt.jsonl")
    assert len(main) == len(session) + 2 and {r["kind"] for r in main} >= {"request", "response", "notice"}
    for path in tmp_path.iterdir():
        assert b"s3cr3t" not in path.read_bytes(), path.name
