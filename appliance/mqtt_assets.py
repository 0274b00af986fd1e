"""What MQTT tells the inventory: from the wire and from the read-only broker session.

From the wire (protocol `mqtt`; the decoder's kind is `request` for what a client sent), the sender learns: client
ids and usernames from CONNECT (never a password), topics it publishes with their payload types (jpeg, json, ...),
topic filters it subscribes to. What a broker relays to subscribers (kind `response`) is not credited to the broker.

From the broker session (protocol `mqtt_broker`, appliance/broker.py; events carry no flow): `session_up` makes the
broker an asset with the MQTT server role; `client_connected` (mosquitto's `$SYS/broker/log` lines) makes the client
an asset by its IP with its client id and username, a client of the broker; `client_subscribed` adds the topic
filter it subscribed to; `publish` with a known publisher (src) credits the topic and payload type to it;
`broker_info` gives the broker's product and version (`$SYS`).
"""

from __future__ import annotations

from typing import Any

from appliance.asset_index import AssetIndex
from appliance.asset_record import MAX_CLIENT_IDS, MAX_ROLE_PEERS, MAX_TOPICS, AssetRecord, add_bounded, clean_text
from appliance.model import REQUEST, ProtocolEvent

BROKER_PROTOCOL = "mqtt_broker"
SYS_SOURCE = "mqtt/$SYS"  # attribute source: the broker's own $SYS topics
SYS_CONFIDENCE = 0.9


def _text(value: Any) -> str:
    """A client id, username or topic as kept on an asset: printable and bounded ("" when unusable)."""
    return clean_text(value) if isinstance(value, str) else ""


def learn_client_packet(rec: AssetRecord, ev: ProtocolEvent) -> None:
    """A packet an MQTT client sent (wire or broker session): its ids, topics and payload types.

    Payload types count the wire's PUBLISHes; the broker session, which often sees the same messages, only marks a
    type the wire never showed for the asset (count 1), so that a mirrored and relayed publish is not counted twice.
    """
    f = ev.fields
    op = ev.op
    if op == "publish":
        topic = _text(f.get("topic"))
        if topic and len(rec.mqtt_published) < MAX_TOPICS:
            rec.mqtt_published.add(topic)
        kind = f.get("payload_type")
        if isinstance(kind, str):
            if ev.protocol != BROKER_PROTOCOL:
                rec.mqtt_payload_types[kind] += 1
            elif not rec.mqtt_payload_types.get(kind):
                rec.mqtt_payload_types[kind] = 1
    elif op == "client_subscribed":  # the broker session's view of a SUBSCRIBE (mosquitto `log_type subscribe`)
        topic = _text(f.get("topic"))
        if topic:
            add_bounded(rec.mqtt_subscribed, (topic,), MAX_TOPICS)
    elif op == "connect" or op == "client_connected":
        client_id = _text(f.get("client_id"))
        if client_id:
            add_bounded(rec.mqtt_client_ids, (client_id,), MAX_CLIENT_IDS)
        username = _text(f.get("username"))
        if username:
            add_bounded(rec.mqtt_usernames, (username,), MAX_CLIENT_IDS)
    elif op == "subscribe":
        topics = f.get("topics")
        if isinstance(topics, list):
            add_bounded(rec.mqtt_subscribed, (t for t in map(_text, topics) if t), MAX_TOPICS)
    else:
        return
    rec.cached = None


def learn_wire(rec: AssetRecord, ev: ProtocolEvent) -> None:
    """A decoded MQTT packet from the wire, `rec` being its sender."""
    if ev.kind == REQUEST:
        learn_client_packet(rec, ev)


def broker_version(text: str) -> tuple[str, str]:
    """(product, version) from a `$SYS/broker/version` text such as `mosquitto version 2.0.11`."""
    product, sep, version = text.partition(" version ")
    return (product.strip(), version.strip()) if sep else (text.strip(), "")


class MqttInventory(AssetIndex):
    """The broker session's events applied to the asset index (pipeline thread only)."""

    def _touch_mqtt(self, ip: str, ts: float) -> AssetRecord | None:
        """The asset of an address the broker session names, created if new, seen at `ts`."""
        rec = self._by_ip.get(ip)
        if rec is None:
            rec = self._sender(ip, None, ts)
            if rec is None:
                return None
        if ts > rec.last_seen:
            rec.last_seen = ts
        elif ts < rec.first_seen:
            rec.first_seen = ts
        rec.protocols.add("mqtt")
        rec.ot_traffic = True
        rec.cached = None
        return rec

    def _on_broker(self, ev: ProtocolEvent) -> None:
        """One broker-session event: the broker, its clients, what they publish."""
        op = ev.op
        broker_ip = ev.dst
        if op == "session_up" or op == "broker_info":
            broker = self._touch_mqtt(broker_ip, ev.ts) if broker_ip else None
            if broker is None:
                return
            broker.role("mqtt", "server")
            version = ev.fields.get("version")
            if op == "broker_info" and isinstance(version, str):
                product, number = broker_version(version)
                broker.set_attr("product_name", product, SYS_SOURCE, SYS_CONFIDENCE)
                broker.set_attr("firmware", number, SYS_SOURCE, SYS_CONFIDENCE)
            return
        if not ev.src or ev.src == broker_ip:
            return
        client = self._touch_mqtt(ev.src, ev.ts)
        if client is None:
            return
        learn_client_packet(client, ev)
        if op == "client_connected" and broker_ip:
            broker = self._touch_mqtt(broker_ip, ev.ts)
            if broker is not None:
                add_bounded(broker.role("mqtt", "server")[1], (ev.src,), MAX_ROLE_PEERS)
                add_bounded(client.role("mqtt", "client")[1], (broker_ip,), MAX_ROLE_PEERS)
