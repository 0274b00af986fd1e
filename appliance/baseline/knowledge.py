"""What the baseline knows and how it judges a fact: learned, allowed through a peer, learnable now, or broken.

A fact is allowed when it was learned, or when it was learned for a peer of one of its devices: a member of the
device's peer group (same category, vendor, model, roles) standing in for it anywhere, or, for the commands of an
established writer (commander, operation, written point), a device of the same category in the same zone. MQTT
topics compare by shape (`site/dc1/cam/+/status`): a client may publish a topic of the shape of its own or its
peers' topics that no other client publishes. A fact that is not allowed is learnable while the site learns, or
while the device that owns it learns on its own: what is done to a device (being commanded, written) belongs to
the device; an edge or operation to either end; discovery, roles and publishing to the sender.
"""

from __future__ import annotations

from typing import Any

from appliance.baseline.extract import topic_shape
from appliance.baseline.facts import FactTable, Key, caps_by_kind, ranges
from appliance.baseline.modes import Modes
from appliance.baseline.peers import Peers
from appliance.baseline.settings import BaselineSettings

SRC, DST, EITHER = "src", "dst", "either"
# positions of a key where a peer may stand in for a device
PEER_POSITIONS: dict[str, tuple[int, ...]] = {
    "edge": (0, 1), "op": (0, 1), "commander": (0, 1), "point": (0,), "role": (0,), "discovery": (0,),
    "internet": (0,),
}  # fmt: skip
CATEGORY_POSITION = {"commander": 1, "op": 1, "point": 0}  # the commanded device's position
CATEGORY_PROTOCOLS = frozenset({"modbus", "bacnet"})


class Knowledge:
    """Learned facts, assets with their learning windows, peer groups and the site's mode."""

    def __init__(self, settings: BaselineSettings) -> None:
        self.settings = settings
        self.modes = Modes(settings.learning_days, settings.device_learning_days)
        self.facts = FactTable(caps_by_kind(settings.caps))
        self.peers = Peers()
        self.assets: dict[str, list[Any]] = {}  # ip -> [first seen, learning until, group inherited] (fact values)

    # ---- assets and learning windows ----

    def add_asset(self, ip: str, ts: float) -> None:
        """An address seen sending for the first time: it learns with the site, or on its own while protecting."""
        value: list[Any] = [ts, self.modes.device_window(ts), ""]
        if self.facts.add("asset", (ip,), value):
            self.assets[ip] = value
            if value[1] > ts:
                self.new_device(ts)

    def new_device(self, ts: float) -> None:
        """A device first seen while protecting (the core looks for its peer group soon)."""

    def device_learning(self, ip: str, ts: float) -> bool:
        """True while the device learns on its own (first seen while the site protected, window not over)."""
        value = self.assets.get(ip)
        return value is not None and value[1] > ts

    def learnable(self, rule: str, src: str, dst: str, ts: float) -> bool:
        """True when a fact owned by `rule` (src, dst or either end) is learned now rather than judged."""
        if self.modes.site_learning(ts):
            return True
        if rule == SRC:
            return self.device_learning(src, ts)
        if rule == DST:
            return self.device_learning(dst, ts)
        return self.device_learning(src, ts) or self.device_learning(dst, ts)

    def inherit(self, ip: str, ts: float, group: str) -> None:
        """The device joins a peer group: its own learning ends now and it is judged by the group's baseline."""
        value = self.assets.get(ip)
        if value is None:
            return
        value[1] = ts
        value[2] = group
        self.facts.add("asset", (ip,), value)

    # ---- judging a fact ----

    def allowed(self, kind: str, key: Key) -> bool:
        """True when the fact was learned, for the device or for a peer standing in for it."""
        table = self.facts.tables[kind]
        if key in table:
            return True
        return self.peer_fact(kind, key) is not None

    def peer_fact(self, kind: str, key: Key) -> Key | None:
        """The learned fact of a peer that allows this one (None when there is none)."""
        if not self.settings.peer_groups:
            return None
        if kind == "op" and len(key) >= 5 and key[2] == "mqtt" and key[3] in ("publish", "subscribe"):
            return self._mqtt_peer(key)
        table = self.facts.tables[kind]
        for pos in PEER_POSITIONS.get(kind, ()):
            for m in self.peers.group_peers(key[pos]):
                other = (*key[:pos], m, *key[pos + 1 :])
                if other in table:
                    return other
        at = CATEGORY_POSITION.get(kind)
        if at is None or not self.settings.category_peers:
            return None
        if (key[1] if kind == "point" else key[2]) in CATEGORY_PROTOCOLS:
            for m in self.peers.category_peers(key[at]):
                other = (*key[:at], m, *key[at + 1 :])
                if other in table:
                    return other
        return None

    def _mqtt_peer(self, key: Key) -> Key | None:
        """A topic (filter) of the shape of one the client or a peer of its group publishes (subscribes to) on the
        same broker; a topic another client publishes is never allowed this way (a camera publishing another
        camera's telemetry is spoofing; the video server commanding camera 02 as it commanded camera 01 is not)."""
        me, op, topic = key[0], key[3], str(key[4])
        shape = topic_shape(topic)
        members = {me, *self.peers.group_peers(me)}
        found = None
        for other in self.facts.tables["op"]:
            if len(other) < 5 or other[2] != "mqtt" or other[3] != op:
                continue
            if op == "publish" and other[4] == topic and other[0] != me:
                return None  # another client's topic
            if found is None and other[0] in members and other[1] == key[1] and topic_shape(str(other[4])) == shape:
                found = other
        return found

    def far_outside(self, value: float, learned: list[float]) -> bool:
        """True when `value` is far outside the learned [lowest, highest] range (ValueSettings)."""
        lo, hi = float(learned[0]), float(learned[1])
        s = self.settings.values
        margin = max(s.span_factor * (hi - lo), s.fraction * max(abs(lo), abs(hi)), s.minimum)
        return value < lo - margin or value > hi + margin

    # ---- what was learned, in words (for explanations; each scan is bounded by the caps) ----

    def learned_for(self) -> str:
        """How the baseline was learned: `2 days of learning`."""
        start, end = self.modes.site_start, self.modes.learn_end()
        if self.modes.override is not None and self.modes.override_ts is not None and start is not None:
            return f"{_span(self.modes.override_ts - start)} of learning (then {self.modes.override}, set by " \
                f"{self.modes.override_who})"  # fmt: skip
        if start is not None and end is not None:
            return f"{_span(end - start)} of learning"
        return "learning"

    def commanders_of(self, dst: str, protocol: str, limit: int = 8) -> list[str]:
        """The sources learned commanding a device in a protocol."""
        return [k[0] for k in self.facts.keys("commander") if k[1] == dst and k[2] == protocol][:limit]

    def sources_of(self, dst: str, protocol: str, limit: int = 8) -> list[str]:
        """The sources learned speaking a protocol to a device."""
        out = dict.fromkeys(k[0] for k in self.facts.keys("edge") if k[1] == dst and k[2] == protocol)
        return list(out)[:limit]

    def ops_on(self, src: str, dst: str, protocol: str, limit: int = 8) -> list[tuple[str, ...]]:
        """The operations learned on an edge."""
        return [tuple(k[3:]) for k in self.facts.keys("op") if k[0] == src and k[1] == dst and k[2] == protocol][:limit]

    def points_of(self, dst: str, protocol: str, space: str) -> list[str]:
        """The addresses of one space of a device learned written."""
        return [str(k[3]) for k in self.facts.keys("point") if k[0] == dst and k[1] == protocol and k[2] == space]

    def points_text(self, dst: str, protocol: str, space: str) -> str:
        """The written addresses of a space in words (`4, 12-15`, or `none`)."""
        addrs = self.points_of(dst, protocol, space)
        numbers = [int(a) for a in addrs if a.isdigit()]
        if numbers and len(numbers) == len(addrs):
            return ranges(numbers)
        return ", ".join(addrs[:12]) or "none"

    def topics_of(self, src: str, op: str, limit: int = 8) -> list[str]:
        """The MQTT topics (or filters) learned for a client and packet type."""
        return [str(k[4]) for k in self.facts.keys("op") if k[0] == src and k[2] == "mqtt" and k[3] == op
                and len(k) >= 5][:limit]  # fmt: skip

    def publishers_of(self, topic: str, limit: int = 8) -> list[str]:
        """The clients learned publishing a topic."""
        return [k[0] for k in self.facts.keys("op") if k[2] == "mqtt" and k[3] == "publish" and len(k) >= 5
                and k[4] == topic][:limit]  # fmt: skip

    def discovery_sources(self, what: str, limit: int = 8) -> list[str]:
        """The sources learned doing one kind of discovery."""
        return [k[0] for k in self.facts.keys("discovery") if k[1] == what][:limit]


def _span(seconds: float) -> str:
    """A duration in days (from one day), hours (from one hour), minutes (from two) or seconds: `14 days`,
    `2.5 hours`, `20 seconds`."""
    seconds = max(0.0, seconds)
    if seconds >= 86400.0:
        value, unit = seconds / 86400.0, "day"
    elif seconds >= 3600.0:
        value, unit = seconds / 3600.0, "hour"
    elif seconds >= 120.0:
        value, unit = seconds / 60.0, "minute"
    else:
        value, unit = seconds, "second"
    return f"{value:.3g} {unit}" + ("" if f"{value:.3g}" == "1" else "s")
