"""Modbus golden tests against Zeek: every line Zeek's btest scripts printed for a trace, and its modbus.log rows.

Each trace is replayed through the real `otwatch replay`; our modbus.jsonl rows are rendered as the lines Zeek's
scripts print (`tests/golden/zeek_print.py`) and compared as counted lines (Zeek's baselines are `sort | uniq -c`).
"""

from __future__ import annotations

from collections import Counter

from tests.golden.conftest import PEERS, Replay
from tests.golden.zeek_print import header, read_baseline, render

ZEEK = PEERS / "zeek"


def rendered(replay: Replay, mask: bool = False, only_orig: str | None = None) -> Counter[str]:
    """Our modbus.jsonl rows as counted Zeek event lines (optionally only the connections from one originator)."""
    counts: Counter[str] = Counter()
    for row in replay.rows("modbus"):
        if row["kind"] == "weird" or (only_orig and row["id.orig_h"] != only_orig):
            continue
        counts.update(render(row, mask))
    return counts


def assert_same_lines(ours: Counter[str], zeek: Counter[str]) -> None:
    """Every line Zeek printed is ours with the same count, and we print nothing Zeek did not."""
    missing = zeek - ours
    extra = ours - zeek
    assert not missing and not extra, (
        f"{sum(missing.values())} Zeek lines not produced, {sum(extra.values())} extra; first missing: "
        f"{list(missing)[:3]}; first extra: {list(extra)[:3]}"
    )


def test_modbus_big_coil_parsing_matches_zeek(replay) -> None:
    """modbusBig.pcap: 5,548 messages, coil reads and single-coil writes, every field as Zeek printed it."""
    ours = rendered(replay("zeek/modbusBig.pcap"))
    zeek = read_baseline(ZEEK / "scripts.base.protocols.modbus.coil_parsing_big/output")
    assert sum(zeek.values()) == 11096
    assert_same_lines(ours, zeek)


def test_modbus_small_coil_parsing_matches_zeek(replay) -> None:
    """modbusSmall.pcap: FC15 writes and FC1 reads on 16 short connections (a host talking to itself)."""
    ours = rendered(replay("zeek/modbusSmall.pcap"))
    zeek = read_baseline(ZEEK / "scripts.base.protocols.modbus.coil_parsing_small/output")
    assert sum(zeek.values()) == 64
    assert_same_lines(ours, zeek)


def _zeek_log(path: str) -> list[dict[str, str]]:
    lines = (ZEEK / path).read_text().splitlines()
    fields = next(line for line in lines if line.startswith("#fields")).split("\t")[1:]
    return [dict(zip(fields, line.split("\t"), strict=True)) for line in lines if line and line[0] not in "#"]


def test_fuzz_1011_modbus_log_matches_zeek(replay) -> None:
    """fuzz-1011.pcap (a fuzzed odd byte count): Zeek's modbus.log rows, all fields but ts and uid."""
    result = replay("zeek/fuzz-1011.pcap")
    keys = ("id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "tid", "unit", "func", "pdu_type", "exception")
    zeek = Counter(
        tuple(r[k] for k in keys) for r in _zeek_log("scripts.base.protocols.modbus.register_parsing/modbus.log")
    )
    ours = Counter(
        tuple("-" if r.get(k) is None else str(r[k]) for k in keys)
        for r in result.rows("modbus")
        if r["kind"] != "weird"
    )
    assert len(zeek) == 5
    assert ours == zeek


def test_fuzz_1011_register_values_match_zeek(replay) -> None:
    """fuzz-1011.pcap: the read-input-registers requests and responses with every register value and the count.

    Known, deliberate disagreement: the response with tid 6714 carries byte count 129 (odd) with 200 data bytes.
    Zeek logs its modbus.log row (checked above) but raises a protocol violation and prints no register event;
    tshark does not decode that frame as Modbus at all. We log the registers that are there and a
    `modbus_byte_count_mismatch` weird naming both numbers, so an analyst sees the values and the fault.
    """
    result = replay("zeek/fuzz-1011.pcap")
    weird = [w for w in result.rows("weird") if w.get("tid") == 6714]
    assert [w["name"] for w in weird] == ["modbus_byte_count_mismatch"]
    assert weird[0]["addl"] == "byte count 129, 200 data bytes"
    zeek = read_baseline(ZEEK / "scripts.base.protocols.modbus.register_parsing/output")
    ours: Counter[str] = Counter()
    for row in result.rows("modbus"):
        if row["tid"] == 6714:
            continue
        if row["op"] == "read_input_registers" and row["kind"] in ("request", "response"):
            line = render(row)[1]
            if row["kind"] == "response":  # this script also prints |registers|
                line += f", {len(row.get('response_values') or [])}"
            ours[line] += 1
    assert sum(zeek.values()) == 4
    assert_same_lines(ours, zeek)


def test_modbus_eit_events_match_zeek(replay) -> None:
    """modbus-eit.pcap: FC43 encapsulated-interface requests, a response and an exception (Zeek masks tid and fc).

    Zeek's events baseline also holds lines from its private `modbus.trace`, which is not public; we compare the
    lines of the two modbus-eit connections (originator 192.168.2.42). The MEI payload lines are compared by their
    MEI type and the data bytes Zeek printed.
    """
    zeek_all = read_baseline(ZEEK / "scripts.base.protocols.modbus.events/compressed-output")
    zeek = Counter({line: n for line, n in zeek_all.items() if "orig_h=192.168.2.42," in line})
    assert sum(zeek.values()) == 8
    ours = rendered(replay("zeek/modbus-eit.pcap"), mask=True)
    for row in replay("zeek/modbus-eit.pcap").rows("modbus"):
        if row["func"] == "ENCAP_INTERFACE_TRANSPORT" and row["kind"] in ("request", "response"):
            data = bytes.fromhex(row["mei_data"])  # Zeek prints bytes as text with \\xNN escapes
            text = "".join(chr(b) if 32 <= b < 127 and b != 0x5C else f"\\x{b:02x}" for b in data)
            ours[f"modbus_encap_interface_transport_{row['kind']}, {header(row, True)}, {row['mei_code']}, {text}"] += 1
    assert_same_lines(ours, zeek)


def test_modbus_eit_conn_log_matches_zeek(replay) -> None:
    """modbus-eit.pcap: Zeek's conn.log rows (service, bytes, state, history, packets), all fields but ts and uid."""
    zeek = _zeek_log("scripts.base.protocols.modbus.events/conn-second.log")
    keys = (
        "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service", "duration", "orig_bytes",
        "resp_bytes", "conn_state", "missed_bytes", "history", "orig_pkts", "orig_ip_bytes", "resp_pkts",
        "resp_ip_bytes",
    )  # fmt: skip
    ours = {(r["id.orig_p"]): r for r in replay("zeek/modbus-eit.pcap").rows("conn")}
    assert len(zeek) == 2 and len(ours) == 2
    for z in zeek:
        row = ours[int(z["id.orig_p"])]
        for key in keys:
            value = row.get(key)
            if key == "duration":
                assert abs(float(value) - float(z[key])) < 1e-6, key
            else:
                assert ("-" if value is None else str(value)) == z[key], (key, value, z[key])
