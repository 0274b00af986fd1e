"""Hand-assembled MQTT control packets (3.1, 3.1.1 and 5.0) for the decoder tests, malformed ones included."""

from __future__ import annotations

import struct
from typing import Any

from protocols.mqtt_names import PROPERTIES

_IDS = {name: ident for ident, (name, _) in PROPERTIES.items()}
_KINDS = dict(PROPERTIES.values())


def varint(n: int) -> bytes:
    """The MQTT variable byte integer of n."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mstr(s: str | bytes) -> bytes:
    """An MQTT string or binary data: 2-byte length and the bytes."""
    raw = s.encode() if isinstance(s, str) else s
    return struct.pack(">H", len(raw)) + raw


def packet(ptype: int, flags: int, body: bytes) -> bytes:
    """A control packet: fixed header and body."""
    return bytes([ptype << 4 | flags]) + varint(len(body)) + body


def prop(name: str, value: Any) -> bytes:
    """One v5 property by Suricata's name (user_property takes a (name, value) pair)."""
    kind = _KINDS[name]
    head = varint(_IDS[name])
    if kind == "byte":
        return head + bytes([value])
    if kind == "u16":
        return head + struct.pack(">H", value)
    if kind == "u32":
        return head + struct.pack(">I", value)
    if kind == "varint":
        return head + varint(value)
    if kind == "pair":
        return head + mstr(value[0]) + mstr(value[1])
    return head + mstr(value)


def props(*items: tuple[str, Any]) -> bytes:
    """A v5 property block (length and properties)."""
    raw = b"".join(prop(name, value) for name, value in items)
    return varint(len(raw)) + raw


def connect(client_id: str = "plc-7", *, level: int = 4, name: str | None = None, clean: bool = True,
            keep_alive: int = 60, username: str | None = None, password: bytes | None = None,
            will: tuple[str, bytes, int, bool] | None = None, will_props: bytes = b"\x00",
            properties: bytes = b"\x00", flags_extra: int = 0) -> bytes:
    """A CONNECT; `properties` and `will_props` are used at level 5 only."""
    proto = name if name is not None else ("MQIsdp" if level == 3 else "MQTT")
    flags = flags_extra | (0x02 if clean else 0)
    if will is not None:
        flags |= 0x04 | (will[2] << 3) | (0x20 if will[3] else 0)
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    body = mstr(proto) + bytes([level, flags]) + struct.pack(">H", keep_alive)
    if level == 5:
        body += properties
    body += mstr(client_id)
    if will is not None:
        if level == 5:
            body += will_props
        body += mstr(will[0]) + mstr(will[1])
    if username is not None:
        body += mstr(username)
    if password is not None:
        body += mstr(password)
    return packet(1, 0, body)


def connack(code: int = 0, session_present: bool = False, properties: bytes | None = None) -> bytes:
    """A CONNACK (3.1.1 form without properties, 5.0 form with them)."""
    body = bytes([1 if session_present else 0, code])
    return packet(2, 0, body + (properties if properties is not None else b""))


def publish(topic: str | bytes, payload: bytes = b"", qos: int = 0, pid: int | None = None, retain: bool = False,
            dup: bool = False, properties: bytes | None = None) -> bytes:
    """A PUBLISH; `properties` (5.0) goes after the packet identifier."""
    flags = (qos << 1) | (1 if retain else 0) | (8 if dup else 0)
    body = mstr(topic)
    if qos:
        body += struct.pack(">H", pid if pid is not None else 1)
    if properties is not None:
        body += properties
    return packet(3, flags, body + payload)


def ack(ptype: int, pid: int, code: int | None = None, properties: bytes | None = None) -> bytes:
    """PUBACK (4), PUBREC (5), PUBREL (6) or PUBCOMP (7)."""
    body = struct.pack(">H", pid)
    if code is not None:
        body += bytes([code])
        if properties is not None:
            body += properties
    return packet(ptype, 2 if ptype == 6 else 0, body)


def subscribe(pid: int, filters: list[tuple[str, int]], properties: bytes | None = None) -> bytes:
    """A SUBSCRIBE of (topic filter, options byte) pairs."""
    body = struct.pack(">H", pid) + (properties or b"")
    body += b"".join(mstr(topic) + bytes([opts]) for topic, opts in filters)
    return packet(8, 2, body)


def suback(pid: int, codes: list[int], properties: bytes | None = None) -> bytes:
    """A SUBACK."""
    return packet(9, 0, struct.pack(">H", pid) + (properties or b"") + bytes(codes))


def unsubscribe(pid: int, topics: list[str], properties: bytes | None = None) -> bytes:
    """An UNSUBSCRIBE."""
    return packet(10, 2, struct.pack(">H", pid) + (properties or b"") + b"".join(mstr(t) for t in topics))


def unsuback(pid: int, codes: list[int] | None = None, properties: bytes | None = None) -> bytes:
    """An UNSUBACK (reason codes and properties are 5.0 only)."""
    body = struct.pack(">H", pid)
    if codes is not None:
        body += (properties or b"\x00") + bytes(codes)
    return packet(11, 0, body)


def pingreq() -> bytes:
    """A PINGREQ."""
    return b"\xc0\x00"


def pingresp() -> bytes:
    """A PINGRESP."""
    return b"\xd0\x00"


def disconnect(code: int | None = None, properties: bytes | None = None) -> bytes:
    """A DISCONNECT (a reason code and properties in 5.0)."""
    body = b"" if code is None else bytes([code]) + (properties or b"")
    return packet(14, 0, body)


def auth(code: int | None = None, properties: bytes | None = None) -> bytes:
    """An AUTH (5.0)."""
    body = b"" if code is None else bytes([code]) + (properties or b"")
    return packet(15, 0, body)


def session_311() -> list[tuple[bool, bytes]]:
    """A 3.1.1 session with every packet type 3.1.1 has, in order: (sent by the client, packet)."""
    return [
        (True, connect("sensor-1", username="op", password=b"s3cr3t-pw!", will=("plant/status", b"offline", 1, True))),
        (False, connack(0)),
        (True, publish("plant/line1/temp", b'{"t": 21.5}', qos=0)),
        (True, publish("plant/line1/cmd", b'{"setpoint": 40}', qos=1, pid=10)),
        (False, ack(4, 10)),
        (True, publish("plant/line1/cmd", b'{"setpoint": 41}', qos=2, pid=11)),
        (False, ack(5, 11)),
        (True, ack(6, 11)),
        (False, ack(7, 11)),
        (True, subscribe(12, [("plant/+/temp", 1), ("plant/#", 2)])),
        (False, suback(12, [1, 0x80])),
        (True, unsubscribe(13, ["plant/#"])),
        (False, unsuback(13)),
        (False, publish("plant/line2/temp", b"22.0", qos=1, pid=7)),
        (True, ack(4, 7)),
        (True, pingreq()),
        (False, pingresp()),
        (True, disconnect()),
    ]


def session_5() -> list[tuple[bool, bytes]]:
    """A 5.0 session with every packet type, properties, topic aliases and reason codes: (by the client, packet)."""
    return [
        (True, connect("", level=5, username="op", password=b"s3cr3t-pw!", keep_alive=30,
                       properties=props(("session_expiry_interval", 600), ("receive_maximum", 20),
                                        ("authentication_method", "SCRAM-SHA-1"),
                                        ("authentication_data", b"s3cr3t-pw!"),
                                        ("user_property", ("site", "dc1")), ("user_property", ("rack", "r4"))),
                       will=("plant/status", b"gone", 0, False),
                       will_props=props(("will_delay_interval", 5), ("content_type", "text/plain")))),
        (False, auth(0x18, props(("authentication_method", "SCRAM-SHA-1"), ("authentication_data", b"nonce")))),
        (True, auth(0x18, props(("authentication_method", "SCRAM-SHA-1"), ("authentication_data", b"proof")))),
        (False, connack(0, properties=props(("topic_alias_maximum", 10),
                                            ("assigned_client_identifier", "auto-1234")))),
        (True, publish("plant/line1/temp", b'{"t": 21.5}', qos=0, properties=props(("topic_alias", 3)))),
        (True, publish("", b'{"t": 21.6}', qos=1, pid=1, properties=props(("topic_alias", 3)))),
        (False, ack(4, 1, 0x10, props(("reason_string", "no subscribers")))),
        (True, publish("plant/line1/cmd", b"go", qos=2, pid=2, properties=b"\x00")),
        (False, ack(5, 2)),
        (True, ack(6, 2)),
        (False, ack(7, 2, 0)),
        (True, subscribe(3, [("plant/#", 0x25), ("$share/g/x", 1)], props(("subscription_identifier", 7)))),
        (False, suback(3, [1, 0x9E], b"\x00")),
        (True, unsubscribe(4, ["plant/#", "nope"], b"\x00")),
        (False, unsuback(4, [0, 0x11])),
        (False, publish("plant/line2/temp", b"22.0", qos=1, pid=9,
                        properties=props(("subscription_identifier", 7), ("subscription_identifier", 8)))),
        (True, ack(4, 9)),
        (True, pingreq()),
        (False, pingresp()),
        (False, disconnect(0x8B, props(("reason_string", "shutting down")))),
    ]
