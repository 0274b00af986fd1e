"""Category evidence for MQTT clients: cameras, sensors and gateways, from payload types, topic words and client ids.

Each function takes an AssetRecord and returns the evidence as words (the category rule table in
`appliance.asset_rules` keeps them as `category_evidence`) or None. Words are matched per token: topic levels and
client ids split at anything not a letter or digit, lower-cased, trailing digits dropped (`cam03` reads as `cam`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from appliance.asset_record import AssetRecord

IMAGE_TYPES = ("jpeg", "png", "gif")
CAMERA_WORDS = frozenset(
    {"camera", "cameras", "cam", "cams", "cctv", "snapshot", "snapshots", "image", "images", "jpeg", "jpg", "video",
     "motion", "rtsp", "nvr", "ipcam", "ipc", "frame", "frames", "stream"}
)  # fmt: skip
SENSOR_WORDS = frozenset(
    {"sensor", "sensors", "temperature", "temp", "humidity", "pressure", "voltage", "current", "power", "energy",
     "kwh", "leak", "smoke", "co", "dewpoint", "airflow", "vibration", "telemetry", "env", "environment", "door",
     "occupancy", "pdu", "meter", "thermostat"}
)  # fmt: skip
GATEWAY_WORDS = frozenset(
    {"gateway", "gw", "bridge", "zigbee2mqtt", "zigbee", "lora", "lorawan", "zwave", "edge", "hub", "collector",
     "modbus2mqtt", "bacnet2mqtt", "node-red", "nodered"}
)  # fmt: skip
_TOKEN = re.compile(r"[a-z0-9]+")
_HYPHENATED = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)+")
MAX_SHOWN = 3
MIN_GATEWAY_READS = 20  # a gateway polls: a host that sent one Modbus write and one publish is no gateway


def tokens(text: str) -> set[str]:
    """The words of a topic or client id: lower-case runs of letters and digits, each also without its trailing
    digits, and hyphenated runs whole (`node-red`)."""
    lower = text.lower()
    out = set(_HYPHENATED.findall(lower))
    for raw in _TOKEN.findall(lower):
        word = raw.rstrip("0123456789")
        if word:
            out.add(word)
        out.add(raw)
    return out


def _named(texts: Iterable[str], words: frozenset[str]) -> list[str]:
    """The texts (sorted) that hold one of the words."""
    return sorted(t for t in texts if not words.isdisjoint(tokens(t)))


def _shown(texts: list[str]) -> str:
    head = ", ".join(texts[:MAX_SHOWN])
    return head + (f" (+{len(texts) - MAX_SHOWN} more)" if len(texts) > MAX_SHOWN else "")


COMMAND_LEVELS = frozenset({"cmd", "cmnd", "command", "commands", "set", "control", "ctrl"})


def is_command_topic(topic: str) -> bool:
    """True for a topic that carries commands to a device (a level `cmd`, `set`, `control`...): whoever publishes
    on it controls the device named in it, it is not that device."""
    return not COMMAND_LEVELS.isdisjoint(topic.lower().split("/"))


def _words(r: AssetRecord, words: frozenset[str], what: str) -> str | None:
    """Evidence that the client ids or published topics (command topics aside) name `what`."""
    ids = _named(r.mqtt_client_ids, words)
    topics = _named((t for t in r.mqtt_published if not is_command_topic(t)), words)
    if not ids and not topics:
        return None
    parts = []
    if ids:
        parts.append(f"client id {_shown(ids)}")
    if topics:
        parts.append(f"publishes on {_shown(topics)}")
    return f"{' and '.join(parts)} ({what} words)"


def camera_images(r: AssetRecord) -> str | None:
    """An MQTT client publishing image payloads (JPEG, PNG or GIF frames)."""
    seen = [(kind, r.mqtt_payload_types[kind]) for kind in IMAGE_TYPES if r.mqtt_payload_types.get(kind)]
    if not seen:
        return None
    counts = ", ".join(f"{n} {kind.upper()}" for kind, n in seen)
    return f"publishes images over MQTT ({counts} payloads)"


def camera_words(r: AssetRecord) -> str | None:
    """Camera words in an MQTT client's ids or topics."""
    return _words(r, CAMERA_WORDS, "camera")


def gateway_protocols(r: AssetRecord) -> str | None:
    """A host that polls Modbus or BACnet devices (MIN_GATEWAY_READS reads or more) and publishes over MQTT."""
    if not r.mqtt_published:
        return None
    polled = [p for p in ("modbus", "bacnet") if (p, "client") in r.roles and r.sent[(p, "read")] >= MIN_GATEWAY_READS]
    if not polled:
        return None
    n = sum(len(r.roles[(p, "client")][1]) for p in polled)
    return f"polls {n} {'/'.join(polled)} device(s) and publishes on {len(r.mqtt_published)} MQTT topic(s)"


def gateway_words(r: AssetRecord) -> str | None:
    """Gateway or bridge words in an MQTT client's ids or topics."""
    return _words(r, GATEWAY_WORDS, "gateway")


def sensor_words(r: AssetRecord) -> str | None:
    """Sensor and telemetry words in an MQTT client's ids or topics."""
    return _words(r, SENSOR_WORDS, "sensor")
