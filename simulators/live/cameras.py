"""The live site's MQTT field devices: paho cameras and sensors, and the video management server that commands them.

`python -m simulators.live.cameras --broker 127.70.1.10:1883 --client cam-01@127.70.1.21:camera --client
env-01@127.70.1.31:sensor --client vms-01@127.70.1.100:vms --status DIR/mqtt-clients.json` runs until SIGTERM.

Each camera or sensor is a paho client bound to its own loopback address: a retained `online` status (and an
`offline` will), JSON telemetry every `--interval` seconds, a JPEG snapshot (cameras) at start and every
`--snapshot-every` cycles, and a subscription to its command topic `<cams|sensors>/<id>/cmd`, whose messages it
counts (the broker's log says who sent them: simulators.live.broker). The `vms` client sends a PTZ preset command to
the first camera every `--command-every` cycles (0: never). Should the process that started the site die, this one
stops too and takes the broker (`--broker-pid`) with it: the Python devices stop by themselves, mosquitto cannot.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from simulators.live.status import ParentWatch, Status

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(range(256)) * 16 + b"\xff\xd9"
WAIT = 15.0


@dataclass
class Client:
    """One paho client of the site: id, own address, kind (camera, sensor or vms) and what it has done."""

    client_id: str
    address: str
    kind: str
    paho: mqtt.Client | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    published: int = 0
    commands: Counter[str] = field(default_factory=Counter)

    @property
    def prefix(self) -> str:
        """The root of its topics."""
        return f"{'cams' if self.kind == 'camera' else 'sensors'}/{self.client_id}"


def parse_client(text: str) -> Client:
    """`id@address:kind` -> Client."""
    client_id, _, rest = text.partition("@")
    address, _, kind = rest.partition(":")
    if kind not in ("camera", "sensor", "vms"):
        raise argparse.ArgumentTypeError(f"unknown kind {kind!r} in {text!r}")
    return Client(client_id, address, kind)


def connect(client: Client, host: str, port: int, lock: threading.Lock) -> None:
    """Connect from the client's own address; on CONNACK publish the retained status and subscribe to commands."""
    paho = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client.client_id, protocol=mqtt.MQTTv311)
    client.paho = paho
    if client.kind != "vms":
        paho.will_set(f"{client.prefix}/status", b"offline", qos=1, retain=True)

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            return
        if client.kind == "vms":
            client.ready.set()
            return
        c.publish(f"{client.prefix}/status", b"online", qos=1, retain=True)
        c.subscribe(f"{client.prefix}/cmd", qos=1)

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with lock:
            client.commands[msg.topic] += 1

    paho.on_connect = on_connect
    paho.on_subscribe = lambda *_a: client.ready.set()
    paho.on_message = on_message
    paho.connect(host, port, keepalive=30, bind_address=client.address)
    paho.loop_start()


def telemetry(client: Client, rng: Random, cycle: int) -> bytes:
    """One JSON telemetry message."""
    if client.kind == "camera":
        body: dict[str, Any] = {"device_id": client.client_id, "temp": round(38 + rng.random() * 6, 1), "fps": 25,
                                "bitrate_kbps": rng.randint(3800, 4200), "seq": cycle}  # fmt: skip
    else:
        body = {"device_id": client.client_id, "temp": round(22 + rng.random() * 3, 2),
                "rh": round(40 + rng.random() * 10, 1), "seq": cycle}  # fmt: skip
    return json.dumps(body).encode()


def cycle_once(clients: list[Client], args: argparse.Namespace, rng: Random, cycle: int) -> None:
    """One round of publishing: telemetry, snapshots, the VMS command."""
    cameras = [c for c in clients if c.kind == "camera"]
    for client in clients:
        assert client.paho is not None
        if client.kind == "vms":
            if args.command_every and cameras and cycle % args.command_every == 0:
                command = json.dumps({"cmd": "ptz", "preset": 1 + cycle % 4}).encode()
                client.paho.publish(f"{cameras[0].prefix}/cmd", command, qos=1)
                client.published += 1
            continue
        client.paho.publish(f"{client.prefix}/telemetry", telemetry(client, rng, cycle), qos=0)
        client.published += 1
        if client.kind == "camera" and cycle % max(1, args.snapshot_every) == 0:
            client.paho.publish(f"{client.prefix}/snapshot", JPEG, qos=1)
            client.published += 1


def run(args: argparse.Namespace) -> None:
    """Connect every client, publish every `interval` until SIGTERM or orphaned, then disconnect cleanly."""
    host, _, port = args.broker.rpartition(":")
    clients: list[Client] = args.client
    status = Status(Path(args.status), "mqtt-clients", "mqtt-clients", ",".join(c.address for c in clients))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_a: stop.set())
    lock = threading.Lock()
    rng, watch = Random(args.seed), ParentWatch()

    def report(**extra: Any) -> None:
        with lock:
            status.note(clients={c.client_id: {"address": c.address, "kind": c.kind, "ready": c.ready.is_set(),
                                               "published": c.published, "commands": dict(c.commands)}
                                 for c in clients}, **extra)  # fmt: skip

    try:
        for client in clients:
            connect(client, host, int(port), lock)
        deadline = time.monotonic() + WAIT
        for client in clients:
            client.ready.wait(max(0.0, deadline - time.monotonic()))
        report(ready=all(c.ready.is_set() for c in clients))
        status.flush()
        cycle = 0
        while not stop.is_set() and not watch.orphaned():
            cycle_once(clients, args, rng, cycle)
            cycle += 1
            report(cycles=cycle)
            status.tick()
            stop.wait(args.interval)
    finally:
        for client in clients:
            if client.paho is not None:
                client.paho.disconnect()
                client.paho.loop_stop()
        report()
        status.stopped()
        if watch.orphaned() and args.broker_pid:
            stop_orphaned_broker(args.broker_pid)


def stop_orphaned_broker(pid: int) -> None:
    """The site that started us and the broker is gone: stop the broker (by PID, if it still is mosquitto)."""
    try:
        if b"mosquitto" in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGTERM)
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--broker", default="127.70.1.10:1883", help="host:port of the broker")
    parser.add_argument("--client", type=parse_client, action="append", required=True, help="id@address:kind")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between telemetry messages")
    parser.add_argument("--snapshot-every", type=int, default=10, help="cycles between JPEG snapshots")
    parser.add_argument("--command-every", type=int, default=5, help="cycles between VMS commands (0: never)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--broker-pid", type=int, default=0, help="stop this broker if the site's process dies")
    parser.add_argument("--status", required=True, help="the JSON status file to keep")
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
