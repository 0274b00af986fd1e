"""The site's pcap writer: chain_wire's packet-clock Capture, streamed to disk hour by hour.

Activities place themselves on the clock with `at()` and may overlap; `flush(before)` writes, in time order, every
frame earlier than `before` and keeps the rest. The simulator generates each hour's activities (each one starts
inside the hour, but may run on) and then flushes up to the hour's end, so the file is sorted and memory stays at
about an hour of frames. `mark()`/`span()` give the packet-time span of the frames made since a mark (the ground
truth of a step).
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from pathlib import Path
from random import Random
from typing import BinaryIO

from simulators.itgen.chain_wire import Capture
from simulators.mixed_capture import pcap_global_header

__all__ = ["SiteCapture"]

_RECORD = struct.Struct("<IIII")


class SiteCapture(Capture):
    """A Capture that writes its frames to an open pcap file in time order as the simulation moves on."""

    def __init__(self, rng: Random, start_us: int, path: str | Path) -> None:
        super().__init__(rng, start_us)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed by close()
        self._file.write(pcap_global_header())
        self._serial = 0
        self.written = 0
        self.first_us: int | None = None
        self.last_us = 0
        self.bytes = 0

    def add(self, *frames: bytes) -> None:
        """Append frames, each 0.2-1.2 ms after the previous one."""
        for frame in frames:
            self.now_us += 200 + self.rng.randrange(1000)
            self._serial += 1
            self.frames.append((self.now_us, self._serial, frame))

    def add_at(self, us: int, frame: bytes) -> None:
        """Append one frame at an exact packet time (microseconds), leaving the clock alone."""
        self._serial += 1
        self.frames.append((us, self._serial, frame))

    def mark(self) -> int:
        """A mark: how many frames the capture holds now (frames are only appended between mark and span)."""
        return len(self.frames)

    def span(self, mark: int) -> tuple[float, float] | None:
        """(first, last) packet time in seconds of the frames made since `mark`, None if there are none."""
        made = self.frames[mark:]
        if not made:
            return None
        times = [us for us, _, _ in made]
        return min(times) / 1e6, max(times) / 1e6

    def flush(self, before_us: int) -> int:
        """Write every held frame earlier than `before_us`, in time order; returns how many were written."""
        self.frames.sort()
        cut = bisect_left(self.frames, (before_us,))
        out = self._file
        pack = _RECORD.pack
        for us, _, frame in self.frames[:cut]:
            n = len(frame)
            out.write(pack(us // 1_000_000, us % 1_000_000, n, n))
            out.write(frame)
            self.bytes += n
        if cut:
            if self.first_us is None:
                self.first_us = self.frames[0][0]
            self.last_us = self.frames[cut - 1][0]
        del self.frames[:cut]
        self.written += cut
        return cut

    def close(self) -> int:
        """Write everything still held and close the file; returns the number of frames written in all."""
        self.flush(1 << 62)
        self._file.close()
        return self.written
