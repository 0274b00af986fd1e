"""Reading a message seen through the broker: its payload type, a preview, and who published it (pure functions).

The preview and the type come from the wire decoder's helpers (protocols/mqtt_payload.py), given the same bytes the
decoder looks at, so a message reads the same in mqtt.jsonl and mqtt_broker.jsonl.

A broker delivers messages without their publisher. A message is attributed to a client only on evidence: its
payload is a JSON object whose `client_id`, `clientid`, `device_id` or `ip` names a client (or the address of a
client) the broker's log introduced, or one level of its topic equals such a client id (`cams/cam-01/snapshot`).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from protocols.mqtt_payload import PEEK, PREVIEW_CAP
from protocols.mqtt_payload import payload_preview as _preview
from protocols.mqtt_payload import payload_type as _type

__all__ = ["ATTRIBUTION_KEYS", "MAX_JSON", "ClientTable", "json_object", "payload_preview", "payload_type"]

MAX_JSON = 64 * 1024  # larger JSON payloads are typed from their first bytes but not parsed
ATTRIBUTION_KEYS = ("client_id", "clientid", "device_id", "ip")
MAX_CLIENTS = 65536
_LOOK = max(PREVIEW_CAP, PEEK)  # payload bytes looked at, as the wire decoder looks at them


def payload_preview(payload: bytes) -> str:
    """The payload's preview exactly as the wire decoder writes it (protocols/mqtt_payload.py)."""
    return _preview(payload, PREVIEW_CAP)


def payload_type(payload: bytes) -> str:
    """The payload's type from its first bytes, as the wire decoder types it (protocols/mqtt_payload.py)."""
    return _type(payload[:_LOOK])


def json_object(payload: bytes) -> dict[str, Any] | None:
    """The payload as a JSON object, or None (not JSON, not an object, or larger than MAX_JSON)."""
    if len(payload) > MAX_JSON:
        return None
    try:
        value = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


class ClientTable:
    """Client ids the broker's log introduced and their addresses (bounded: the oldest are forgotten)."""

    def __init__(self, limit: int = MAX_CLIENTS) -> None:
        self.limit = limit
        self._ip_of: OrderedDict[str, str] = OrderedDict()
        self._id_at: dict[str, str] = {}  # address -> the client id most recently seen there

    def __len__(self) -> int:
        """How many client ids are known."""
        return len(self._ip_of)

    def add(self, client_id: str, ip: str) -> None:
        """Remember that client_id connects from ip."""
        ip_of = self._ip_of
        ip_of[client_id] = ip
        ip_of.move_to_end(client_id)
        self._id_at[ip] = client_id
        while len(ip_of) > self.limit:
            old_id, old_ip = ip_of.popitem(last=False)
            if self._id_at.get(old_ip) == old_id:
                del self._id_at[old_ip]

    def ip_of(self, client_id: str) -> str | None:
        """The address a client id connected from, if known."""
        return self._ip_of.get(client_id)

    def attribute(self, topic: str, obj: dict[str, Any] | None) -> tuple[str, str] | None:
        """(client id, address) of a message's publisher when its JSON payload or its topic names a known client."""
        if not self._ip_of:
            return None
        if obj is not None:
            for key in ATTRIBUTION_KEYS:
                value = obj.get(key)
                if not isinstance(value, str) or not value:
                    continue
                ip = self._ip_of.get(value)
                if ip is not None:
                    return value, ip
                owner = self._id_at.get(value)
                if owner is not None:
                    return owner, value
        for level in topic.split("/"):
            if level:
                ip = self._ip_of.get(level)
                if ip is not None:
                    return level, ip
        return None
