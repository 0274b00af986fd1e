"""PcapReader: real traces, hand-made pcap and pcapng files with each quirk, truncation, bad input."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest

from appliance.capture.pcapfile import CHUNK, CaptureError, PcapReader

from .pcapbuild import PcapngWriter, write_pcap

TRACES = Path(__file__).resolve().parents[1] / "traces"

# File format, link type and packet count as `capinfos -t -E -c` reported them for each trace (run once).
CAPINFOS = {
    "arkime/modbus.pcap": ("pcap", 1, 1237),
    "arkime/mqtt_synthetic.pcap": ("pcap", 228, 63),
    "icsst/mb2.pcap": ("pcap", 1, 13472),
    "icsst/modbus_test.pcap": ("pcap", 1, 2257),
    "icsst/modbus_test_2.pcap": ("pcap", 1, 4901),
    "icsst/modbus_test_data_part1.pcap": ("pcap", 1, 118),
    "icsst/modbus_test_data_part2.pcap": ("pcap", 1, 350),
    "icsst/modicon_test.pcap": ("pcap", 1, 191),
    "ndpi/modbus.pcap": ("pcap", 1, 102),
    "ndpi/mqtt.pcap": ("pcapng", 1, 9),
    "suricata/modbus.pcap": ("pcap", 1, 99),
    "zeek/4SICS-GeekLounge-151022-min.pcap": ("pcap", 1, 2),
    "zeek/fuzz-1011.pcap": ("pcap", 1, 6),
    "zeek/modbus-eit.pcap": ("pcap", 1, 4),
    "zeek/modbusBig.pcap": ("pcap", 1, 13622),
    "zeek/modbusSmall.pcap": ("pcap", 1, 166),
}


@pytest.mark.parametrize("name", sorted(CAPINFOS))
def test_real_traces_match_capinfos(name: str) -> None:
    fmt, linktype, count = CAPINFOS[name]
    path = TRACES / name
    with PcapReader(path) as reader:
        frames = list(reader)
    assert reader.format == fmt
    assert len(frames) == count == reader.packets
    assert {lt for lt, _, _, _ in frames} == {linktype}
    assert reader.truncated is None
    assert reader.bytes_read == reader.file_size == path.stat().st_size
    assert all(len(data) <= wire for _, _, data, wire in frames)


def test_pcapng_trace_timestamps() -> None:
    # first and last frame.time_epoch of ndpi/mqtt.pcap as tshark prints them
    frames = list(PcapReader(TRACES / "ndpi/mqtt.pcap"))
    assert frames[0][1] == pytest.approx(1643014009.283854, abs=1e-6)
    assert frames[-1][1] == pytest.approx(1643014349.216221, abs=1e-6)


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_classic_byte_orders_and_resolutions(tmp_path: Path, big_endian: bool, nanosecond: bool) -> None:
    frac = 123456789 if nanosecond else 123456
    recs = [
        (1700000000, frac, b"\x01\x02\x03", 60),
        (1700000001, 0, b"", 0),
        (1700000002, 5, bytes(range(200)), 200),
    ]
    path = write_pcap(
        tmp_path / "x.pcap", recs, linktype=113, nanosecond=nanosecond, big_endian=big_endian, snaplen=3
    )
    reader = PcapReader(path)
    assert reader.linktype == 113 and reader.snaplen == 3 and reader.format == "pcap"
    frames = list(reader)
    assert [(lt, data, wire) for lt, _, data, wire in frames] == [
        (113, b"\x01\x02\x03", 60),
        (113, b"", 0),
        (113, bytes(range(200)), 200),
    ]
    unit = 1e-9 if nanosecond else 1e-6
    assert frames[0][1] == pytest.approx(1700000000 + frac * unit, abs=1e-6)
    assert frames[2][1] == pytest.approx(1700000002 + 5 * unit, abs=1e-6)
    assert reader.truncated is None and reader.packets == 3


def test_classic_fcs_bits_are_masked(tmp_path: Path) -> None:
    # bit 26 set (FCS length present) and FCS length 2 (x 2 bytes = 4) in the top nibble, as libpcap writes it
    path = write_pcap(tmp_path / "fcs.pcap", [(1, 0, b"ab", 2)], linktype=0x24000001)
    reader = PcapReader(path)
    assert reader.linktype == 1 and reader.fcs_len == 4
    assert [lt for lt, *_ in reader] == [1]


def test_modified_pcap_24_byte_records(tmp_path: Path) -> None:
    head = struct.pack("<IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 65535, 1)
    rec = struct.pack("<IIII", 10, 500000, 4, 64) + struct.pack("<IHBx", 3, 0x0800, 0) + b"abcd"
    path = tmp_path / "kuz.pcap"
    path.write_bytes(head + rec + rec)
    assert [(ts, d, w) for _, ts, d, w in PcapReader(path)] == [(10.5, b"abcd", 64)] * 2


def test_large_classic_file_across_chunk_boundaries(tmp_path: Path) -> None:
    # more than three read chunks, sizes that straddle every boundary, and one record bigger than a chunk
    sizes = [(i * 37) % 1600 for i in range(3000)]
    sizes.insert(1500, CHUNK + CHUNK // 2)
    recs = [(i, i % 1000000, bytes([i % 251]) * n, n + 4) for i, n in enumerate(sizes)]
    path = write_pcap(tmp_path / "big.pcap", recs)
    assert path.stat().st_size > 3 * CHUNK
    reader = PcapReader(path)
    got = list(reader)
    assert len(got) == len(recs) and reader.truncated is None
    assert all(g[2] == r[2] and g[3] == r[3] for g, r in zip(got, recs, strict=True))
    assert reader.bytes_read == path.stat().st_size


def test_classic_truncated_mid_packet_keeps_earlier_packets(tmp_path: Path) -> None:
    recs = [(1, 0, b"A" * 100, 100), (2, 0, b"B" * 100, 100), (3, 0, b"C" * 100, 100)]
    path = write_pcap(tmp_path / "cut.pcap", recs)
    full = path.read_bytes()
    path.write_bytes(full[:-30])  # the third packet loses its last 30 bytes
    reader = PcapReader(path)
    got = list(reader)
    assert [d for _, _, d, _ in got] == [b"A" * 100, b"B" * 100]
    assert reader.packets == 2
    third_offset = 24 + 2 * 116
    assert reader.truncated is not None
    assert "packet 3" in reader.truncated and f"byte offset {third_offset}" in reader.truncated
    assert "packet data" in reader.truncated and "cut.pcap" in reader.truncated


def test_classic_truncated_mid_header(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "cut.pcap", [(1, 0, b"A" * 10, 10)])
    path.write_bytes(path.read_bytes() + b"\x01\x00\x00\x00\x00\x00")
    reader = PcapReader(path)
    assert len(list(reader)) == 1
    assert reader.truncated is not None and "packet header" in reader.truncated
    assert "packet 2" in reader.truncated and "byte offset 50" in reader.truncated


def test_classic_corrupt_length_stops_cleanly(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "bad.pcap", [(1, 0, b"ok", 2)])
    path.write_bytes(path.read_bytes() + struct.pack("<IIII", 2, 0, 0x7FFFFFFF, 10) + b"junk")
    reader = PcapReader(path)
    assert [d for _, _, d, _ in reader] == [b"ok"]
    assert reader.truncated is not None and "corrupt" in reader.truncated and "packet 2" in reader.truncated


def test_pcapng_two_interfaces_two_sections_all_packet_blocks(tmp_path: Path) -> None:
    w = PcapngWriter()
    w.shb()
    w.idb(1, tsresol=9)  # Ethernet, nanoseconds
    w.idb(113, tsresol=0x80 | 10, snaplen=4)  # SLL, 1/1024 s
    w.epb(0, 1_700_000_000_250_000_000, b"eth-frame")
    w.epb(1, 1_700_000_000 * 1024 + 512, b"sll", orig=90)
    w.block(5, b"\0" * 20)  # an Interface Statistics Block: skipped
    w.spb(b"simple-packet-long", orig=18)  # interface 0 snaplen 0: keeps all its bytes
    w.block(0x0BAD, b"")  # an unknown block type: skipped
    w.shb(big_endian=True)  # a new section: byte order changes, interface ids start again
    w.idb(101, tsoffset=1_000)  # raw IP, default microseconds, 1000 s offset
    w.epb(0, 5_500_000, b"raw-ip")
    w.pb(0, 7_000_001, b"obsolete", orig=100)
    path = w.write(tmp_path / "multi.pcapng")

    reader = PcapReader(path)
    frames = list(reader)
    assert reader.format == "pcapng" and reader.linktype == 1
    assert [(lt, d, wl) for lt, _, d, wl in frames] == [
        (1, b"eth-frame", 9),
        (113, b"sll", 90),
        (1, b"simple-packet-long", 18),
        (101, b"raw-ip", 6),
        (101, b"obsolete", 100),
    ]
    ts = [t for _, t, _, _ in frames]
    assert ts[0] == pytest.approx(1_700_000_000.25, abs=1e-6)
    assert ts[1] == pytest.approx(1_700_000_000.5, abs=1e-6)
    assert ts[2] == ts[1]  # a Simple Packet Block has no timestamp: it gets the last one seen
    assert ts[3] == pytest.approx(1005.5, abs=1e-9)
    assert ts[4] == pytest.approx(1007.000001, abs=1e-9)
    assert reader.truncated is None
    assert reader.skipped == {"block:0x5": 1, "block:0xbad": 1}
    assert reader.bytes_read == path.stat().st_size


def test_pcapng_simple_packet_clipped_to_snaplen(tmp_path: Path) -> None:
    w = PcapngWriter().shb().idb(1, snaplen=5).spb(b"0123456789", orig=10)
    assert [(d, wl) for _, _, d, wl in PcapReader(w.write(tmp_path / "spb.pcapng"))] == [(b"01234", 10)]


def test_pcapng_packet_for_unknown_interface_is_counted(tmp_path: Path) -> None:
    w = PcapngWriter().shb().idb(1).epb(3, 0, b"x").epb(0, 0, b"y")
    reader = PcapReader(w.write(tmp_path / "ifid.pcapng"))
    assert [d for _, _, d, _ in reader] == [b"y"]
    assert reader.skipped == {"epb:bad_interface": 1}


def test_pcapng_truncated_mid_block(tmp_path: Path) -> None:
    w = PcapngWriter().shb().idb(1).epb(0, 1, b"first").epb(0, 2, b"second" * 10)
    path = w.write(tmp_path / "cut.pcapng")
    data = path.read_bytes()
    path.write_bytes(data[:-20])
    reader = PcapReader(path)
    assert [d for _, _, d, _ in reader] == [b"first"]
    assert reader.truncated is not None and "packet 2" in reader.truncated
    second_offset = len(w.blocks[0]) + len(w.blocks[1]) + len(w.blocks[2])
    assert f"byte offset {second_offset}" in reader.truncated


def test_large_pcapng_across_chunks(tmp_path: Path) -> None:
    w = PcapngWriter().shb().idb(1, tsresol=9)
    payloads = [bytes([i % 256]) * ((i * 53) % 1500) for i in range(2500)]
    payloads.insert(1200, b"\xee" * (CHUNK + 100))
    for i, p in enumerate(payloads):
        w.epb(0, i * 1_000_000_000, p)
    reader = PcapReader(w.write(tmp_path / "big.pcapng"))
    got = list(reader)
    assert [d for _, _, d, _ in got] == payloads
    assert [t for _, t, _, _ in got] == [float(i) for i in range(len(payloads))]
    assert reader.truncated is None


def test_not_a_capture_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello world, not a capture")
    with pytest.raises(CaptureError, match=r"notes\.txt.*not a pcap or pcapng file.*68656c6c"):
        PcapReader(path)


def test_gzip_file_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap.gz"
    path.write_bytes(gzip.compress(b"\xd4\xc3\xb2\xa1" + bytes(20)))
    with pytest.raises(CaptureError, match="gzip"):
        PcapReader(path)


def test_empty_short_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    with pytest.raises(CaptureError, match=r"empty\.pcap"):
        PcapReader(empty)
    short = tmp_path / "short.pcap"
    short.write_bytes(struct.pack("<IHH", 0xA1B2C3D4, 2, 4))
    with pytest.raises(CaptureError, match="header truncated"):
        PcapReader(short)
    with pytest.raises(CaptureError, match="cannot open"):
        PcapReader(tmp_path / "absent.pcap")
    assert issubclass(CaptureError, ValueError)


def test_partial_iteration_counts_what_was_yielded(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "x.pcap", [(i, 0, b"x", 1) for i in range(10)])
    with PcapReader(path) as reader:
        for i, _ in enumerate(reader):
            if i == 3:
                break
        assert reader.packets == 4
    assert reader._f.closed


def test_pcapng_corrupt_block_after_packets(tmp_path: Path) -> None:
    w = PcapngWriter().shb().idb(1).epb(0, 1, b"one").epb(0, 2, b"two")
    w.blocks.append(struct.pack("<II", 6, 13) + bytes(8))  # a block length that is not a multiple of 4
    w.epb(0, 3, b"never")
    reader = PcapReader(w.write(tmp_path / "corrupt.pcapng"))
    assert [d for _, _, d, _ in reader] == [b"one", b"two"]
    offset = sum(len(b) for b in w.blocks[:4])
    assert reader.truncated is not None and "corrupt pcapng block header" in reader.truncated
    assert "packet 3" in reader.truncated and f"byte offset {offset}" in reader.truncated
