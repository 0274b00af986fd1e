"""BACnet/IP message builders (ASHRAE 135: BVLC Annex J, NPDU clause 6, APDU clause 20, tags clause 20.2).

Tag helpers return encoded bytes; service builders return whole BVLC messages (Original-Unicast or
Original-Broadcast) ready for a UDP payload.
"""

from __future__ import annotations

import struct

__all__ = [
    "AI", "AO", "AV", "BI", "BO", "DEVICE", "SCHEDULE", "app_bool", "app_enum", "app_real", "app_uint", "bvlc",
    "char_string", "close", "complex_ack", "confirmed", "ctx_bool", "ctx_enum", "ctx_objid", "ctx_string",
    "ctx_uint", "error_pdu", "i_am", "objid", "open_", "simple_ack", "time_value", "unconfirmed", "who_is",
]  # fmt: skip

AI, AO, AV, BI, BO, DEVICE, SCHEDULE = 0, 1, 2, 3, 4, 8, 17
# services
SUBSCRIBE_COV, READ_PROPERTY, READ_PROPERTY_MULTIPLE, WRITE_PROPERTY = 5, 12, 14, 15
CONFIRMED_COV, DCC, REINITIALIZE = 1, 17, 20
I_AM, UNCONFIRMED_COV, WHO_IS = 0, 2, 8
# properties
OBJECT_LIST, OBJECT_NAME, VENDOR_NAME, MODEL_NAME, FIRMWARE, APP_VERSION = 76, 77, 121, 70, 44, 12
PRESENT_VALUE, STATUS_FLAGS, UNITS, DESCRIPTION, WEEKLY_SCHEDULE, PRIORITY_ARRAY = 85, 111, 117, 28, 123, 87

_REAL = struct.Struct(">f")


def _uint_bytes(value: int) -> bytes:
    n = max(1, (value.bit_length() + 7) // 8)
    return value.to_bytes(n, "big")


def _tagged(head: int, content: bytes) -> bytes:
    n = len(content)
    if n <= 4:
        return bytes([head | n]) + content
    if n <= 253:
        return bytes([head | 5, n]) + content
    return bytes([head | 5, 254]) + n.to_bytes(2, "big") + content


def ctx_uint(tag: int, value: int) -> bytes:
    """A context-tagged unsigned integer."""
    return _tagged((tag << 4) | 0x08, _uint_bytes(value))


ctx_enum = ctx_uint  # enumerations encode like unsigned integers


def ctx_bool(tag: int, value: bool) -> bytes:
    """A context-tagged boolean (one content octet)."""
    return bytes([(tag << 4) | 0x09, 1 if value else 0])


def objid(otype: int, instance: int) -> bytes:
    """The 4 octets of an object identifier."""
    return ((otype << 22) | instance).to_bytes(4, "big")


def ctx_objid(tag: int, otype: int, instance: int) -> bytes:
    """A context-tagged object identifier."""
    return bytes([(tag << 4) | 0x0C]) + objid(otype, instance)


def ctx_string(tag: int, text: str) -> bytes:
    """A context-tagged character string (UTF-8)."""
    return _tagged((tag << 4) | 0x08, b"\x00" + text.encode("utf-8"))


def open_(tag: int) -> bytes:
    """An opening tag."""
    return bytes([(tag << 4) | 0x0E])


def close(tag: int) -> bytes:
    """A closing tag."""
    return bytes([(tag << 4) | 0x0F])


def app_uint(value: int) -> bytes:
    """An application-tagged unsigned integer."""
    return _tagged(0x20, _uint_bytes(value))


def app_enum(value: int) -> bytes:
    """An application-tagged enumerated value."""
    return _tagged(0x90, _uint_bytes(value))


def app_real(value: float) -> bytes:
    """An application-tagged REAL."""
    return b"\x44" + _REAL.pack(value)


def app_bool(value: bool) -> bytes:
    """An application-tagged boolean (value in the length bits)."""
    return b"\x11" if value else b"\x10"


def char_string(text: str) -> bytes:
    """An application-tagged character string (UTF-8)."""
    return _tagged(0x70, b"\x00" + text.encode("utf-8"))


def time_value(hour: int, minute: int, value: bytes) -> bytes:
    """A BACnetTimeValue: application-tagged time, then the value."""
    return bytes([0xB4, hour, minute, 0, 0]) + value


def bvlc(apdu: bytes, expect_reply: bool = False, broadcast: bool = False) -> bytes:
    """A BVLC Original-Unicast (or -Broadcast) NPDU carrying one APDU."""
    npdu = (b"\x01\x04" if expect_reply else b"\x01\x00") + apdu
    return bytes([0x81, 0x0B if broadcast else 0x0A]) + (4 + len(npdu)).to_bytes(2, "big") + npdu


def confirmed(invoke: int, service: int, params: bytes) -> bytes:
    """A confirmed-request message as bacpypes3 sends it: segmented response not accepted, max segments accepted
    16 (bacpypes3's constant code 4), max APDU 1476 octets."""
    return bvlc(bytes([0x00, 0x45, invoke & 0xFF, service]) + params, expect_reply=True)


def unconfirmed(service: int, params: bytes, broadcast: bool = False) -> bytes:
    """An unconfirmed-request message."""
    return bvlc(bytes([0x10, service]) + params, broadcast=broadcast)


def simple_ack(invoke: int, service: int) -> bytes:
    """A SimpleACK."""
    return bvlc(bytes([0x20, invoke & 0xFF, service]))


def complex_ack(invoke: int, service: int, params: bytes) -> bytes:
    """A ComplexACK (unsegmented)."""
    return bvlc(bytes([0x30, invoke & 0xFF, service]) + params)


def error_pdu(invoke: int, service: int, error_class: int, error_code: int) -> bytes:
    """An Error PDU with class and code."""
    return bvlc(bytes([0x50, invoke & 0xFF, service]) + app_enum(error_class) + app_enum(error_code))


def who_is(low: int | None = None, high: int | None = None, broadcast: bool = True) -> bytes:
    """A Who-Is, with a device instance range if given."""
    params = ctx_uint(0, low) + ctx_uint(1, high) if low is not None and high is not None else b""
    return unconfirmed(WHO_IS, params, broadcast)


def i_am(instance: int, vendor_id: int, broadcast: bool = True) -> bytes:
    """An I-Am: device id, max APDU 1476, no segmentation, vendor id."""
    params = b"\xc4" + objid(DEVICE, instance) + app_uint(1476) + app_enum(3) + app_uint(vendor_id)
    return unconfirmed(I_AM, params, broadcast)
