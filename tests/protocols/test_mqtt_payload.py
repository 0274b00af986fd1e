"""protocols/mqtt_payload.py: the payload preview and the payload type of a PUBLISH."""

from __future__ import annotations

import pytest

from protocols.mqtt_payload import PAYLOAD_TYPES, PEEK, PREVIEW_CAP, payload_preview, payload_type

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


@pytest.mark.parametrize(("data", "kind"), [
    (b"", "empty"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"\xff\xd8", "binary"),  # two bytes of a JPEG marker are not enough
    (PNG, "png"),
    (b"\x89PNX\r\n\x1a\n", "binary"),
    (b"GIF89a\x01\x00", "gif"),
    (b"GIF87a", "gif"),
    (b"GIF88a", "text"),
    (b'{"t": 21.5}', "json"),
    (b' \r\n\t[1, 2, 3]', "json"),
    (b'{"name": "caf\xc3\xa9"}', "json"),
    (b'{"bad": "\xff"}', "binary"),  # starts like JSON but is not UTF-8
    (b"21.5", "text"),
    (b"ON", "text"),
    (b"line 1\r\nline 2\ttab", "text"),
    ("température élevée".encode(), "text"),
    ("温度".encode(), "text"),
    (b"\x00\x01\x02\x03", "binary"),
    (b"almost text\x00", "binary"),
    (b"bell\x07", "binary"),
    (b"del\x7f", "binary"),
    ("c1 control \x85".encode(), "binary"),
    (b"\xc3\x28", "binary"),  # an invalid continuation byte
    (b"\xfe\xfe\xfe", "binary"),
])  # fmt: skip
def test_payload_type_from_first_bytes(data: bytes, kind: str) -> None:
    assert payload_type(data) == kind
    assert kind in PAYLOAD_TYPES


def test_a_character_cut_where_the_preview_stops_is_still_text() -> None:
    text = ("x" * 99 + "é").encode()  # 101 bytes: the cap of 100 cuts the é in two
    assert payload_type(text[:PREVIEW_CAP]) == "text"
    assert payload_type(("{" + "€" * 40).encode()[:PREVIEW_CAP]) == "json"
    assert payload_type(b"abc\xe2\x82") == "text" and payload_type(b"abc\xe2") == "text"
    assert payload_type(b"\xe2\x82abc") == "binary"  # a cut character anywhere else is not UTF-8


def test_preview_caps_bytes_and_escapes_what_is_not_utf8() -> None:
    assert payload_preview(b"0123456789", 4) == "0123"
    assert payload_preview(b"A" * 500) == "A" * PREVIEW_CAP
    assert payload_preview(b"\xff\xd8ok") == "\\xff\\xd8ok"
    assert payload_preview(("x" * 99 + "é").encode()) == "x" * 99 + "\\xc3"  # the cut character as an escape
    assert payload_preview(b"") == "" and PEEK <= PREVIEW_CAP
