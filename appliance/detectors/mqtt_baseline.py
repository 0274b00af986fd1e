"""MQTT against its baseline: wildcard subscriptions (`#`, `+`) a client never made, and publishes to a topic by a
client that never published it (a forged command on a camera's command topic, a spoofed sensor reading).

Topics are compared by their first `baseline.mqtt_topic_levels` levels. A client that subscribes to `#` gets every
retained value and every message of the site: the reconnaissance of an intruder holding a device's credentials.
"""

from __future__ import annotations

from typing import ClassVar

from appliance.baseline import Baseline, Novelty
from appliance.detectors.base import AlertContext, Note, notes_of
from appliance.detectors.learned import listing, raise_fact, uids_of
from appliance.model import Flow, ProtocolEvent


class MqttBaselineDetector:
    """Wildcard subscriptions and publishers never seen."""

    name: ClassVar[str] = "mqtt_baseline"
    notes: ClassVar[dict[str, Note]] = notes_of(
        Note("mqtt_wildcard_subscription", "high", 70, ("T0801", "T0861"),
             "a client subscribing with a wildcard filter (# or +) it never used in learning"),
        Note("mqtt_new_publisher", "high", 70, ("T0855", "T0856"),
             "a client publishing to a topic it never published in learning"),
    )  # fmt: skip
    event_protocols: ClassVar[frozenset[str]] = frozenset()  # ot_baseline hands it the events that broke facts
    wants_flows: ClassVar[bool] = False

    def __init__(self, baseline: Baseline) -> None:
        self.baseline = baseline

    def on_event(self, ev: ProtocolEvent, ctx: AlertContext) -> None:
        """Judge a SUBSCRIBE or PUBLISH (when called directly; in the pipeline ot_baseline calls `judge`)."""
        found = self.baseline.assess(ev)
        if found:
            self.judge(ev, found, ctx)

    def judge(self, ev: ProtocolEvent, found: tuple[Novelty, ...], ctx: AlertContext) -> None:
        """Judge a SUBSCRIBE or PUBLISH that broke learned facts (`found`)."""
        if ev.protocol != "mqtt" or ev.op not in ("subscribe", "publish"):
            return
        for n in found:
            if n.kind != "op" or len(n.key) < 5:
                continue
            if n.key[3] == "subscribe" and ("#" in str(n.key[4]) or "+" in str(n.key[4])):
                self._wildcard(ev, n, ctx)
            elif n.key[3] == "publish":
                self._publish(ev, n, ctx)

    def _wildcard(self, ev: ProtocolEvent, n: Novelty, ctx: AlertContext) -> None:
        b = self.baseline
        flt = str(n.key[4])
        known = b.topics_of(ev.src, "subscribe")
        raise_fact(
            self, ctx, b, "mqtt_wildcard_subscription", (n.kind, n.key), ev.ts, ev.src,
            key=f"{ev.src}/{ev.dst}/{flt}", assets=(ev.src, ev.dst), uids=uids_of(ev.uid),
            explanation=(f"{ev.src} subscribed to {flt!r} on the broker {ev.dst} (client id "
                         f"{ev.fields.get('client_id') or 'unknown'}): never seen in {b.learned_for()}; its "
                         f"subscriptions then: {listing(known)}"),
            details={"protocol": "mqtt", "op": "subscribe", "op_class": "read", "dst": ev.dst, "filter": flt,
                     "root_wildcard": flt == "#" or flt.startswith("#"), "learned": known},
        )  # fmt: skip

    def _publish(self, ev: ProtocolEvent, n: Novelty, ctx: AlertContext) -> None:
        b = self.baseline
        topic = str(n.key[4])
        known = b.publishers_of(topic)
        mine = b.topics_of(ev.src, "publish")
        raise_fact(
            self, ctx, b, "mqtt_new_publisher", (n.kind, n.key), ev.ts, ev.src, key=f"{ev.src}/{topic}",
            assets=(ev.src, ev.dst), uids=uids_of(ev.uid),
            explanation=(f"{ev.src} published to {topic!r} on {ev.dst}, a topic it never published in "
                         f"{b.learned_for()}; the topic's publishers then: {listing(known)}; its own topics: "
                         f"{listing(mine)}"),
            details={"protocol": "mqtt", "op": "publish", "op_class": "write", "dst": ev.dst, "topic": topic,
                     "qos": ev.fields.get("qos"), "retain": ev.fields.get("retain"), "learned": known},
        )  # fmt: skip

    def on_flow(self, flow: Flow, ctx: AlertContext) -> None:
        """Not used: judged on events."""

    def on_tick(self, now: float, ctx: AlertContext) -> None:
        """No windows to close."""
