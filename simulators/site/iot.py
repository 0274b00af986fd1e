"""The IoT zone over MQTT 3.1.1: cameras, sensors and gateways publishing to one broker, and its subscribers.

Every device connects with a last will (`.../status` = {"online":false}, retained, QoS 1), publishes a retained
status {"online":true}, then JSON telemetry every `telemetry_seconds` (QoS 0); cameras also subscribe to their
command topic (QoS 1) and publish JPEG snapshots every `snapshot_seconds`. A gateway publishes for the devices
behind it and pings the broker. The historian subscribes to `site/dc1/+/+/telemetry` and `.../status`; the video
management server (VMS) to the cameras' snapshots, and it sends a camera command at each shift change. Once a day a
sensor drops off (its TCP session is reset): the broker publishes its will, and it reconnects. The broker keeps
retained messages and delivers them to a new subscription whose filter matches.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from random import Random

from simulators.mixgen.mqtt import remaining_length
from simulators.mixgen.wire import ACK, RST, Host, TcpConn
from simulators.site.capture import SiteCapture
from simulators.site.schedule import DAY, Rhythm

__all__ = ["JPEG_HEAD", "TOPIC_ROOT", "Client", "MqttSite", "connect", "matches", "publish", "subscribe"]

PORT = 1883
TOPIC_ROOT = "site/dc1"
JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"


def _utf8(text: str) -> bytes:
    raw = text.encode("utf-8")
    return len(raw).to_bytes(2, "big") + raw


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + remaining_length(len(body)) + body


def connect(client_id: str, keepalive: int, user: str = "", password: str = "", will: tuple[str, bytes] | None = None,
            ) -> bytes:  # fmt: skip
    """A CONNECT (level 4, clean session), with a retained QoS 1 will and credentials if given."""
    flags = 0x02 | (0xC0 if user else 0) | (0x04 | 0x08 | 0x20 if will else 0)
    body = _utf8("MQTT") + bytes([4, flags]) + keepalive.to_bytes(2, "big") + _utf8(client_id)
    if will:
        body += _utf8(will[0]) + len(will[1]).to_bytes(2, "big") + will[1]
    if user:
        body += _utf8(user) + _utf8(password)
    return _packet(0x10, body)


def publish(topic: str, payload: bytes, qos: int = 0, pid: int = 0, retain: bool = False) -> bytes:
    """A PUBLISH."""
    body = _utf8(topic) + (pid.to_bytes(2, "big") if qos else b"") + payload
    return _packet(0x30 | (qos << 1) | (1 if retain else 0), body)


def subscribe(pid: int, filters: list[tuple[str, int]]) -> bytes:
    """A SUBSCRIBE to topic filters with their QoS."""
    return _packet(0x82, pid.to_bytes(2, "big") + b"".join(_utf8(f) + bytes([q]) for f, q in filters))


def matches(flt: str, topic: str) -> bool:
    """Whether an MQTT topic filter (with + and #) matches a topic."""
    fp, tp = flt.split("/"), topic.split("/")
    for i, part in enumerate(fp):
        if part == "#":
            return not topic.startswith("$")
        if i >= len(tp) or (part != "+" and part != tp[i]):
            return False
    return len(fp) == len(tp)


class Client:
    """One MQTT client and its session with the broker."""

    def __init__(self, host: Host, kind: str, number: int, rng: Random) -> None:
        self.host, self.kind, self.number, self.rng = host, kind, number, rng
        self.base = f"{TOPIC_ROOT}/{ {'camera': 'cam', 'sensor': 'env', 'gateway': 'gw'}.get(kind, kind) }/{number:02d}"
        self.conn: TcpConn | None = None
        self.pid = rng.randrange(1, 60000)
        self.filters: list[tuple[str, int]] = []
        self.seq = 0
        self.due = 0.0
        self.snap_due = 0.0
        self.ping_due = 0.0

    def next_pid(self) -> int:
        """The next packet identifier (1-65535)."""
        self.pid = self.pid % 65535 + 1
        return self.pid

    def telemetry(self, t: float) -> list[tuple[str, bytes]]:
        """(topic, JSON payload) of one telemetry round."""
        rng = self.rng
        self.seq += 1
        if self.kind == "camera":
            text = (f'{{"seq":{self.seq},"fps":{rng.choice((15, 25, 30))},"temp_c":{38 + rng.random() * 6:.1f},'
                    f'"motion":{"true" if rng.random() < 0.1 else "false"}}}')  # fmt: skip
            return [(self.base + "/telemetry", text.encode())]
        if self.kind == "sensor":
            text = (f'{{"seq":{self.seq},"temp":{21 + rng.random() * 5:.2f},"hum":{38 + rng.random() * 12:.1f},'
                    f'"leak":false}}')  # fmt: skip
            return [(self.base + "/telemetry", text.encode())]
        return [(f"{self.base}/pdu-{k}/telemetry",
                 f'{{"seq":{self.seq},"kw":{2 + rng.random() * 3:.3f},"amps":{9 + rng.random() * 12:.2f}}}'.encode())
                for k in range(1, 4)]  # fmt: skip


class MqttSite:
    """The broker and all its clients."""

    def __init__(self, broker: Host, rhythm: Rhythm, period: float, snap_period: float, rng: Random) -> None:
        self.broker, self.rhythm, self.period, self.snap_period, self.rng = broker, rhythm, period, snap_period, rng
        self.devices: list[Client] = []
        self.subscribers: list[Client] = []
        self.retained: dict[str, bytes] = {}
        self.pending: list[tuple[float, Client]] = []  # (time, client) connects to make
        self.drop_plan: dict[int, tuple[float, Client]] = {}
        self.vms: Client | None = None
        self.extra: list[Client] = []  # other sessions the broker serves (a scenario's attacker)
        self.last: dict[TcpConn, int] = {}  # the last frame's time (us) of each session

    def add_device(self, host: Host, kind: str, t: float) -> Client:
        """A device that connects at `t`."""
        c = Client(host, kind, sum(d.kind == kind for d in self.devices) + 1, self.rng)
        self.devices.append(c)
        self.pending.append((t, c))
        return c

    def add_subscriber(self, host: Host, kind: str, filters: list[tuple[str, int]], t: float) -> Client:
        """A subscriber (historian, VMS) that connects at `t`."""
        c = Client(host, kind, 1, self.rng)
        c.filters = filters
        self.subscribers.append(c)
        self.pending.append((t, c))
        if kind == "vms":
            self.vms = c
        return c

    def run(self, cap: SiteCapture, t0: float, t1: float) -> None:
        """Everything the MQTT clients do in [t0, t1), in time order."""
        acts: list[tuple[float, int, str, Client]] = []
        serial = [0]

        def act(t: float, what: str, c: Client) -> None:
            serial[0] += 1
            heapq.heappush(acts, (t, serial[0], what, c))

        for t, c in self.pending:
            if t < t1:
                act(max(t, t0), "connect", c)
        self.pending = [p for p in self.pending if p[0] >= t1]
        self._plan_day(self.rhythm.day_of(t0), t0, t1, act)
        for c in [*self.devices, *self.subscribers]:
            if c.conn is not None:
                self._plan_client(c, t0, t1, act)
        while acts:
            t, _, what, c = heapq.heappop(acts)
            if what == "connect":
                self._connect(cap, c, t)
                self._plan_client(c, t, t1, act)
                continue
            if c.conn is None:
                continue
            cap.at(t)
            if what == "telemetry":
                for topic, payload in c.telemetry(t):
                    self.client_publish(cap, c, topic, payload)
            elif what == "snapshot":
                jpeg = JPEG_HEAD + self.rng.randbytes(self.rng.randrange(6000, 24000)) + b"\xff\xd9"
                self.client_publish(cap, c, c.base + "/snapshot", jpeg)
            elif what == "ping":
                self.send(cap, c.conn, True, b"\xc0\x00", ack=False)
                self.send(cap, c.conn, False, b"\xd0\x00", ack=False)
            elif what == "drop":
                self._drop(cap, c, t)
            elif what == "command" and self.vms is not None and self.vms.conn is not None:
                self.client_publish(cap, self.vms, c.base + "/cmd", b'{"cmd":"preset","id":1}', 1)

    def _plan_client(self, c: Client, t0: float, t1: float, act: Callable[[float, str, Client], None]) -> None:
        if c in self.devices:
            while c.due < t1:
                t, c.due = c.due, c.due + self.period * (2 if c.kind == "gateway" else 1)
                if t >= t0:
                    act(t, "telemetry", c)
            while c.kind == "camera" and c.snap_due < t1:
                t, c.snap_due = c.snap_due, c.snap_due + self.snap_period
                if t >= t0:
                    act(t, "snapshot", c)
        if c.kind in ("gateway", "historian", "vms"):
            while c.ping_due < t1:
                t, c.ping_due = c.ping_due, c.ping_due + 45.0
                if t >= t0:
                    act(t, "ping", c)

    def _plan_day(self, day: int, t0: float, t1: float, act: Callable[[float, str, Client], None]) -> None:
        if day not in self.drop_plan:
            sensors = [c for c in self.devices if c.kind == "sensor"]
            if sensors:
                when = self.rhythm.day_start(day) + self.rng.random() * DAY
                self.drop_plan[day] = (when, sensors[self.rng.randrange(len(sensors))])
        plan = self.drop_plan.get(day)
        if plan and t0 <= plan[0] < t1:
            act(plan[0], "drop", plan[1])
        cams = [c for c in self.devices if c.kind == "camera"]
        for s in self.rhythm.shifts(day):
            if t0 <= s + 30.0 < t1 and cams:
                act(s + 30.0, "command", cams[int(s) % len(cams)])

    def send(self, cap: SiteCapture, conn: TcpConn, from_client: bool, payload: bytes, ack: bool = True) -> None:
        """A message on a session, never earlier than the session's last frame (then the peer's ACK, if `ack`)."""
        last = self.last.get(conn, 0)
        if cap.now_us < last:
            cap.now_us = last
        if ack:
            cap.send(conn, from_client, payload)
        else:
            cap.add(conn.c2s(payload) if from_client else conn.s2c(payload))
        self.last[conn] = cap.now_us

    def _connect(self, cap: SiteCapture, c: Client, t: float) -> None:
        cap.at(t)
        conn = c.conn = TcpConn(c.host, self.broker, PORT, cap.rng)
        cap.add(*conn.handshake())
        c.ping_due = t + 45.0
        status = c.base + "/status"
        if c.kind in ("historian", "vms"):
            self.send(cap, conn, True, connect(f"{c.kind}-{c.host.name}", 60, c.kind, "s3cr3t-" + c.kind))
        elif c.kind == "camera":
            self.send(cap, conn, True, connect(c.host.name, 60, "camera", f"axis-{c.number:04d}",
                                         (status, b'{"online":false}')))  # fmt: skip
        else:
            self.send(cap, conn, True, connect(c.host.name, int(self.period), will=(status, b'{"online":false}')))
        self.send(cap, conn, False, b"\x20\x02\x00\x00")
        if c.kind == "camera":
            c.filters = [(c.base + "/cmd", 1)]
        if c.filters:
            self.client_subscribe(cap, c, c.filters)
        if c.kind not in ("historian", "vms"):
            online = f'{{"online":true,"ip":"{c.host.ip}","fw":"{"10.12.182" if c.kind == "camera" else "2.3.1"}"}}'
            self.client_publish(cap, c, status, online.encode(), qos=1, retain=True)
            c.due = cap.now + self.rng.random() * self.period
            c.snap_due = cap.now + self.rng.random() * self.snap_period

    def client_subscribe(self, cap: SiteCapture, c: Client, filters: list[tuple[str, int]]) -> None:
        """A SUBSCRIBE, its SUBACK, and the retained messages its filters match."""
        assert c.conn is not None
        pid = c.next_pid()
        self.send(cap, c.conn, True, subscribe(pid, filters))
        suback = bytes([0x90, 2 + len(filters)]) + pid.to_bytes(2, "big") + bytes(q for _, q in filters)
        self.send(cap, c.conn, False, suback)
        for topic, payload in sorted(self.retained.items()):
            if any(matches(f, topic) for f, _ in filters):
                self.send(cap, c.conn, False, publish(topic, payload, retain=True))

    def client_publish(self, cap: SiteCapture, c: Client, topic: str, payload: bytes, qos: int = 0,
                       retain: bool = False) -> None:  # fmt: skip
        """Any client's PUBLISH, forwarded by the broker to every other client subscribed to a matching filter."""
        assert c.conn is not None
        if qos:
            pid = c.next_pid()
            self.send(cap, c.conn, True, publish(topic, payload, qos, pid, retain))
            self.send(cap, c.conn, False, b"\x40\x02" + pid.to_bytes(2, "big"))
        elif len(payload) > 1000 or self.rng.random() < 0.5:
            self.send(cap, c.conn, True, publish(topic, payload, 0, 0, retain))
        else:
            self.send(cap, c.conn, True, publish(topic, payload, 0, 0, retain), ack=False)
        if retain:
            self.retained[topic] = payload
        self.forward(cap, topic, payload, qos, exclude=c)

    def forward(self, cap: SiteCapture, topic: str, payload: bytes, qos: int, exclude: Client | None = None) -> None:
        """The broker delivers a message to every connected client with a matching subscription."""
        for s in [*self.subscribers, *self.devices, *self.extra]:
            if s is exclude or s.conn is None:
                continue
            granted = max((q for f, q in s.filters if matches(f, topic)), default=-1)
            if granted < 0:
                continue
            q = min(qos, granted)
            if q:
                pid = s.next_pid()
                self.send(cap, s.conn, False, publish(topic, payload, 1, pid))
                self.send(cap, s.conn, True, b"\x40\x02" + pid.to_bytes(2, "big"))
            else:
                self.send(cap, s.conn, False, publish(topic, payload))

    def _drop(self, cap: SiteCapture, c: Client, t: float) -> None:
        """The device's session dies (it resets the TCP session); the broker publishes its will; it reconnects."""
        assert c.conn is not None
        cap.at(max(t, self.last.pop(c.conn, 0) / 1e6))
        cap.add(c.conn._frame(True, RST | ACK, b""))  # the device is gone
        c.conn = None
        status = c.base + "/status"
        self.retained[status] = b'{"online":false}'
        cap.wait(0.5)
        self.forward(cap, status, b'{"online":false}', 1)
        self.pending.append((t + 90.0, c))
