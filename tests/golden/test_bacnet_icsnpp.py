"""BACnet golden tests against CISA ICSNPP-BACnet: its bacnet.log, bacnet_discovery.log and bacnet_property.log.

ICSNPP's btest `analyzer.segmented_data` runs Zeek with the ICSNPP plugin over its trace
`bacnet_segmented_data.pcap` (tests/traces/icsnpp/); its baselines are in tests/traces/peers/icsnpp/. We replay
the same trace through the real `otwatch replay` and compare every row, column by column, all columns but `ts`
and `uid` (ICSNPP's baselines mask the timestamps): our bacnet.jsonl rows with ICSNPP's bacnet.log (its
`source_h/p` and `destination_h/p` are our `src`/`dst` with the ports of their side of the flow), our
bacnet_discovery.jsonl and bacnet_property.jsonl rows with its two detail logs. Values are compared as Zeek's TSV
writes them: `-` for unset, `(empty)` for an empty string, `T`/`F`. Rows are compared as multisets.

Agreement (rows matched / ICSNPP's rows / our rows), asserted by `test_agreement_table`:

| log | matched | icsnpp | ours |
|---|---|---|---|
| bacnet | 18 | 18 | 18 |
| bacnet_discovery | 9 | 11 | 11 |
| bacnet_property | 429 | 429 | 429 |

Known disagreements, listed in `KNOWN` and asserted: the two I-Have object names in character set 1 (IBM/Microsoft
DBCS, code page 932), which ICSNPP leaves empty and we decode.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tests.golden.conftest import PEERS, Replay

ReplayFn = Callable[[str], Replay]
TRACE = "icsnpp/bacnet_segmented_data.pcap"
ICSNPP = PEERS / "icsnpp" / "analyzer.segmented_data"
LOGS = ("bacnet", "bacnet_discovery", "bacnet_property")
Line = tuple[str, ...]

_I_HAVE = ("10.0.0.2", "47808", "10.0.0.255", "47808", "T", "10.0.0.2", "47808", "10.0.0.255", "47808", "i-have",
           "device", "254", "accumulator")  # fmt: skip
# log -> [(ICSNPP's row, ours)], every column but ts and uid.
# Frames 1 and 3 (10.0.0.2 -> 10.0.0.255, I-Have device 254 / accumulator 4 and 5): the object name is a character
# string in character set 1 with code page 932 (`75 09 01 03 a4 89 b7 93 78 82 51`: length 9, charset 1, code page
# 0x03A4 = 932, then Shift-JIS 89 B7 93 78 82 51 = "温度２"; frame 3 ends 8e bc 93 78 82 51 = "湿度２"). tshark -V:
# "String Character Set: IBM/Microsoft DBCS (1)", "Code Page: 932" (it prints the bytes undecoded). ICSNPP
# decodes only character set 0 and logs an empty name; we decode the code page and log the name.
KNOWN: dict[str, list[tuple[Line, Line]]] = {
    "bacnet_discovery": [
        ((*_I_HAVE, "4", "-", "-", "(empty)"), (*_I_HAVE, "4", "-", "-", "温度２")),
        ((*_I_HAVE, "5", "-", "-", "(empty)"), (*_I_HAVE, "5", "-", "-", "湿度２")),
    ],
}


def _agreement_table(doc: str) -> dict[str, tuple[int, int, int]]:
    """The log -> (matched, icsnpp, ours) rows of the table in this module's docstring."""
    table: dict[str, tuple[int, int, int]] = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1].isdigit():
            table[cells[0]] = (int(cells[1]), int(cells[2]), int(cells[3]))
    return table


AGREEMENT = _agreement_table(__doc__ or "")


def zeek_log(log: str) -> tuple[list[str], list[dict[str, str]]]:
    """A Zeek TSV log of ICSNPP's baseline: its column names and its rows."""
    lines = (ICSNPP / f"{log}.log").read_text().splitlines()
    fields = next(line for line in lines if line.startswith("#fields")).split("\t")[1:]
    return fields, [dict(zip(fields, line.split("\t"), strict=True)) for line in lines if line and line[0] != "#"]


def zeek_text(value: Any) -> str:
    """A JSON value as Zeek's TSV writer prints it."""
    if value is None:
        return "-"
    if value == "":
        return "(empty)"
    if isinstance(value, bool):
        return "T" if value else "F"
    return str(value)


def _bacnet_log_row(row: dict[str, Any]) -> dict[str, Any]:
    """A bacnet.jsonl row with ICSNPP's bacnet.log columns for the true sender and receiver."""
    sport, dport = (row["id.orig_p"], row["id.resp_p"]) if row["is_orig"] else (row["id.resp_p"], row["id.orig_p"])
    return {**row, "source_h": row["src"], "source_p": sport, "destination_h": row["dst"], "destination_p": dport}


def compare(replay: ReplayFn, log: str) -> tuple[Counter[Line], Counter[Line]]:
    """(ICSNPP's rows, ours) of one log as counted tuples of every column but ts and uid."""
    fields, icsnpp = zeek_log(log)
    keys = [f for f in fields if f not in ("ts", "uid")]
    rows = replay(TRACE).rows(log)
    if log == "bacnet":
        rows = [_bacnet_log_row(r) for r in rows]
    theirs = Counter(tuple(r[k] for k in keys) for r in icsnpp)
    ours = Counter(tuple(zeek_text(r.get(k)) for k in keys) for r in rows)
    return theirs, ours


@pytest.mark.parametrize("log", LOGS)
def test_rows_match_icsnpp(replay: ReplayFn, log: str) -> None:
    """Every row ICSNPP logged is ours column by column, and the only differences are the listed ones."""
    theirs, ours = compare(replay, log)
    known = KNOWN.get(log, [])
    assert theirs - ours == Counter(icsnpp for icsnpp, _ in known), f"ICSNPP rows we lack: {list(theirs - ours)[:3]}"
    assert ours - theirs == Counter(mine for _, mine in known), f"rows ICSNPP lacks: {list(ours - theirs)[:3]}"


@pytest.mark.parametrize("log", LOGS)
def test_agreement_table(replay: ReplayFn, log: str) -> None:
    """The module docstring's figures are the measured ones (matched / ICSNPP / ours)."""
    theirs, ours = compare(replay, log)
    assert (sum((theirs & ours).values()), sum(theirs.values()), sum(ours.values())) == AGREEMENT[log]


def test_detail_logs_have_icsnpp_columns(replay: ReplayFn) -> None:
    """Our detail log rows carry no column ICSNPP's log lacks (the optional routing columns are absent here)."""
    assert set(AGREEMENT) == set(LOGS)
    for log in ("bacnet_discovery", "bacnet_property"):
        fields, _ = zeek_log(log)
        extra = {k for r in replay(TRACE).rows(log) for k in r} - set(fields)
        assert not extra, (log, extra)


def test_segmented_ack_is_one_row_with_every_object(replay: ReplayFn) -> None:
    """Invoke 94's object-list arrives in 3 segments (frames 15, 17, 18): one bacnet.log row, 426 property rows."""
    rows = replay(TRACE).rows("bacnet")
    ack = [r for r in rows if r.get("invoke_id") == 94 and r["pdu_type"] == "COMPLEX_ACK"]
    assert [(r["segments"], len(r["values"])) for r in ack] == [(3, 426)]
    size = [r["values"] for r in rows if r.get("invoke_id") == 93 and r["pdu_type"] == "COMPLEX_ACK"]
    assert size == [[426]]  # invoke 93 read object-list[0], the array's length: the reassembly lost nothing
    prop = [r for r in replay(TRACE).rows("bacnet_property") if r["invoke_id"] == 94]
    assert len(prop) == 1 + 426  # the request, then one row per object identifier, as ICSNPP logs them
