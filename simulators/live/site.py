"""LiveSite: the simulated site for real, on loopback. Every device is a process bound to its own 127.x address.

    with LiveSite(small_plan()) as site:
        ...  # PLCs answer on 127.50.1.11:502.., BACnet devices on 127.60.1.11:47808.., mosquitto on 127.70.1.10:1883
        site.writes()  # every write or control command any device received, with its sender's address

start() launches mosquitto, one pymodbus PLC process per PLC, one bacpypes3 process per BACnet device, then the site's
clients (the HMI poller, the BMS front end, the cameras, sensors and VMS) and returns once each device listens and
each client has done a full round (the HMI identified every PLC, the front end every BACnet device, every MQTT client
is connected and subscribed). stop() terminates the clients, then the devices, then the broker, each by PID, reads
the last status of each, and leaves no process and no socket behind. A failure during start() stops what started.

BACnet broadcasts on `lo` reach every BACnet device of the machine: a site holds the same lock file as
tests/test_bacnet_live.py while it runs, so the two never answer each other's Who-Is.
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

from simulators.live import broker
from simulators.live.plan import BACNET_PORT, BROADCAST, FRONTEND_PORT, SitePlan, small_plan
from simulators.live.procs import Child, FileLock, SiteError, tcp_listening, udp_bound, wait_until
from simulators.live.status import read_status

ROOT = Path(__file__).resolve().parents[2]
BACNET_LOCK = Path(tempfile.gettempdir()) / "otwatch-bacnet-live.lock"
START_LIMIT = 30.0
STOP_LIMIT = 10.0


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
                 keep: bool = False) -> None:  # fmt: skip
        self.plan = plan or small_plan()
        self.python = python
        self.lock_wait = lock_wait
        self.keep = keep  # keep the work folder (status files, stderr, mosquitto log) after stop()
        self.workdir: Path | None = None
        self.children: list[Child] = []
        self.pids: dict[str, int] = {}  # every process started by the last start() (kept after stop())
        self.start_seconds = self.stop_seconds = 0.0
        self._lock = FileLock(BACNET_LOCK)
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
        self._lock.acquire(self.lock_wait)
        try:
            self._preflight()
            self.workdir = Path(tempfile.mkdtemp(prefix="otwatch-live-site-"))
            self._final = self._final_log = None
            self.pids = {}
            self._start_devices()
            self._wait(self._devices_up, "every device to listen")
            self._start_clients()
            self._wait(self._clients_done_a_round, "every client to finish a first round")
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began

    def stop(self) -> None:
        """Stop clients, then devices, then the broker, by PID (SIGTERM, SIGKILL after a deadline); keep their last
        status; remove the work folder unless `keep`. Safe to call twice."""
        began = time.monotonic()
        self.killed = []
        groups = [
            [c for c in self.children if c.name in ("hmi", "bms-frontend", "mqtt-clients")],
            [c for c in self.children if c.name not in ("hmi", "bms-frontend", "mqtt-clients", "mosquitto")],
            [c for c in self.children if c.name == "mosquitto"],
        ]
        for group in groups:
            for child in group:
                child.terminate()
            deadline = time.monotonic() + STOP_LIMIT
            self.killed += [child.name for child in group if not child.reap(deadline)]
        if self.workdir is not None and self.children:
            self._final = self.statuses()
            self._final_log = broker.read_log(self.workdir / "mosquitto.log")
            self.left_behind = self._left_behind()  # checked while the lock still keeps other BACnet sites away
        self.children = []
        if self.workdir is not None and not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        self._lock.release()
        self.stop_seconds = time.monotonic() - began

    # ------------------------------------------------------------------ what the site says

    def statuses(self) -> dict[str, dict[str, Any]]:
        """The latest status document of each process (name -> document); after stop(), their last words."""
        if self._final is not None and not self.children:
            return self._final
        out: dict[str, dict[str, Any]] = {}
        for child in self.children:
            if child.name != "mosquitto" and (doc := read_status(self._status_path(child.name))) is not None:
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
        pids = {c.name: c.pid for c in self.children}
        plan = self.plan
        lines = [f"zone {name}: {cidr}" for name, cidr in plan.zones.items()]
        for p in plan.plcs:
            lines.append(f"PLC    {p.name:<15} {p.address}:{p.port:<6} pid {pids.get(p.name, '-')}  FC43: {p.vendor} / "
                         f"{p.product_code} / {p.revision}")  # fmt: skip
        for d in plan.bms:
            lines.append(f"BACnet {d.name:<15} {d.address}:{BACNET_PORT} pid {pids.get(d.name, '-')}  device,"
                         f"{d.instance}: {d.vendor_name} / {d.model} / {d.firmware}")  # fmt: skip
        lines.append(f"MQTT   {'mosquitto':<15} {plan.broker}:{plan.broker_port:<5} pid {pids.get('mosquitto', '-')}")
        mqtt = ", ".join(f"{c.client_id}@{c.address} ({c.kind})" for c in plan.mqtt)
        lines.append(f"client {'mqtt-clients':<15} pid {pids.get('mqtt-clients', '-')}: {mqtt}")
        lines.append(f"client {'hmi':<15} {plan.hmi} pid {pids.get('hmi', '-')}: Modbus polls every "
                     f"{plan.poll_seconds} s")  # fmt: skip
        lines.append(
            f"client {'bms-frontend':<15} {plan.frontend}:{FRONTEND_PORT} pid {pids.get('bms-frontend', '-')}: "
            f"Who-Is, ReadProperty every {plan.bms_poll_seconds} s"
        )
        return lines

    # ------------------------------------------------------------------ internals

    @property
    def _workdir(self) -> Path:
        assert self.workdir is not None, "the site has not been started"
        return self.workdir

    def _status_path(self, name: str) -> Path:
        return self._workdir / f"{name}.json"

    def _spawn(self, name: str, module: str, *args: str) -> None:
        command = [self.python, "-m", module, *args, "--status", str(self._status_path(name))]
        self._add(Child(name, command, self._workdir, ROOT))

    def _add(self, child: Child) -> None:
        self.children.append(child)
        self.pids[child.name] = child.pid

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
        busy += [f"{plan.frontend}:{FRONTEND_PORT}"] if bound[(plan.frontend, FRONTEND_PORT)] else []
        if busy:
            raise SiteError(f"already bound (a site left over from a killed run?): {', '.join(busy)}")
        self._broadcast_before = bound[(BROADCAST, BACNET_PORT)]

    def _left_behind(self) -> list[str]:
        """What survives of the site after stop(): processes still running, sockets still bound to its addresses,
        more BACnet broadcast listeners than before the start."""
        plan = self.plan
        left = [f"{c.name} (pid {c.pid}) still runs" for c in self.children if c.alive()]
        addresses = set(plan.devices) | set(plan.clients)
        left += [f"tcp {ip}:{port} listening" for ip, port in sorted(tcp_listening()) if ip in addresses]
        bound = udp_bound()
        left += [f"udp {ip}:{port} bound" for (ip, port), n in sorted(bound.items()) if ip in addresses and n]
        if bound[(BROADCAST, BACNET_PORT)] > self._broadcast_before:
            left.append(f"{bound[(BROADCAST, BACNET_PORT)] - self._broadcast_before} more sockets on the broadcast")
        return left

    def _start_devices(self) -> None:
        plan, folder = self.plan, self._workdir
        conf, _log = broker.write_config(folder, plan.broker, plan.broker_port)
        self._add(Child("mosquitto", [broker.MOSQUITTO, "-c", str(conf)], folder, ROOT))
        for i, p in enumerate(plan.plcs):
            self._spawn(p.name, "simulators.live.modbus_device", "--address", p.address, "--port", str(p.port),
                        "--name", p.name, "--vendor", p.vendor, "--product-code", p.product_code, "--revision",
                        p.revision, "--model", p.model, "--seed", str(i + 1))  # fmt: skip
        for d in plan.bms:
            self._spawn(d.name, "simulators.live.bms_device", "--address", f"{d.address}/8", "--instance",
                        str(d.instance), "--name", d.name, "--kind", d.kind, "--vendor-id", str(d.vendor_id),
                        "--vendor-name", d.vendor_name, "--model", d.model, "--firmware", d.firmware)  # fmt: skip

    def _devices_up(self) -> bool:
        plan = self.plan
        for p in plan.plcs:
            doc = read_status(self._status_path(p.name))
            if not doc or not doc.get("listening"):
                return False
        bound = udp_bound()
        if not all(bound[(d.address, BACNET_PORT)] for d in plan.bms):
            return False
        if bound[(BROADCAST, BACNET_PORT)] < self._broadcast_before + len(plan.bms):
            return False
        try:
            socket.create_connection((plan.broker, plan.broker_port), timeout=0.5).close()
        except OSError:
            return False
        return True

    def _start_clients(self) -> None:
        plan = self.plan
        mqtt = [arg for c in plan.mqtt for arg in ("--client", f"{c.client_id}@{c.address}:{c.kind}")]
        self._spawn("mqtt-clients", "simulators.live.cameras", "--broker", f"{plan.broker}:{plan.broker_port}",
                    "--interval", str(plan.telemetry_seconds), "--broker-pid", str(self.pids["mosquitto"]),
                    *mqtt)  # fmt: skip
        self._spawn("hmi", "simulators.live.hmi", "--address", plan.hmi, "--interval", str(plan.poll_seconds),
                    *[arg for p in plan.plcs for arg in ("--plc", f"{p.address}:{p.port}")])  # fmt: skip
        self._spawn("bms-frontend", "simulators.live.frontend", "--address", f"{plan.frontend}:{FRONTEND_PORT}",
                    "--broadcast", f"{BROADCAST}:{BACNET_PORT}", "--expect", str(len(plan.bms)), "--interval",
                    str(plan.bms_poll_seconds))  # fmt: skip

    def _clients_done_a_round(self) -> bool:
        hmi = read_status(self._status_path("hmi")) or {}
        frontend = read_status(self._status_path("bms-frontend")) or {}
        mqtt = read_status(self._status_path("mqtt-clients")) or {}
        return bool(hmi.get("last_identify") and frontend.get("last_identify") and mqtt.get("ready"))
