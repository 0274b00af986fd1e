"""What a mosquitto broker says about itself on `$SYS`: its log lines and its counters (pure functions, no I/O).

Log lines. mosquitto publishes its own log on `$SYS/broker/log/<level>` (N notice, I information, W warning, E error,
M/subscribe, M/unsubscribe) when its configuration has `log_dest topic`; debug lines are never published there.
`parse_log(topic, line)` reads the lines that tell who is on the broker:

  New client connected from 127.0.0.1:43210 as cam-01 (p2, c1, k60, u'alice').   (mosquitto 2.x)
  New client connected from 10.0.0.7 as cam-01 (c1, k60, u'alice').              (1.x: no port, no protocol)
  New bridge connected from ...                                                  (a bridge: same shape)
  Client cam-01 disconnected. | Client cam-01 closed its connection. | Client cam-01 has exceeded timeout,
  disconnecting. | Client cam-01 disconnected, not authorised. | Client cam-01 disconnected due to ... |
  Client cam-01 already connected, closing old connection. | Socket error on client cam-01, disconnecting.
  cam-01 1 cams/+/cmd                                        (on $SYS/broker/log/M/subscribe: id, QoS, filter)

The timestamp prefix (`1700000000: `, or a `log_timestamp_format` date) is skipped. Client ids may hold spaces;
`<unknown>` (a client that never finished its CONNECT) is ignored. mosquitto's `p` number is its protocol enum
(1 MQTT 3.1, 2 MQTT 3.1.1, 5 MQTT 5.0): it is reported as the MQTT protocol level (3, 4, 5) the wire decoder uses.

Counters. `SysState` keeps the values of `$SYS/broker/version`, `clients/*`, `messages/*`, `bytes/*`,
`subscriptions/count`, `retained messages/count` and `uptime`. mosquitto republishes the changed ones every
`sys_interval` seconds; `take()` returns a snapshot only when a value that describes the broker (version, clients
connected/total, subscriptions, retained messages) changed since the last snapshot taken: traffic counters ride
along but never trigger one by themselves.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LOG_PREFIX",
    "ClientConnected",
    "ClientDisconnected",
    "ClientSubscribed",
    "LogRecord",
    "SysState",
    "parse_log",
    "split_address",
]

LOG_PREFIX = "$SYS/broker/log/"
SUBSCRIBE_LOG = "$SYS/broker/log/M/subscribe"
PROTO_LEVELS = {1: 3, 2: 4, 5: 5}  # mosquitto's protocol enum -> MQTT protocol level
UNKNOWN_ID = "<unknown>"

_TIMESTAMP = re.compile(r"\d(?:[\d\-/:.T ,+]*\d)?: ")
_CONNECTED = re.compile(
    r"New (?P<what>client|bridge) connected from (?P<addr>\S+) as (?P<id>.+) "
    r"\((?:p(?P<p>\d+), )?c(?P<c>\d+), k(?P<k>\d+)(?:, u'(?P<user>.*)')?\)\.?$"
)
_DISCONNECTED = re.compile(
    r"Client (?P<id>.+?) (?P<reason>disconnected.*?|closed its connection|has exceeded timeout"
    r"|(?:has )?been disconnected by administrative action|already connected, closing old connection)"
    r"(?:, disconnecting)?\.?$"
)
_SOCKET_ERROR = re.compile(r"Socket error on client (?P<id>.+), disconnecting\.?$")
_SUBSCRIBED = re.compile(r"(?P<id>.+) (?P<qos>\d+) (?P<topic>\S.*)$")


@dataclass(frozen=True, slots=True)
class ClientConnected:
    """A client (or bridge) the broker accepted: where from, its id and its CONNECT flags."""

    client_id: str
    ip: str
    port: int | None
    proto_level: int | None
    clean_session: bool
    keep_alive: int
    username: str | None
    bridge: bool = False


@dataclass(frozen=True, slots=True)
class ClientDisconnected:
    """A client that left, and the broker's words for why."""

    client_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ClientSubscribed:
    """A subscription the broker granted (log type `subscribe`)."""

    client_id: str
    topic: str
    qos: int


LogRecord = ClientConnected | ClientDisconnected | ClientSubscribed


def split_address(text: str) -> tuple[str, int | None]:
    """`127.0.0.1:43210` -> ("127.0.0.1", 43210); a bare address (mosquitto 1.x) keeps no port."""
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit() and int(port) <= 65535:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return host, int(port)
    return text, None


def _strip_timestamp(line: str) -> str:
    m = _TIMESTAMP.match(line)
    return line[m.end() :] if m else line


def parse_log(topic: str, line: str) -> LogRecord | None:
    """The client event one `$SYS/broker/log/...` line tells of, or None for any other line."""
    body = _strip_timestamp(line.rstrip("\r\n"))
    if topic == SUBSCRIBE_LOG:
        m = _SUBSCRIBED.match(body)
        if m is None or m["id"] == UNKNOWN_ID:
            return None
        return ClientSubscribed(m["id"], m["topic"], int(m["qos"]))
    if body.startswith("New "):
        m = _CONNECTED.match(body)
        if m is None:
            return None
        ip, port = split_address(m["addr"])
        p = m["p"]
        return ClientConnected(
            client_id=m["id"],
            ip=ip,
            port=port,
            proto_level=PROTO_LEVELS.get(int(p)) if p is not None else None,
            clean_session=m["c"] != "0",
            keep_alive=int(m["k"]),
            username=m["user"],
            bridge=m["what"] == "bridge",
        )
    if body.startswith("Client "):
        m = _DISCONNECTED.match(body)
        if m is None or m["id"] == UNKNOWN_ID:
            return None
        return ClientDisconnected(m["id"], m["reason"])
    if body.startswith("Socket error on client "):
        m = _SOCKET_ERROR.match(body)
        if m is None or m["id"] == UNKNOWN_ID:
            return None
        return ClientDisconnected(m["id"], "socket error")
    return None


def _int(text: str) -> int | None:
    """The leading integer of a $SYS value (`12`, `35 seconds`), or None."""
    head = text.strip().split(" ", 1)[0]
    return int(head) if head.isdigit() else None


# $SYS topic -> (field name, whether a change of it is news about the broker)
SYS_VALUES: dict[str, tuple[str, bool]] = {
    "$SYS/broker/version": ("version", True),
    "$SYS/broker/clients/connected": ("clients_connected", True),
    "$SYS/broker/clients/total": ("clients_total", True),
    "$SYS/broker/subscriptions/count": ("subscriptions", True),
    "$SYS/broker/retained messages/count": ("retained_messages", True),
    "$SYS/broker/clients/disconnected": ("clients_disconnected", False),
    "$SYS/broker/clients/maximum": ("clients_maximum", False),
    "$SYS/broker/uptime": ("uptime_seconds", False),
    "$SYS/broker/messages/received": ("messages_received", False),
    "$SYS/broker/messages/sent": ("messages_sent", False),
    "$SYS/broker/publish/messages/dropped": ("publish_dropped", False),
    "$SYS/broker/bytes/received": ("bytes_received", False),
    "$SYS/broker/bytes/sent": ("bytes_sent", False),
}
_FIELD_ORDER = {name: i for i, (name, _) in enumerate(SYS_VALUES.values())}


class SysState:
    """The broker's $SYS values; a snapshot is due when a value that describes the broker changed."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self._emitted: dict[str, Any] = {}
        self.dirty = False  # some value changed since the last take()

    def update(self, topic: str, payload: str) -> bool:
        """Record one $SYS message; True when it is a value this state keeps and it changed."""
        known = SYS_VALUES.get(topic)
        if known is None:
            return False
        name = known[0]
        value: Any = payload.strip() if name == "version" else _int(payload)
        if value is None or value == "" or self.values.get(name) == value:
            return False
        self.values[name] = value
        self.dirty = True
        return True

    def due(self) -> bool:
        """Whether take() would return a snapshot now."""
        if not self.dirty:
            return False
        return any(self.values.get(name) != self._emitted.get(name) for name, news in SYS_VALUES.values() if news)

    def take(self) -> dict[str, Any] | None:
        """A snapshot of every value when news changed since the last one taken, else None (marks clean)."""
        due = self.due()
        self.dirty = False
        if not due:
            return None
        snapshot = dict(sorted(self.values.items(), key=lambda kv: _FIELD_ORDER[kv[0]]))
        self._emitted = dict(snapshot)
        return snapshot

    def reset(self) -> None:
        """Forget the values (a new connection: the broker may have restarted) but remember what was emitted."""
        self.values.clear()
        self.dirty = False
