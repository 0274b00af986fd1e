"""The JSON-lines file sink: one line per record, written and flushed at once, rotated by size and/or age.

Rotation happens only between lines: before a line that would take the file past `max_bytes` (a line longer than
that gets a file of its own), or once the file has been written for `max_age` seconds (wall clock). The current
file is renamed `PATH.1`, the older ones move up one number, and `PATH.<keep>` (the oldest kept) is replaced: at
most `keep` rotated files stay beside the current one. Writing takes microseconds, so this sink writes on the
calling (pipeline) thread, in order, with no queue; a write error is counted as failed and the file is opened again
for the next record.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from appliance.export.sinks.base import Record, SinkHealth, log_stderr
from appliance.export.sinks.formats import dumps, ecs_document, json_document
from appliance.export.sinks.settings import JsonlSinkSettings


class RotatingLines:
    """An append-only file of lines with size/age rotation keeping `keep` old files."""

    def __init__(
        self, path: Path, *, max_bytes: int, max_age: float, keep: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.keep = keep
        self._clock = clock
        self._file: BinaryIO | None = None
        self._size = 0
        self._opened = 0.0
        self.rotations = 0

    def _open(self) -> BinaryIO:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab")  # noqa: SIM115 - kept open across writes
            self._size = self._file.tell()
            self._opened = self._clock()
        return self._file

    def _due(self, length: int) -> bool:
        if self._size == 0:
            return False
        if self.max_bytes and self._size + length > self.max_bytes:
            return True
        return bool(self.max_age) and self._clock() - self._opened >= self.max_age

    def rotate(self) -> None:
        """Close the current file and shift the names: PATH -> PATH.1 -> PATH.2 ... (PATH.<keep> is replaced)."""
        self.close()
        for n in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{n + 1}"))
        if self.path.exists():
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self.rotations += 1

    def write(self, line: bytes) -> None:
        """Append one newline-ended line, rotating first if it is due; OSError on a write failure."""
        self._open()
        if self._due(len(line)):
            self.rotate()
        f = self._open()
        try:
            f.write(line)
            f.flush()
        except OSError:
            self.close()
            raise
        self._size += len(line)

    def close(self) -> None:
        """Close the current file (the next write opens it again)."""
        f, self._file = self._file, None
        if f is not None:
            with contextlib.suppress(OSError):
                f.close()


class JsonlFileSink:
    """Writes records as JSON lines to a rotated file (synchronously: no thread, no queue, no drops)."""

    type = "jsonl"

    def __init__(self, name: str, settings: JsonlSinkSettings, *, version: str,
                 log: Callable[[str], None] = log_stderr, clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.name = name
        self.settings = settings
        self._version = version
        self._log = log
        self._lock = threading.Lock()
        self.lines = RotatingLines(
            settings.path, max_bytes=settings.max_bytes, max_age=settings.max_age, keep=settings.keep, clock=clock
        )
        self.sent = self.failed = 0
        self._ok = True
        self._closed = False

    def line(self, record: Record) -> bytes:
        """The record's line in the configured format."""
        s = self.settings
        doc = ecs_document(record, s.sensor, self._version) if s.format == "ecs" else json_document(record, s.sensor)
        return dumps(doc) + b"\n"

    def submit(self, record: Record) -> None:
        """Write the record now; an error is counted and reported once until writing works again."""
        line = self.line(record)
        with self._lock:
            if self._closed:
                self.failed += 1
                return
            try:
                self.lines.write(line)
            except OSError as exc:
                self.failed += 1
                if self._ok:
                    self._log(f"sink {self.name}: cannot write {self.settings.path}: {exc.strerror or exc}")
                self._ok = False
                return
            self.sent += 1
            if not self._ok:
                self._ok = True
                self._log(f"sink {self.name}: writing {self.settings.path} again")

    def close(self, deadline: float) -> None:
        """Close the file (nothing is queued: the deadline does not matter)."""
        with self._lock:
            self._closed = True
            self.lines.close()

    def health(self) -> SinkHealth:
        """The counters now (queue 0 of 0: lines are written at once)."""
        with self._lock:
            return SinkHealth(self.name, self.type, self.sent, self.failed, 0, 0, 0, 0, self._ok)
