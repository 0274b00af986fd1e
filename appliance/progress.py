"""A terminal progress bar for replays, drawn on stderr by bytes of the capture read."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


class ProgressBar:
    """Redraws one stderr line at most a few times a second: percent, packets, packets/s."""

    def __init__(
        self, total_bytes: int, bytes_done: Callable[[], int], stream: TextIO | None = None, width: int = 30
    ) -> None:
        self.total = max(total_bytes, 1)
        self.bytes_done = bytes_done
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.start = time.perf_counter()
        self.last_draw = 0.0

    def update(self, packets: int) -> None:
        """Redraw if a quarter second passed since the last draw."""
        now = time.perf_counter()
        if now - self.last_draw < 0.25:
            return
        self.last_draw = now
        self.stream.write("\r" + self.line(packets, now))
        self.stream.flush()

    def line(self, packets: int, now: float) -> str:
        """The bar as text."""
        frac = min(self.bytes_done() / self.total, 1.0)
        filled = int(frac * self.width)
        rate = packets / max(now - self.start, 1e-9)
        return f"[{'#' * filled}{'.' * (self.width - filled)}] {frac * 100:5.1f}%  {packets:,} packets  {rate:,.0f}/s"

    def close(self) -> None:
        """Erase the bar."""
        self.stream.write("\r" + " " * (self.width + 60) + "\r")
        self.stream.flush()
