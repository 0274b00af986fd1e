"""The live site's MQTT clients: paho cameras, sensors and gateways, and the historian and VMS that subscribe.

`python -m simulators.live.cameras --broker 127.16.0.10:1883 --client cam-01@127.16.0.11:camera:1:camera:axis-0001
--client env-01@127.16.0.16:sensor:1 --client vms-vms-01@127.16.0.21:vms:1:vms:s3cr3t-vms --status DIR/mqtt.json`
runs until SIGTERM. A client is ID@ADDRESS:KIND:NUMBER[:USER:PASSWORD].

The clients are the offline ones (simulators.site.iot), each a paho client (MQTT 3.1.1) bound to its own address:
a device connects with a last will (`<base>/status` = {"online":false}, retained, QoS 1), publishes a retained
{"online":true,...} status, then the offline model's JSON telemetry every `--interval` seconds (a gateway for the
PDUs behind it, every second interval); a camera subscribes to `<base>/cmd` (QoS 1), whose messages it counts, and
publishes a JPEG snapshot every `--snapshot-every` cycles. The historian subscribes to the telemetry and status
topics, the VMS to the cameras' snapshots and status, and sends a preset command to a camera every
`--command-every` cycles (0: never); the broker's log says who sent what (simulators.live.broker). Topics are the
offline ones: site/dc1/cam/01/telemetry, site/dc1/env/01/status, site/dc1/gw/01/pdu-1/telemetry, ...

Should the process that started the site die, this one stops too and takes the broker (`--broker-pid`) with it:
the Python devices stop by themselves, mosquitto cannot.
"""

from __future__ import annotations

import argparse
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

from simulators.live.plan import MqttClient
from simulators.live.status import ParentWatch, Status
from simulators.mixgen.wire import Host
from simulators.site import iot

WAIT = 15.0
DEVICES = ("camera", "sensor", "gateway")
FIRMWARE = {"camera": "10.12.182"}
SUBSCRIPTIONS = {
    "historian": [(f"{iot.TOPIC_ROOT}/+/+/telemetry", 0), (f"{iot.TOPIC_ROOT}/+/+/status", 0),
                  (f"{iot.TOPIC_ROOT}/gw/+/+/telemetry", 0)],
    "vms": [(f"{iot.TOPIC_ROOT}/cam/+/snapshot", 0), (f"{iot.TOPIC_ROOT}/cam/+/status", 1)],
}  # fmt: skip


@dataclass
class Client:
    """One paho client of the site, its offline model (topics, telemetry) and what it has done."""

    spec: MqttClient
    model: iot.Client
    paho: mqtt.Client | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    published: int = 0
    received: int = 0
    commands: Counter[str] = field(default_factory=Counter)

    @property
    def base(self) -> str:
        """The root of its topics."""
        return self.spec.base


def parse_client(text: str) -> MqttClient:
    """`ID@ADDRESS:KIND:NUMBER[:USER:PASSWORD]` -> MqttClient."""
    client_id, _, rest = text.partition("@")
    parts = rest.split(":")
    if len(parts) not in (3, 5) or parts[1] not in (*DEVICES, "historian", "vms") or not parts[2].isdigit():
        raise argparse.ArgumentTypeError(f"expected ID@ADDRESS:KIND:NUMBER[:USER:PASSWORD], got {text!r}")
    user, password = (parts[3], parts[4]) if len(parts) == 5 else ("", "")
    return MqttClient(client_id, parts[0], parts[1], int(parts[2]), user, password)


def make_client(spec: MqttClient, seed: int) -> Client:
    """A client and its offline model (the same topics and telemetry as `otwatch simulate`)."""
    host = Host(spec.client_id, spec.kind, spec.address, b"\x00" * 6, 64, Random(0))
    return Client(spec, iot.Client(host, spec.kind, spec.number, Random(seed)))


def connect(client: Client, host: str, port: int, keepalive: int, lock: threading.Lock) -> None:
    """Connect from the client's own address; on CONNACK publish the retained status and subscribe."""
    spec = client.spec
    paho = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=spec.client_id, protocol=mqtt.MQTTv311)
    client.paho = paho
    if spec.username:
        paho.username_pw_set(spec.username, spec.password)
    device = spec.kind in DEVICES
    if device:
        paho.will_set(f"{client.base}/status", b'{"online":false}', qos=1, retain=True)
    filters = [(f"{client.base}/cmd", 1)] if spec.kind == "camera" else SUBSCRIPTIONS.get(spec.kind, [])

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            return
        if filters:
            c.subscribe(filters)
        if device:
            online = f'{{"online":true,"ip":"{spec.address}","fw":"{FIRMWARE.get(spec.kind, "2.3.1")}"}}'
            c.publish(f"{client.base}/status", online.encode(), qos=1, retain=True)
        if not filters:
            client.ready.set()

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with lock:
            client.received += 1
            if msg.topic.endswith("/cmd"):
                client.commands[msg.topic] += 1

    paho.on_connect = on_connect
    paho.on_subscribe = lambda *_a: client.ready.set()
    paho.on_message = on_message
    alive = 60 if spec.kind in ("camera", "historian", "vms") else keepalive
    paho.connect(host, port, keepalive=alive, bind_address=spec.address)
    paho.loop_start()


def cycle_once(clients: list[Client], args: argparse.Namespace, rng: Random, cycle: int) -> None:
    """One round: telemetry (a gateway every second round), snapshots, the VMS's command."""
    cameras = [c for c in clients if c.spec.kind == "camera"]
    now = time.time()
    for client in clients:
        assert client.paho is not None
        kind = client.spec.kind
        if kind == "vms":
            if args.command_every and cameras and cycle % args.command_every == args.command_every - 1:
                target = cameras[(cycle // args.command_every) % len(cameras)]
                client.paho.publish(f"{target.base}/cmd", b'{"cmd":"preset","id":1}', qos=1)
                client.published += 1
            continue
        if kind not in DEVICES or (kind == "gateway" and cycle % 2):
            continue
        for topic, payload in client.model.telemetry(now):
            client.paho.publish(topic, payload, qos=0)
            client.published += 1
        if kind == "camera" and cycle % max(1, args.snapshot_every) == 0:
            jpeg = iot.JPEG_HEAD + rng.randbytes(rng.randrange(6000, 24000)) + b"\xff\xd9"
            client.paho.publish(f"{client.base}/snapshot", jpeg, qos=0)
            client.published += 1


def run(args: argparse.Namespace) -> None:
    """Connect every client, publish every `interval` until SIGTERM or orphaned, then disconnect cleanly."""
    host, _, port = args.broker.rpartition(":")
    clients = [make_client(spec, args.seed + i) for i, spec in enumerate(args.client)]
    status = Status(Path(args.status), "mqtt-clients", "mqtt-clients", ",".join(c.spec.address for c in clients))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_a: stop.set())
    lock = threading.Lock()
    rng, watch = Random(args.seed), ParentWatch()

    def report(**extra: Any) -> None:
        with lock:
            status.note(clients={c.spec.client_id: {"address": c.spec.address, "kind": c.spec.kind, "base": c.base,
                                                    "ready": c.ready.is_set(), "published": c.published,
                                                    "received": c.received, "commands": dict(c.commands)}
                                 for c in clients}, **extra)  # fmt: skip

    try:
        for client in clients:
            connect(client, host, int(port), args.keepalive, lock)
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
    parser.add_argument("--broker", default="127.16.0.10:1883", help="host:port of the broker")
    parser.add_argument("--client", type=parse_client, action="append", required=True,
                        help="ID@ADDRESS:KIND:NUMBER[:USER:PASSWORD] (repeat)")  # fmt: skip
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between telemetry messages")
    parser.add_argument("--keepalive", type=int, default=30, help="the sensors' and gateways' keep-alive")
    parser.add_argument("--snapshot-every", type=int, default=20, help="cycles between JPEG snapshots")
    parser.add_argument("--command-every", type=int, default=0, help="cycles between VMS commands (0: never)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--broker-pid", type=int, default=0, help="stop this broker if the site's process dies")
    parser.add_argument("--status", required=True, help="the JSON status file to keep")
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
