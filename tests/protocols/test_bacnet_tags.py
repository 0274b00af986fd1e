"""The BACnet tag codec (protocols/bacnet_tags.py) and name tables (protocols/bacnet_enums.py).

Primitive tags are encoded by bacpypes3 0.0.110 and read back by bacpypes3 too, so every value is checked
against an independent decoder; the ICSNPP texts are checked against ICSNPP's rendering rules (its
bacnet-analyzer.pac `parse_tag` and its baselines). Hand cases cover what bacpypes3 does not encode:
character sets, extended tag numbers and lengths, malformed and truncated tags.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest
from bacpypes3 import apdu as A
from bacpypes3 import basetypes as B
from bacpypes3.constructeddata import Any as AnyValue
from bacpypes3.constructeddata import ArrayOf
from bacpypes3.pdu import PDUData
from bacpypes3.primitivedata import (
    BitString,
    Boolean,
    CharacterString,
    Date,
    Double,
    Enumerated,
    Integer,
    Null,
    ObjectIdentifier,
    OctetString,
    Real,
    Tag,
    TagList,
    Time,
    Unsigned,
)

from protocols import bacnet_enums as en
from protocols.bacnet_tags import (
    APP,
    CHARSET,
    CLOSE,
    CTX,
    INVALID_TAG,
    INVALID_VALUE,
    NESTING,
    OPEN,
    TRUNCATED,
    constructed,
    render,
    tokenize,
)
from protocols.bacnet_values import decode_ack


def tag_bytes(obj: Any) -> bytes:
    """The application-tagged encoding bacpypes3 makes of a primitive value."""
    e = obj.encode()
    return bytes((e if isinstance(e, TagList) else TagList([e])).encode().pduData)


def _dt(parts: tuple[int, ...], sep: str) -> str:
    return sep.join("*" if x == 255 else f"{x:02d}" for x in parts)


def plain(x: Any) -> Any:
    """bacpypes3's reading of a primitive, as the plain JSON value our decoder gives."""
    if isinstance(x, Null):
        return None
    if isinstance(x, Boolean):
        return bool(x)
    if isinstance(x, Real | Double):
        return float(x)
    if isinstance(x, Unsigned | Integer | Enumerated):
        return int(x)
    if isinstance(x, OctetString):
        return bytes(x).hex()
    if isinstance(x, CharacterString):
        return str(x)
    if isinstance(x, BitString):
        return "".join("T" if bit else "F" for bit in x)
    if isinstance(x, Date):
        y = x[0]
        return ("*" if y == 255 else str(1900 + y)) + "-" + _dt(tuple(x[1:3]), "-")
    if isinstance(x, Time):
        return _dt(tuple(x[:3]), ":") + "." + _dt((x[3],), "")
    if isinstance(x, ObjectIdentifier):
        return {"object_type": en.object_type_name(int(x[0])), "instance_number": int(x[1])}
    raise AssertionError(f"unexpected {type(x)}")


PRIMITIVES: list[tuple[Any, str]] = [
    (Null(()), ""),
    (Boolean(True), "true"),
    (Boolean(False), "false"),
    (Unsigned(0), "0"),
    (Unsigned(426), "426"),
    (Unsigned(2**32 - 1), "4294967295"),
    (Unsigned(65536), "65536"),
    (Integer(-480), "-480"),  # utc-offset in ICSNPP's services baseline
    (Integer(-8388608), "-8388608"),  # 3 bytes: ICSNPP prints 0 for these
    (Integer(2**31 - 1), "2147483647"),
    (Real(21.5), "21.500000"),
    (Real(55.0), "55.000000"),  # ICSNPP: read-property-multiple-ack ... 55.000000
    (Real(-0.125), "-0.125000"),
    (Double(3.141592653589793), "3.141593"),
    (OctetString(b"\x00\x01\xab"), "0001ab"),
    (CharacterString("CRAH-01"), "CRAH-01"),
    (CharacterString("Lithonia Lighting, Inc."), "Lithonia Lighting, Inc."),
    (CharacterString("x" * 300), "x" * 300),  # extended length, 254 form
    (BitString([0, 1, 0, 0]), "FTFFFFFF"),  # status-flags: ICSNPP prints the 4 unused bits too
    (BitString([1] * 9), "TTTTTTTTTFFFFFFF"),
    (Enumerated(62), "62"),
    (Date((105, 5, 20, 5)), "5/20/2005"),  # ICSNPP: local-date 5/20/2005
    (Date((255, 255, 1, 255)), "255/1/2155"),
    (Time((8, 27, 14, 0)), "8:27:14.0"),  # ICSNPP: local-time 8:27:14.0
    (ObjectIdentifier(("binary-input", 20001)), "binary-input: 20001"),
    (ObjectIdentifier(("device", 4194303)), "device: 4194303"),
    (ObjectIdentifier((200, 7)), "200: 7"),  # proprietary object type
]


@pytest.mark.parametrize(("obj", "text"), PRIMITIVES, ids=lambda v: type(v).__name__ if not isinstance(v, str) else "")
def test_primitive_matches_bacpypes3_and_icsnpp_text(obj: Any, text: str) -> None:
    data = tag_bytes(obj)
    toks, bad = tokenize(data, 0, len(data))
    assert bad is None and len(toks) == 1 and toks[0][0] == APP
    probs: list[tuple[str, str]] = []
    value, got_text = render(data, toks[0], probs)
    expected = plain(Tag.decode(PDUData(data)).app_to_object())
    assert value == expected
    assert got_text == text
    assert probs == []


def test_special_reals_and_tag_positions() -> None:
    data = b"\x00" + tag_bytes(Real(math.inf)) + tag_bytes(Real(math.nan))
    toks, bad = tokenize(data, 1, len(data))
    assert bad is None and [t[2:] for t in toks] == [(2, 4), (7, 4)]
    assert render(data, toks[0], [])[1] == "inf"
    v, t = render(data, toks[1], [])
    assert math.isnan(v) and t == "nan"
    data = b"\x25\x05\x01\x00\x00\x00\x05"  # a 5-byte unsigned (bacpypes3 encodes at most 4 bytes)
    assert render(data, tokenize(data, 0, len(data))[0][0], []) == (2**32 + 5, str(2**32 + 5))


CHARSETS = [
    (b"\x00caf\xc3\xa9", "café"),  # UTF-8
    (b"\x04\x00c\x00a\x00f\x00\xe9", "café"),  # UCS-2 big-endian
    (b"\x05caf\xe9", "café"),  # ISO 8859-1
    (b"\x03\x00\x00\x00c\x00\x01\xf6\x00", "c\U0001f600"),  # UCS-4
    (b"\x01\x03\xa4" + "温度２".encode("cp932"), "温度２"),  # DBCS, code page 932 (as in ICSNPP's trace)
    (b"\x01\x00\x09ab", "ab"),  # DBCS with a code page Python does not know: read as Latin-1
    (b"\x02" + bytes(c & 0x7F for c in "温度".encode("euc_jp")), "温度"),  # JIS X 0208
    (b"\x00ab\x00cd", "ab\x00cd"),  # embedded NUL: ICSNPP's text stops there
]


@pytest.mark.parametrize(("content", "expected"), CHARSETS)
def test_character_sets(content: bytes, expected: str) -> None:
    data = bytes([0x75, len(content)]) + content
    toks, bad = tokenize(data, 0, len(data))
    probs: list[tuple[str, str]] = []
    value, text = render(data, toks[0], probs)
    assert bad is None and probs == []
    assert value == expected
    assert text == expected.split("\x00")[0]


def test_unknown_character_set_is_reported_and_still_shown() -> None:
    data = b"\x74\x09abc"
    probs: list[tuple[str, str]] = []
    assert render(data, tokenize(data, 0, len(data))[0][0], probs) == ("abc", "abc")
    assert probs == [(CHARSET, "character set 9")]


def test_extended_tag_numbers_and_lengths() -> None:
    long = bytes(range(256)) * 300  # 76800 bytes: the 4-byte length form
    data = (b"\xf9\x20\x05"  # context tag 32, 1 byte
            + b"\x65\xfe\x01\x2c" + b"\x11" * 300  # octet string, 2-byte length
            + b"\x65\xff" + len(long).to_bytes(4, "big") + long
            + b"\xfe\x40" + b"\x21\x07" + b"\xff\x40")  # opening/closing context tag 64
    toks, bad = tokenize(data, 0, len(data))
    assert bad is None
    assert [(k, n, ln) for k, n, _, ln in toks] == [(CTX, 32, 1), (APP, 6, 300), (APP, 6, len(long)),
                                                   (OPEN, 64, 0), (APP, 2, 1), (CLOSE, 64, 0)]
    assert render(data, toks[2], []) == (f"<octets len={len(long)}>",) * 2  # ICSNPP's limit for long values
    assert constructed(data, toks, 3, []) == ([7], ["7"], 6)


def test_nested_constructed_values_are_flattened_in_order() -> None:
    # priority-array-like: [3] { null, real 21.5, [0] { unsigned 1 } , enumerated 1 }
    data = b"\x3e\x00\x44\x41\xac\x00\x00\x0e\x21\x01\x0f\x91\x01\x3f"
    toks, bad = tokenize(data, 0, len(data))
    assert bad is None
    values, texts, nxt = constructed(data, toks, 0, [], en.EVENT_STATES)
    assert values == [None, 21.5, 1, 1]
    assert texts == ["", "21.500000", "fault", "fault"]  # names for unsigned/enumerated when a table is given
    assert nxt == len(toks)
    # a context-tagged primitive inside a value has no type: its content in hex
    data = b"\x3e\x09\xff\x3f"
    toks, _ = tokenize(data, 0, len(data))
    assert constructed(data, toks, 0, []) == (["ff"], ["ff"], 3)


@pytest.mark.parametrize(("data", "problem"), [
    (b"\x44\x41\xac", TRUNCATED),  # real cut short
    (b"\x75", TRUNCATED),  # extended length missing
    (b"\x65\xfe\x01", TRUNCATED),
    (b"\x65\xff\x00\x00", TRUNCATED),
    (b"\xf9", TRUNCATED),  # extended tag number missing
    (b"\x3e\x21\x01", TRUNCATED),  # opening tag never closed
    (b"\x3f", INVALID_TAG),  # closing without opening
    (b"\x3e\x4f", INVALID_TAG),  # closing the wrong tag
    (b"\x26", INVALID_TAG),  # application tag with a length code of 6
    (b"\x12", INVALID_TAG),  # application boolean with value 2
    (b"\x0e" * 40 + b"\x0f" * 40, NESTING),
])
def test_malformed_tags_stop_the_tokenizer(data: bytes, problem: str) -> None:
    toks, bad = tokenize(data, 0, len(data))
    assert bad is not None and bad[0] == problem
    for k, _, start, n in toks:
        assert k >= OPEN or start + n <= len(data)


@pytest.mark.parametrize(("data", "problem"), [
    (b"\x43\x41\xac\x00", INVALID_VALUE),  # real of 3 bytes
    (b"\xc2\x00\x01", INVALID_VALUE),  # object identifier of 2 bytes
    (b"\xa3\x01\x02\x03", INVALID_VALUE),  # date of 3 bytes
    (b"\x20", INVALID_VALUE),  # unsigned without content
    (b"\x25\x09" + b"\x01" * 9, INVALID_VALUE),  # unsigned of 9 bytes
    (b"\x01\x00", INVALID_VALUE),  # null with content
    (b"\x82\x09\x00", INVALID_VALUE),  # bit string with 9 unused bits
    (b"\x80", INVALID_VALUE),  # bit string without its unused-bits octet
    (b"\x70", INVALID_VALUE),  # character string without its character set
    (b"\xd1\x00", INVALID_TAG),  # reserved application tag 13
])
def test_invalid_primitive_contents_are_reported(data: bytes, problem: str) -> None:
    toks, bad = tokenize(data, 0, len(data))
    assert bad is None
    probs: list[tuple[str, str]] = []
    render(data, toks[0], probs)
    assert [p[0] for p in probs] == [problem]


def test_long_values_render_as_icsnpp_placeholders() -> None:
    for tag, n, text in ((0x75, 4098, "<string len=4097>"), (0x85, 513, "<bits len=513>")):
        data = bytes([tag, 0xFE]) + n.to_bytes(2, "big") + b"\x00" * n
        toks, _ = tokenize(data, 0, len(data))
        assert render(data, toks[0], []) == (text, text)


def test_every_prefix_of_a_value_is_safe() -> None:
    data = (b"\x0c\x00\xc0\x4e\x21\x19\x4c\x29\x02\x3e" + tag_bytes(CharacterString("x" * 20))
            + tag_bytes(BitString([1, 0])) + b"\x3f")
    for cut in range(len(data)):
        toks, bad = tokenize(data, 0, cut)
        assert cut == 0 or bad is not None or toks
        for t in toks:
            if t[0] < OPEN:
                render(data[:cut], t, [])


def test_fuzzed_bytes_never_escape_their_bounds() -> None:
    rng = random.Random(20240611)
    for _ in range(5000):
        data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 40)))
        p = rng.randrange(0, 3)
        toks, bad = tokenize(data, p, len(data))
        assert bad is None or (isinstance(bad[0], str) and isinstance(bad[1], str))
        depth = 0
        for k, num, start, n in toks:
            if k == APP and num == 1:
                assert n in (0, 1)
            elif k < OPEN:
                assert p <= start and start + n <= len(data)
                text = render(data, (k, num, start, n), [])[1]
                assert isinstance(text, str)
            depth += 1 if k == OPEN else -1 if k == CLOSE else 0
            assert depth >= 0


# ------------------------------------------------------------------------------------------- ICSNPP texts


def rp_ack(prop_id: str, value: Any, **kw: Any) -> dict[str, Any]:
    data = bytes(A.ReadPropertyACK(objectIdentifier=("analog-input", 1), propertyIdentifier=prop_id,
                                   propertyValue=value, **kw).encode().pduData)
    fields, problems = decode_ack(12, data)
    assert problems == []
    return fields


def test_value_texts_follow_icsnpp() -> None:
    # ICSNPP's bacnet-analyzer.pac parse_tag and main.zeek: reals with %f, names for a few enumerated properties
    assert rp_ack("present-value", AnyValue(Real(21.5)))["value"] == "21.500000"
    assert rp_ack("units", AnyValue(B.EngineeringUnits("degrees-celsius")))["value"] == "degrees-celsius"
    assert rp_ack("object-type", AnyValue(B.ObjectType("device")))["value"] == "device"
    assert rp_ack("system-status", AnyValue(B.DeviceStatus("operational")))["value"] == "operational"
    assert rp_ack("segmentation-supported", AnyValue(B.Segmentation("segmented-both")))["value"] == "segmented-both"
    assert rp_ack("reliability", AnyValue(B.Reliability("no-sensor")))["value"] == "no-sensor"
    f = rp_ack("event-state", AnyValue(B.EventState("high-limit")))
    assert (f["value"], f["values"]) == ("high-limit", [3])
    f = rp_ack("present-value", AnyValue(B.BinaryPV("active")))  # ICSNPP keeps the number here
    assert (f["value"], f["values"]) == ("1", [1])
    f = rp_ack("status-flags", AnyValue(B.StatusFlags([0, 1, 0, 0])))  # ICSNPP prints the 4 unused bits
    assert (f["value"], f["values"]) == ("FTFFFFFF", ["FTFF"])
    f = rp_ack("object-list", AnyValue(ArrayOf(ObjectIdentifier)([("binary-input", 20001), ("schedule", 399)])))
    assert f["value"] == ["binary-input: 20001", "schedule: 399"]  # ICSNPP: one bacnet_property row each
    assert f["values"] == [{"object_type": "binary-input", "instance_number": 20001},
                           {"object_type": "schedule", "instance_number": 399}]
    f = rp_ack("object-list", AnyValue(Unsigned(426)), propertyArrayIndex=0)
    assert (f["array_index"], f["value"]) == (0, "426")
    f = rp_ack("object-list", AnyValue(ArrayOf(ObjectIdentifier)([])))
    assert f["values"] == [] and "value" not in f
    f = rp_ack("priority-array", AnyValue(ArrayOf(B.PriorityValue)([B.PriorityValue(null=Null(()))] * 15
                                                                   + [B.PriorityValue(real=Real(18))])))
    assert f["value"] == [""] * 15 + ["18.000000"] and f["values"] == [None] * 15 + [18.0]


def test_read_property_multiple_error_is_icsnpp_property_error() -> None:
    data = bytes.fromhex("0c000000011e29755e910291205f1f")  # analog-input 1 units: property/unknown-property
    assert decode_ack(14, data) == ({"properties": [{
        "object_type": "analog-input", "instance_number": 1, "property": "units", "error_class": "property",
        "error_code": "unknown-property", "value": "PropertyError"}]}, [])


# ----------------------------------------------------------------------------------------------- name tables

# our spellings where bacpypes3's camelCase splitting or the standard's editions differ (module docstring)
_OURS = {
    ("ERROR_CODES", 22): "property-is-not-a-list", ("ERROR_CODES", 148): "not-a-bacnet-sc-hub",
    ("ERROR_CODES", 164): "http-not-a-server", ("UNITS", 232): "decibels-a",
    ("REJECT_REASONS", 3): "invalid-parameter-data-type",
}


@pytest.mark.parametrize(("table", "enum"), [
    ("OBJECT_TYPES", B.ObjectType), ("PROPERTY_IDS", B.PropertyIdentifier), ("ERROR_CLASSES", B.ErrorClass),
    ("ERROR_CODES", B.ErrorCode), ("SEGMENTATION", B.Segmentation), ("EVENT_STATES", B.EventState),
    ("DEVICE_STATUS", B.DeviceStatus), ("RELIABILITY", B.Reliability), ("NOTIFY_TYPES", B.NotifyType),
    ("LOGGING_TYPES", B.LoggingType), ("UNITS", B.EngineeringUnits), ("REJECT_REASONS", A.RejectReason),
    ("ABORT_REASONS", A.AbortReason),
    ("DEVICE_STATES", B.DeviceCommunicationControlRequestEnableDisable),
    ("REINIT_STATES", B.ReinitializeDeviceRequestReinitializedStateOfDevice),
])
def test_name_tables_agree_with_bacpypes3(table: str, enum: Any) -> None:
    ours: dict[int, str] = getattr(en, table)
    theirs = {k: v for k, v in enum._asn1_map.items() if table != "ABORT_REASONS" or k < 64}
    for k, v in theirs.items():
        assert ours[k] == _OURS.get((table, k), v), (table, k)
    assert all(name == name.lower() or table == "UNITS" for name in ours.values())
    extra = set(ours) - set(theirs)  # only ICSNPP's names for numbers bacpypes3 lacks
    assert extra <= {1, 6, 12, 15, 28, 95, 101, 129, 138, 194, 198, 199, 200, 201, 252, 254} | set(range(47808, 47816))


def test_unknown_and_proprietary_numbers() -> None:
    assert en.object_type_name(8) == "device" and en.object_type_name(100) == "unknown-100"
    assert en.object_type_name(130) == "130"
    assert en.property_name(85) == "present-value" and en.property_name(514) == "514"
    assert en.property_name(95) == "protocol-conformance-class"  # read in ICSNPP's services trace
    assert en.property_name(510) == "unknown-510"
    assert en.name(en.ERROR_CODES, 26) == "password-failure" and en.name(en.SEGMENTATION, 9) == "unknown-9"


def test_vendor_table_transcribed_from_icsnpp_with_its_licence() -> None:
    data = Path(en.__file__).with_name("data")
    lines = (data / "bacnet_vendors.tsv").read_text(encoding="utf-8").splitlines()
    assert "cisagov/icsnpp-bacnet" in lines[0] and lines[1] == "vendor_id\tvendor_name"
    assert [int(line.split("\t")[0]) for line in lines[2:]] == list(range(1175))
    assert "BSD 3-Clause" in (data / "bacnet_vendors.LICENSE.txt").read_text(encoding="utf-8")
    assert en.VENDORS is en.vendors() and len(en.VENDORS) == 1175
    # names in ICSNPP's baselines (discovery logs) and a few others
    assert en.vendor_name(154) == "Unitec Corporation"
    assert en.vendor_name(42) == "Acuity Brands Lighting Inc."
    assert en.vendor_name(24) == "Automated Logic Corporation"
    assert en.vendor_name(21) == "Dorsette\u2019s Inc." and en.vendor_name(265) == "Dimension Software Inc."
    assert en.vendor_name(1174) == "DAS Integrator Pte Ltd" and en.vendor_name(99999) == "unknown-99999"
