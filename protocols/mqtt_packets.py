"""Bodies of the MQTT control packets other than PUBLISH: strings, v5 properties, CONNECT, CONNACK, SUBSCRIBE,
SUBACK, UNSUBSCRIBE, UNSUBACK, the packet-id-only packets, DISCONNECT and AUTH.

Every parser takes the packet bytes `buf[p:end]` (the variable header and payload), returns the fields it could
decode and a list of problems `(weird name, addl)` (None when there are none), and never raises. The addl text
never quotes packet bytes: a CONNECT's password, which is skipped by its length, cannot leak into a field or a weird.
"""

from __future__ import annotations

from typing import Any

from protocols.mqtt_names import PROPERTIES, PROTOCOL_NAMES, connect_status, reason_text, version_text

__all__ = [
    "MALFORMED",
    "REDACTED",
    "Fields",
    "Problems",
    "parse_connack",
    "parse_connect",
    "parse_id_only",
    "parse_props",
    "parse_reason",
    "parse_suback",
    "parse_subscribe",
    "parse_unsuback",
    "parse_unsubscribe",
    "read_str",
    "text",
]

Fields = dict[str, Any]
Problems = list[tuple[str, str]] | None

MALFORMED = "mqtt_malformed_traffic"
INVALID_QOS = "mqtt_invalid_qos_level"
INVALID_VERSION = "mqtt_invalid_protocol_version"
INVALID_FLAGS = "mqtt_invalid_flags"
REDACTED = "<redacted>"  # authentication data (v5 enhanced authentication) is a secret like a password
_NUMERIC = {"byte": 1, "u16": 2, "u32": 4}
_V3_SUBACK = {0: "Granted QoS 0", 1: "Granted QoS 1", 2: "Granted QoS 2", 0x80: "Failure"}


def text(raw: bytes) -> str:
    """UTF-8 text of an MQTT string or payload; bytes that are not UTF-8 become `\\xNN` escapes (Zeek's look)."""
    return raw.decode("utf-8", "backslashreplace")


def read_str(buf: bytes, p: int, end: int) -> tuple[str | None, int]:
    """An MQTT string (2-byte length, UTF-8) at buf[p:end]: (text, next offset), or (None, p) if it overruns."""
    if p + 2 > end:
        return None, p
    q = p + 2 + ((buf[p] << 8) | buf[p + 1])
    if q > end:
        return None, p
    return buf[p + 2 : q].decode("utf-8", "backslashreplace"), q


def _skip_bin(buf: bytes, p: int, end: int) -> int:
    """The offset after MQTT binary data (2-byte length) at p, or -1 if it overruns; the bytes are never read."""
    if p + 2 > end:
        return -1
    q = p + 2 + ((buf[p] << 8) | buf[p + 1])
    return q if q <= end else -1


def _varint(buf: bytes, p: int, end: int) -> tuple[int, int]:
    """A variable byte integer at p: (value, next offset); next is -1 when truncated or longer than 4 bytes."""
    value = shift = 0
    for i in range(p, min(p + 4, end)):
        b = buf[i]
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i + 1
        shift += 7
    return 0, -1


def parse_props(buf: bytes, p: int, end: int) -> tuple[Fields, int, str | None]:
    """v5 properties at p: (name -> value, offset after them, problem text or None). User properties and
    subscription identifiers (which may repeat) are lists; authentication data is never kept (REDACTED)."""
    length, q = _varint(buf, p, end)
    props: Fields = {}
    if q < 0:
        return props, end, "truncated property length"
    stop = q + length
    if stop > end:
        return props, end, f"property length {length} beyond the packet ({end - q} bytes left)"
    while q < stop:
        ident, q = _varint(buf, q, stop)
        spec = PROPERTIES.get(ident) if q >= 0 else None
        if spec is None:
            why = "truncated property identifier" if q < 0 else f"unknown property identifier {ident}"
            return props, stop, why
        name, kind = spec
        value: Any
        size = _NUMERIC.get(kind)
        if size is not None:
            if q + size > stop:
                return props, stop, f"property {name} truncated"
            value = int.from_bytes(buf[q : q + size], "big")
            q += size
        elif kind == "varint":
            value, q = _varint(buf, q, stop)
            if q < 0:
                return props, stop, f"property {name} truncated"
        elif kind == "str":
            value, q2 = read_str(buf, q, stop)
            if value is None:
                return props, stop, f"property {name} truncated"
            q = q2
        elif kind == "bin":
            q2 = _skip_bin(buf, q, stop)
            if q2 < 0:
                return props, stop, f"property {name} truncated"
            value = REDACTED if name == "authentication_data" else text(buf[q + 2 : q2])
            q = q2
        else:  # a user property: a name/value string pair
            key, q2 = read_str(buf, q, stop)
            val, q3 = read_str(buf, q2, stop) if key is not None else (None, q2)
            if key is None or val is None:
                return props, stop, f"property {name} truncated"
            value = [key, val]
            q = q3
        if name == "user_property" or name == "subscription_identifier":
            props.setdefault(name, []).append(value)
        elif name in props:
            return props, stop, f"property {name} given twice"
        else:
            props[name] = value
    return props, stop, None


def _problem(problems: Problems, name: str, addl: str) -> list[tuple[str, str]]:
    out = problems if problems is not None else []
    out.append((name, addl))
    return out


def parse_connect(buf: bytes, p: int, end: int, cap: int) -> tuple[Fields, Problems, int | None]:
    """A CONNECT: (fields, problems, protocol level or None). The password is skipped, never read."""
    f: Fields = {}
    problems: Problems = None
    name, p = read_str(buf, p, end)
    if name is None or p + 4 > end:
        return f, _problem(problems, MALFORMED, "CONNECT variable header truncated"), None
    level, flags, keep_alive = buf[p], buf[p + 1], (buf[p + 2] << 8) | buf[p + 3]
    p += 4
    f["proto_name"] = name
    f["proto_level"] = level
    f["proto_version"] = version_text(level)
    if PROTOCOL_NAMES.get(level) != name:
        problems = _problem(problems, INVALID_VERSION, f"protocol name {name!r} with level {level}")
    will, will_qos = bool(flags & 0x04), (flags >> 3) & 3
    f["clean_session"] = bool(flags & 0x02)
    f["keep_alive"] = keep_alive
    f["password_sent"] = bool(flags & 0x40)
    if flags & 0x01:
        problems = _problem(problems, INVALID_FLAGS, "CONNECT reserved flag set")
    if will_qos == 3:
        problems = _problem(problems, INVALID_QOS, "will QoS 3")
    elif not will and flags & 0x38:
        problems = _problem(problems, INVALID_FLAGS, "will QoS or retain without the will flag")
    if level < 5 and flags & 0xC0 == 0x40:
        problems = _problem(problems, INVALID_FLAGS, "password flag without the user name flag")
    v5 = level == 5
    if v5:
        props, p, why = parse_props(buf, p, end)
        if props:
            f["properties"] = props
        if why:
            return f, _problem(problems, MALFORMED, f"CONNECT: {why}"), level
    client_id, p = read_str(buf, p, end)
    if client_id is None:
        return f, _problem(problems, MALFORMED, "CONNECT client identifier truncated"), level
    f["client_id"] = client_id
    f["empty_client_id"] = not client_id
    if will:
        if v5:
            props, p, why = parse_props(buf, p, end)
            if props:
                f["will_properties"] = props
            if why:
                return f, _problem(problems, MALFORMED, f"CONNECT will: {why}"), level
        topic, p = read_str(buf, p, end)
        q = _skip_bin(buf, p, end) if topic is not None else -1
        if topic is None or q < 0:
            return f, _problem(problems, MALFORMED, "CONNECT will topic or payload truncated"), level
        f["will_topic"] = topic
        f["will_qos"] = will_qos
        f["will_retain"] = bool(flags & 0x20)
        f["will_payload_len"] = q - p - 2
        f["will_payload"] = text(buf[p + 2 : min(q, p + 2 + cap)])
        p = q
    if flags & 0x80:
        username, p = read_str(buf, p, end)
        if username is None:
            return f, _problem(problems, MALFORMED, "CONNECT user name truncated"), level
        f["username"] = username
    if flags & 0x40:
        q = _skip_bin(buf, p, end)
        if q < 0:
            return f, _problem(problems, MALFORMED, "CONNECT password truncated"), level
        p = q
    if p != end:
        problems = _problem(problems, MALFORMED, f"CONNECT has {end - p} bytes after its payload")
    return f, problems, level


def parse_connack(buf: bytes, p: int, end: int, v5: bool) -> tuple[Fields, Problems]:
    """A CONNACK: session_present, return_code, connect_status, and for 5.0 reason_code, reason, properties."""
    if end - p < 2:
        return {}, [(MALFORMED, "CONNACK shorter than 2 bytes")]
    ack, code = buf[p], buf[p + 1]
    f: Fields = {"session_present": bool(ack & 1), "return_code": code, "connect_status": connect_status(code, v5)}
    problems: Problems = None
    if ack & 0xFE:
        problems = _problem(problems, INVALID_FLAGS, "CONNACK acknowledge flags reserved bits set")
    if v5:
        f["reason_code"] = code
        f["reason"] = reason_text(code, 2)
        if end > p + 2:
            props, q, why = parse_props(buf, p + 2, end)
            if props:
                f["properties"] = props
            if why:
                return f, _problem(problems, MALFORMED, f"CONNACK: {why}")
            if q != end:
                problems = _problem(problems, MALFORMED, f"CONNACK has {end - q} extra bytes")
    elif end != p + 2:
        problems = _problem(problems, MALFORMED, f"CONNACK has {end - p - 2} extra bytes")
    return f, problems


def parse_reason(buf: bytes, p: int, end: int, ptype: int, name: str) -> tuple[Fields, Problems]:
    """The v5 reason code and properties of a DISCONNECT or AUTH (an empty body means reason 0)."""
    if p >= end:
        return {"reason_code": 0, "reason": reason_text(0, ptype)}, None
    code = buf[p]
    f: Fields = {"reason_code": code, "reason": reason_text(code, ptype)}
    if p + 1 < end:
        props, q, why = parse_props(buf, p + 1, end)
        if props:
            f["properties"] = props
        if why:
            return f, [(MALFORMED, f"{name}: {why}")]
        if q != end:
            return f, [(MALFORMED, f"{name} has {end - q} extra bytes")]
    return f, None


def parse_id_only(buf: bytes, p: int, end: int, ptype: int, v5: bool, name: str) -> tuple[Fields, Problems]:
    """PUBACK, PUBREC, PUBREL, PUBCOMP: packet_id, and for 5.0 reason_code (0 when omitted), reason, properties."""
    if end - p < 2:
        return {}, [(MALFORMED, f"{name} without a packet identifier")]
    f: Fields = {"packet_id": (buf[p] << 8) | buf[p + 1]}
    if not v5:
        return f, None if end == p + 2 else [(MALFORMED, f"{name} has {end - p - 2} extra bytes")]
    code = buf[p + 2] if end > p + 2 else 0
    f["reason_code"] = code
    f["reason"] = reason_text(code, ptype)
    if end > p + 3:
        props, q, why = parse_props(buf, p + 3, end)
        if props:
            f["properties"] = props
        if why:
            return f, [(MALFORMED, f"{name}: {why}")]
        if q != end:
            return f, [(MALFORMED, f"{name} has {end - q} extra bytes")]
    return f, None


def _head(buf: bytes, p: int, end: int, v5: bool, name: str) -> tuple[Fields, int, Problems]:
    """The packet identifier and (5.0) properties that start SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK."""
    if end - p < 2:
        return {}, -1, [(MALFORMED, f"{name} without a packet identifier")]
    f: Fields = {"packet_id": (buf[p] << 8) | buf[p + 1]}
    p += 2
    if v5:
        props, p, why = parse_props(buf, p, end)
        if props:
            f["properties"] = props
        if why:
            return f, -1, [(MALFORMED, f"{name}: {why}")]
    return f, p, None


def parse_subscribe(buf: bytes, p: int, end: int, v5: bool) -> tuple[Fields, Problems]:
    """A SUBSCRIBE: packet_id, topics, qos_levels, and for 5.0 subscription_options (when any option beyond the
    QoS is set) and properties."""
    f, p, problems = _head(buf, p, end, v5, "SUBSCRIBE")
    if p < 0:
        return f, problems
    topics: list[str] = []
    levels: list[int] = []
    options: list[int] = []
    while p < end:
        topic, q = read_str(buf, p, end)
        if topic is None or q >= end:
            problems = _problem(problems, MALFORMED, "SUBSCRIBE topic filter truncated")
            break
        opt = buf[q]
        topics.append(topic)
        levels.append(opt & 3)
        options.append(opt)
        if opt & 3 == 3:
            problems = _problem(problems, INVALID_QOS, f"requested QoS 3 for {topic!r}")
        if opt & (0xC0 if v5 else 0xFC):
            problems = _problem(problems, MALFORMED, f"reserved subscription option bits set for {topic!r}")
        p = q + 1
    if not topics and problems is None:
        problems = [(MALFORMED, "SUBSCRIBE without a topic filter")]
    f["topics"] = topics
    f["qos_levels"] = levels
    if v5 and any(o & 0x3C for o in options):
        f["subscription_options"] = options
    return f, problems


def parse_unsubscribe(buf: bytes, p: int, end: int, v5: bool) -> tuple[Fields, Problems]:
    """An UNSUBSCRIBE: packet_id, topics, and for 5.0 properties."""
    f, p, problems = _head(buf, p, end, v5, "UNSUBSCRIBE")
    if p < 0:
        return f, problems
    topics: list[str] = []
    while p < end:
        topic, q = read_str(buf, p, end)
        if topic is None:
            problems = _problem(problems, MALFORMED, "UNSUBSCRIBE topic filter truncated")
            break
        topics.append(topic)
        p = q
    if not topics and problems is None:
        problems = [(MALFORMED, "UNSUBSCRIBE without a topic filter")]
    f["topics"] = topics
    return f, problems


def parse_suback(buf: bytes, p: int, end: int, v5: bool) -> tuple[Fields, Problems]:
    """A SUBACK: packet_id, granted_qos (every return or reason code), reasons, and for 5.0 properties."""
    f, p, problems = _head(buf, p, end, v5, "SUBACK")
    if p < 0:
        return f, problems
    codes = list(buf[p:end])
    f["granted_qos"] = codes
    f["reasons"] = [reason_text(c, 9) for c in codes] if v5 else [_V3_SUBACK.get(c) or f"unknown-{c}" for c in codes]
    if not codes:
        problems = _problem(problems, MALFORMED, "SUBACK without a return code")
    return f, problems


def parse_unsuback(buf: bytes, p: int, end: int, v5: bool) -> tuple[Fields, Problems]:
    """An UNSUBACK: packet_id, and for 5.0 reason_codes, reasons and properties."""
    f, p, problems = _head(buf, p, end, v5, "UNSUBACK")
    if p < 0:
        return f, problems
    if v5:
        codes = list(buf[p:end])
        f["reason_codes"] = codes
        f["reasons"] = [reason_text(c, 11) for c in codes]
        if not codes:
            problems = _problem(problems, MALFORMED, "UNSUBACK without a reason code")
    elif p != end:
        problems = _problem(problems, MALFORMED, f"UNSUBACK has {end - p} extra bytes")
    return f, problems
