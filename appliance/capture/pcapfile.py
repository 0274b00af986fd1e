"""Pure-Python reader for classic pcap and pcapng capture files.

`PcapReader(path)` yields `(linktype, ts, frame, wire_len)` for every packet. Supported:

- classic pcap in both byte orders, microsecond (0xa1b2c3d4) and nanosecond (0xa1b23c4d) magic, any snaplen,
  and Kuznetzov's "modified" pcap (0xa1b2cd34, 24-byte record headers); the FCS bits of the link-type field
  are masked off as libpcap does;
- pcapng: Section Header Blocks of either byte order, several sections (interfaces are per section), Interface
  Description Blocks with `if_tsresol` (power of 10 or, high bit set, power of 2) and `if_tsoffset`, Enhanced
  Packet Blocks, Simple Packet Blocks (no timestamp: they get the last timestamp seen), the obsolete Packet
  Block; every other block is skipped.

The file is read in large chunks and records are unpacked in place with precompiled `struct.Struct` objects.
A file that ends mid-header or mid-packet (or whose record headers are corrupt) stops the iteration cleanly:
the packets before were yielded and `truncated` holds a message naming the packet number and byte offset.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

__all__ = ["CaptureError", "PcapReader"]

CHUNK = 1 << 17  # bytes per read() call: measured faster than 1 MiB or more (the buffer stays in cache)
MAX_RECORD = 1 << 24  # a packet record larger than this is taken as corruption, not data
DEFAULT_SNAPLEN = 262144

PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_IDB = 0x00000001
PCAPNG_PB = 0x00000002  # obsolete Packet Block
PCAPNG_SPB = 0x00000003
PCAPNG_EPB = 0x00000006
PCAPNG_BOM = 0x1A2B3C4D

OPT_ENDOFOPT = 0
OPT_IF_TSRESOL = 9
OPT_IF_TSOFFSET = 14

# classic pcap magic (as read little-endian) -> (byte order, fraction divisor, record header size)
_CLASSIC_MAGIC: dict[int, tuple[str, float, int]] = {
    0xA1B2C3D4: ("<", 1e6, 16),
    0xD4C3B2A1: (">", 1e6, 16),
    0xA1B23C4D: ("<", 1e9, 16),
    0x4D3CB2A1: (">", 1e9, 16),
    0xA1B2CD34: ("<", 1e6, 24),
    0x34CDB2A1: (">", 1e6, 24),
}


class CaptureError(ValueError):
    """A capture source cannot be opened or read: not a capture file, missing interface, no permission."""


# what a pcapng section says about one interface: link type, timestamp ticks per second, ticks added to every
# timestamp (if_tsoffset seconds times ticks per second), snaplen
_Interface = tuple[int, int, int, int]


class PcapReader:
    """Iterate over the packets of a pcap or pcapng file as `(linktype, ts, frame, wire_len)` tuples.

    Attributes: `packets` (yielded so far: updated per read chunk, exact once iteration ends), `bytes_read`
    and `file_size` (for a progress bar), `truncated` (why reading stopped early, else None), `skipped`
    (pcapng blocks not yielded, by reason), `format`, `linktype` (the file's, or the first interface's).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.packets = 0
        self.bytes_read = 0
        self.file_size = 0
        self.truncated: str | None = None
        self.skipped: Counter[str] = Counter()
        self.format = ""  # "pcap" or "pcapng"
        self.linktype: int | None = None
        self.snaplen = 0
        self.fcs_len = 0
        self.version = (0, 0)
        try:
            self._f: BinaryIO = open(self.path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
            self.file_size = self.path.stat().st_size
        except OSError as e:
            raise CaptureError(f"{self.path}: cannot open capture file: {e.strerror or e}") from e
        head = self._f.read(CHUNK)
        self._head = head
        if len(head) < 4:
            self._f.close()
            raise CaptureError(f"{self.path}: not a pcap or pcapng file (only {len(head)} bytes)")
        (magic,) = struct.unpack_from("<I", head, 0)
        if magic in _CLASSIC_MAGIC:
            self.format = "pcap"
            self._open_classic(head, magic)
        elif magic == PCAPNG_SHB:
            self.format = "pcapng"
            self._open_pcapng(head)
        else:
            self._f.close()
            hint = " (gzip-compressed? decompress it first)" if head[:2] == b"\x1f\x8b" else ""
            raise CaptureError(f"{self.path}: not a pcap or pcapng file (magic {head[:4].hex()}){hint}")

    # ----------------------------------------------------------------- opening

    def _open_classic(self, head: bytes, magic: int) -> None:
        order, divisor, hsize = _CLASSIC_MAGIC[magic]
        if len(head) < 24:
            self._f.close()
            raise CaptureError(f"{self.path}: pcap file header truncated ({len(head)} of 24 bytes)")
        _, major, minor, _, _, snaplen, linktype = struct.unpack_from(order + "IHHiIII", head, 0)
        self.version = (major, minor)
        self.snaplen = snaplen
        self.fcs_len = (linktype >> 28) * 2 if linktype & 0x04000000 else 0
        self.linktype = linktype & 0x03FFFFFF
        self._order = order
        self._divisor = divisor
        self._hsize = hsize

    def _open_pcapng(self, head: bytes) -> None:
        if len(head) < 12:
            self._f.close()
            raise CaptureError(f"{self.path}: pcapng section header truncated ({len(head)} bytes)")
        bom_le = struct.unpack_from("<I", head, 8)[0]
        if bom_le not in (PCAPNG_BOM, 0x4D3C2B1A):
            self._f.close()
            raise CaptureError(
                f"{self.path}: not a pcap or pcapng file (pcapng byte-order magic {head[8:12].hex()})"
            )

    # ---------------------------------------------------------------- iterating

    def __iter__(self) -> Iterator[tuple[int, float, bytes, int]]:
        """Yield `(linktype, ts, frame, wire_len)` for every packet; stop at the end or at a truncation."""
        if self.format == "pcap":
            return self._iter_classic()
        return self._iter_pcapng()

    def _stop(self, what: str, packets: int, offset: int) -> None:
        self.truncated = f"{self.path}: {what} at packet {packets + 1}, byte offset {offset}"

    def _iter_classic(self) -> Iterator[tuple[int, float, bytes, int]]:
        f = self._f
        hsize = self._hsize
        rec = struct.Struct(self._order + "IIII")
        unpack_from = rec.unpack_from
        divisor = self._divisor
        linktype = self.linktype
        assert linktype is not None
        buf = self._head
        self._head = b""
        pos = 24
        base = 0  # file offset of buf[0]
        n = 0
        try:
            while True:
                blen = len(buf)
                # the inner loop runs over every whole record in the buffer
                while pos + hsize <= blen:
                    sec, frac, incl, orig = unpack_from(buf, pos)
                    start = pos + hsize
                    end = start + incl
                    if end > blen:
                        break
                    n += 1
                    yield linktype, sec + frac / divisor, buf[start:end], orig
                    pos = end
                # need more data: keep the unparsed tail, read the next chunk
                self.packets = n
                self.bytes_read = base + pos
                if pos + hsize <= blen:
                    (incl,) = struct.unpack_from(self._order + "I", buf, pos + 8)
                    if incl > MAX_RECORD:
                        self._stop(f"corrupt record header (captured length {incl})", n, base + pos)
                        return
                    want = max(CHUNK, hsize + incl)
                else:
                    want = CHUNK
                more = f.read(want)
                if not more:
                    if pos < blen:
                        part = "packet header" if pos + hsize > blen else "packet data"
                        self._stop(f"file ends in the middle of the {part}", n, base + pos)
                    return
                base += pos
                buf = buf[pos:] + more
                pos = 0
        finally:
            self.packets = n

    def _iter_pcapng(self) -> Iterator[tuple[int, float, bytes, int]]:
        f = self._f
        buf = self._head
        self._head = b""
        pos = 0
        base = 0
        n = 0
        order = "<"
        hdr = struct.Struct("<II")
        epb = struct.Struct("<IIIII")
        pb = struct.Struct("<HHIIII")
        ifaces: list[_Interface] = []
        last_ts = 0.0
        skipped = self.skipped
        try:
            while True:
                blen = len(buf)
                while pos + 12 <= blen:
                    btype, blk = hdr.unpack_from(buf, pos)
                    if btype == PCAPNG_SHB:
                        # a new section: byte order may change, interfaces start afresh
                        bom = struct.unpack_from("<I", buf, pos + 8)[0]
                        if bom == PCAPNG_BOM:
                            order = "<"
                        elif bom == 0x4D3C2B1A:
                            order = ">"
                        else:
                            magic = buf[pos + 8 : pos + 12].hex()
                            self._stop(f"bad pcapng byte-order magic {magic}", n, base + pos)
                            return
                        hdr = struct.Struct(order + "II")
                        epb = struct.Struct(order + "IIIII")
                        pb = struct.Struct(order + "HHIIII")
                        btype, blk = hdr.unpack_from(buf, pos)
                        ifaces = []
                    if blk < 12 or blk & 3 or blk > MAX_RECORD:
                        what = f"corrupt pcapng block header (type {btype:#x}, length {blk})"
                        self._stop(what, n, base + pos)
                        return
                    end = pos + blk
                    if end > blen:
                        break
                    if btype == PCAPNG_EPB:
                        ifid, hi, lo, incl, orig = epb.unpack_from(buf, pos + 8)
                        if ifid < len(ifaces) and incl + 32 <= blk:
                            linktype, units, tbase, _ = ifaces[ifid]
                            last_ts = (((hi << 32) | lo) + tbase) / units  # int / int: correctly rounded
                            n += 1
                            yield linktype, last_ts, buf[pos + 28 : pos + 28 + incl], orig
                        else:
                            skipped["epb:bad_interface" if ifid >= len(ifaces) else "epb:bad_length"] += 1
                    elif btype == PCAPNG_SPB:
                        if not ifaces:
                            skipped["spb:no_interface"] += 1
                        else:
                            (orig,) = struct.unpack_from(order + "I", buf, pos + 8)
                            incl = min(orig, blk - 16)
                            if ifaces[0][3]:
                                incl = min(incl, ifaces[0][3])
                            n += 1
                            yield ifaces[0][0], last_ts, buf[pos + 12 : pos + 12 + incl], orig
                    elif btype == PCAPNG_IDB:
                        ifaces.append(self._parse_idb(buf, pos, blk, order))
                        if self.linktype is None:
                            self.linktype = ifaces[-1][0]
                    elif btype == PCAPNG_PB:
                        ifid, _drops, hi, lo, incl, orig = pb.unpack_from(buf, pos + 8)
                        if ifid < len(ifaces) and incl + 32 <= blk:
                            linktype, units, tbase, _ = ifaces[ifid]
                            last_ts = (((hi << 32) | lo) + tbase) / units
                            n += 1
                            yield linktype, last_ts, buf[pos + 28 : pos + 28 + incl], orig
                        else:
                            skipped["pb:bad_interface" if ifid >= len(ifaces) else "pb:bad_length"] += 1
                    elif btype != PCAPNG_SHB:
                        skipped[f"block:{btype:#x}"] += 1
                    pos = end
                self.packets = n
                self.bytes_read = base + pos
                want = CHUNK
                if pos + 8 <= blen:
                    want = max(CHUNK, hdr.unpack_from(buf, pos)[1])
                more = f.read(want)
                if not more:
                    if pos < blen:
                        part = "block header" if pos + 12 > blen else "block"
                        self._stop(f"file ends in the middle of a pcapng {part}", n, base + pos)
                    return
                base += pos
                buf = buf[pos:] + more
                pos = 0
        finally:
            self.packets = n

    @staticmethod
    def _parse_idb(buf: bytes, pos: int, blk: int, order: str) -> _Interface:
        """Read an Interface Description Block: link type, snaplen, if_tsresol and if_tsoffset."""
        linktype, _, snaplen = struct.unpack_from(order + "HHI", buf, pos + 8)
        units = 1_000_000
        offset = 0
        opt = pos + 16
        end = pos + blk - 4
        while opt + 4 <= end:
            code, olen = struct.unpack_from(order + "HH", buf, opt)
            if code == OPT_ENDOFOPT:
                break
            val = opt + 4
            if code == OPT_IF_TSRESOL and olen >= 1 and val < end:
                r = buf[val]
                exp = r & 0x7F
                if exp <= 63:  # beyond that the unit is absurd: keep microseconds
                    units = (1 << exp) if r & 0x80 else 10**exp
            elif code == OPT_IF_TSOFFSET and olen >= 8 and val + 8 <= end:
                (offset,) = struct.unpack_from(order + "q", buf, val)
            opt = val + ((olen + 3) & ~3)
        return linktype, units, offset * units, snaplen

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Close the file; iteration cannot continue afterwards."""
        self._f.close()

    def __enter__(self) -> PcapReader:
        """Use as a context manager: closed on exit."""
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close on leaving the `with` block."""
        self.close()
