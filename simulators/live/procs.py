"""Process and socket helpers of the live site: start a child with its stderr in a file, stop it by PID, see which
loopback sockets are bound (from /proc/net), find processes by a string of their command line, hold a file lock."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import struct
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO

TCP_LISTEN = "0A"


class SiteError(RuntimeError):
    """The live site could not start (or a device died): says which process and what its stderr held."""


def wait_until(condition: Callable[[], bool], what: str, limit: float) -> None:
    """Poll `condition` every 50 ms until it holds; SiteError naming `what` after `limit` seconds."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() >= deadline:
            raise SiteError(f"timed out after {limit:.0f} s waiting for {what}")
        time.sleep(0.05)


def _sockets(table: str, pid: int | None = None) -> list[tuple[str, int, str]]:
    """(address, port, state) of every IPv4 socket of a /proc/net table (tcp or udp) in this network namespace, or
    in the namespace of process `pid` (none if it is gone)."""
    out = []
    path = Path(f"/proc/{pid}/net/{table}" if pid is not None else f"/proc/net/{table}")
    try:
        text = path.read_text()
    except OSError:
        return []
    for line in text.splitlines()[1:]:
        fields = line.split()
        ip_hex, port_hex = fields[1].split(":")
        out.append((socket.inet_ntoa(struct.pack("<I", int(ip_hex, 16))), int(port_hex, 16), fields[3]))
    return out


def tcp_listening(pid: int | None = None) -> set[tuple[str, int]]:
    """(address, port) of every listening IPv4 TCP socket (in process `pid`'s network namespace, if given)."""
    return {(ip, port) for ip, port, state in _sockets("tcp", pid) if state == TCP_LISTEN}


def udp_bound(pid: int | None = None) -> Counter[tuple[str, int]]:
    """How many IPv4 UDP sockets are bound to each (address, port) (in process `pid`'s namespace, if given)."""
    return Counter((ip, port) for ip, port, _state in _sockets("udp", pid))


def processes_mentioning(text: str) -> list[int]:
    """PIDs of the processes whose command line contains `text` (the caller excluded)."""
    found = []
    needle = text.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


class Child:
    """One process of the site, started with its stderr in a file and stopped by its PID."""

    def __init__(self, name: str, command: list[str], folder: Path, cwd: Path) -> None:
        self.name = name
        self.command = command
        self.err_path = folder / f"{name}.err"
        with self.err_path.open("w") as err:
            self.proc = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=err)  # fmt: skip
        self.pid = self.proc.pid

    def alive(self) -> bool:
        """Whether it still runs."""
        return self.proc.poll() is None

    def check(self) -> None:
        """SiteError with its stderr if it has died."""
        if not self.alive():
            tail = self.err_path.read_text(errors="replace")[-2000:] if self.err_path.exists() else ""
            raise SiteError(f"{self.name} (pid {self.pid}) exited with {self.proc.returncode}:\n{tail}")

    def terminate(self) -> None:
        """SIGTERM by PID, if it still runs."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)

    def reap(self, deadline: float) -> bool:
        """Wait until `deadline` (monotonic) for the exit; SIGKILL and wait if it is still there. True if it ended on
        its own."""
        try:
            self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            return True
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return False


class FileLock:
    """An exclusive flock on a file, taken with a deadline (another run holding it is waited for)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self, limit: float) -> None:
        """Take the lock; SiteError after `limit` seconds."""
        handle = self.path.open("a")

        def take() -> bool:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False

        try:
            wait_until(take, f"the lock {self.path} (another live BACnet site or test runs)", limit)
        except SiteError:
            handle.close()
            raise
        self._file = handle

    def release(self) -> None:
        """Let go of the lock (if held)."""
        if self._file is not None:
            self._file.close()
            self._file = None
