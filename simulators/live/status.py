"""What a live-site process reports: a small JSON status file, rewritten atomically, that the site (or a test) reads.

Field devices count every request they receive by operation and sender, and keep a list of the writes and control
commands (with sender, operation and a short detail). The file is rewritten on every write or command, at most once a
`flush_seconds` while other counts change, and on exit (state "stopped"). Reading it is never a request to the device.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_WRITES_KEPT = 200  # the list of write records is bounded; `write_count` counts them all


@dataclass
class Status:
    """One process's counters and its status file."""

    path: Path
    name: str
    role: str
    address: str
    flush_seconds: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    senders: dict[str, Counter[str]] = field(default_factory=dict)
    writes: list[dict[str, Any]] = field(default_factory=list)
    write_count: int = 0
    state: str = "running"
    _dirty: bool = True
    _flushed: float = 0.0

    def request(self, op: str, sender: str) -> None:
        """Count one request (a read or anything else) from `sender`."""
        self.requests[op] += 1
        self.senders.setdefault(sender, Counter())[op] += 1
        self._dirty = True

    def write(self, op: str, sender: str, detail: str = "") -> None:
        """Count one write or control command from `sender` and rewrite the file now."""
        self.request(op, sender)
        self.write_count += 1
        if len(self.writes) < MAX_WRITES_KEPT:
            self.writes.append({"ts": round(time.time(), 3), "sender": sender, "op": op, "detail": detail})
        self.flush()

    def note(self, **values: Any) -> None:
        """Set free-form fields of the status (poll counts, last identification time, ...)."""
        self.extra.update(values)
        self._dirty = True

    def tick(self) -> None:
        """Rewrite the file if something changed and the last rewrite is older than `flush_seconds`."""
        if self._dirty and time.monotonic() - self._flushed >= self.flush_seconds:
            self.flush()

    def stopped(self) -> None:
        """Mark the process stopped and rewrite the file (the last word of the process)."""
        self.state = "stopped"
        self.flush()

    def as_dict(self) -> dict[str, Any]:
        """The JSON document."""
        return {
            "name": self.name,
            "role": self.role,
            "address": self.address,
            "pid": os.getpid(),
            "state": self.state,
            "updated": round(time.time(), 3),
            "requests": dict(self.requests),
            "senders": {s: dict(c) for s, c in self.senders.items()},
            "write_count": self.write_count,
            "writes": self.writes,
            **self.extra,
        }

    def flush(self) -> None:
        """Write the file atomically (a temporary file renamed over it)."""
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.as_dict(), sort_keys=True))
        tmp.replace(self.path)
        self._dirty = False
        self._flushed = time.monotonic()


def read_status(path: Path) -> dict[str, Any] | None:
    """A status file's document, or None while it does not exist yet."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return data


class ParentWatch:
    """True once the process that started us is gone (we were re-parented): a device then stops by itself."""

    def __init__(self) -> None:
        self.parent = os.getppid()

    def orphaned(self) -> bool:
        """Whether the parent has gone away."""
        return os.getppid() != self.parent
