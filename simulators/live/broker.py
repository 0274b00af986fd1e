"""The live site's mosquitto: its configuration, and who published what, read from its debug log.

mosquitto runs in the foreground on the broker's own loopback address (`listener PORT ADDRESS`, anonymous), with
`log_type all` into a file (one line per event, written as it happens, timestamps in seconds). Its log is the
broker's word on every PUBLISH it received and from which client id, and on the address each client id connected
from: `publishes()` joins the two, so that every publish (a command to a camera or anything else) has a sender.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
CONNECTED = re.compile(r"New client connected from (\S+):(\d+) as (\S+) \(")
PUBLISH = re.compile(r"Received PUBLISH from (\S+) \(d\d, q(\d), r(\d), m\d+, '(.*)', \.\.\. \((\d+) bytes\)\)$")
COMMAND_TOPIC = re.compile(r"(^|/)(cmd|command|commands|set|control)(/|$)")


@dataclass(frozen=True, slots=True)
class Publish:
    """One PUBLISH the broker received: the client's address and id, topic, QoS, retain flag, size."""

    sender: str
    client_id: str
    topic: str
    qos: int
    retain: bool
    size: int

    @property
    def is_command(self) -> bool:
        """Whether the topic is a command topic (a path segment `cmd`, `command(s)`, `set` or `control`)."""
        return COMMAND_TOPIC.search(self.topic) is not None


def write_config(folder: Path, address: str, port: int) -> tuple[Path, Path]:
    """mosquitto.conf for one anonymous listener on address:port, logging everything to mosquitto.log."""
    conf, log = folder / "mosquitto.conf", folder / "mosquitto.log"
    conf.write_text(
        f"listener {port} {address}\n"
        "allow_anonymous true\n"
        "persistence false\n"
        "user root\n"  # run as root it would otherwise drop to `mosquitto`, which cannot write our log
        "sys_interval 1\n"
        f"log_dest file {log}\n"
        "log_type all\n"
        "log_timestamp_format %s\n"
    )
    return conf, log


def read_log(log: Path) -> tuple[dict[str, str], list[Publish]]:
    """(client id -> address of its latest connection, every PUBLISH received) from the complete lines of the log."""
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        return {}, []
    lines = text.split("\n")
    if not text.endswith("\n"):
        lines = lines[:-1]  # a line still being written
    addresses: dict[str, str] = {}
    publishes: list[Publish] = []
    for line in lines:
        if (m := CONNECTED.search(line)) is not None:
            addresses[m.group(3)] = m.group(1)
        elif (p := PUBLISH.search(line)) is not None:
            client, qos, retain, topic, size = p.groups()
            publishes.append(Publish(addresses.get(client, "?"), client, topic, int(qos), retain == "1", int(size)))
    return addresses, publishes
