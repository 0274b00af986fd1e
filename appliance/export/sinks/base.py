"""What every sink shares: the record forwarded, the health counters, and the queued worker of network sinks.

A network sink never blocks the pipeline: `submit` appends to a bounded queue (a full queue drops the new record
and counts it) and one worker thread per sink delivers in order. A failed delivery is retried `max_retries` times,
waiting `backoff_base * 2**n` seconds (at most `backoff_max`) before retry n+1; then the record counts as failed and
the next one is tried. `close(deadline)` stops accepting records, lets the worker flush the queue until the deadline
(a `time.monotonic()` instant), then cuts short any wait and counts what is left as dropped.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.secret_file import why as _why


class SinkError(Exception):
    """A delivery that failed and may succeed later (connection refused, timeout, HTTP 503...)."""


class PermanentSinkError(SinkError):
    """A delivery that will fail the same way if retried (HTTP 400, a record too large for a datagram...)."""


class SinkSetupError(ValueError):
    """A sink setting that cannot be used at start; the message starts with the key (`sinks.0.password_file: ...`)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One alert or incident to forward: its kind, packet time, severity and row (the alerts.jsonl row)."""

    kind: str  # "alert" or "incident"
    ts: float
    severity: str
    row: dict[str, Any] = field(compare=False)


@dataclass(frozen=True, slots=True)
class SinkHealth:
    """A sink's counters now: records sent, failed after every retry, dropped (queue full or shutdown), retries."""

    name: str
    type: str
    sent: int
    failed: int
    dropped: int
    retries: int
    queue_depth: int
    queue_capacity: int
    connected: bool


def backoff_delays(base: float, cap: float, retries: int) -> list[float]:
    """The waits before each retry: base, 2*base, 4*base, ... each at most `cap`."""
    return [min(cap, base * 2**n) for n in range(retries)]


def log_stderr(message: str) -> None:
    """The default log of sinks: one line on stderr."""
    print(f"otwatch: {message}", file=sys.stderr, flush=True)


class QueuedSink:
    """A sink with its own worker thread and bounded queue; subclasses implement `deliver` (and `disconnect`)."""

    type = "sink"

    def __init__(
        self,
        name: str,
        *,
        queue_size: int,
        max_retries: int,
        backoff_base: float,
        backoff_max: float,
        log: Callable[[str], None] = log_stderr,
        start: bool = True,
    ) -> None:
        self.name = name
        self.capacity = queue_size
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._log = log
        self._queue: deque[Record] = deque()
        self._cond = threading.Condition()
        self._abort = threading.Event()  # the shutdown deadline passed: stop waiting, stop delivering
        self._closing = False
        self._busy = False  # the worker holds a record (delivering or waiting to retry)
        self.sent = self.failed = self.dropped = self.retries = 0
        self._last_ok = False
        self._failing = False  # a failure was logged since the last success: stay quiet until it recovers
        self._thread = threading.Thread(target=self._work, name=f"otwatch-sink-{name}", daemon=True)
        if start:
            self._thread.start()

    # ------------------------------------------------------------------ subclass hooks (worker thread)

    def deliver(self, record: Record) -> None:
        """Send one record; raise SinkError (retried) or PermanentSinkError (not retried) on failure."""
        raise NotImplementedError

    def disconnect(self) -> None:
        """Release the connection (worker thread, at the end); nothing by default."""

    @property
    def connected(self) -> bool:
        """Whether the sink's receiver is reachable now (by default: the last delivery succeeded)."""
        return self._last_ok

    # ------------------------------------------------------------------ any thread

    def start(self) -> None:
        """Start the worker (when made with start=False)."""
        if not self._thread.is_alive():
            self._thread.start()

    def submit(self, record: Record) -> None:
        """Queue a record without blocking; a full queue (or a closing sink) drops it and counts the drop."""
        with self._cond:
            if self._closing or len(self._queue) >= self.capacity:
                self.dropped += 1
                return
            self._queue.append(record)
            self._cond.notify()

    def close(self, deadline: float) -> None:
        """Flush the queue until `deadline` (time.monotonic()), then stop; what is left is counted as dropped."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            before = self.dropped
        self._abort.set()
        if self._thread.ident is not None:  # started: a send in progress ends within its socket timeout
            self._thread.join(1.0)
        with self._cond:
            self.dropped += len(self._queue)
            self._queue.clear()
            left = self.dropped - before + (1 if self._busy and self._thread.is_alive() else 0)
        if left:
            self._log(f"sink {self.name}: {left} record(s) not delivered before the shutdown deadline")
        if not self._thread.is_alive():
            self.disconnect()

    def health(self) -> SinkHealth:
        """The counters now."""
        with self._cond:
            return SinkHealth(
                self.name, self.type, self.sent, self.failed, self.dropped, self.retries, len(self._queue),
                self.capacity, self.connected,
            )  # fmt: skip

    # ------------------------------------------------------------------ the worker

    def _next(self) -> Record | None:
        with self._cond:
            while not self._queue:
                if self._closing or self._abort.is_set():
                    return None
                self._cond.wait()
            if self._abort.is_set():
                return None
            self._busy = True
            return self._queue.popleft()

    def _work(self) -> None:
        while (record := self._next()) is not None:
            try:
                self._send(record)
            finally:
                with self._cond:
                    self._busy = False

    def _send(self, record: Record) -> None:
        delays = backoff_delays(self.backoff_base, self.backoff_max, self.max_retries)
        attempt = 0
        while True:
            try:
                self.deliver(record)
            except Exception as exc:  # a bug in a sink must not end its worker: counted as failed, not retried
                self._last_ok = False
                permanent = isinstance(exc, PermanentSinkError) or not isinstance(exc, SinkError)
                if permanent or attempt >= len(delays) or self._abort.is_set():
                    with self._cond:
                        if self._abort.is_set() and not permanent and attempt < len(delays):
                            self.dropped += 1  # given up at the shutdown deadline, not after every retry
                        else:
                            self.failed += 1
                    self._warn(f"sink {self.name}: a {record.kind} was not delivered: {_why(exc)}")
                    return
                self._warn(f"sink {self.name}: delivery failed ({_why(exc)}); retrying with backoff")
                with self._cond:
                    self.retries += 1
                if self._abort.wait(delays[attempt]):
                    with self._cond:
                        self.dropped += 1
                    return
                attempt += 1
                continue
            with self._cond:
                self.sent += 1
            self._last_ok = True
            if self._failing:
                self._failing = False
                self._log(f"sink {self.name}: delivering again")
            return

    def _warn(self, message: str) -> None:
        if not self._failing:
            self._failing = True
            self._log(message)
