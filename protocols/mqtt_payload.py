"""What an MQTT payload looks like, from its first bytes: the preview text and the payload type.

Pure helpers shared by the MqttDecoder (the `payload` and `payload_type` fields of a PUBLISH) and by the broker
session (appliance/capture), so that a message seen on the wire and one received from the broker read the same.

- `payload_preview(data, cap)`: the first `cap` bytes as text; bytes that are not UTF-8 become `\\xNN` escapes
  (Zeek's look). A multi-byte character cut by the cap shows as escapes too.
- `payload_type(data)`: "empty", "jpeg" (FF D8 FF), "png" (89 50 4E 47 0D 0A 1A 0A), "gif" (GIF87a, GIF89a),
  "json" (valid UTF-8 whose first non-blank character is `{` or `[`; not parsed), "text" (valid UTF-8 with no
  control character but tab, newline and carriage return), else "binary". `data` is the part of the payload the
  caller looked at (the decoder passes its preview, at least PEEK bytes): a UTF-8 character cut at the end of it
  does not make it binary.
"""

from __future__ import annotations

import re

__all__ = ["PAYLOAD_TYPES", "PEEK", "PREVIEW_CAP", "payload_preview", "payload_type"]

PREVIEW_CAP = 100  # Zeek's MQTT::max_payload_size
PEEK = 16  # the fewest payload bytes the decoder classifies, whatever its preview cap
PAYLOAD_TYPES = ("empty", "jpeg", "png", "gif", "json", "text", "binary")
_ASCII_PRINTABLE = bytes([9, 10, 13, *range(32, 127)])
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BLANK = b" \t\r\n"


def payload_preview(data: bytes, cap: int = PREVIEW_CAP) -> str:
    """The first `cap` bytes of a payload as text (`\\xNN` for bytes that are not UTF-8)."""
    return data[:cap].decode("utf-8", "backslashreplace")


def payload_type(data: bytes) -> str:
    """The kind of payload its first bytes show: empty, jpeg, png, gif, json, text or binary."""
    if not data:
        return "empty"
    b0 = data[0]
    if b0 == 0xFF:
        return "jpeg" if data[1:3] == b"\xd8\xff" else "binary"
    if b0 == 0x89 and data[1:8] == b"PNG\r\n\x1a\n":
        return "png"
    if b0 == 0x47 and data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data.isascii():
        if data.translate(None, _ASCII_PRINTABLE):
            return "binary"
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.reason != "unexpected end of data" or exc.start < len(data) - 3:
                return "binary"
            text = data[: exc.start].decode("utf-8", "replace")  # a character cut where the caller stopped looking
        if _CONTROL.search(text):
            return "binary"
    if b0 == 0x7B or b0 == 0x5B:
        return "json"
    if b0 in _BLANK:
        head = data.lstrip(_BLANK)[:1]
        return "json" if head == b"{" or head == b"[" else "text"
    return "text"
