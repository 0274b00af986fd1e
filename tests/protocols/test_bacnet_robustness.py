"""Tests of the BACnet decoder's robustness: malformed datagrams, protocol violations, segmentation, fuzzing."""

from __future__ import annotations

import random

import bacnet_vectors as v
import pytest
from bacpypes3.apdu import ReadPropertyRequest
from bacpypes3.primitivedata import ObjectIdentifier
from test_bacnet import ETH, FLOW, KINDS, NETWORK, ip, messages, msg, run, weird_names

import protocols.bacnet as bacnet
from protocols import bacnet_segments
from protocols.bacnet import BacnetDecoder, BacnetEthernetDecoder
from protocols.base import ProtocolEvent

# ---- malformed input ----------------------------------------------------------------------------------------

GOOD = msg(v.unconfirmed(8))
MALFORMED = [
    ("short BVLC", bytes.fromhex("810a00"), "bacnet_truncated_bvlc"),
    ("not BVLC type", bytes.fromhex("820a0008") + GOOD[4:], "bacnet_invalid_bvlc_type"),
    ("length too long", bytes.fromhex("810a0010") + GOOD[4:], "bacnet_bvlc_length_mismatch"),
    ("length below header", bytes.fromhex("810a0002") + GOOD[4:], "bacnet_bvlc_length_mismatch"),
    ("forwarded without source", bytes.fromhex("81040008") + GOOD[4:], "bacnet_truncated_bvlc_message"),
    ("result without code", bytes.fromhex("81000004"), "bacnet_truncated_bvlc_message"),
    ("register without ttl", bytes.fromhex("8105000500"), "bacnet_truncated_bvlc_message"),
    ("read-bdt with data", bytes.fromhex("8102000600ff"), "bacnet_bvlc_extra_data"),
    ("odd bdt", bytes.fromhex("81010009") + bytes(5), "bacnet_invalid_bvlc_table"),
    ("no NPDU", bytes.fromhex("810a0005") + b"\x01", "bacnet_truncated_npdu"),
    ("NPDU version 2", bytes.fromhex("810a0008021008ff"), "bacnet_invalid_npdu_version"),
    ("DNET cut", bytes.fromhex("810a00080120ffff"), "bacnet_truncated_npdu"),
    ("DADR cut", bytes.fromhex("810a000a012000030385"), "bacnet_truncated_npdu"),
    ("SADR cut", bytes.fromhex("810a000901080003"), "bacnet_truncated_npdu"),
    ("hop count missing", bytes.fromhex("810a00090120ffff00"), "bacnet_truncated_npdu"),
    ("SLEN 0", bytes.fromhex("810a000b01080005001008"), "bacnet_invalid_npdu_source"),
    ("no message type", bytes.fromhex("810a00060180"), "bacnet_truncated_network_message"),
    ("network msg cut", bytes.fromhex("810a0008018002"), "bacnet_truncated_network_message"),
    ("network msg extra", bytes.fromhex("810a000b01800900010203"), "bacnet_network_message_extra_data"),
    ("no APDU", bytes.fromhex("810a00060100"), "bacnet_truncated_apdu"),
    ("confirmed cut", bytes.fromhex("810a0008010000050c"), "bacnet_truncated_apdu"),
    ("segmented header cut", bytes.fromhex("810a000a0100080501020c"), "bacnet_truncated_apdu"),
    ("complex ack cut", bytes.fromhex("810a0008010030"), "bacnet_truncated_apdu"),
    ("PDU type 9", bytes.fromhex("810a0008010090"), "bacnet_unknown_pdu_type"),
    ("simple ack extra", bytes.fromhex("810a000a0100200c0fff"), "bacnet_apdu_extra_data"),
    ("segment ack extra", bytes.fromhex("810a000b01004001020304"), "bacnet_apdu_extra_data"),
]


@pytest.mark.parametrize(("data", "name"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_datagrams_are_weird(data: bytes, name: str) -> None:
    dec = BacnetDecoder(FLOW)
    dec.feed(GOOD, True, 1.0)  # the flow is BACnet: later bad datagrams are weirds, not a violation
    events = dec.feed(data, True, 2.0)
    assert name in weird_names(events)
    assert all(e.fields["name"].startswith("bacnet_") for e in events if e.kind == "weird")
    assert not dec.failed
    assert messages(dec.feed(GOOD, False, 3.0))[0].op == "who_is"


def test_first_datagram_not_bacnet_is_a_protocol_violation() -> None:
    dec = BacnetDecoder(FLOW)
    events = dec.feed(b"\x16\x03\x01\x00\xa5hello", True, 1.0)
    assert [e.op for e in events] == ["bacnet_protocol_violation"] and dec.failed
    assert dec.feed(GOOD, True, 2.0) == [] and dec.close(3.0) == []
    assert BacnetDecoder(FLOW).feed(bytes.fromhex("810a0010") + GOOD[4:], True, 1.0)[0].op == (
        "bacnet_protocol_violation")


def test_bad_headers_in_a_row_give_up() -> None:
    dec = BacnetDecoder(FLOW)
    dec.feed(GOOD, True, 1.0)
    names = [n for i in range(bacnet.MAX_BAD) for n in weird_names(dec.feed(b"\x00\x01\x02\x03", True, 2.0 + i))]
    assert names == ["bacnet_invalid_bvlc_type"] * (bacnet.MAX_BAD - 1) + ["bacnet_protocol_violation"]
    assert dec.failed


def test_probe() -> None:
    assert BacnetDecoder.probe(GOOD, True) and BacnetDecoder.probe(v.bvll(0x00, code=0), False)
    for data in (b"", GOOD[:3], GOOD[:-1], b"\x82" + GOOD[1:], bytes.fromhex("810d0004"), b"GET / HTTP/1.1\r\n"):
        assert not BacnetDecoder.probe(data, True)
    assert BacnetEthernetDecoder.probe(v.npdu(v.unconfirmed(8)), True)
    assert not BacnetEthernetDecoder.probe(b"\x02\x00", True)


# ---- segmentation -------------------------------------------------------------------------------------------


def segments(data: bytes, size: int, invoke: int = 94, service: int = 12) -> list[bytes]:
    """A complex ACK's service data cut into segmented Complex-ACK datagrams (bacpypes3 APCI)."""
    parts = [data[i : i + size] for i in range(0, len(data), size)]
    return [msg(v.complex_ack(service, invoke, part, apduSeg=True, apduMor=i < len(parts) - 1, apduSeq=i & 0xFF,
                              apduWin=3)) for i, part in enumerate(parts)]


RPM_ACK = v.apdu(ReadPropertyRequest(objectIdentifier=ObjectIdentifier("device,254"),
                                     propertyIdentifier="object-list"), 1)[4:] * 80  # any service data


def test_segmented_complex_ack_is_reassembled() -> None:
    req = msg(v.confirmed(12, b"", invoke_id=94))
    parts = segments(RPM_ACK, 100)
    stream = [(req, True)] + [(p, False) for p in parts[:2]] + [(msg(v.segment_ack(94, 1, 3)), True)]
    stream += [(p, False) for p in parts[2:]]
    dec, events = run(stream)
    acks = [e for e in messages(events) if e.fields.get("pdu_type") == "COMPLEX_ACK"]
    assert len(acks) == 1
    f = acks[0].fields
    assert acks[0].op == "read_property" and acks[0].ts == 100.0 + len(stream) - 1
    assert (f["segmented"], f["segments"], f["sequence_number"], f["more_follows"], f["window_size"]) == (
        True, len(parts), len(parts) - 1, False, 3)
    assert not dec._pending and len(dec._segments) == 0


def test_segmentation_problems() -> None:
    parts = segments(RPM_ACK, 100)
    dec, events = run([(parts[0], False), (parts[2], False), (parts[3], False)])
    assert weird_names(events) == ["bacnet_segment_out_of_order"] and messages(events) == []
    events = [e for p in parts[4:] for e in dec.feed(p, False, 200.0)]  # the rest of it, quietly dropped
    assert events == [] and len(dec._segments) == 0
    events = [e for p in parts for e in dec.feed(p, False, 300.0)]  # then sent again whole
    assert [e.fields["segments"] for e in messages(events)] == [len(parts)]
    _, events = run([(parts[1], False)])
    assert weird_names(events) == ["bacnet_segment_without_start"]
    # a retransmitted segment is taken once
    _, events = run([(parts[0], False), (parts[1], False), (parts[1], False), (parts[0], False)]
                    + [(p, False) for p in parts[2:]])
    assert not [n for n in weird_names(events) if "segment" in n]
    assert messages(events)[0].fields["segments"] == len(parts)
    # never completed: reported at close
    dec, _ = run([(parts[0], False), (parts[1], False)])
    assert weird_names(dec.close(500.0)) == ["bacnet_incomplete_segmented_apdu"]
    assert dec.close(501.0) == []
    # an abort ends the transfer
    dec, _ = run([(parts[0], False), (msg(v.abort(94, 4, server=False)), True)])
    assert dec.close(500.0) == []


def test_segmentation_limits() -> None:
    r = bacnet_segments.Reassembler()
    for i in range(bacnet_segments.MAX_MESSAGES):
        assert r.add(("k", i), 0, True, b"x") == (None, [])
    done, problems = r.add(("k", "new"), 0, True, b"x")
    assert done is None and [p[0] for p in problems] == ["bacnet_segment_table_full"]
    assert len(r) == bacnet_segments.MAX_MESSAGES
    r.clear()
    big = bytes(bacnet_segments.MAX_BYTES // 4 + 1)
    names = [p[0] for seq in range(5) for p in r.add("big", seq, True, big)[1]]
    assert names == ["bacnet_segment_overflow", "bacnet_segment_without_start"]
    assert r.add("one", 0, False, b"abc") == ((b"abc", 1), [])
    r.clear()
    seqs = [i & 0xFF for i in range(600)]  # sequence numbers wrap at 256
    for seq in seqs[:-1]:
        assert r.add("wrap", seq, True, b"ab")[1] == []
    assert r.add("wrap", seqs[-1], False, b"ab") == ((b"ab" * 600, 600), [])


def test_segmented_confirmed_request() -> None:
    data = bytes(range(200))
    parts = [data[:120], data[120:]]
    dgrams = [msg(v.confirmed(16, part, invoke_id=3, apduSeg=True, apduMor=i == 0, apduSeq=i, apduWin=2))
              for i, part in enumerate(parts)]
    _, events = run([(d, True) for d in dgrams])
    (ev,) = messages(events)
    assert ev.op == "write_property_multiple" and ev.fields["segments"] == 2 and ev.fields["invoke_id"] == 3


# ---- fuzzing ---------------------------------------------------------


def corpus() -> list[bytes]:
    """Valid datagrams of every kind, to mutate."""
    out = [GOOD, msg(v.confirmed(12, bytes.fromhex("0c020000fe194c"))), msg(v.reject(1, 2)), msg(v.abort(1, 2)),
           msg(v.segment_ack(1, 2, 3)), msg(v.error(12, 1, bytes.fromhex("91029120"))),
           msg(v.complex_ack(12, 1, bytes.fromhex("0c020000fe194c29003e2201aa3f"))),
           msg(v.unconfirmed(0, bytes.fromhex("c4020000fe2204009100219a")), dadr="*:*", sadr="3:0x85")]
    out += segments(RPM_ACK, 120)
    out += [v.bvll(f, v.npdu(v.unconfirmed(8)), source="10.0.0.3:47808") for f in (4, 9, 10, 11)]
    out += [v.bvll(0, code=0x30), v.bvll(1, bdt=["10.0.0.1/24:47808"]), v.bvll(5, ttl=9), v.bvll(2), v.bvll(6),
            v.bvll(7, fdt=[("10.0.0.7:47808", 60, 30)]), v.bvll(8, address="10.0.0.7:47808")]
    out += [ip(v.network(m)) for m, _, _ in NETWORK]
    return out


def check(events: list[ProtocolEvent]) -> None:
    for e in events:
        assert e.kind in KINDS and isinstance(e.op, str) and e.op and isinstance(e.fields, dict)
        assert e.protocol == "bacnet"
        if e.kind == "weird":
            assert e.fields["name"].startswith("bacnet_") and e.op == e.fields["name"]


def test_fuzz_random_and_mutated_datagrams() -> None:
    rng = random.Random(20240508)
    base = corpus()
    for round_ in range(200):
        dec = BacnetDecoder(FLOW)
        eth = BacnetEthernetDecoder(ETH)
        for i in range(100):
            pick = rng.random()
            data = bytearray(rng.choice(base))
            if pick < 0.2:
                data = bytearray(rng.randbytes(rng.randrange(0, 40)))
            elif pick < 0.6:
                for _ in range(rng.randrange(1, 5)):
                    data[rng.randrange(len(data))] = rng.randrange(256)
            elif pick < 0.8:
                data = data[: rng.randrange(len(data) + 1)]
            else:
                data[2:4] = len(data).to_bytes(2, "big")  # consistent length, random body byte
                if len(data) > 4:
                    data[rng.randrange(4, len(data))] = rng.randrange(256)
            is_orig = rng.random() < 0.5
            check(dec.feed(bytes(data), is_orig, float(i)))
            check(eth.feed(bytes(data[4:]), is_orig, float(i)))
        check(dec.close(1000.0) + eth.close(1000.0))
        assert round_ >= 0
