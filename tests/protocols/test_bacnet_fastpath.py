"""The BACnet hot paths give exactly what the general paths give: decoder, ACK parsers, memo and encoded detail lines.

protocols/bacnet.py decodes the everyday message in one step (`_plain`), protocols/bacnet_acks.py reads the
commonest ACKs straight from the bytes, protocols/bacnet_values.py memoises service decodes by content, and
protocols/bacnet_lines.py encodes the ICSNPP detail rows from cached pieces. Each is checked against its general,
step-by-step reference on every BACnet datagram of the test traces and of a seeded mixed capture (thousands of
everyday messages), and on mutations of them.
"""

from __future__ import annotations

import random
import struct
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.capture.dissect import Dissector
from appliance.capture.pcapfile import PcapReader
from appliance.export.jsonl import _BASE, _ODD, JsonlLogs, _dumps
from protocols import bacnet_acks, bacnet_lines, bacnet_values
from protocols.bacnet import BacnetDecoder
from protocols.bacnet_acks import read_property_ack, read_property_multiple_ack
from protocols.bacnet_lines import log_lines
from protocols.bacnet_logs import log_rows
from protocols.base import FlowId, ProtocolEvent
from simulators.mixed_capture import write_mixed_capture

TRACES = Path(__file__).resolve().parents[1] / "traces"
BACNET_TRACES = sorted(p for p in TRACES.glob("*/*.pcap") if "bacnet" in p.name.lower() or p.parent.name == "hilti")
Datagram = tuple[FlowId, bytes, bool, float]


def datagrams(path: Path) -> Iterator[Datagram]:
    """Every UDP datagram to or from port 47808 of a capture, with its flow (the originator sent the first)."""
    dissector = Dissector()
    flows: dict[tuple[Any, ...], FlowId] = {}
    with PcapReader(path) as reader:
        for linktype, ts, data, wire_len in reader:
            pkt = dissector.dissect(linktype, ts, data, wire_len)
            if pkt is None or pkt.proto != 17 or 47808 not in (pkt.sport, pkt.dport) or not pkt.payload:
                continue
            a, b = (pkt.src, pkt.sport), (pkt.dst, pkt.dport)
            flow = flows.get((b, a))
            is_orig = flow is None
            if flow is None:
                flow = flows.get((a, b))
                if flow is None:
                    flow = flows[(a, b)] = FlowId(f"C{len(flows)}", a[0], a[1], b[0], b[1], "udp")
            yield flow, bytes(pkt.payload), is_orig, ts


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Datagram]:
    """The datagrams of the BACnet test traces, then of a 20,000-packet seeded mixed capture."""
    mixed = tmp_path_factory.mktemp("mix") / "mixed.pcap"
    write_mixed_capture(mixed, packets=20000, seed=11)
    out: list[Datagram] = []
    for path in [*BACNET_TRACES, mixed]:
        out.extend(datagrams(path))
    return out


def general(dec: BacnetDecoder, data: bytes, is_orig: bool, ts: float) -> list[ProtocolEvent]:
    """`feed` without its fast path."""
    if dec.failed or not data:
        return []
    return dec._datagram(data, len(data), is_orig, ts)


class CountingDecoder(BacnetDecoder):
    """The decoder, counting the messages its fast path decoded."""

    plain = 0

    def _plain(self, b: bytes, n: int, is_orig: bool, ts: float) -> list[ProtocolEvent] | None:
        out = super()._plain(b, n, is_orig, ts)
        if out is not None:
            CountingDecoder.plain += 1
        return out


def twin_decode(items: list[Datagram]) -> tuple[int, int]:
    """Feed the datagrams to per-flow decoders twice, with and without the fast path; the events must agree.
    Returns (events, messages that took the fast path)."""
    fast: dict[str, BacnetDecoder] = {}
    slow: dict[str, BacnetDecoder] = {}
    events = 0
    CountingDecoder.plain = 0
    for flow, data, is_orig, ts in items:
        a = fast.get(flow.uid) or fast.setdefault(flow.uid, CountingDecoder(flow))
        b = slow.get(flow.uid) or slow.setdefault(flow.uid, BacnetDecoder(flow))
        got = a.feed(data, is_orig, ts)
        assert got == general(b, data, is_orig, ts), data.hex()
        assert a._pending == b._pending
        events += len(got)
    return events, CountingDecoder.plain


def test_decoder_fast_path_matches_the_general_path(corpus: list[Datagram]) -> None:
    events, plain = twin_decode(corpus)
    assert events > 3000 and plain > 3000  # the mixed capture's everyday messages took the fast path


def test_decoder_fast_path_on_mutated_datagrams(corpus: list[Datagram]) -> None:
    rng = random.Random(47808)
    everyday = [d for d in corpus if len(d[1]) >= 8 and d[1][1] in (0x0A, 0x0B)][:3000]
    mutated: list[Datagram] = []
    for flow, data, is_orig, ts in everyday:
        raw = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            raw[rng.randrange(4, len(raw))] = rng.randrange(256)  # keep the BVLC header: reach the fast path
        mutated.append((flow, bytes(raw), is_orig, ts))
        cut = rng.randrange(8, len(data) + 1)
        mutated.append((flow, bytes(data[:4]) + bytes(((cut >> 8) & 0xFF, cut & 0xFF)) + data[6:cut], is_orig, ts))
    events, _ = twin_decode(mutated)
    assert events > 1000


def test_ack_parsers_agree_with_the_token_decoders(corpus: list[Datagram]) -> None:
    rng = random.Random(12)
    blobs: list[tuple[int, bytes]] = []
    for _flow, data, _o, _ts in corpus:
        if len(data) > 9 and data[1] in (0x0A, 0x0B) and data[4] == 1 and not data[5] & 0xA8 and data[6] == 0x30:
            blobs.append((data[8], data[9:]))
    assert sum(1 for svc, _ in blobs if svc == 14) > 200 and sum(1 for svc, _ in blobs if svc == 12) > 200
    for svc, blob in list(blobs):
        for _ in range(2):
            raw = bytearray(blob)
            raw[rng.randrange(len(raw))] = rng.randrange(256)
            blobs.append((svc, bytes(raw)))
        blobs.append((svc, blob[: rng.randrange(len(blob))]))
    taken = Counter()
    for svc, blob in blobs:
        if svc not in (12, 14):
            continue
        fast = (read_property_ack if svc == 12 else read_property_multiple_ack)(blob)
        ref: dict[str, Any] = {}
        problems = bacnet_values._run(bacnet_values._ACKS[svc], blob, ref)
        if fast is not None:
            taken[svc] += 1
            assert (fast, []) == (ref, problems), blob.hex()
        assert bacnet_values.decode_ack(svc, blob) == (ref, problems)
    assert taken[12] > 200 and taken[14] > 200


def test_shared_decodes_are_the_decodes_and_bounded() -> None:
    kinds = {bacnet_values.CONFIRMED: lambda s, d: bacnet_values.decode_request(True, s, d),
             bacnet_values.UNCONFIRMED: lambda s, d: bacnet_values.decode_request(False, s, d),
             bacnet_values.ACK: bacnet_values.decode_ack, bacnet_values.ERROR: bacnet_values.decode_error}
    read = bytes.fromhex("0c0000000119 55".replace(" ", ""))
    for which, decode in kinds.items():
        first = bacnet_values.decode_shared(which, 12, read)
        assert first == decode(12, read)
        assert bacnet_values.decode_shared(which, 12, bytes(read)) is first  # the same result, shared
    for i in range(3 * bacnet_values.CACHE_ENTRIES):
        bacnet_values.decode_shared(bacnet_values.CONFIRMED, 12, bytes.fromhex("0c00000001") + i.to_bytes(3, "big"))
    assert len(bacnet_values._young) <= bacnet_values.CACHE_ENTRIES
    assert len(bacnet_values._old) <= bacnet_values.CACHE_ENTRIES
    big = bytes(bacnet_values.CACHE_BLOB + 1)
    assert bacnet_values.decode_shared(bacnet_values.ACK, 12, big) is not bacnet_values.decode_shared(
        bacnet_values.ACK, 12, big)  # long blobs are decoded every time, never kept


def plain(ev: ProtocolEvent) -> bool:
    """True for an event the JSONL writer hands to `log_lines` (its row is its base and its fields)."""
    f = ev.fields
    return ev.flow is not None and ev.kind != "weird" and _BASE.isdisjoint(f) and _ODD.isdisjoint(map(type, f.values()))


def expected_lines(ev: ProtocolEvent) -> list[tuple[str, bytes]]:
    """The detail lines of an event through the reference path: its row, log_rows, the JSONL encoder."""
    row = JsonlLogs.event_row(JsonlLogs(Path("/nonexistent")), ev)[1]
    return [(log, _dumps(detail) + b"\n") for log, detail in log_rows(row)]


def encoded_lines(ev: ProtocolEvent) -> list[tuple[str, bytes]] | None:
    """log_lines(ev) one line per item, checking each item's count."""
    got = log_lines(ev)
    if got is None:
        return None
    out = []
    for log, text, n in got:
        lines = text.splitlines(keepends=True)
        assert len(lines) == n and text.endswith(b"\n")
        out.extend((log, line) for line in lines)
    return out


def test_encoded_detail_lines_are_the_encoded_rows(corpus: list[Datagram]) -> None:
    decoders: dict[str, BacnetDecoder] = {}
    taken = Counter()
    for flow, data, is_orig, ts in corpus:
        dec = decoders.get(flow.uid) or decoders.setdefault(flow.uid, BacnetDecoder(flow))
        for ev in dec.feed(data, is_orig, ts):
            if not plain(ev):
                continue
            for _ in range(2):  # the second time from the caches
                got = encoded_lines(ev)
                if got is not None:
                    assert got == expected_lines(ev), ev
            if got is not None:
                taken[ev.op] += 1
    assert taken["read_property"] > 500 and taken["read_property_multiple"] > 500 and taken["i_am"] > 20


F = FlowId("Cfast", "10.0.0.1", 47808, "10.0.0.2", 47808, "udp")


def event(op: str, kind: str = "request", **fields: Any) -> ProtocolEvent:
    return ProtocolEvent(5.25, F, "bacnet", op, kind, kind == "request", "10.0.0.1", "10.0.0.2", fields)


@pytest.mark.parametrize(
    "ev",
    [
        event("read_property", pdu_type="CONFIRMED_REQUEST", invoke_id=3, object_type="device", instance_number=7,
              property="object-name"),
        event("read_property", "response", pdu_type="COMPLEX_ACK", invoke_id=3, object_type="device",
              instance_number=7, property="object-list", array_index=2, value=["device: 7", "analog-input: 1"]),
        event("read_property", "response", pdu_type="COMPLEX_ACK", invoke_id=3, object_type="device",
              instance_number=7, property="object-list", value=[]),
        event("write_property", pdu_type="CONFIRMED_REQUEST", invoke_id=9, object_type="analog-value",
              instance_number=1, property="present-value", value="21.500000", priority=8),
        event("write_property_multiple", pdu_type="CONFIRMED_REQUEST", invoke_id=9, properties=[
            {"object_type": "analog-value", "instance_number": 1, "property": "present-value", "value": "1.0",
             "priority": 16}, "not a dict", {"property": "units", "value": [None, "percent"]}]),
        event("read_property_multiple", "response", pdu_type="COMPLEX_ACK", invoke_id=300, properties=[]),
        event("read_property_multiple", pdu_type="CONFIRMED_REQUEST", invoke_id=None, properties=[
            {"object_type": "device", "instance_number": 7, "property": "vendor-name"}]),
        event("read_property", pdu_type="CONFIRMED_REQUEST", invoke_id="3", object_type="device"),
        event("read_property", pdu_type="CONFIRMED_REQUEST", invoke_id=3, object_type=["odd"]),
        event("read_property", "response", pdu_type="COMPLEX_ACK", invoke_id=3, value=b"\x01"),
        event("read_property", "response", pdu_type="COMPLEX_ACK", invoke_id=3, value=7),
        event("read_property", pdu_type="CONFIRMED_REQUEST", invoke_id=3, snet=5, sadr="0a"),
        event("i_am", pdu_type="UNCONFIRMED_REQUEST", object_type="device", instance_number=7, vendor="ASHRAE"),
        event("who_is", pdu_type="UNCONFIRMED_REQUEST", forwarded_from="10.0.0.9:47808"),
        event("who_has", pdu_type="UNCONFIRMED_REQUEST", object_name="Zone 1"),
        event("i_have", pdu_type="UNCONFIRMED_REQUEST", device_id_type="device", device_id_number=7),
        event("i_am", pdu_type="CONFIRMED_REQUEST"),
        event("read_property", "exception", pdu_type="ERROR_PDU", invoke_id=3, error_code="unknown-property"),
        event("reinitialize_device", pdu_type="CONFIRMED_REQUEST", invoke_id=3, password=True),
        event("read_range", "response", pdu_type="COMPLEX_ACK", invoke_id=3, object_type="trend-log"),
        event("time_synchronization", pdu_type="UNCONFIRMED_REQUEST"),
    ],
)
def test_encoded_detail_lines_on_odd_and_rare_events(ev: ProtocolEvent) -> None:
    got = encoded_lines(ev)
    assert got is None or got == expected_lines(ev)


def test_encoded_detail_lines_leave_to_log_rows_what_they_cannot_encode() -> None:
    assert log_lines(event("read_property", pdu_type="CONFIRMED_REQUEST", invoke_id=3, snet=5, sadr="0a")) is None
    assert log_lines(event("read_property", "response", pdu_type="COMPLEX_ACK", invoke_id=3, value=b"\x01")) is None
    assert log_lines(event("read_property", "exception", pdu_type="ERROR_PDU", invoke_id=3)) is None
    assert log_lines(event("time_synchronization", pdu_type="UNCONFIRMED_REQUEST")) is None
    assert log_lines(ProtocolEvent(1.0, F, "bacnet", "bacnet_truncated_apdu", "weird", True, "a", "b", {})) == []


def test_encoded_detail_lines_never_mistake_equal_values_of_other_types() -> None:
    for instance in (1, True, 1.0, 1, "1"):
        for index in (None, 2, 2.0, False):
            ev = event("read_property", pdu_type="CONFIRMED_REQUEST", invoke_id=3, object_type="device",
                       instance_number=instance, property="object-name", array_index=index)
            assert encoded_lines(ev) == expected_lines(ev)


def test_encoded_detail_line_caches_are_bounded() -> None:
    for i in range(2 * bacnet_lines.CACHE_ENTRIES):
        ev = event("read_property", pdu_type="CONFIRMED_REQUEST", invoke_id=1, object_type="device",
                   instance_number=i, property="object-name")
        assert encoded_lines(ev) == expected_lines(ev)
        flow = FlowId(f"C{i}", "10.0.0.1", 47808, "10.0.0.2", 47808, "udp")
        other = ProtocolEvent(1.0, flow, "bacnet", "who_is", "request", True, "10.0.0.1", "10.0.0.255",
                              {"pdu_type": "UNCONFIRMED_REQUEST"})
        assert encoded_lines(other) == expected_lines(other)
    assert len(bacnet_lines._entries) <= bacnet_lines.CACHE_ENTRIES
    assert len(bacnet_lines._heads) <= bacnet_lines.CACHE_ENTRIES
    assert len(bacnet_lines._lists) <= bacnet_lines.CACHE_ENTRIES // 4
    assert len(bacnet_lines._entry_tails) <= bacnet_lines.CACHE_ENTRIES


def test_repeated_ack_results_are_shared_and_their_cache_bounded() -> None:
    def ack(instance: int, value: float) -> bytes:  # [0] analog-input, [1] ( [2] present-value [4] ( real ) )
        return (bytes.fromhex("0c") + (instance).to_bytes(4, "big") + bytes.fromhex("1e29554e44")
                + struct.pack(">f", value) + bytes.fromhex("4f29754e91624f1f"))

    first = read_property_multiple_ack(ack(1, 21.5))
    again = read_property_multiple_ack(ack(1, 22.5))
    assert first is not None and again is not None
    (value1, units1), (value2, units2) = first["properties"], again["properties"]
    assert units1 is units2 and value1 is not value2  # the unchanged result is one shared entry
    assert (value1["value"], value2["value"], units2["value"]) == ("21.500000", "22.500000", "percent")
    for i in range(2 * bacnet_acks.RESULT_CACHE):
        assert read_property_multiple_ack(ack(i, 1.0)) is not None
    assert len(bacnet_acks._results) <= bacnet_acks.RESULT_CACHE
