"""Modbus golden tests against tshark 4.0.17: every ADU tshark decoded in every Modbus capture we hold.

Each capture is replayed through the real `otwatch replay`; our modbus.jsonl rows and tshark's field dump
(tests/traces/peers/tshark/) become multisets of per-ADU tuples (`tests/golden/tshark_rows.py`): src, sport, dst,
dport, transaction id, unit id, function code (without the 0x80 bit), exception code, and where tshark shows
them the reference number and the bit/word count (requests of FC 1-6, 15, 16, 22, 24; responses of FC 5, 6,
15, 16). Every difference is listed below with its evidence; anything else fails the test.

Agreement (ADUs matched / ADUs tshark decoded / ADUs we decoded), asserted by `test_agreement_table`:

| capture | matched | tshark | ours |
|---|---|---|---|
| zeek/4SICS-GeekLounge-151022-min.pcap | 2 | 2 | 2 |
| zeek/fuzz-1011.pcap | 4 | 4 | 5 |
| zeek/modbus-eit.pcap | 4 | 4 | 4 |
| zeek/modbusBig.pcap | 5548 | 5548 | 5548 |
| zeek/modbusSmall.pcap | 32 | 32 | 32 |
| icsst/mb2.pcap | 3578 | 3578 | 3585 |
| icsst/modbus_test.pcap | 2258 | 2258 | 2258 |
| icsst/modbus_test_2.pcap | 3975 | 3975 | 3975 |
| icsst/modbus_test_data_part1.pcap | 45 | 45 | 45 |
| icsst/modbus_test_data_part2.pcap | 281 | 281 | 281 |
| icsst/modicon_test.pcap | 180 | 180 | 180 |
| arkime/modbus.pcap | 837 | 837 | 837 |
| suricata/modbus.pcap | 39 | 39 | 39 |
| ndpi/modbus.pcap | 102 | 102 | 102 |
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest

from tests.golden.conftest import PEERS, Replay
from tests.golden.tshark_rows import Adu, our_adus, tshark_adus

ReplayFn = Callable[[str], Replay]
TSHARK = PEERS / "tshark"
_ZEEK = "zeek/testing/btest/Traces/modbus"
_ICSST = "ICS-Security-Tools/pcaps"
DUMPS: dict[str, str] = {
    "zeek/4SICS-GeekLounge-151022-min.pcap": f"{_ZEEK}/4SICS-GeekLounge-151022-min.pcap.tsv",
    "zeek/fuzz-1011.pcap": f"{_ZEEK}/fuzz-1011.pcap.tsv",
    "zeek/modbus-eit.pcap": f"{_ZEEK}/modbus-eit.pcap.tsv",
    "zeek/modbusBig.pcap": f"{_ZEEK}/modbusBig.pcap.tsv",
    "zeek/modbusSmall.pcap": f"{_ZEEK}/modbusSmall.pcap.tsv",
    "icsst/mb2.pcap": f"{_ICSST}/ModbusTCP/mb2.pcap.tsv",
    "icsst/modbus_test.pcap": f"{_ICSST}/ModbusTCP/Modbus/modbus_test.pcap.tsv",
    "icsst/modbus_test_2.pcap": f"{_ICSST}/ModbusTCP/Modbus/modbus_test_2.pcap.tsv",
    "icsst/modbus_test_data_part1.pcap": f"{_ICSST}/ModbusTCP/modbus_test_data_part1.pcap.tsv",
    "icsst/modbus_test_data_part2.pcap": f"{_ICSST}/ModbusTCP/modbus_test_data_part2.pcap.tsv",
    "icsst/modicon_test.pcap": f"{_ICSST}/modicon/modicon_test.pcap.tsv",
    "arkime/modbus.pcap": "arkime/tests/pcap/modbus.pcap.tsv",
    "suricata/modbus.pcap": "suricata-verify/tests/modbus/modbus.pcap.tsv",
    "ndpi/modbus.pcap": "nDPI/tests/cfgs/default/pcap/modbus.pcap.tsv",
}

# --- ADUs tshark decodes and we do not: none ------------------------------------------------------------------
# The DigitalBond attack capture (icsst part1; arkime/modbus.pcap starts with it; suricata/modbus.pcap is its
# first 99 frames), frames 88-113: 10.0.0.8 opens a connection FROM port 502 (SYN 502 -> 4446) and sends
# 10 exception responses (`0001 0000 0004 0a 81 06|05`, frames 91-109) and one FC 42 message (frame 111) that
# nobody asked for. tshark's dissector table matches either port, and so does our FlowTable (responder port, then
# originator port): all 11 ADUs agree. Zeek, which looks at the responder port only, decodes none of them. Frame
# 113 repeats frame 111 behind 3 leftover bytes, so no side decodes it (tshark: "Data"; we: a weird).
MISSING: dict[str, list[Adu]] = {}

# --- ADUs we decode and tshark does not: new bytes in segments tshark marks "[TCP Retransmission]" ----------
# tshark skips a segment whose sequence number lies below the highest it saw, even when most of it is new data.
# We reassemble by sequence number and deliver the new bytes.
EXTRA: dict[str, list[Adu]] = {
    # fuzz-1011 frame 4: the tid 6714 response (byte count 129, 200 data bytes) has a fuzzed sequence number
    # (1163444) below frame 3's (2407936); tshark: "[TCP Retransmission]", protocol TCP. Zeek's modbus.log logs
    # it (test_modbus_zeek.py), as we do.
    "zeek/fuzz-1011.pcap": [Adu("10.10.5.104", 502, "10.1.1.234", 51411, 6714, 255, 4, None, None, None)],
    "icsst/mb2.pcap": [
        # 141.81.0.10:60689 -> .86: frame 1014 sends tid 22505 (seq 139, 12 bytes); its first copy of seq
        # 139-199 (frame 1131, 60 bytes) carries the new requests 22506-22509 and is marked a retransmission,
        # as are its later copies (1537, 2326, 2992).
        Adu("141.81.0.10", 60689, "141.81.0.86", 502, 22506, 255, 4, None, 1, 99),
        Adu("141.81.0.10", 60689, "141.81.0.86", 502, 22507, 255, 4, None, 41, 2),
        Adu("141.81.0.10", 60689, "141.81.0.86", 502, 22508, 255, 4, None, 2219, 22),
        Adu("141.81.0.10", 60689, "141.81.0.86", 502, 22509, 255, 4, None, 2258, 2),
        # The responses: frame 3008 (seq 384) follows a segment never captured; frame 3674 (seq 371, 299 bytes)
        # fills the hole with the tid 22505 response (seq 371-383) and is marked a retransmission. tshark
        # decoded 22506-22509 from frame 3008; we decode all five once the hole is filled.
        Adu("141.81.0.86", 502, "141.81.0.10", 60689, 22505, 255, 4, None, None, None),
        # 141.81.0.24 -> .10:64338: frame 13142 (seq 5232, 239 bytes) holds the tid 9823 response; frame
        # 13176 resends it with 30 new bytes (the responses 9824 and 9825) and is marked a retransmission.
        Adu("141.81.0.24", 502, "141.81.0.10", 64338, 9824, 255, 4, None, None, None),
        Adu("141.81.0.24", 502, "141.81.0.10", 64338, 9825, 255, 2, None, None, None),
    ],
}


def _agreement_table(doc: str) -> dict[str, tuple[int, int, int]]:
    """The capture -> (matched, tshark, ours) rows of the table in this module's docstring."""
    table: dict[str, tuple[int, int, int]] = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1].isdigit():
            table[cells[0]] = (int(cells[1]), int(cells[2]), int(cells[3]))
    return table


AGREEMENT = _agreement_table(__doc__ or "")


@cache
def _tshark(trace: str) -> tuple[tuple[int, Adu], ...]:
    return tuple(tshark_adus(TSHARK / DUMPS[trace]))


def _compare(replay: ReplayFn, trace: str) -> tuple[Counter[Adu], Counter[Adu]]:
    """(tshark's ADUs, ours) for one capture."""
    theirs = Counter(adu for _, adu in _tshark(trace))
    ours = Counter(our_adus(replay(trace).rows("modbus")))
    return theirs, ours


@pytest.mark.parametrize("trace", sorted(DUMPS))
def test_modbus_adus_match_tshark(replay: ReplayFn, trace: str) -> None:
    """Every ADU tshark decoded is ours field by field, and the only differences are the listed ones."""
    theirs, ours = _compare(replay, trace)
    missing, extra = theirs - ours, ours - theirs
    assert missing == Counter(MISSING.get(trace, [])), f"tshark ADUs we lack: {sorted(missing.items())[:5]}"
    assert extra == Counter(EXTRA.get(trace, [])), f"ADUs tshark lacks: {sorted(extra.items())[:5]}"


@pytest.mark.parametrize("trace", sorted(DUMPS))
def test_agreement_table(replay: ReplayFn, trace: str) -> None:
    """The module docstring's figures are the measured ones (matched / tshark / ours)."""
    theirs, ours = _compare(replay, trace)
    measured = (sum((theirs & ours).values()), sum(theirs.values()), sum(ours.values()))
    assert measured == AGREEMENT[trace]


def test_agreement_table_covers_every_capture() -> None:
    """The table names exactly the captures compared, and every dump names its frames' ADUs."""
    assert set(AGREEMENT) == set(DUMPS)
    for trace, rel in DUMPS.items():
        assert (Path(__file__).resolve().parents[1] / "traces" / trace).exists(), trace
        assert len(_tshark(trace)) == AGREEMENT[trace][1], rel


def test_multi_adu_frames_are_split_by_function_code() -> None:
    """mb2 frame 95 carries three responses (FC 15, 15, 1): only the FC 15 ones get a reference and a count."""
    frame = [adu for f, adu in _tshark("icsst/mb2.pcap") if f == 95]
    assert [(a.tid, a.fc, a.ref, a.qty) for a in frame] == [
        (12427, 15, 8, 1),
        (12428, 15, 6, 1),
        (12429, 1, None, None),
    ]


def test_length_34820_flood_is_not_modbus_for_tshark_either(replay: ReplayFn) -> None:
    """DigitalBond part1, 10.0.0.57:2585: a first header with length field 34820 (more than the MBAP maximum).

    Not a disagreement: tshark waits for a 34,826-byte PDU that never comes (frames 76-82 "[TCP segment of a
    reassembled PDU]") and decodes no ADU; Arkime's session for it has no modbus object; we report the header
    and the bytes we skipped, and decode nothing.
    """
    trace = "icsst/modbus_test_data_part1.pcap"
    assert not [adu for _, adu in _tshark(trace) if 2585 in (adu.sport, adu.dport)]
    result = replay(trace)
    assert not [r for r in result.rows("modbus") if r["id.orig_p"] == 2585]
    weird = [(w["name"], w["addl"]) for w in result.rows("weird") if w["id.orig_p"] == 2585]
    assert weird == [
        ("modbus_invalid_length", "length field 34820; searching for the next header"),
        ("modbus_resync", "skipped 926 bytes, no header found before close"),
    ]
