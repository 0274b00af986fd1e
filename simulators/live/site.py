"""LiveSite: the simulated site for real, on loopback or in network namespaces. Every device is its own process.

    with LiveSite(small_plan()) as site:
        ...  # PLCs on 127.14.0.x:502, BACnet controllers on 127.15.0.x:47808, mosquitto on 127.16.0.10:1883
        site.writes()  # every write or control command any device received, with its sender's address

start() = start_devices() (mosquitto, one pymodbus process per PLC, one bacpypes3 process per BACnet controller,
each rebuilding its offline model from the plan) then start_clients() (the SCADA pollers, the BMS front end, the
MQTT clients); it returns once each device listens and each client has done a full round (every poller identified
its PLCs, the front end every controller, every MQTT client is connected and subscribed). stop() terminates the
clients, then the devices, then the broker, each by PID, reads the last status of each, and leaves no process and
no socket (nor namespace) behind. A failure during start() stops what started. The zones of the site are written
to `zones.yml` in the work folder (`otwatch run --config` places the assets with it).

With `netns=True` (a plan made with netns=True: the profile's own addresses) each process runs in its own network
namespace, joined to the others by a bridge in a namespace of its own (simulators.live.netns): broadcasts reach
every host of a subnet as on a switch, and `spawn_in_bridge()` runs a capture on the bridge. Between
start_devices() and start_clients() a test can start a capture that then sees the front end's first Who-Is.

On loopback, BACnet broadcasts reach every BACnet device of the machine: a loopback site holds the same lock file
as tests/test_bacnet_live.py while it runs, so the two never answer each other's Who-Is.
"""

from __future__ import annotations

import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from simulators.live import broker
from simulators.live.netns import BRIDGE, Fabric, namespaces
from simulators.live.plan import BACNET_PORT, BROADCAST, SitePlan, small_plan
from simulators.live.procs import Child, FileLock, SiteError, tcp_listening, udp_bound, wait_until
from simulators.live.status import read_status

ROOT = Path(__file__).resolve().parents[2]
BACNET_LOCK = Path(tempfile.gettempdir()) / "otwatch-bacnet-live.lock"
START_LIMIT = 30.0
STOP_LIMIT = 10.0
CLIENTS = "clients"


@dataclass(frozen=True, slots=True)
class Write:
    """One write or control command a field device received: device, protocol, operation, sender, detail."""

    device: str
    protocol: str
    op: str
    sender: str
    detail: str


class LiveSite:
    """The live site: start() / stop(), or a context manager."""

    def __init__(self, plan: SitePlan | None = None, *, python: str = sys.executable, lock_wait: float = 120.0,
                 keep: bool = False, netns: bool | None = None) -> None:  # fmt: skip
        self.plan = plan or small_plan()
        self.netns = self.plan.netns if netns is None else netns
        if self.netns and not self.plan.netns:
            raise SiteError("a site in network namespaces needs a plan with the profile's own addresses "
                            "(plan_from_profile(..., netns=True))")  # fmt: skip
        self.python = python
        self.lock_wait = lock_wait
        self.keep = keep  # keep the work folder (status files, stderr, mosquitto log) after stop()
        self.workdir: Path | None = None
        self.children: list[Child] = []
        self.roles: dict[str, str] = {}  # child name -> "client", "device" or "broker"
        self.pids: dict[str, int] = {}  # every process started by the last start() (kept after stop())
        self.fabric: Fabric | None = None
        self.start_seconds = self.stop_seconds = 0.0
        self._lock = FileLock(BACNET_LOCK)
        self._locked = False
        self._final: dict[str, dict[str, Any]] | None = None
        self._final_log: tuple[dict[str, str], list[broker.Publish]] | None = None
        self._broadcast_before = 0
        self.left_behind: list[str] = []  # filled by stop(): see _left_behind
        self.killed: list[str] = []  # filled by stop(): the processes that needed SIGKILL after the deadline

    # ------------------------------------------------------------------ life cycle

    def __enter__(self) -> LiveSite:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        """Start everything and wait (bounded) until the site is up; on any failure stop what started and raise."""
        began = time.monotonic()
        self.start_devices()
        self.start_clients()
        self.start_seconds = time.monotonic() - began

    def start_devices(self) -> None:
        """Make the work folder (and namespaces), start the broker and the devices, wait until each listens."""
        try:
            if not self.netns:
                self._lock.acquire(self.lock_wait)
                self._locked = True
                self._preflight()
            self.workdir = Path(tempfile.mkdtemp(prefix="otwatch-live-site-"))
            self.zones_file.write_text(f"# otwatch config with the zones of the live site of {self.plan.profile}\n"
                                       + yaml.safe_dump(self.plan.zones_config(), sort_keys=False))  # fmt: skip
            self._final = self._final_log = None
            self.pids = {}
            if self.netns:
                self.fabric = Fabric()
                self.fabric.create()
            self._start_devices()
            self._wait(self._devices_up, "every device to listen")
        except BaseException:
            self.stop()
            raise

    def start_clients(self) -> None:
        """Start the site's clients and wait until each has done a full round."""
        try:
            self._start_clients()
            self._wait(self._clients_done_a_round, "every client to finish a first round")
        except BaseException:
            self.stop()
            raise

    def spawn_in_bridge(self, name: str, argv: list[str]) -> Child:
        """Run `argv` in the bridge's namespace (a capture on `br0`); stopped by stop() with the clients."""
        if self.fabric is None:
            raise SiteError("spawn_in_bridge needs a started site in network namespaces")
        child = Child(name, self.fabric.command(self.fabric.bridge_ns, argv), self._workdir, ROOT)
        self._add(child, CLIENTS)
        return child

    @property
    def bridge(self) -> tuple[str, str]:
        """(namespace, interface) of the bridge a sensor captures on (network namespaces only)."""
        if self.fabric is None:
            raise SiteError("no bridge: the site does not run in network namespaces")
        return self.fabric.bridge_ns, BRIDGE

    def stop(self) -> None:
        """Stop clients, then devices, then the broker, by PID (SIGTERM, SIGKILL after a deadline); keep their last
        status; delete the namespaces; remove the work folder unless `keep`. Safe to call twice."""
        began = time.monotonic()
        self.killed = []
        for role in (CLIENTS, "device", "broker"):
            group = [c for c in self.children if self.roles.get(c.name) == role]
            for child in group:
                child.terminate()
            deadline = time.monotonic() + STOP_LIMIT
            self.killed += [child.name for child in group if not child.reap(deadline)]
        if self.workdir is not None and self.children:
            self._final = self.statuses()
            self._final_log = broker.read_log(self.workdir / "mosquitto.log")
        problems = self.fabric.destroy() if self.fabric is not None else []
        if self.workdir is not None and self.children:
            self.left_behind = problems + self._left_behind()  # checked while the lock keeps other BACnet sites away
        self.children = []
        if self.workdir is not None and not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if self._locked:
            self._lock.release()
            self._locked = False
        self.stop_seconds = time.monotonic() - began

    # ------------------------------------------------------------------ what the site says

    @property
    def zones_file(self) -> Path:
        """The otwatch config with the site's zones (in the work folder)."""
        return self._workdir / "zones.yml"

    def statuses(self) -> dict[str, dict[str, Any]]:
        """The latest status document of each process (name -> document); after stop(), their last words."""
        if self._final is not None and not self.children:
            return self._final
        out: dict[str, dict[str, Any]] = {}
        for child in self.children:
            if self.roles.get(child.name) in (CLIENTS, "device") and (doc := read_status(self._status_path(
                    child.name))) is not None:  # fmt: skip
                out[child.name] = doc
        return out

    def publishes(self) -> list[broker.Publish]:
        """Every PUBLISH the broker received, with the sender's address (from the broker's log)."""
        if self._final_log is not None and not self.children:
            return self._final_log[1]
        return broker.read_log(self._workdir / "mosquitto.log")[1] if self.workdir else []

    def mqtt_clients(self) -> dict[str, str]:
        """Every MQTT client id the broker saw connect -> the address of its latest connection."""
        if self._final_log is not None and not self.children:
            return self._final_log[0]
        return broker.read_log(self._workdir / "mosquitto.log")[0] if self.workdir else {}

    def writes(self) -> list[Write]:
        """Every write and control command received: Modbus and BACnet from the devices' counters, MQTT command
        publishes from the broker's log."""
        out: list[Write] = []
        statuses = self.statuses()
        names = [(p.name, "modbus") for p in self.plan.plcs] + [(d.name, "bacnet") for d in self.plan.bms]
        for name, protocol in names:
            doc = statuses.get(name) or {}
            out += [Write(name, protocol, w["op"], w["sender"], w["detail"]) for w in doc.get("writes", [])]
        for p in self.publishes():
            if p.is_command:
                out.append(Write(p.topic, "mqtt", "publish", p.sender, f"from {p.client_id} ({p.size} bytes)"))
        return out

    def describe(self) -> list[str]:
        """What runs where, one line each."""
        from simulators.live.describe import describe

        return describe(self.plan, {c.name: c.pid for c in self.children}, self.fabric)

    # ------------------------------------------------------------------ internals

    @property
    def _workdir(self) -> Path:
        assert self.workdir is not None, "the site has not been started"
        return self.workdir

    def _status_path(self, name: str) -> Path:
        return self._workdir / f"{name}.json"

    def _spawn(self, name: str, role: str, addresses: list[str], argv: list[str]) -> None:
        """Start a process of the site (in its own namespace holding `addresses`, in network namespace mode)."""
        command = [*argv, "--status", str(self._status_path(name))] if role != "broker" else argv
        if self.fabric is not None:
            ns = self.fabric.add_host(name, [self.plan.interface_address(a) for a in addresses])
            command = self.fabric.command(ns, command)
        self._add(Child(name, command, self._workdir, ROOT), role)

    def _module(self, module: str, *args: str) -> list[str]:
        return [self.python, "-m", module, *args]

    def _add(self, child: Child, role: str) -> None:
        self.children.append(child)
        self.roles[child.name] = role
        self.pids[child.name] = child.pid

    def _child(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)

    def _wait(self, condition: Any, what: str) -> None:
        def check() -> bool:
            for child in self.children:
                child.check()
            return bool(condition())

        wait_until(check, what, START_LIMIT)

    def _preflight(self) -> None:
        """Refuse to start over something already bound to the site's addresses (a leftover of a killed run)."""
        plan = self.plan
        listening, bound = tcp_listening(), udp_bound()
        busy = [f"{p.address}:{p.port}" for p in plan.plcs if (p.address, p.port) in listening]
        busy += [f"{d.address}:{BACNET_PORT}" for d in plan.bms if bound[(d.address, BACNET_PORT)]]
        busy += [f"{plan.broker}:{plan.broker_port}"] if (plan.broker, plan.broker_port) in listening else []
        busy += [f"{plan.frontend}:{plan.frontend_port}"] if bound[(plan.frontend, plan.frontend_port)] else []
        if busy:
            raise SiteError(f"already bound (a site left over from a killed run?): {', '.join(busy)}")
        self._broadcast_before = bound[(BROADCAST, BACNET_PORT)]

    def _left_behind(self) -> list[str]:
        """What survives of the site after stop(): processes still running, sockets still bound to its addresses,
        more BACnet broadcast listeners than before the start, namespaces not deleted."""
        plan = self.plan
        left = [f"{c.name} (pid {c.pid}) still runs" for c in self.children if c.alive()]
        if self.fabric is not None:
            return left + [f"namespace {ns} left" for ns in namespaces() if ns.startswith(f"{self.fabric.tag}-")]
        addresses = set(plan.devices) | set(plan.clients)
        left += [f"tcp {ip}:{port} listening" for ip, port in sorted(tcp_listening()) if ip in addresses]
        bound = udp_bound()
        left += [f"udp {ip}:{port} bound" for (ip, port), n in sorted(bound.items()) if ip in addresses and n]
        if bound[(BROADCAST, BACNET_PORT)] > self._broadcast_before:
            left.append(f"{bound[(BROADCAST, BACNET_PORT)] - self._broadcast_before} more sockets on the broadcast")
        return left

    def _bacnet_address(self, address: str, port: int = BACNET_PORT) -> str:
        if self.netns:
            return f"{self.plan.interface_address(address)}:{port}"
        return f"{address}/8" if port == BACNET_PORT else f"{address}:{port}"

    def _start_devices(self) -> None:
        plan, folder = self.plan, self._workdir
        if plan.mqtt:
            conf, _log = broker.write_config(folder, plan.broker, plan.broker_port)
            self._spawn("mosquitto", "broker", [plan.broker], [broker.MOSQUITTO, "-c", str(conf)])
        interval = str(plan.pollers[0].period if plan.pollers else 5.0)
        for p in plan.plcs:
            self._spawn(p.name, "device", [p.address], self._module(
                "simulators.live.modbus_device", "--address", p.address, "--port", str(p.port), "--name", p.name,
                "--kind", p.kind, "--vendor-index", str(p.vendor_index), "--seed", str(p.seed), "--model", p.model,
                "--interval", interval))  # fmt: skip
        for d in plan.bms:
            self._spawn(d.name, "device", [d.address], self._module(
                "simulators.live.bms_device", "--address", self._bacnet_address(d.address), "--name", d.name,
                "--kind", d.kind, "--index", str(d.index), "--seed", str(d.seed), "--instance", str(d.instance),
                "--interval", str(plan.bms_poll_seconds), "--restart-seconds", str(plan.restart_seconds)))  # fmt: skip

    def _devices_up(self) -> bool:
        plan = self.plan
        for p in plan.plcs:
            doc = read_status(self._status_path(p.name))
            if not doc or not doc.get("listening"):
                return False
        if self.netns:
            if not all(udp_bound(self._child(d.name).pid)[(d.address, BACNET_PORT)] for d in plan.bms):
                return False
            return not plan.mqtt or (plan.broker, plan.broker_port) in tcp_listening(self._child("mosquitto").pid)
        bound = udp_bound()
        if not all(bound[(d.address, BACNET_PORT)] for d in plan.bms):
            return False
        if bound[(BROADCAST, BACNET_PORT)] < self._broadcast_before + len(plan.bms):
            return False
        if plan.mqtt:
            try:
                socket.create_connection((plan.broker, plan.broker_port), timeout=0.5).close()
            except OSError:
                return False
        return True

    def _start_clients(self) -> None:
        plan = self.plan
        if plan.mqtt:
            clients = [arg for c in plan.mqtt for arg in ("--client", f"{c.client_id}@{c.address}:{c.kind}:{c.number}"
                       + (f":{c.username}:{c.password}" if c.username else ""))]  # fmt: skip
            self._spawn("mqtt-clients", CLIENTS, [c.address for c in plan.mqtt], self._module(
                "simulators.live.cameras", "--broker", f"{plan.broker}:{plan.broker_port}", "--interval",
                str(plan.telemetry_seconds), "--keepalive", str(plan.keepalive), "--snapshot-every",
                str(plan.snapshot_every), "--command-every", str(plan.command_every), "--seed", str(plan.seed),
                "--broker-pid", str(self.pids["mosquitto"]), *clients))  # fmt: skip
        by_name = {p.name: p for p in plan.plcs}
        for poller in plan.pollers:
            targets = [arg for name in poller.plcs for arg in (
                "--plc", f"{by_name[name].address}:{by_name[name].port}:{by_name[name].units[0]}:{by_name[name].kind}")]
            self._spawn(poller.name, CLIENTS, [poller.address], self._module(
                "simulators.live.hmi", "--address", poller.address, "--name", poller.name, "--interval",
                str(poller.period), "--identify-every", str(plan.identify_every), "--write-every",
                str(plan.write_every), *targets))  # fmt: skip
        if plan.bms:
            devices = [arg for d in plan.bms for arg in ("--device", f"{d.name}:{d.kind}:{d.index}:{d.seed}@"
                                                                     f"{d.address}")]  # fmt: skip
            self._spawn(plan.frontend_name, CLIENTS, [plan.frontend], self._module(
                "simulators.live.frontend", "--address", self._bacnet_address(plan.frontend, plan.frontend_port),
                "--broadcast", f"{plan.broadcast}:{BACNET_PORT}", "--name", plan.frontend_name, "--interval",
                str(plan.bms_poll_seconds), "--identify-every", str(plan.identify_every), "--write-every",
                str(plan.write_every), *devices))  # fmt: skip

    def _clients_done_a_round(self) -> bool:
        plan = self.plan
        names = [p.name for p in plan.pollers] + ([plan.frontend_name] if plan.bms else [])
        if not all((read_status(self._status_path(n)) or {}).get("last_identify") for n in names):
            return False
        return not plan.mqtt or bool((read_status(self._status_path("mqtt-clients")) or {}).get("ready"))
