"""Network namespaces for the live site, when broadcast matters: one namespace per host group, joined by a bridge.

    fabric = Fabric()
    fabric.create()                                     # the bridge namespace: `br0`, up, IPv6 off
    ns = fabric.add_host("crah-01", ["10.60.1.10/24"])  # a namespace with eth0 (a veth to br0) holding the addresses
    Child("crah-01", fabric.command(ns, [python, "-m", ...]), ...)  # `ip netns exec NS ...` keeps the PID
    fabric.destroy()                                    # kills what is left inside, deletes every namespace

Nothing is made in the caller's own namespace: each veth pair is created with one end in the host's namespace and
the other in the bridge's, so deleting the namespaces removes every link. Real addresses (the profile's 10.x,
172.16.x, 192.168.x) exist only inside the namespaces; a broadcast from one host reaches every host of its subnet
through the bridge, as on a switch, and a sensor capturing on `br0` (in the bridge namespace, `fabric.command(
fabric.bridge_ns, [...])`, promiscuous) sees every frame. Names start with `ow<pid in hex>-<n>`: the namespaces
of a run whose process died are swept by the next `create()` (once nothing runs inside them any more).
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import time
from pathlib import Path

__all__ = ["BRIDGE", "Fabric", "NetnsError", "namespaces", "root_links"]

BRIDGE = "br0"
IP = "ip"
_SERIAL = itertools.count(1)
_OWNED = re.compile(r"^ow([0-9a-f]+)-\d+-")


class NetnsError(RuntimeError):
    """An `ip` command failed: says which and what it printed."""


def _ip(*args: str) -> str:
    done = subprocess.run([IP, *args], capture_output=True, text=True, check=False, timeout=30)
    if done.returncode != 0:
        raise NetnsError(f"`ip {' '.join(args)}` failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def namespaces() -> list[str]:
    """The names of the network namespaces `ip netns` knows."""
    return [line.split()[0] for line in _ip("netns", "list").splitlines() if line.strip()]


def root_links() -> list[str]:
    """The names of the links of the caller's own namespace."""
    return re.findall(r"^\d+: ([^:@]+)", _ip("-o", "link", "show"), re.MULTILINE)


def pids_in(ns: str) -> list[int]:
    """The PIDs of the processes running in a namespace (empty if it is gone)."""
    try:
        return [int(p) for p in _ip("netns", "pids", ns).split()]
    except NetnsError:
        return []


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


class Fabric:
    """A bridge namespace and one namespace per host group, each joined to the bridge by a veth pair."""

    def __init__(self) -> None:
        self.tag = f"ow{os.getpid():x}-{next(_SERIAL)}"
        self.bridge_ns = f"{self.tag}-br"
        self.hosts: dict[str, str] = {}  # host group name -> its namespace
        self.made: list[str] = []  # namespaces made, in order
        self.killed: list[int] = []  # processes destroy() found still running in a namespace and killed

    def create(self) -> None:
        """Sweep what dead runs left, then make the bridge namespace with `br0` up."""
        sweep()
        self._netns(self.bridge_ns)
        _ip("-n", self.bridge_ns, "link", "add", BRIDGE, "type", "bridge")
        _ip("-n", self.bridge_ns, "link", "set", BRIDGE, "up")
        _ip("-n", self.bridge_ns, "link", "set", "lo", "up")

    def add_host(self, name: str, addresses: list[str]) -> str:
        """A namespace for host group `name` with `eth0` on the bridge holding `addresses` (`ip/prefix`)."""
        if name in self.hosts:
            raise NetnsError(f"host group {name!r} already has a namespace")
        ns = f"{self.tag}-{name}"[:60]
        self._netns(ns)
        port = f"{self.tag}-{len(self.hosts) + 1}"
        _ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port, "netns", self.bridge_ns)
        _ip("-n", self.bridge_ns, "link", "set", port, "master", BRIDGE, "up")
        for address in addresses:
            _ip("-n", ns, "addr", "add", address, "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        self.hosts[name] = ns
        return ns

    def command(self, ns: str, argv: list[str]) -> list[str]:
        """`argv` run inside namespace `ns` (`ip netns exec` execs it: the PID is the command's own)."""
        return [IP, "netns", "exec", ns, *argv]

    def destroy(self) -> list[str]:
        """Kill (by PID) whatever still runs in the namespaces, delete them all; returns the problems met."""
        problems = []
        for ns in reversed(self.made):
            left = pids_in(ns)
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                    self.killed.append(pid)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 10
            while any(_alive(p) for p in left) and time.monotonic() < deadline:
                time.sleep(0.05)
            try:
                _ip("netns", "del", ns)
            except NetnsError as exc:
                problems.append(str(exc))
        self.made = [ns for ns in self.made if ns in namespaces()]
        self.hosts = {}
        return problems

    def _netns(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self.made.append(ns)
        # no IPv6 (router solicitations, MLD): the capture holds the site's traffic only
        done = subprocess.run([IP, "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                               "net.ipv6.conf.default.disable_ipv6=1"], capture_output=True, text=True,
                              check=False, timeout=30)  # fmt: skip
        if done.returncode != 0:
            raise NetnsError(f"disabling IPv6 in {ns} failed: {done.stderr.strip()}")


def sweep() -> list[str]:
    """Delete the namespaces of runs whose process is gone, once nothing runs inside them; returns their names."""
    gone = []
    for ns in namespaces():
        owned = _OWNED.match(ns)
        if owned is None or _alive(int(owned.group(1), 16)) or pids_in(ns):
            continue
        try:
            _ip("netns", "del", ns)
            gone.append(ns)
        except NetnsError:
            continue
    return gone
