"""MQTT 3.1.1 traffic on TCP 1883: cameras, rack sensors and PDUs publishing JSON to a broker.

Every client connects (CONNECT/CONNACK; cameras with a username and password, and a SUBSCRIBE to their command
topic), then publishes QoS 0 (no reply) or QoS 1 (PUBACK) messages on topics such as `site/dc1/cam/12/status`,
with occasional PINGREQ/PINGRESP and DISCONNECT + FIN followed by a reconnect. A historian subscribed to
`site/dc1/#` receives every publish from the broker.
"""

from __future__ import annotations

from collections import deque
from random import Random

from simulators.mixgen.net import Site
from simulators.mixgen.wire import Host, TcpConn

PORT = 1883
CLOSE_P = 0.002
PING_P = 0.04
QOS1_P = 0.3
ACK_P = 0.5


def remaining_length(n: int) -> bytes:
    """MQTT's variable-length encoding of a remaining length."""
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _utf8(text: str) -> bytes:
    raw = text.encode("utf-8")
    return len(raw).to_bytes(2, "big") + raw


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + remaining_length(len(body)) + body


def connect_packet(client_id: str, keepalive: int, user: str = "", password: str = "") -> bytes:
    """A CONNECT (protocol level 4, clean session) with an optional username and password."""
    flags = 0x02 | ((0xC0) if user else 0)
    body = _utf8("MQTT") + bytes([4, flags]) + keepalive.to_bytes(2, "big") + _utf8(client_id)
    if user:
        body += _utf8(user) + _utf8(password)
    return _packet(0x10, body)


def publish_packet(topic: str, payload: bytes, qos: int = 0, packet_id: int = 0) -> bytes:
    """A PUBLISH of payload on topic at QoS 0 or 1."""
    body = _utf8(topic) + (packet_id.to_bytes(2, "big") if qos else b"") + payload
    return _packet(0x30 | (qos << 1), body)


def subscribe_packet(packet_id: int, topic: str, qos: int) -> bytes:
    """A SUBSCRIBE to one topic filter."""
    return _packet(0x82, packet_id.to_bytes(2, "big") + _utf8(topic) + bytes([qos]))


class _Client:
    """One MQTT client: its host, topic, payload template and, while connected, its TCP session."""

    __slots__ = ("conn", "host", "kind", "number", "pid", "seq", "topic")

    def __init__(self, host: Host, rng: Random) -> None:
        self.host = host
        kind, _, num = host.name.rpartition("-")
        self.kind = kind or host.name
        self.number = int(num) if num.isdigit() else 0
        section = {"cam": "cam", "sensor": "rack", "pdu": "pdu"}.get(self.kind, self.kind)
        leaf = {"cam": "status", "sensor": "env", "pdu": "power"}.get(self.kind, "state")
        self.topic = f"site/dc1/{section}/{self.number}/{leaf}"
        self.conn: TcpConn | None = None
        self.pid = rng.randrange(1, 60000)
        self.seq = 0

    def next_pid(self) -> int:
        """The next packet identifier (1-65535)."""
        self.pid = self.pid % 65535 + 1
        return self.pid

    def payload(self, rng: Random) -> bytes:
        """A JSON reading for this kind of device."""
        self.seq += 1
        if self.kind == "cam":
            fps, temp = rng.choice((15, 25, 30)), 38 + rng.random() * 8
            text = f'{{"seq":{self.seq},"online":true,"fps":{fps},"temp_c":{temp:.1f}}}'
        elif self.kind == "sensor":
            temp, hum = 21 + rng.random() * 6, 35 + rng.random() * 15
            text = f'{{"seq":{self.seq},"temp":{temp:.2f},"hum":{hum:.1f}}}'
        else:
            kw, amps = 2 + rng.random() * 3, 9 + rng.random() * 12
            text = f'{{"seq":{self.seq},"kw":{kw:.3f},"amps":{amps:.2f},"volts":230}}'
        return text.encode("ascii")


class MqttTraffic:
    """Produces MQTT frames, one client action (and its forwarding to the historian) per `step()`."""

    def __init__(self, site: Site, rng: Random, out: deque[bytes]) -> None:
        self.rng = rng
        self.out = out
        self.broker = site.role("broker")[0]
        self.clients = [_Client(h, rng) for h in site.role("iot")]
        self.historian = _Client(site.role("historian")[0], rng)
        self.historian.topic = "site/dc1/#"

    def step(self) -> None:
        """Append the frames of one client action."""
        rng = self.rng
        client = self.clients[rng.randrange(len(self.clients))]
        conn = client.conn
        out = self.out
        if conn is None:
            self._connect(client)
            return
        r = rng.random()
        if r < CLOSE_P:
            out.append(conn.c2s(b"\xe0\x00"))
            out.extend(conn.close(by_client=True))
            client.conn = None
        elif r < CLOSE_P + PING_P:
            out.append(conn.c2s(b"\xc0\x00"))
            out.append(conn.s2c(b"\xd0\x00"))
        else:
            payload = client.payload(rng)
            if rng.random() < QOS1_P:
                pid = client.next_pid()
                out.append(conn.c2s(publish_packet(client.topic, payload, 1, pid)))
                out.append(conn.s2c(b"\x40\x02" + pid.to_bytes(2, "big")))
                if rng.random() < ACK_P:
                    out.append(conn.ack_from_client())
            else:
                out.append(conn.c2s(publish_packet(client.topic, payload)))
                if rng.random() < ACK_P:
                    out.append(conn.ack_from_server())
            self._forward(client.topic, payload)

    def _connect(self, client: _Client) -> None:
        rng = self.rng
        out = self.out
        conn = client.conn = TcpConn(client.host, self.broker, PORT, rng)
        out.extend(conn.handshake())
        if client.kind == "cam":
            out.append(conn.c2s(connect_packet(client.host.name, 60, "camera", f"axis-{client.number:04d}")))
        else:
            out.append(conn.c2s(connect_packet(client.host.name, 30)))
        out.append(conn.s2c(b"\x20\x02\x00\x00"))
        if client.kind in ("cam", "historian"):
            pid = client.next_pid()
            topic = client.topic if client.kind == "historian" else client.topic.rsplit("/", 1)[0] + "/cmd"
            out.append(conn.c2s(subscribe_packet(pid, topic, 0 if client.kind == "historian" else 1)))
            out.append(
                conn.s2c(
                    b"\x90\x03"
                    + pid.to_bytes(2, "big")
                    + (b"\x00" if client.kind == "historian" else b"\x01")
                )
            )
        out.append(conn.ack_from_client())

    def _forward(self, topic: str, payload: bytes) -> None:
        hist = self.historian
        if hist.conn is None:
            self._connect(hist)
        conn = hist.conn
        assert conn is not None
        self.out.append(conn.s2c(publish_packet(topic, payload)))
        if self.rng.random() < ACK_P:
            self.out.append(conn.ack_from_client())
