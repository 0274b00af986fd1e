"""BACnet golden tests against tshark 4.0.17: every frame tshark decoded as BACnet in every BACnet capture we hold.

Each capture is replayed through the real `otwatch replay`; tshark's field dump (tests/traces/peers/tshark/) and
our bacnet.jsonl and weird.jsonl rows become per-frame `Frame` tuples (`tests/golden/bacnet_rows.py`), paired by
timestamp, sender and receiver, and compared field by field: sender and receiver (IP and UDP port, or MAC on
BACnet/Ethernet), malformed (tshark's `_ws.malformed`, our weird record), bvlc.function, bacnet.mesgtyp,
bacnet.dnet (the NPDU's, then those a network message names), bacnet.snet, bacapp.type, invoke id, confirmed and
unconfirmed service, every object identifier, property identifier and vendor id of the frame, error class and
code, reject and abort reason. Every difference is listed below with its evidence; anything else fails the test.

Agreement (frames matched / frames tshark decoded as BACnet / our records: events, and weirds of frames without
an event), asserted by `test_agreement_table`:

| capture | matched | tshark | ours |
|---|---|---|---|
| icsnpp/bacnet_segmented_data.pcap | 18 | 20 | 18 |
| icsst/bacnet_test.pcap | 22 | 22 | 22 |
| arkime/bacnet-stack-services.pcap | 108 | 113 | 113 |
| ndpi/bacnet.pcap | 23 | 23 | 23 |
| hilti/BBMD_Results.pcap | 8 | 8 | 8 |
| hilti/NPDU.pcap | 36 | 36 | 36 |
| hilti/atomic-read-file.pcap | 128 | 128 | 128 |
| hilti/bacnet-property-error.pcap | 1 | 1 | 1 |
| hilti/read-properties.pcap | 122 | 122 | 122 |
| hilti/rpm.pcap | 4 | 4 | 4 |
| hilti/who-has.pcap | 73 | 73 | 73 |
| hilti/who-is-i-am.pcap | 23 | 23 | 23 |

The BACnet/Ethernet (802.2 LLC, DSAP/SSAP 0x82) frames are in arkime/bacnet-stack-services.pcap (26),
hilti/who-is-i-am.pcap (13), hilti/who-has.pcap (4) and hilti/read-properties.pcap (5); icsst/bacnet_test.pcap
holds BACnet/IP only (its 4 other frames are empty UDP datagrams to 47808, which neither side calls BACnet).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.golden.bacnet_rows import Frame, Key, differences, micros, our_frames, tshark_frames
from tests.golden.conftest import PEERS, TRACES, Replay

ReplayFn = Callable[[str], Replay]
TSHARK = PEERS / "tshark"
_HILTI = "hilti/bro/tests/Traces/bacnet"
DUMPS: dict[str, str] = {
    "icsnpp/bacnet_segmented_data.pcap": "icsnpp-bacnet/testing/traces/bacnet_segmented_data.pcap.tsv",
    "icsst/bacnet_test.pcap": "ICS-Security-Tools/pcaps/BACnet/bacnet_test.pcap.tsv",
    "arkime/bacnet-stack-services.pcap": "arkime/tests/pcap/bacnet-stack-services.pcap.tsv",
    "ndpi/bacnet.pcap": "nDPI/tests/cfgs/default/pcap/bacnet.pcap.tsv",
    **{f"hilti/{name}.pcap": f"{_HILTI}/{name}.pcap.tsv"
       for name in ("BBMD_Results", "NPDU", "atomic-read-file", "bacnet-property-error", "read-properties", "rpm",
                    "who-has", "who-is-i-am")},
}  # fmt: skip

# --- frames tshark decodes and we have no record of: segments of a segmented message --------------------------
# icsnpp frames 15 and 17 are segments 0 and 1 of invoke 94's segmented Complex-ACK (object-list, 426 object
# identifiers); frame 18 is the last. tshark shows type, invoke id and service for each segment and the whole
# decoded list on frame 18; we emit one event when the reassembly completes (frame 18, `segments` 3), which matches
# frame 18 field by field, and a segment-ACK event for frames 16 and 19.
MISSING: dict[str, list[int]] = {"icsnpp/bacnet_segmented_data.pcap": [15, 17]}

# --- frames both sides have, with the fields that differ: {frame: {field: (tshark, ours)}} ---------------------
_NO_APDU = {"bvlc": (10, None), "dnet": ((13,), ())}
DIFFERENT: dict[str, dict[int, dict[str, tuple[Any, Any]]]] = {
    "arkime/bacnet-stack-services.pcap": {
        # 192.168.0.13 -> .255, `81 0a 00 0b 10 07 2c 02 00 00 3d`: the NPDU version is 0x10. tshark -V:
        # "Version: 0x10 (unknown)" and it decodes on (Simple-ACK acknowledgeAlarm, invoke 2); Arkime stops at the
        # version (no apduType from this datagram); ASHRAE 135 6.2.1 fixes the version at 1. We report the weird
        # `bacnet_invalid_npdu_version` ("version 16") and decode nothing after it.
        1: {"malformed": (False, True), "bvlc": (10, None), "apdu_type": (2, None), "invoke_id": (2, None),
            "confirmed_service": (0, None)},
        # 192.168.0.13 -> .5, `81 0a 00 0b 01 20 00 0d 01 3d ff`: an NPDU to DNET 13 / DADR 3d with hop count 255
        # and nothing after it. tshark: "[Malformed Packet: BACapp]"; we: the weird `bacnet_truncated_apdu`
        # ("NPDU without an APDU"). Both call it malformed; our weird record carries no BVLC or NPDU field.
        77: _NO_APDU, 79: _NO_APDU, 81: _NO_APDU, 83: _NO_APDU,
    },
}  # fmt: skip

# --- weirds for the frames tshark marks malformed, and for the frames we flag that tshark does not -------------
WEIRDS: dict[str, dict[int, list[str]]] = {
    "arkime/bacnet-stack-services.pcap": {
        1: ["bacnet_invalid_npdu_version"],
        **{frame: ["bacnet_truncated_apdu"] for frame in (77, 79, 81, 83)},
    },
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
def _tshark(trace: str) -> tuple[tuple[int, Key, Frame], ...]:
    return tuple(tshark_frames(TSHARK / DUMPS[trace]))


def _ours(replay: ReplayFn, trace: str) -> dict[Key, list[Frame]]:
    result = replay(trace)
    return our_frames(result.rows("bacnet"), result.rows("weird"))


def _compare(replay: ReplayFn, trace: str) -> tuple[list[int], dict[int, dict[str, tuple[Any, Any]]], list[Key]]:
    """(tshark frames we lack, {frame: differing fields}, our records no tshark frame pairs with) for a capture."""
    ours = _ours(replay, trace)
    missing: list[int] = []
    different: dict[int, dict[str, tuple[Any, Any]]] = {}
    paired: set[Key] = set()
    for number, key, theirs in _tshark(trace):
        mine = ours.get(key, [])
        if not mine:
            missing.append(number)
            continue
        assert len(mine) == 1, f"frame {number}: {len(mine)} events"  # one BACnet message per frame
        paired.add(key)
        diff = differences(theirs, mine[0])
        if diff:
            different[number] = diff
    return missing, different, sorted(set(ours) - paired)


@pytest.mark.parametrize("trace", sorted(DUMPS))
def test_bacnet_frames_match_tshark(replay: ReplayFn, trace: str) -> None:
    """Every frame tshark decoded is ours field by field, and the only differences are the listed ones."""
    missing, different, extra = _compare(replay, trace)
    assert missing == MISSING.get(trace, [])
    assert different == DIFFERENT.get(trace, {})
    assert extra == []


@pytest.mark.parametrize("trace", sorted(DUMPS))
def test_agreement_table(replay: ReplayFn, trace: str) -> None:
    """The module docstring's figures are the measured ones (matched / tshark / ours)."""
    missing, different, _ = _compare(replay, trace)
    theirs = len(_tshark(trace))
    ours = sum(len(v) for v in _ours(replay, trace).values())
    assert (theirs - len(missing) - len(different), theirs, ours) == AGREEMENT[trace]


@pytest.mark.parametrize("trace", sorted(DUMPS))
def test_malformed_frames_are_weirds(replay: ReplayFn, trace: str) -> None:
    """Each frame tshark marks malformed has a bacnet weird of ours; we flag no other frame but the listed ones."""
    frames = {key: number for number, key, _ in _tshark(trace)}
    malformed = {number for number, _, f in _tshark(trace) if f.malformed}
    weirds: dict[int, list[str]] = {}
    for w in replay(trace).rows("weird"):
        if w.get("source") != "bacnet":
            continue
        key = (micros(w["ts"]), w["src"], w["dst"])
        weirds.setdefault(frames.get(key, 0), []).append(w["name"])  # 0: a weird on no frame tshark decoded
    assert malformed <= set(weirds)
    assert weirds == WEIRDS.get(trace, {})


def test_agreement_table_covers_every_capture() -> None:
    """The table names exactly the captures compared, and each dump holds the frames the table says."""
    assert set(AGREEMENT) == set(DUMPS)
    for trace in DUMPS:
        assert (TRACES / trace).exists(), trace
        assert len(_tshark(trace)) == AGREEMENT[trace][1], trace


@pytest.mark.parametrize(
    ("trace", "llc"),
    [("arkime/bacnet-stack-services.pcap", 26), ("hilti/who-is-i-am.pcap", 13), ("hilti/who-has.pcap", 4),
     ("hilti/read-properties.pcap", 5), ("icsst/bacnet_test.pcap", 0)],
)  # fmt: skip
def test_bacnet_ethernet_frames_are_compared(replay: ReplayFn, trace: str, llc: int) -> None:
    """The LLC frames are in tshark's dump (no IP) and ours (transport "llc", MAC addresses, no BVLC)."""
    theirs = [f for _, _, f in _tshark(trace) if f.sport is None]
    ours = [r for r in replay(trace).rows("bacnet") if r["proto"] == "llc"]
    assert len(theirs) == len(ours) == llc
    assert all(r["id.orig_p"] == r["id.resp_p"] == 0x82 and "bvlc_function" not in r for r in ours)
    assert all(f.bvlc is None and ":" in f.src for f in theirs)


def test_dump_paths_are_the_captures() -> None:
    """Each dump is named after its capture (the tshark folder mirrors the upstream repositories)."""
    for trace, rel in DUMPS.items():
        assert Path(rel).name == Path(trace).name + ".tsv", (trace, rel)
