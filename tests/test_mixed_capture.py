"""The seeded mixed-capture generator: determinism, the mix, clean TCP streams, valid messages, tshark."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from simulators.mixed_capture import MIX, write_mixed_capture
from simulators.mixgen.net import PLC_VENDORS

REPO = Path(__file__).resolve().parents[1]
PACKETS = 5000
SEED = 7

Frame = tuple[float, bytes]


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object], list[Frame]]:
    """A 5,000-packet capture, its summary and its frames read back in Python."""
    path = tmp_path_factory.mktemp("mixed") / "mixed.pcap"
    summary = write_mixed_capture(path, packets=PACKETS, seed=SEED)
    return path, summary, read_pcap(path)


def read_pcap(path: Path) -> list[Frame]:
    """Frames of a classic microsecond Ethernet pcap, checking the file and record headers on the way."""
    data = path.read_bytes()
    magic, major, minor, _zone, _sigfigs, snaplen, linktype = struct.unpack_from("<IHHiIII", data)
    assert (magic, major, minor, snaplen, linktype) == (0xA1B2C3D4, 2, 4, 65535, 1)
    frames: list[Frame] = []
    pos = 24
    while pos < len(data):
        sec, usec, incl, orig = struct.unpack_from("<IIII", data, pos)
        assert incl == orig and usec < 1_000_000
        frames.append((sec + usec / 1e6, data[pos + 16 : pos + 16 + incl]))
        pos += 16 + incl
    assert pos == len(data)
    return frames


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.pcap", tmp_path / "b.pcap", tmp_path / "c.pcap"
    write_mixed_capture(a, packets=3000, seed=11)
    write_mixed_capture(b, packets=3000, seed=11)
    write_mixed_capture(c, packets=3000, seed=12)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_summary_matches_the_file_and_the_mix(capture: tuple[Path, dict[str, object], list[Frame]]) -> None:
    path, summary, frames = capture
    assert len(frames) == PACKETS == summary["packets"]
    assert summary["bytes"] == path.stat().st_size
    by_protocol = summary["by_protocol"]
    assert isinstance(by_protocol, dict) and sum(by_protocol.values()) == PACKETS
    for name, share in MIX:
        assert abs(by_protocol[name] / PACKETS - share) < 0.03, name
    assert summary["hosts"] == 200
    assert isinstance(summary["hosts_seen"], int) and 150 <= summary["hosts_seen"] <= 200
    times = [ts for ts, _ in frames]
    assert times == sorted(times)


def test_ipv4_lengths_and_header_checksums(capture: tuple[Path, dict[str, object], list[Frame]]) -> None:
    macs: dict[bytes, set[bytes]] = {}
    for _ts, frame in capture[2]:
        assert frame[12:14] == b"\x08\x00" and frame[14] == 0x45
        assert struct.unpack_from(">H", frame, 16)[0] == len(frame) - 14
        words = struct.unpack_from(">10H", frame, 14)
        s = sum(words)
        assert (s & 0xFFFF) + (s >> 16) == 0xFFFF
        macs.setdefault(frame[26:30], set()).add(frame[6:12])
    assert all(len(m) == 1 for m in macs.values())  # one stable MAC per source address


def test_tcp_streams_are_clean(capture: tuple[Path, dict[str, object], list[Frame]]) -> None:
    """Every segment starts where the previous one of its direction ended; every ACK covers all data sent."""
    next_seq: dict[tuple[bytes, int, bytes, int], int] = {}
    checked = 0
    for _ts, frame in capture[2]:
        if frame[23] != 6:
            continue
        sport, dport, seq, ack, off_flags = struct.unpack_from(">HHIIH", frame, 34)
        flags = off_flags & 0x3F
        payload_len = len(frame) - 34 - (off_flags >> 12) * 4
        key = (frame[26:30], sport, frame[30:34], dport)
        back = (key[2], key[3], key[0], key[1])
        if flags & 0x02 and not flags & 0x10:  # SYN opens a new stream
            assert key not in next_seq
        else:
            started = key in next_seq or flags & 0x12 == 0x12 or flags & 0x04
            assert started, "segment of a stream that never started"
            if key in next_seq:
                assert seq == next_seq[key]
                checked += 1
            if flags & 0x10 and back in next_seq and not flags & 0x04:
                assert ack == next_seq[back]  # every ACK acknowledges all the data sent so far
        next_seq[key] = (seq + payload_len + (1 if flags & 0x03 else 0)) & 0xFFFFFFFF
    assert checked > 1000


def _payloads(frames: list[Frame], proto: int, port: int) -> list[tuple[bool, bytes, bytes]]:
    """(to_port, connection key, payload) of non-empty payloads to or from port."""
    out = []
    for _ts, frame in frames:
        if frame[23] != proto:
            continue
        sport, dport = struct.unpack_from(">HH", frame, 34)
        if port not in (sport, dport):
            continue
        start = 34 + ((frame[46] >> 4) * 4 if proto == 6 else 8)
        if len(frame) > start:
            key = frame[26:34] if dport == port else frame[30:34] + frame[26:30]
            out.append(
                (dport == port, key + struct.pack(">H", sport if dport == port else dport), frame[start:])
            )
    return out


def test_modbus_adus_are_valid_and_paired(capture: tuple[Path, dict[str, object], list[Frame]]) -> None:
    pending: dict[bytes, bytes] = {}
    fcs: Counter[int] = Counter()
    vendors: set[str] = set()
    for to_server, conn, adu in _payloads(capture[2], 6, 502):
        _tid, proto, length, unit = struct.unpack_from(">HHHB", adu)
        assert proto == 0 and length == len(adu) - 6
        fc = adu[7]
        if to_server:
            assert conn not in pending  # one outstanding request per session
            pending[conn] = adu
            continue
        req = pending.pop(conn)
        assert req[:2] == adu[:2] and req[6] == unit and req[7] == fc & 0x7F
        fcs[fc] += 1
        if fc & 0x80:
            assert len(adu) == 9 and adu[8] in (2, 0x0B)
        elif fc in (3, 4):
            qty = struct.unpack_from(">H", req, 10)[0]
            assert 10 <= qty <= 125 and adu[8] == 2 * qty == len(adu) - 9
        elif fc in (1, 2):
            qty = struct.unpack_from(">H", req, 10)[0]
            assert adu[8] == (qty + 7) // 8 == len(adu) - 9
        elif fc == 43:
            assert adu[8:10] == b"\x0e\x01" and adu[13] == 3
            vendors.add(adu[16 : 16 + adu[15]].decode())
    assert {3, 4, 1, 2, 43} <= set(fcs)
    assert vendors <= {v[0] for v in PLC_VENDORS} and len(vendors) >= 3


def test_bacnet_mqtt_dns_headers(capture: tuple[Path, dict[str, object], list[Frame]]) -> None:
    frames = capture[2]
    bacnet = _payloads(frames, 17, 47808)
    assert bacnet
    for _to, _conn, bvlc in bacnet:
        assert bvlc[0] == 0x81 and bvlc[1] in (0x0A, 0x0B)
        assert struct.unpack_from(">H", bvlc, 2)[0] == len(bvlc) and bvlc[4] == 0x01
    kinds: Counter[int] = Counter()
    for _to, _conn, mqtt in _payloads(frames, 6, 1883):
        n, mult, i = 0, 1, 1
        while True:
            n += (mqtt[i] & 0x7F) * mult
            mult *= 128
            i += 1
            if not mqtt[i - 1] & 0x80:
                break
        assert i + n == len(mqtt)  # one whole MQTT packet per segment
        kinds[mqtt[0] >> 4] += 1
    assert {1, 2, 3, 4} <= set(kinds)  # CONNECT, CONNACK, PUBLISH, PUBACK
    queries: dict[tuple[bytes, bytes], bytes] = {}
    answered = 0
    for to_server, conn, msg in _payloads(frames, 17, 53):
        if to_server:
            queries[(conn, msg[:2])] = msg
        else:
            query = queries.pop((conn, msg[:2]))
            assert msg[:2] == query[:2] and msg[12 : len(query)] == query[12:]
            answered += 1
    assert answered > 50


def _require_tshark() -> None:
    assert shutil.which("tshark"), "tshark is missing: `make test` installs it (Debian package tshark)"



def test_tshark_sees_the_protocols_and_no_malformed_frames(
    capture: tuple[Path, dict[str, object], list[Frame]],
) -> None:
    _require_tshark()
    path = str(capture[0])
    phs = subprocess.run(
        ["tshark", "-r", path, "-q", "-z", "io,phs"], capture_output=True, text=True, check=True
    )
    names = {line.split()[0] for line in phs.stdout.splitlines() if "frames:" in line}
    assert {"mbtcp", "modbus", "bvlc", "bacapp", "mqtt", "dns", "tls", "ntp"} <= names
    bad = subprocess.run(
        ["tshark", "-r", path, "-Y", "_ws.malformed || tcp.analysis.flags || _ws.expert.severity >= 8388608"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert bad.stdout == ""


def test_cli_writes_the_same_capture(tmp_path: Path) -> None:
    out = tmp_path / "new" / "dir" / "cli.pcap"  # parent folders are made (make demo writes into a fresh one)
    run = subprocess.run(
        [sys.executable, "-m", "simulators.mixed_capture", str(out), "--packets", "500", "--seed", "3"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    assert "500 packets" in run.stdout
    write_mixed_capture(tmp_path / "api.pcap", packets=500, seed=3)
    assert out.read_bytes() == (tmp_path / "api.pcap").read_bytes()


def test_too_few_hosts_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_mixed_capture(tmp_path / "x.pcap", packets=10, hosts=5)


def test_bench_runner_reports_without_crashing(tmp_path: Path) -> None:
    """The runner on a tiny capture: the raw read counts every packet; otwatch is measured or reported."""
    _require_tshark()
    report = tmp_path / "bench.json"
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "tests/bench/run_bench.py"),
            "--packets",
            "2000",
            "--repeat",
            "1",
            "--data-dir",
            str(tmp_path),
            "--json",
            str(report),
            "--skip",
            "tcpdump",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert run.returncode in (0, 1), run.stderr
    figures = json.loads(report.read_text())
    assert figures["capture"]["packets"] == 2000
    assert figures["measurements"]["raw"]["status"] == "ok"
    assert figures["measurements"]["tcpdump"]["status"] == "skipped"
    assert figures["measurements"]["otwatch"]["status"] in ("ok", "failed", "missing")
    assert [row["check"] for row in figures["checks"]] == [
        "otwatch / tshark fields",
        "Modbus+BACnet decode / tshark",
        "otwatch / raw read",
        "otwatch peak RSS (MiB)",
    ]
    # the decode-only replays ran with their own configurations, each through every packet
    decode = {key: figures["measurements"][key] for key in ("decode-modbus", "decode-modbus-bacnet", "decode-all")}
    for key, row in decode.items():
        assert row["status"] == figures["measurements"]["otwatch"]["status"], (key, row)
        assert row["packets"] == 2000 and row["note"] == "", (key, row)
    assert "otwatch replay, decode only: Modbus + BACnet" in run.stdout
    assert (tmp_path / "mixed-2000-1.pcap").exists() and "otwatch replay" in run.stdout
    # where the time goes: every decoded protocol of the mix has packets, events and a time for each stage
    shares = figures["shares"]
    assert isinstance(shares, dict) and shares["packets"] == 2000, shares
    rows = {row["protocol"]: row for row in shares["protocols"]}
    assert set(rows) == {"modbus", "bacnet", "mqtt", "dns"}
    for row in rows.values():
        assert row["packets"] > 0 and row["events"] > 0, row
        assert row["log"] > 0 and row["detect"] > 0 and row["inventory"] > 0 and row["learn"] >= 0, row
    assert sum(shares["events"].values()) >= sum(row["events"] for row in rows.values())
    assert "where the time goes: first 2,000 packets" in run.stdout
