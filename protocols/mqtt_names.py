"""MQTT name tables: packet types, protocol versions, return and reason codes, v5 properties, operation classes.

Texts follow Zeek's base/protocols/mqtt/consts.zeek where Zeek has the concept (versions, QoS levels, CONNACK
return codes of 3.1/3.1.1), the OASIS MQTT 5.0 specification (section 2.4) for reason codes, and Suricata's
property names (rust/src/mqtt/mqtt_property.rs) for the v5 properties.
"""

from __future__ import annotations

from protocols.base import unknown

__all__ = [
    "CONNECT_STATUS",
    "OP_CLASSES",
    "PACKET_TYPES",
    "PROPERTIES",
    "QOS_TEXT",
    "REASON_CODES",
    "VERSIONS",
    "connect_status",
    "qos_text",
    "reason_text",
    "version_text",
]

# control packet type (high nibble of the first byte) -> op
PACKET_TYPES: dict[int, str] = {
    1: "connect",
    2: "connack",
    3: "publish",
    4: "puback",
    5: "pubrec",
    6: "pubrel",
    7: "pubcomp",
    8: "subscribe",
    9: "suback",
    10: "unsubscribe",
    11: "unsuback",
    12: "pingreq",
    13: "pingresp",
    14: "disconnect",
    15: "auth",
}

# protocol level -> Zeek's proto_version text (consts.zeek `versions`)
VERSIONS: dict[int, str] = {3: "3.1", 4: "3.1.1", 5: "5.0"}
# protocol name expected for each level
PROTOCOL_NAMES: dict[int, str] = {3: "MQIsdp", 4: "MQTT", 5: "MQTT"}

# Zeek's qos_levels texts (mqtt_publish.log `qos`)
QOS_TEXT: dict[int, str] = {0: "at most once", 1: "at least once", 2: "exactly once"}

# CONNACK return codes of MQTT 3.1 and 3.1.1, Zeek's connect_status texts (consts.zeek `return_codes`)
CONNECT_STATUS: dict[int, str] = {
    0: "Connection Accepted",
    1: "Refused: unacceptable protocol version",
    2: "Refused: identifier rejected",
    3: "Refused: server unavailable",
    4: "Refused: bad user name or password",
    5: "Refused: not authorized",
}

# MQTT 5.0 reason codes (specification 2.4); 0x00-0x02 depend on the packet, see reason_text()
REASON_CODES: dict[int, str] = {
    0x00: "Success",
    0x01: "Granted QoS 1",
    0x02: "Granted QoS 2",
    0x04: "Disconnect with Will Message",
    0x10: "No matching subscribers",
    0x11: "No subscription existed",
    0x18: "Continue authentication",
    0x19: "Re-authenticate",
    0x80: "Unspecified error",
    0x81: "Malformed Packet",
    0x82: "Protocol Error",
    0x83: "Implementation specific error",
    0x84: "Unsupported Protocol Version",
    0x85: "Client Identifier not valid",
    0x86: "Bad User Name or Password",
    0x87: "Not authorized",
    0x88: "Server unavailable",
    0x89: "Server busy",
    0x8A: "Banned",
    0x8B: "Server shutting down",
    0x8C: "Bad authentication method",
    0x8D: "Keep Alive timeout",
    0x8E: "Session taken over",
    0x8F: "Topic Filter invalid",
    0x90: "Topic Name invalid",
    0x91: "Packet Identifier in use",
    0x92: "Packet Identifier not found",
    0x93: "Receive Maximum exceeded",
    0x94: "Topic Alias invalid",
    0x95: "Packet too large",
    0x96: "Message rate too high",
    0x97: "Quota exceeded",
    0x98: "Administrative action",
    0x99: "Payload format invalid",
    0x9A: "Retain not supported",
    0x9B: "QoS not supported",
    0x9C: "Use another server",
    0x9D: "Server moved",
    0x9E: "Shared Subscriptions not supported",
    0x9F: "Connection rate exceeded",
    0xA0: "Maximum connect time",
    0xA1: "Subscription Identifiers not supported",
    0xA2: "Wildcard Subscriptions not supported",
}

# MQTT 5.0 properties: identifier -> (name, value type). Types: byte, u16, u32, varint, str, bin, pair.
PROPERTIES: dict[int, tuple[str, str]] = {
    0x01: ("payload_format_indicator", "byte"),
    0x02: ("message_expiry_interval", "u32"),
    0x03: ("content_type", "str"),
    0x08: ("response_topic", "str"),
    0x09: ("correlation_data", "bin"),
    0x0B: ("subscription_identifier", "varint"),
    0x11: ("session_expiry_interval", "u32"),
    0x12: ("assigned_client_identifier", "str"),
    0x13: ("server_keep_alive", "u16"),
    0x15: ("authentication_method", "str"),
    0x16: ("authentication_data", "bin"),
    0x17: ("request_problem_information", "byte"),
    0x18: ("will_delay_interval", "u32"),
    0x19: ("request_response_information", "byte"),
    0x1A: ("response_information", "str"),
    0x1C: ("server_reference", "str"),
    0x1F: ("reason_string", "str"),
    0x21: ("receive_maximum", "u16"),
    0x22: ("topic_alias_maximum", "u16"),
    0x23: ("topic_alias", "u16"),
    0x24: ("maximum_qos", "byte"),
    0x25: ("retain_available", "byte"),
    0x26: ("user_property", "pair"),
    0x27: ("maximum_packet_size", "u32"),
    0x28: ("wildcard_subscription_available", "byte"),
    0x29: ("subscription_identifier_available", "byte"),
    0x2A: ("shared_subscription_available", "byte"),
}

# op -> operation class (appliance/stats.py OP_CLASSES), as an OT analyst reads MQTT:
#   publish and its acknowledgements (puback, pubrec, pubrel, pubcomp): write -- a publish puts a value or a
#     command on the broker, whoever sends it (a sensor's telemetry, an HMI's setpoint, the broker relaying it);
#   subscribe and suback: read -- the client asks to be sent the values of the topics;
#   connect, connack, disconnect, auth, unsubscribe, unsuback, pingreq, pingresp: other -- session management
#     and keep-alive (a ping is a liveness check, not a device diagnostic like Modbus FC 8).
OP_CLASSES: dict[str, str] = {
    "connect": "other",
    "connack": "other",
    "publish": "write",
    "puback": "write",
    "pubrec": "write",
    "pubrel": "write",
    "pubcomp": "write",
    "subscribe": "read",
    "suback": "read",
    "unsubscribe": "other",
    "unsuback": "other",
    "pingreq": "other",
    "pingresp": "other",
    "disconnect": "other",
    "auth": "other",
}


def version_text(level: int) -> str:
    """Zeek's proto_version text of a protocol level: 3.1, 3.1.1, 5.0, else unknown-version-N."""
    return VERSIONS.get(level) or f"unknown-version-{level}"


def qos_text(qos: int) -> str:
    """Zeek's QoS text: at most once, at least once, exactly once, else unknown-qos-level-N."""
    return QOS_TEXT.get(qos) or f"unknown-qos-level-{qos}"


def connect_status(code: int, v5: bool) -> str:
    """The connect_status text of a CONNACK code: Zeek's texts for 3.1/3.1.1, the reason name for 5.0."""
    if v5:
        return "Connection Accepted" if code == 0 else reason_text(code, 2)
    return CONNECT_STATUS.get(code) or f"unknown-return-code-{code}"


def reason_text(code: int, ptype: int) -> str:
    """The MQTT 5.0 name of a reason code sent in a packet of type `ptype` (0x00-0x02 depend on the type)."""
    if code == 0:
        if ptype == 14:
            return "Normal disconnection"
        if ptype == 9:
            return "Granted QoS 0"
    return REASON_CODES.get(code) or unknown(code)
