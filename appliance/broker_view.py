"""The broker session's view: what it sees (connects, messages, $SYS) turned into `mqtt_broker` events (no I/O).

Every event has protocol "mqtt_broker", kind "notice", no flow, is_orig True, ts = the wall-clock time it was seen,
dst = the broker's address (resolved once per connection) and src = the client concerned when known, else "":

  session_up / session_down  src ""; broker ("host:port"), reason, protocol ("3.1.1" | "5")
  client_connected           src = the client's address; client_id, username (when given), client_port (mosquitto
                             2.x), proto_level (3, 4, 5; mosquitto 1.6+), keep_alive, clean_session, bridge (True
                             for a bridge only)
  client_disconnected        src = the client's address if known; client_id, reason (the broker's words)
  client_subscribed          src = the client's address if known; client_id, topic, qos (log type `subscribe`; the
                             session's own subscriptions are left out)
  publish                    src = the publisher's address when attributable (broker_payload), else ""; topic, qos,
                             retain (True: retained state delivered on subscribe), payload_len, payload (preview),
                             payload_type, client_id (when attributable)
  broker_info                src = the broker's address; version, clients_connected, ... (broker_sys.SysState)

Client ids and addresses are remembered for the life of the view, across reconnections: a will message published
after its client left is still attributed.

A broker does not keep its own log lines in order with the messages it relays (mosquitto 2 delivered a client's
QoS 1 PUBLISH to a v5 session before the QoS 0 log line of that client's CONNECT). So a publish that cannot be
attributed yet is held for up to HOLD_SECONDS (at most MAX_HELD of them, the oldest go first): a client_connected
that names its publisher releases it attributed; release() lets the others go unattributed when their time is up.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from appliance.broker_payload import ATTRIBUTION_KEYS, ClientTable, json_object, payload_preview, payload_type
from appliance.broker_sys import (
    LOG_PREFIX,
    ClientConnected,
    ClientDisconnected,
    ClientSubscribed,
    SysState,
    parse_log,
)
from appliance.model import NOTICE, ProtocolEvent

__all__ = ["PROTOCOL", "BrokerView"]

PROTOCOL = "mqtt_broker"
SYS = "$SYS/"
HOLD_SECONDS = 1.0
MAX_HELD = 10_000
# a publish waiting for its publisher's log line: (ts, topic, the payload's attribution keys, fields)
Held = tuple[float, str, dict[str, Any] | None, dict[str, Any]]


class BrokerView:
    """Turns one broker's session, log lines, $SYS values and messages into events (one thread at a time)."""

    def __init__(self, broker: str, protocol: str, own_client_id: str = "") -> None:
        self.broker = broker  # "host:port" as configured
        self.protocol = protocol  # "3.1.1" | "5"
        self.own_client_id = own_client_id  # the session's own subscriptions are not news
        self.broker_ip = ""
        self.clients = ClientTable()
        self.sys = SysState()
        self.held: deque[Held] = deque()

    def _event(self, ts: float, op: str, src: str, fields: dict[str, Any]) -> ProtocolEvent:
        return ProtocolEvent(ts, None, PROTOCOL, op, NOTICE, True, src, self.broker_ip, fields)

    def session_up(self, ts: float, broker_ip: str, reason: str) -> ProtocolEvent:
        """The session is established (CONNACK accepted) with the broker at broker_ip."""
        self.broker_ip = broker_ip
        self.sys.reset()
        return self._event(ts, "session_up", "", self._session_fields(reason))

    def session_down(self, ts: float, reason: str) -> list[ProtocolEvent]:
        """The session ended: the held publishes, the pending broker_info (if any), then session_down."""
        out = self.release(ts, everything=True)
        out.extend(self.flush(ts))
        out.append(self._event(ts, "session_down", "", self._session_fields(reason)))
        return out

    def _session_fields(self, reason: str) -> dict[str, Any]:
        return {"broker": self.broker, "reason": reason, "protocol": self.protocol}

    def flush(self, ts: float) -> list[ProtocolEvent]:
        """A broker_info event when the $SYS values describing the broker changed since the last one."""
        snapshot = self.sys.take()
        if snapshot is None:
            return []
        return [self._event(ts, "broker_info", self.broker_ip, snapshot)]

    def release(self, now: float, *, everything: bool = False) -> list[ProtocolEvent]:
        """The held publishes whose time is up (all of them with `everything`), unattributed."""
        held = self.held
        out = []
        limit = now - HOLD_SECONDS
        while held and (everything or held[0][0] <= limit):
            ts, _topic, _keys, fields = held.popleft()
            out.append(self._event(ts, "publish", "", fields))
        return out

    def _attribute_held(self) -> list[ProtocolEvent]:
        """The held publishes a newly known client accounts for, attributed; the others stay held."""
        out = []
        keep: deque[Held] = deque()
        attribute = self.clients.attribute
        for item in self.held:
            ts, topic, keys, fields = item
            who = attribute(topic, keys)
            if who is None:
                keep.append(item)
            else:
                fields["client_id"], src = who
                out.append(self._event(ts, "publish", src, fields))
        self.held = keep
        return out

    def message(self, ts: float, topic: str, payload: bytes, qos: int, retain: bool) -> list[ProtocolEvent]:
        """The events one delivered message gives: a client event from a log line, nothing for $SYS counters
        (they wait for flush()), a publish event for anything else."""
        if topic.startswith(SYS):
            if topic.startswith(LOG_PREFIX):
                return self._log(ts, topic, payload)
            self.sys.update(topic, payload.decode("utf-8", "replace"))
            return []
        return self._publish(ts, topic, payload, qos, retain)

    def _log(self, ts: float, topic: str, payload: bytes) -> list[ProtocolEvent]:
        record = parse_log(topic, payload.decode("utf-8", "backslashreplace"))
        if record is None:
            return []
        fields: dict[str, Any]
        if isinstance(record, ClientConnected):
            self.clients.add(record.client_id, record.ip)
            fields = {"client_id": record.client_id}
            if record.username is not None:
                fields["username"] = record.username
            if record.port is not None:
                fields["client_port"] = record.port
            if record.proto_level is not None:
                fields["proto_level"] = record.proto_level
            fields["keep_alive"] = record.keep_alive
            fields["clean_session"] = record.clean_session
            if record.bridge:
                fields["bridge"] = True
            out = [self._event(ts, "client_connected", record.ip, fields)]
            if self.held:
                out.extend(self._attribute_held())
            return out
        src = self.clients.ip_of(record.client_id) or ""
        if isinstance(record, ClientDisconnected):
            fields = {"client_id": record.client_id, "reason": record.reason}
            return [self._event(ts, "client_disconnected", src, fields)]
        assert isinstance(record, ClientSubscribed)
        if record.client_id == self.own_client_id:
            return []
        fields = {"client_id": record.client_id, "topic": record.topic, "qos": record.qos}
        return [self._event(ts, "client_subscribed", src, fields)]

    def _publish(self, ts: float, topic: str, payload: bytes, qos: int, retain: bool) -> list[ProtocolEvent]:
        kind = payload_type(payload)
        fields: dict[str, Any] = {
            "topic": topic,
            "qos": qos,
            "retain": retain,
            "payload_len": len(payload),
            "payload": payload_preview(payload),
            "payload_type": kind,
        }
        keys = _attribution_keys(payload) if kind == "json" else None
        who = self.clients.attribute(topic, keys)
        if who is not None:
            fields["client_id"], src = who
            return [self._event(ts, "publish", src, fields)]
        self.held.append((ts, topic, keys, fields))
        if len(self.held) > MAX_HELD:
            ts0, _topic, _keys, fields0 = self.held.popleft()
            return [self._event(ts0, "publish", "", fields0)]
        return []


def _attribution_keys(payload: bytes) -> dict[str, Any] | None:
    """The keys of a JSON payload that can name its publisher (kept while the publish is held), or None."""
    obj = json_object(payload)
    if obj is None:
        return None
    keys = {k: obj[k] for k in ATTRIBUTION_KEYS if isinstance(obj.get(k), str)}
    return keys or None
