"""Suricata's MQTT rule keywords re-expressed on our mqtt.jsonl rows, for the golden tests of test_mqtt_suricata.py.

A suricata-verify test's rules (tests/traces/suricata/mqtt/<test>/test.rules) are read option by option and evaluated
on one Suricata transaction (Tx: our rows of one CONNECT/CONNACK, PUBLISH and its acknowledgements, ...) as
rust/src/mqtt/detect.rs evaluates them:
- `mqtt.type:T` any packet of type T; `mqtt.type:T,i` (Suricata 9) the i-th packet of the transaction is of type T;
- `mqtt.reason_code:N` the first code of an acknowledgement, AUTH, CONNACK (return code) or DISCONNECT that has one
  is N, or any SUBACK/UNSUBACK code is N;
- `mqtt.qos:N` any packet's header QoS is N (1 for PUBREL, SUBSCRIBE, UNSUBSCRIBE, 0 for other non-PUBLISH packets);
- `mqtt.flags:[!]retain,[!]dup` any packet with those header bits; `mqtt.connect.flags:a,b` a CONNECT with them;
- `mqtt.protocol_version:N` the connection's protocol level;
- sticky buffers (`mqtt.connect.username`, `.protocol_string`, `.password`, `mqtt.publish.topic`, `.message`,
  `mqtt.subscribe.topic`, `mqtt.unsubscribe.topic`) followed by `content` (with `startswith`): the content is in one
  of the buffer's values. The PUBLISH message buffer is our payload preview (its first 100 bytes, `\\xNN` escapes read
  back as bytes); the CONNECT password is never read by our decoder, so a password content holds when one was sent.
Rules on Suricata frames (`frame:`) read raw bytes no log of ours holds: they are recognised and left out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.golden.conftest import TRACES

SURICATA = TRACES / "suricata" / "mqtt"
TESTS = sorted(p.name for p in SURICATA.iterdir() if (p / "test.yaml").exists())
Row = dict[str, Any]
HEADER_QOS = {"pubrel": 1, "subscribe": 1, "unsubscribe": 1}
ACKS = ("puback", "pubrec", "pubrel", "pubcomp")


@dataclass
class Tx:
    """One Suricata transaction: our rows, in order, and the connection's protocol level."""

    rows: list[Row]
    level: int
    resp_p: int
    ops: list[str] = field(default_factory=list)



# ---- rules: Suricata's MQTT keywords over one transaction ----------------------------------------------------
Option = tuple[str, str]


def rule_options(text: str) -> list[Option]:
    """A rule's options, in order: (keyword, value), quotes respected."""
    body = text[text.index("(") + 1 : text.rindex(")")]
    return [(k.strip(), v.strip().strip('"')) for k, _, v in
            (o.partition(":") for o in re.findall(r'(?:[^;"]|"[^"]*")+', body)) if k.strip()]  # fmt: skip


def rules(test: str) -> dict[int, list[Option]]:
    """A test's rules by sid."""
    path = SURICATA / test / "test.rules"
    lines = path.read_text().splitlines() if path.exists() else []
    found = [rule_options(line) for line in lines if line.startswith("alert ")]
    return {int(dict(o)["sid"]): o for o in found}


def _header_qos(row: Row) -> int:
    return row["qos"] if row["op"] == "publish" else HEADER_QOS.get(row["op"], 0)


def _reason_code(tx: Tx) -> int | None:
    """detect.rs mqtt_tx_get_reason_code: the first acknowledgement, AUTH, CONNACK or DISCONNECT code."""
    for row in tx.rows:
        op = row["op"]
        if op == "connack":
            return row["return_code"]
        if op in (*ACKS, "disconnect", "auth") and "reason_code" in row:
            return row["reason_code"]
    return None


def raw(text: str) -> bytes:
    """The bytes our preview text stands for (`\\xNN` escapes back to bytes)."""
    parts = re.split(r"\\x([0-9a-f]{2})", text)
    return b"".join(bytes([int(p, 16)]) if i % 2 else p.encode() for i, p in enumerate(parts))


WITHHELD = object()  # a buffer our logs do not hold (the password): any content is taken to match
BUFFERS: dict[str, Callable[[Row], list[Any]]] = {  # sticky buffer -> its values in one row
    "mqtt.connect.username": lambda r: [r["username"].encode()] if r["op"] == "connect" and r.get("username") else [],
    "mqtt.connect.password": lambda r: [WITHHELD] if r["op"] == "connect" and r["password_sent"] else [],
    "mqtt.connect.protocol_string": lambda r: [r["proto_name"].encode()] if r["op"] == "connect" else [],
    "mqtt.publish.topic": lambda r: [r["topic"].encode()] if r["op"] == "publish" and r.get("topic") else [],
    "mqtt.publish.message": lambda r: [raw(r["payload"])] if r["op"] == "publish" and r.get("payload") else [],
    "mqtt.subscribe.topic": lambda r: [t.encode() for t in r["topics"]] if r["op"] == "subscribe" else [],
    "mqtt.unsubscribe.topic": lambda r: [t.encode() for t in r["topics"]] if r["op"] == "unsubscribe" else [],
}  # fmt: skip
_CONN_FLAGS = {"username": "username", "password": "password_sent", "clean_session": "clean_session"}


def _content(value: str) -> bytes:
    """A content pattern: text with |hex| parts."""
    parts = value.split("|")
    return b"".join(bytes.fromhex(p) if i % 2 else p.encode() for i, p in enumerate(parts))


def _keyword(name: str, value: str, tx: Tx) -> bool:
    """One MQTT keyword (rust/src/mqtt/detect.rs) on a transaction."""
    rows = tx.rows
    if name == "mqtt.type":  # any packet of that type; `TYPE,i`: the i-th packet is of that type
        kind, _, index = value.partition(",")
        ops = [op.upper() for op in tx.ops]
        if index:
            return int(index) < len(ops) and ops[int(index)] == kind
        return kind in ops
    if name == "mqtt.reason_code":  # the first code, or any SUBACK/UNSUBACK code
        codes = [c for r in rows for c in r.get("granted_qos", []) + r.get("reason_codes", [])]
        return _reason_code(tx) == int(value) or int(value) in codes
    if name == "mqtt.qos":  # any packet's header QoS
        return any(_header_qos(r) == int(value) for r in rows)
    if name == "mqtt.flags":  # any packet whose retain/dup bits are as listed
        want = {f.strip().lstrip("!"): not f.strip().startswith("!") for f in value.split(",")}
        return any(all(bool(r.get(f, False)) == on for f, on in want.items()) for r in rows)
    if name == "mqtt.protocol_version":  # the connection's level
        return tx.level == int(value)
    if name == "mqtt.connect.flags":  # every listed CONNECT flag set (none here is negated)
        return any(r["op"] == "connect" and all(r.get(_CONN_FLAGS[f.strip()]) for f in value.split(","))
                   for r in rows)  # fmt: skip
    raise AssertionError(f"keyword {name} not re-expressed")


RULE_KEYWORDS = {"mqtt.type", "mqtt.reason_code", "mqtt.qos", "mqtt.flags", "mqtt.protocol_version",
                 "mqtt.connect.flags", *BUFFERS, "content", "startswith", "fast_pattern"}  # fmt: skip
_IGNORED = {"msg", "sid", "rev", "classtype"}


def rule_holds(options: list[Option], tx: Tx) -> bool:
    """Whether a rule alerts on a transaction: every keyword holds, every content is in its sticky buffer."""
    buffer: list[Any] = []
    for i, (name, value) in enumerate(options):
        if name in _IGNORED or name in ("startswith", "fast_pattern"):
            continue
        if name in BUFFERS:
            buffer = [v for r in tx.rows for v in BUFFERS[name](r)]
        elif name == "content":
            pattern = _content(value)
            anchored = any(n == "startswith" for n, _ in options[i + 1 : i + 3])
            if not any(v is WITHHELD or (v.startswith(pattern) if anchored else pattern in v) for v in buffer):
                return False
        elif not _keyword(name, value, tx):
            return False
    return True


def is_frame_rule(options: list[Option]) -> bool:
    """A rule on Suricata's frames (raw bytes): not comparable."""
    return any(name == "frame" for name, _ in options)


def event_of(options: list[Option]) -> str | None:
    """The anomaly an `app-layer-event:mqtt.<event>` rule alerts on."""
    found = [v.removeprefix("mqtt.") for n, v in options if n == "app-layer-event"]
    return found[0] if found else None


def _tx(*rows: Row, level: int = 4) -> Tx:
    return Tx(list(rows), level, 1883, [r["op"] for r in rows])


CONNECT = {"op": "connect", "proto_name": "MQTT", "username": "user", "password_sent": True, "clean_session": True}


def test_rule_options_are_read_in_order() -> None:
    text = 'alert mqtt any any -> any any (msg:"a; b"; mqtt.type:PUBLISH; mqtt.publish.message; content:"|FF D8|"; ' \
           'startswith; sid:7;)'
    assert rule_options(text) == [("msg", "a; b"), ("mqtt.type", "PUBLISH"), ("mqtt.publish.message", ""),
                                  ("content", "|FF D8|"), ("startswith", ""), ("sid", "7")]  # fmt: skip


def test_keywords_as_suricata_evaluates_them() -> None:
    connack = {"op": "connack", "return_code": 0}
    assert rule_holds(rule_options("(mqtt.type:CONNECT,0; mqtt.type:CONNACK,1; mqtt.reason_code:0; sid:1;)"),
                      _tx(CONNECT, connack))  # fmt: skip
    assert not rule_holds(rule_options("(mqtt.type:CONNACK,0; sid:1;)"), _tx(CONNECT, connack))
    assert not rule_holds(rule_options("(mqtt.type:CONNACK,2; sid:1;)"), _tx(CONNECT, connack))
    unsuback = {"op": "unsuback", "packet_id": 3, "reason_codes": [0, 17]}
    assert rule_holds(rule_options("(mqtt.reason_code:17; sid:1;)"), _tx({"op": "unsubscribe", "topics": []}, unsuback))
    pub = {"op": "publish", "qos": 1, "retain": True, "dup": False, "topic": "topicX",
           "payload": "\\xff\\xd8\\xff\\xe0"}  # fmt: skip
    assert rule_holds(rule_options("(mqtt.qos:0; sid:1;)"), _tx(pub, {"op": "puback", "packet_id": 1}))
    assert not rule_holds(rule_options("(mqtt.qos:0; sid:1;)"), _tx(pub))
    assert not rule_holds(rule_options("(mqtt.flags: !retain,!dup; sid:1;)"), _tx(pub))
    assert rule_holds(rule_options('(mqtt.publish.message; content:"|FF D8 FF E0|"; startswith; sid:1;)'), _tx(pub))
    assert not rule_holds(rule_options('(mqtt.publish.message; content:"|D8 FF|"; startswith; sid:1;)'), _tx(pub))
    assert rule_holds(rule_options('(mqtt.publish.topic; content:"picX"; sid:1;)'), _tx(pub))
    assert rule_holds(rule_options("(mqtt.protocol_version:5; sid:1;)"), _tx(CONNECT, level=5))
    assert rule_holds(rule_options('(mqtt.connect.password; content:"anything"; sid:1;)'), _tx(CONNECT))
    assert not rule_holds(rule_options('(mqtt.connect.password; content:"x"; sid:1;)'),
                          _tx({**CONNECT, "password_sent": False}))  # fmt: skip
    assert rule_holds(rule_options("(mqtt.connect.flags:username,password,clean_session; sid:1;)"), _tx(CONNECT))
    assert not rule_holds(rule_options("(mqtt.connect.flags:username,password,clean_session; sid:1;)"),
                          _tx({**CONNECT, "clean_session": False}))  # fmt: skip



def test_every_rule_keyword_is_used_and_no_other() -> None:
    """The rules of the suite use exactly the keywords re-expressed here (plus frames and app-layer events)."""
    used = {name for test in TESTS for options in rules(test).values() for name, _ in options}
    frames = {"frame", "flow", "endswith", "bsize"}
    assert used - _IGNORED - frames - {"app-layer-event"} == RULE_KEYWORDS
    for test in TESTS:
        for options in rules(test).values():
            if {n for n, _ in options} & frames:
                assert is_frame_rule(options), options
