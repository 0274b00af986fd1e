"""LiveCapture on loopback: each datagram seen once and dissected, stop(), fanout, capabilities.

Traffic goes only to 127.0.0.1. Waits are bounded: a timer calls stop() if the expected packets never come.
"""

from __future__ import annotations

import ast
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.capture.dissect import Dissector
from appliance.capture.live import LiveCapture
from appliance.capture.pcapfile import CaptureError

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0, reason="needs Linux and root (CAP_NET_RAW)"
)

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 20.0  # seconds before a watchdog stops a capture that never saw what it waited for
SMALL_RING = {"block_size": 1 << 18, "block_count": 4, "poll_ms": 50, "block_timeout_ms": 5}


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    """A UDP socket on 127.0.0.1 with an ephemeral port, so that the datagrams have a listener."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def watchdog(cap: LiveCapture) -> threading.Timer:
    """Stop `cap` after DEADLINE seconds, so that a missing packet fails the test instead of hanging it."""
    timer = threading.Timer(DEADLINE, cap.stop)
    timer.daemon = True
    timer.start()
    return timer


def test_loopback_datagrams_seen_once_and_dissected(receiver: socket.socket) -> None:
    port = receiver.getsockname()[1]
    payloads = [b"otwatch-live-%d-%04d" % (port, i) for i in range(50)]
    marker = b"otwatch-live-%d-end" % port
    d = Dissector()
    seen: Counter[bytes] = Counter()
    with LiveCapture("lo", **SMALL_RING) as cap:  # type: ignore[arg-type]
        timer = watchdog(cap)
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.bind(("127.0.0.1", 0))
        sport = sender.getsockname()[1]
        for p in [*payloads, marker]:
            sender.sendto(p, ("127.0.0.1", port))
        sender.close()
        for linktype, ts, frame, wire_len in cap:
            pkt = d.dissect(linktype, ts, frame, wire_len)
            if pkt is None or pkt.proto != 17 or pkt.dport != port:
                continue
            assert linktype == 1 and wire_len == len(frame) == 14 + 20 + 8 + len(pkt.payload)
            assert (pkt.src, pkt.dst, pkt.sport) == ("127.0.0.1", "127.0.0.1", sport)
            assert pkt.src_mac == pkt.dst_mac == b"\x00" * 6 and pkt.ts > 1e9
            seen[pkt.payload] += 1
            if pkt.payload == marker:  # the marker went last: any duplicate copy came before it
                break
        timer.cancel()
        stats = cap.stats()
    assert seen[marker] == 1
    assert {p: seen[p] for p in payloads} == dict.fromkeys(payloads, 1)
    assert stats["drops"] == 0 and stats["delivered"] >= len(payloads) + 1


def test_stop_from_another_thread_ends_iteration(receiver: socket.socket) -> None:
    cap = LiveCapture("lo", **SMALL_RING)  # type: ignore[arg-type]
    port = receiver.getsockname()[1]
    first = threading.Event()
    result: dict[str, object] = {}

    def run() -> None:
        n = 0
        try:
            for _ in cap:
                n += 1
                first.set()
        except Exception as e:  # reported to the test thread
            result["error"] = e
        result["packets"] = n

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(200):  # bounded: keep traffic flowing until the iterating thread has seen a packet
        sender.sendto(b"otwatch-stop", ("127.0.0.1", port))
        if first.wait(0.05):
            break
    sender.close()
    assert first.is_set()
    cap.stop()
    thread.join(DEADLINE)
    assert not thread.is_alive()
    assert "error" not in result and isinstance(result["packets"], int) and result["packets"] >= 1
    cap.close()
    with pytest.raises(CaptureError, match="closed"):
        next(iter(cap))


def test_stop_on_an_idle_interface_and_close_twice() -> None:
    # iteration blocked in poll() with nothing arriving still ends when stop() is called
    cap = LiveCapture("lo", **SMALL_RING)  # type: ignore[arg-type]
    it = iter(cap)
    cap.stop()
    assert list(it) == [] or all(isinstance(f, tuple) for f in it)
    cap.close()
    cap.close()
    cap.stop()


def test_fanout_group_splits_without_duplicates(receiver: socket.socket) -> None:
    port = receiver.getsockname()[1]
    group = (os.getpid() ^ port) & 0xFFFF
    caps = [LiveCapture("lo", fanout_group=group, **SMALL_RING) for _ in range(2)]  # type: ignore[arg-type]
    seen: list[Counter[bytes]] = [Counter(), Counter()]
    prefix = b"otwatch-fanout-%d-" % port
    expected: set[bytes] = set()
    done = threading.Event()

    def run(i: int) -> None:
        d = Dissector()
        for f in caps[i]:
            pkt = d.dissect(*f)
            if pkt is not None and pkt.dport == port and pkt.payload.startswith(prefix):
                seen[i][pkt.payload] += 1
                if set(seen[0]) | set(seen[1]) >= expected:
                    done.set()

    senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(16)]  # 16 flows
    for k in range(len(senders)):
        for j in range(4):
            expected.add(prefix + b"%d-%d" % (k, j))
    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    for k, s in enumerate(senders):
        for j in range(4):
            s.sendto(prefix + b"%d-%d" % (k, j), ("127.0.0.1", port))
        s.close()
    assert done.wait(DEADLINE)
    for cap in caps:
        cap.stop()
    for t in threads:
        t.join(DEADLINE)
        assert not t.is_alive()
    for cap in caps:
        cap.close()
    total = seen[0] + seen[1]
    assert set(total) == expected
    assert all(n == 1 for n in total.values())  # each datagram reached exactly one member, once


def test_missing_interface_and_bad_ring() -> None:
    with pytest.raises(CaptureError, match=r"'otw-no-such0'.*no such network interface"):
        LiveCapture("otw-no-such0")
    with pytest.raises(CaptureError, match="multiple of"):
        LiveCapture("lo", block_size=1000)


# ------------------------------------------------------------------ capabilities, as an unprivileged user

CAPTURE_SCRIPT = """
import socket, sys, threading
sys.path.insert(0, {repo!r})
from appliance.capture.live import LiveCapture
from appliance.capture.pcapfile import CaptureError
try:
    cap = LiveCapture("lo", block_size=1 << 18, block_count=2, poll_ms=50, block_timeout_ms=5)
except CaptureError as e:
    print("ERROR", e)
    sys.exit(3)
timer = threading.Timer({deadline}, cap.stop)
timer.daemon = True
timer.start()
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rx.bind(("127.0.0.1", 0))
port = rx.getsockname()[1]
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(5):
    tx.sendto(b"unpriv-%d" % i, ("127.0.0.1", port))
got = set()
for _lt, _ts, data, _wl in cap:
    if data.startswith(b"unpriv-", 42):
        got.add(data[42:])
        if len(got) == 5:
            break
timer.cancel()
cap.close()
print("CAPTURED", len(got))
"""


def run_as_nobody(*caps: str) -> subprocess.CompletedProcess[str]:
    """Run the capture script as uid/gid 65534 with the given ambient capabilities (and nothing else)."""
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv is missing: `make test` installs it (Debian package util-linux)"
    cap_args = [f"--inh-caps=+{c}" for c in caps] + [f"--ambient-caps=+{c}" for c in caps]
    if not caps:
        cap_args = ["--inh-caps=-all"]
    cmd = [
        setpriv,
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        *cap_args,
        sys.executable,
        "-c",
        CAPTURE_SCRIPT.format(repo=str(REPO), deadline=DEADLINE),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/")
    try:
        out, err = proc.communicate(timeout=DEADLINE + 10)
    finally:
        if proc.poll() is None:
            proc.kill()  # only the process this test started, by its handle
            proc.wait()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_unprivileged_user_with_only_cap_net_raw_captures() -> None:
    res = run_as_nobody("net_raw")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "CAPTURED 5" in res.stdout


def test_unprivileged_user_without_capability_gets_a_clear_error() -> None:
    res = run_as_nobody()
    assert res.returncode == 3, res.stdout + res.stderr
    assert "cannot capture on 'lo'" in res.stdout and "CAP_NET_RAW" in res.stdout


# ------------------------------------------------------------------ VLAN tags stripped by the kernel

VLAN_SCRIPT = """
import socket, sys, threading
sys.path[:0] = [{repo!r}, {helpers!r}]
from appliance.capture.dissect import Dissector
from appliance.capture.live import LiveCapture
from pcapbuild import eth, ipv4, udp
cap = LiveCapture("otwb", block_size=1 << 18, block_count=2, poll_ms=50, block_timeout_ms=5)
timer = threading.Timer({deadline}, cap.stop)
timer.daemon = True
timer.start()
tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
tx.bind(("otwa", 0))
for i in range(3):
    inner = ipv4("192.0.2.1", "192.0.2.2", 17, udp(1, 2, b"vlan-%d" % i))
    tx.send(eth(0x0800, inner, vlans=[(0x88A8, 100), (0x8100, 42)]))
d = Dissector()
seen = []
for f in cap:
    p = d.dissect(*f)
    if p is not None and p.payload.startswith(b"vlan-"):
        seen.append((p.vlans, p.payload, f[3], len(f[2])))
        if len(seen) == 3:
            break
timer.cancel()
cap.close()
print(seen)
"""


def test_vlan_tags_stripped_by_the_kernel_are_put_back() -> None:
    # a veth pair inside a namespace made by this test: the receiving side moves the outer tag into packet
    # metadata (TP_STATUS_VLAN_VALID), and the capture must show both tags again, outermost first
    ip = shutil.which("ip")
    assert ip is not None, "ip is missing: `make test` installs it (Debian package iproute2)"
    ns = f"otwcap{os.getpid()}"
    if subprocess.run([ip, "netns", "add", ns], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace here")
    try:
        for cmd in (
            ["link", "add", "otwa", "type", "veth", "peer", "name", "otwb"],
            ["link", "set", "otwa", "up"],
            ["link", "set", "otwb", "up"],
        ):
            subprocess.run([ip, "-n", ns, *cmd], check=True, capture_output=True)
        script = VLAN_SCRIPT.format(repo=str(REPO), helpers=str(Path(__file__).parent), deadline=DEADLINE)
        res = subprocess.run(
            [ip, "netns", "exec", ns, sys.executable, "-c", script],
            capture_output=True, text=True, timeout=DEADLINE + 10,
        )
    finally:
        subprocess.run([ip, "netns", "del", ns], capture_output=True)
    assert res.returncode == 0, res.stderr
    seen = ast.literal_eval(res.stdout.strip())
    assert seen == [((100, 42), b"vlan-%d" % i, 56, 56) for i in range(3)]
