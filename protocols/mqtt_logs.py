"""Zeek's MQTT logs from mqtt.jsonl rows: mqtt_connect, mqtt_publish and mqtt_subscribe.

`log_rows(row)` takes one row of mqtt.jsonl (an event row as the JSONL writer builds it: `ts uid id.orig_h
id.orig_p id.resp_h id.resp_p src dst is_orig proto op kind` and the event's fields) and returns the rows Zeek's
scripts/policy/protocols/mqtt/main.zeek would write for it, with Zeek's columns in Zeek's order; unset columns
are left out, as Zeek's JSON writer does. Zeek writes a row when a transaction ends; the decoder carries what the
row needs into the event that ends it, so each row comes from one event:

- mqtt_connect (`ts uid id proto_name proto_version client_id connect_status will_topic will_payload`): one row
  per CONNACK, with the columns of the CONNECT it answers; ts is the CONNECT's time (the CONNACK's without one).
- mqtt_publish (`ts uid id from_client retain qos status topic payload payload_len`): a QoS 0 PUBLISH at once
  (status `ok`); a QoS 1 PUBLISH from its PUBACK and a QoS 2 one from its PUBCOMP (status `ok` when every step was
  seen, else `incomplete_qos`); a PUBLISH never answered from its close-time notice (`incomplete_qos`). ts is the
  PUBLISH's time; qos is Zeek's text (`at most once`, `at least once`, `exactly once`, `unknown-qos-level-N`).
- mqtt_subscribe (`ts uid id action topics qos_levels granted_qos_level ack`): a SUBACK or UNSUBACK paired with its
  request (action `MQTT::SUBSCRIBE` or `MQTT::UNSUBSCRIBE`, ack true; granted_qos_level is the first SUBACK code, as
  Zeek reads only one), and a request never answered from its close-time notice (ack false). ts is the request's.

What differs from Zeek, on purpose or of necessity: Zeek logs a transaction still open 5 s after it was last
written (its table expiry), we at its end or at the close of the flow; Zeek's from_client is the originator, ours
the MQTT client; Zeek's payload is the raw bytes, ours UTF-8 text with `\\xNN` for other bytes (its JSON writer
escapes them the same way); a 5.0 connect_status is the reason name (Zeek reads CONNACKs as 3.1.1 and would print
`unknown-return-code-N`); a QoS 3 PUBLISH gives its row at once with `incomplete_qos` (Zeek at expiry), and so
does a QoS 2 PUBLISH ended by a PUBACK; SUBACKs and UNSUBACKs without a request give no row, as in Zeek.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

import orjson

from protocols.base import ProtocolEvent
from protocols.mqtt_names import qos_text

__all__ = ["CONNECT_LOG", "DETAIL_LOGS", "PUBLISH_LOG", "SUBSCRIBE_LOG", "log_lines", "log_rows"]

Row = dict[str, Any]
Rows = list[tuple[str, Row]]

CONNECT_LOG = "mqtt_connect"
PUBLISH_LOG = "mqtt_publish"
SUBSCRIBE_LOG = "mqtt_subscribe"
DETAIL_LOGS = (CONNECT_LOG, PUBLISH_LOG, SUBSCRIBE_LOG)
_ID = ("uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p")
_PUBLISH = ("from_client", "retain", "qos", "status", "topic", "payload", "payload_len")
_CONNECT = ("proto_name", "proto_version", "client_id", "connect_status", "will_topic", "will_payload")
_PUBLISH_VALUES = itemgetter(*_ID, "from_client", "retain", "qos", "topic", "payload", "payload_len")
_QOS = {0: "at most once", 1: "at least once", 2: "exactly once"}


def _head(row: Row, ts_key: str) -> Row:
    """Zeek's leading columns: ts (the request's time when the row has one) and the connection id."""
    ts = row.get(ts_key)
    out: Row = {"ts": row.get("ts") if ts is None else ts}
    for key in _ID:
        value = row.get(key)
        if value is not None:
            out[key] = value
    return out


def _publish(row: Row, ts: Any, status: str) -> Rows:
    """The mqtt_publish row: from the row's values in one step when all are there, else column by column."""
    try:
        uid, orig_h, orig_p, resp_h, resp_p, from_client, retain, qos, topic, payload, size = _PUBLISH_VALUES(row)
        qos_name = _QOS[qos]
    except (KeyError, TypeError):
        out = _head(row, "request_ts")
        for key in _PUBLISH:
            value = status if key == "status" else row.get(key)
            if key == "qos" and type(value) is int:
                value = qos_text(value)
            if value is not None:
                out[key] = value
        return [(PUBLISH_LOG, out)]
    return [(PUBLISH_LOG, {
        "ts": ts, "uid": uid, "id.orig_h": orig_h, "id.orig_p": orig_p, "id.resp_h": resp_h, "id.resp_p": resp_p,
        "from_client": from_client, "retain": retain, "qos": qos_name, "status": status, "topic": topic,
        "payload": payload, "payload_len": size,
    })]  # fmt: skip


def _subscribe(row: Row, op: str, ack: bool) -> Rows:
    out = _head(row, "request_ts")
    out["action"] = "MQTT::SUBSCRIBE" if op[0] == "s" else "MQTT::UNSUBSCRIBE"
    topics = row.get("topics")
    if topics is not None:
        out["topics"] = topics
    levels = row.get("qos_levels")
    if levels is not None:
        out["qos_levels"] = levels
    granted = row.get("granted_qos")
    if isinstance(granted, list) and granted:
        out["granted_qos_level"] = granted[0]
    out["ack"] = ack
    return [(SUBSCRIBE_LOG, out)]


_SENT_BY_SUBJECT = frozenset({"publish", "subscribe", "unsubscribe"})  # else an answer: its dst sent the request
_V5_DETAILS = ("reason_code", "reason")


def _extras(rows: Rows, row: Row) -> Rows:
    """After Zeek's columns: the true src/dst of the message the row is about (the CONNECT's, PUBLISH's or
    SUBSCRIBE's sender first), the username of a connect row, and the v5 details of the message that ended the
    transaction (reason code, `properties.*`)."""
    if not rows:
        return rows
    src, dst = row.get("src"), row.get("dst")
    if row.get("op") not in _SENT_BY_SUBJECT:
        src, dst = dst, src
    for log, out in rows:
        if src is not None:
            out["src"] = src
        if dst is not None:
            out["dst"] = dst
        if log == CONNECT_LOG and row.get("username") is not None:
            out["username"] = row["username"]
        if row.get("proto_version") == "5.0" or any(k.startswith("properties.") for k in row):
            for key in _V5_DETAILS:
                if row.get(key) is not None:
                    out[key] = row[key]
            for key, value in row.items():
                if key.startswith("properties."):
                    out[key] = value
    return rows


def log_rows(row: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Zeek's MQTT rows (log name, row) for one mqtt.jsonl row, then the true src/dst and v5 details; [] when Zeek
    writes none for it."""
    return _extras(_zeek_rows(row), row)


def _zeek_rows(row: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Zeek's columns only."""
    op = row.get("op")
    if op == "publish":
        if row.get("kind") == "notice":
            return _publish(row, row.get("request_ts", row.get("ts")), row.get("status") or "incomplete_qos")
        qos = row.get("qos")
        if qos == 1 or qos == 2:
            return []  # written when its transaction ends
        return _publish(row, row.get("ts"), "ok" if qos == 0 else "incomplete_qos")
    if op == "puback" or op == "pubcomp":
        status = row.get("status")
        if status is None:
            return []
        return _publish(row, row.get("request_ts", row.get("ts")), status)
    if op == "connack":
        if row.get("kind") == "weird":
            return []
        out = _head(row, "request_ts")
        for key in _CONNECT:
            value = row.get(key)
            if value is not None:
                out[key] = value
        return [(CONNECT_LOG, out)]
    if op == "suback" or op == "unsuback":
        return _subscribe(row, op, True) if row.get("matched") is True else []
    if (op == "subscribe" or op == "unsubscribe") and row.get("kind") == "notice":
        return _subscribe(row, op, False)
    return []


_NO_ROWS = frozenset({"connect", "pingreq", "pingresp", "disconnect", "auth", "pubrel", "pubrec"})


def log_lines(ev: ProtocolEvent) -> list[tuple[str, bytes, int]] | None:
    """The JSONL writer's fast path: the encoded detail lines of the everyday events (none for most packets, one
    mqtt_publish line for a QoS 0 PUBLISH or for the PUBACK/PUBCOMP that ends a QoS 1/2 one), exactly what
    encoding `log_rows` of the event's row gives; None to leave the event to `log_rows`."""
    op = ev.op
    if op in _NO_ROWS:
        return []
    f = ev.fields
    if op == "subscribe" or op == "unsubscribe":
        return [] if ev.kind != "notice" else None
    qos = f.get("qos")
    status: Any
    if op == "publish" and ev.kind != "notice":
        if qos == 1 or qos == 2:
            return []  # written when its transaction ends
        if qos != 0:
            return None
        ts, status, src, dst = ev.ts, "ok", ev.src, ev.dst
    elif op == "puback" or op == "pubcomp":  # the end of a QoS 1 or 2 transaction: the PUBLISH's row
        status = f.get("status")
        if status is None:
            return []
        rts = f.get("request_ts")
        ts, src, dst = (ev.ts if rts is None else rts), ev.dst, ev.src  # the acknowledger's peer published
    else:
        return None
    flow = ev.flow
    qos_name = _QOS.get(qos) if type(qos) is int else None
    if qos_name is None or flow is None or "properties" in f or "proto_version" in f:
        return None
    from_client, retain, topic, payload, size = (
        f.get("from_client"), f.get("retain"), f.get("topic"), f.get("payload"), f.get("payload_len"),
    )  # fmt: skip
    if from_client is None or retain is None or topic is None or payload is None or size is None:
        return None
    row = {
        "ts": ts, "uid": flow.uid, "id.orig_h": flow.orig_h, "id.orig_p": flow.orig_p, "id.resp_h": flow.resp_h,
        "id.resp_p": flow.resp_p, "from_client": from_client, "retain": retain, "qos": qos_name,
        "status": status, "topic": topic, "payload": payload, "payload_len": size, "src": src, "dst": dst,
    }  # fmt: skip
    try:
        return [(PUBLISH_LOG, orjson.dumps(row) + b"\n", 1)]
    except TypeError:  # orjson.JSONEncodeError: an odd value; the general path renders it
        return None
