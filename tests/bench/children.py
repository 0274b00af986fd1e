"""Child processes of the benchmark: run one pinned, read its peak RSS from os.wait4, and the measurements.

Each measurement runs `repeat` times in its own child; `Measure` keeps the runs and gives the median rate and
the highest peak RSS. Python readers are timed inside the child (the read loop only); external commands from
spawn to exit.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Child program for the raw read: our PcapReader if importable, else a plain f.read + struct loop.
_READER_CHILD = r"""
import json, struct, sys, time
path = sys.argv[1]
note = ""
try:
    from appliance.capture.pcapfile import PcapReader
    reader = "PcapReader (appliance.capture.pcapfile)"
except Exception as exc:  # not written yet, or broken
    PcapReader = None
    reader = "struct loop (fallback, no PcapReader)"
    note = f"PcapReader not importable: {type(exc).__name__}: {exc}"
start = time.perf_counter()
n = 0
if PcapReader is not None:
    for _rec in PcapReader(path):
        n += 1
else:
    rec = struct.Struct("<IIII").unpack_from
    with open(path, "rb", buffering=1 << 20) as f:
        f.read(24)
        read = f.read
        while True:
            head = read(16)
            if len(head) < 16:
                break
            read(rec(head)[2])
            n += 1
seconds = time.perf_counter() - start
print(json.dumps({"packets": n, "seconds": seconds, "reader": reader, "note": note}))
"""


@dataclass
class Child:
    """What one child process did: exit status, wall seconds, peak RSS and its output."""

    returncode: int
    seconds: float
    maxrss_kib: int
    stdout: str
    stderr: str


@dataclass
class Measure:
    """The runs of one measurement and their summary figures."""

    key: str
    name: str
    packets: int = 0
    runs: list[float] = field(default_factory=list)  # seconds per run
    rss_kib: list[int] = field(default_factory=list)
    status: str = "ok"  # ok | missing | failed | skipped
    note: str = ""

    def pps(self) -> float | None:
        """Median packets per second over the runs."""
        if self.status != "ok" or not self.runs:
            return None
        return self.packets / statistics.median(self.runs)

    def peak_mib(self) -> float | None:
        """Highest peak RSS over the runs, in MiB."""
        return max(self.rss_kib) / 1024 if self.rss_kib and self.status == "ok" else None

    def as_dict(self) -> dict[str, Any]:
        """The figures for --json."""
        return {
            "status": self.status,
            "note": self.note,
            "packets": self.packets,
            "runs_s": self.runs,
            "packets_per_s": self.pps(),
            "peak_rss_mib": self.peak_mib(),
        }


def pin_prefix(cpu: int | None) -> tuple[list[str], str]:
    """The prefix pinning a child to one core (moving this process off it), and its description."""
    if cpu is None:
        return [], "not pinned (--cpu -1)"
    taskset = shutil.which("taskset")
    if taskset is None:
        return [], "not pinned (taskset not found)"
    allowed = os.sched_getaffinity(0)
    if cpu not in allowed:
        cpu = min(allowed)
    if len(allowed) > 1:  # the runner's /proc sampling must not share the measured core
        os.sched_setaffinity(0, allowed - {cpu})
    return [taskset, "-c", str(cpu)], f"taskset -c {cpu}"


def _status_kib(pid: int | str, key: str) -> int:
    """A `kB` field (VmHWM, VmRSS) of /proc/PID/status, 0 when unreadable."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(key.encode() + b":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def peak_rss_kib(maxrss: int, floor: int, sampled: int) -> int:
    """The child's own peak RSS from wait4's ru_maxrss, the spawner's high-water mark and /proc samples.

    On exec, Linux folds the old address space's high-water mark into ru_maxrss, and a spawned child's old
    address space is its parent's: ru_maxrss is exact only above the parent's VmHWM (`floor`). Below it, the
    last VmHWM read from /proc while the child ran is the best figure.
    """
    if maxrss > floor or not sampled:
        return maxrss
    return sampled


def run_child(
    argv: list[str], prefix: list[str], env: dict[str, str] | None = None, keep_stdout: bool = True
) -> Child:
    """Run argv (pinned by prefix) to completion; stderr (and stdout, or /dev/null) go to temporary files."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        stdout: tuple[Any, ...] = (
            (os.POSIX_SPAWN_DUP2, out.fileno(), 1)
            if keep_stdout
            else (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)
        )
        floor = _status_kib("self", "VmHWM")
        start = time.perf_counter()
        pid = os.posix_spawnp(
            (prefix + argv)[0],
            prefix + argv,
            env if env is not None else dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                stdout,
                (os.POSIX_SPAWN_DUP2, err.fileno(), 2),
            ],
        )
        sampled = 0
        pidfd = os.pidfd_open(pid)
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            while not poller.poll(10):  # wakes at once when the child exits, else samples every 10 ms
                sampled = max(sampled, _status_kib(pid, "VmHWM"))
        finally:
            os.close(pidfd)
        _pid, status, usage = os.wait4(pid, 0)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return Child(
            os.waitstatus_to_exitcode(status),
            seconds,
            peak_rss_kib(usage.ru_maxrss, floor, sampled),
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


def warm_cache(path: Path) -> None:
    """Read the file once so every measurement starts from the page cache."""
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 22):
            pass


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(line for line in text.strip().splitlines()[-lines:] if "Running as user" not in line)


def measure_raw_python(pcap: Path, n: int, repeat: int, prefix: list[str], env: dict[str, str]) -> Measure:
    """Our reader (or the struct fallback): packets/s of the read loop itself, timed inside the child."""
    m = Measure("raw", "raw read: Python", n)
    for _ in range(repeat):
        child = run_child([sys.executable, "-c", _READER_CHILD, str(pcap)], prefix, env)
        if child.returncode != 0:
            m.status, m.note = "failed", f"rc={child.returncode}: {_tail(child.stderr)}"
            return m
        result = json.loads(child.stdout)
        m.name = f"raw read: {result['reader']}"
        m.note = result["note"]
        if result["packets"] != n:
            m.status, m.note = "failed", f"read {result['packets']} packets, expected {n}"
            return m
        m.runs.append(result["seconds"])
        m.rss_kib.append(child.maxrss_kib)
    return m


def measure_command(
    key: str,
    name: str,
    argv: list[str],
    n: int,
    repeat: int,
    prefix: list[str],
    env: dict[str, str] | None = None,
) -> Measure:
    """A whole external command, timed from spawn to exit."""
    m = Measure(key, name, n)
    if shutil.which(argv[0]) is None:
        m.status, m.note = "missing", f"{argv[0]} not found"
        return m
    for _ in range(repeat):
        child = run_child(argv, prefix, env, keep_stdout=False)
        if child.returncode != 0:
            m.status, m.note = "failed", f"rc={child.returncode}: {_tail(child.stderr)}"
            return m
        m.runs.append(child.seconds)
        m.rss_kib.append(child.maxrss_kib)
    return m


def otwatch_command() -> list[str] | None:
    """How to start otwatch: the venv's console script, else `python -m appliance`; None if neither exists."""
    script = Path(sys.executable).parent / "otwatch"
    if script.exists():
        return [str(script)]
    import importlib.util

    try:
        found = importlib.util.find_spec("appliance.cli") is not None
    except ImportError:
        found = False
    return [sys.executable, "-m", "appliance"] if found else None


# Where otwatch writes its logs during the bench: a tmpfs when there is one. tshark's field output goes to
# /dev/null, so the comparison is of the two programs' work, not of this VM's disk writeback (which costs about
# 1.5 us per 600-byte log row here on /tmp, and varies run to run).
LOG_DIR_BASE = "/dev/shm" if Path("/dev/shm").is_dir() else None


def measure_otwatch(
    pcap: Path,
    n: int,
    repeat: int,
    prefix: list[str],
    env: dict[str, str],
    *,
    key: str = "otwatch",
    name: str = "otwatch replay",
    config: str | None = None,
) -> Measure:
    """`otwatch replay` of the capture into a fresh temporary directory (on tmpfs when there is one) per run; with
    `config`, that YAML text as its --config."""
    m = Measure(key, name, n)
    cmd = otwatch_command()
    if cmd is None:
        m.status, m.note = "missing", "no otwatch console script and no appliance.cli module"
        return m
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="otwatch-bench-", dir=LOG_DIR_BASE) as tmp:
            argv = [
                *cmd,
                "replay",
                str(pcap),
                "--out",
                f"{tmp}/out",
                "--state",
                f"{tmp}/state",
                "--no-progress",
                "--json",
            ]
            if config is not None:
                Path(tmp, "otwatch.yml").write_text(config)
                argv += ["--config", f"{tmp}/otwatch.yml"]
            child = run_child(argv, prefix, env)
        if child.returncode != 0:
            m.status, m.note = "failed", f"rc={child.returncode}: {_tail(child.stderr)}"
            return m
        try:
            seen = json.loads(child.stdout).get("packets")
        except ValueError:
            seen = None
        if seen is not None and seen != n:
            m.note = f"otwatch counted {seen} packets, the capture has {n}"
        m.runs.append(child.seconds)
        m.rss_kib.append(child.maxrss_kib)
    return m
