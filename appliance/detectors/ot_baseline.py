"""Learned OT behaviour: new edges into OT devices, rogue Modbus masters and BACnet writers, writes to points never
written, written values far outside their learned range, and operations never seen on an edge.

Judged only where the baseline protects (after the site's learning period, and for a device after its own window
or once it joined a peer group); each alert names the learned fact it broke ("10.8.0.23 was never a Modbus master
of 10.50.1.10; its masters in 14 days of learning: 10.50.1.14, 10.50.1.100"). An edge of a protocol without a
decoder (SSH or HTTP to a PLC) is judged on its finished connection. One alert per source, zone and protocol for
new edges (a sweep of a zone is one alert), per source and device for a rogue commander, per point for a value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

from appliance.baseline import Baseline, Novelty
from appliance.baseline.channels import op_text
from appliance.baseline.extract import COMMANDS, OT_PROTOCOLS
from appliance.detectors.base import AlertContext, Note, notes_of
from appliance.detectors.learned import listing, ops_listing, raise_fact, uids_of
from appliance.model import Flow, ProtocolEvent

MQTT_OWN = frozenset({"publish", "subscribe"})  # judged by the mqtt_baseline detector
# MQTT housekeeping: keep-alives and acknowledgements say nothing of what a client does (a sensor's first PINGREQ
# after a short learning period is not a new operation)
MQTT_HOUSEKEEPING = frozenset({"pingreq", "pingresp", "puback", "pubrec", "pubrel", "pubcomp", "disconnect", "auth"})
MQTT_NOT_HERE = MQTT_OWN | MQTT_HOUSEKEEPING


class Follower(Protocol):
    """A detector of learned behaviour that judges the events ot_baseline found breaking facts."""

    def judge(self, ev: ProtocolEvent, found: tuple[Novelty, ...], ctx: AlertContext) -> None:
        """Judge one request and the facts it broke."""
        ...


def _point_text(protocol: str, space: str, addr: str) -> str:
    if protocol == "modbus":
        unit, _, kind = space.partition(":")
        return f"{'coil' if kind == 'coil' else 'register'} {addr} (unit {unit})"
    return f"{space} {addr}"


class OtBaselineDetector:
    """Edges, commanders, operations, points and values never seen in learning."""

    name: ClassVar[str] = "ot_baseline"
    notes: ClassVar[dict[str, Note]] = notes_of(
        Note("new_ot_edge", "medium", 50, ("T0886", "T0869"),
             "a host speaking to an OT, BMS or IoT device in a way (protocol, port) never seen in learning"),
        Note("rogue_modbus_master", "high", 75, ("T0848", "T0855"),
             "a source never seen as a Modbus master of a device sending it requests"),
        Note("rogue_bacnet_writer", "high", 80, ("T0848", "T0855", "T0836"),
             "a source never seen writing to or commanding a BACnet device writing to or commanding it"),
        Note("new_write_point", "medium", 60, ("T0836", "T0855"),
             "a write to a register, coil or object property never written in learning"),
        Note("write_out_of_range", "high", 80, ("T0836", "T0831"),
             "a written value far outside the range learned for that point"),
        Note("new_operation", "low", 35, ("T0861", "T0888"),
             "a read or other operation never seen on an edge (a new function, unit id, object type)"),
        Note("new_command", "high", 70, ("T0855", "T0836"),
             "a write or command operation never seen on an edge"),
    )  # fmt: skip
    event_protocols: ClassVar[frozenset[str]] = OT_PROTOCOLS
    wants_flows: ClassVar[bool] = True

    def __init__(self, baseline: Baseline, followers: Sequence[Follower] = ()) -> None:
        self.baseline = baseline
        self.followers = tuple(followers)  # ot_discovery, mqtt_baseline: one assessment per event for all

    def on_event(self, ev: ProtocolEvent, ctx: AlertContext) -> None:
        """Judge one OT request against the learned facts; hand what it broke to the followers."""
        found = self.baseline.assess(ev)
        if not found:
            return
        self._judge(ev, found, ctx)
        for follower in self.followers:
            follower.judge(ev, found, ctx)

    def _judge(self, ev: ProtocolEvent, found: tuple[Novelty, ...], ctx: AlertContext) -> None:
        kinds = {n.kind for n in found}
        commander = next((n for n in found if n.kind == "commander"), None)
        if commander is not None:
            self._rogue(ev, commander, ctx)
        elif "edge" in kinds:
            edge = next(n for n in found if n.kind == "edge")
            self._edge(ev.ts, ev.src, ev.dst, edge, ctx, ev.uid, f"{ev.protocol} {ev.op}")
        points = [n for n in found if n.kind == "point"]
        command = False  # a new command on the edge carries the never-written points of the same write
        if commander is None and "edge" not in kinds and "discovery" not in kinds:
            for n in found:
                if n.kind == "op" and not (n.key[2] == "mqtt" and n.key[3] in MQTT_NOT_HERE):
                    command = self._operation(ev, n, points, ctx) or command
        if points and commander is None and not command:
            self._points(ev, points, ctx)
        for n in found:
            if n.kind == "value" and n.value is not None:
                self._value(ev, n, ctx)

    def _rogue(self, ev: ProtocolEvent, n: Novelty, ctx: AlertContext) -> None:
        b = self.baseline
        src, dst, protocol = ev.src, ev.dst, ev.protocol
        op_class = b.op_class(protocol, ev.op)
        if protocol == "modbus":
            note, role, who = "rogue_modbus_master", "a Modbus master", "masters"
        else:
            note, role, who = "rogue_bacnet_writer", "a writer or commander", "writers"
        known = b.commanders_of(dst, protocol)
        ops = op_text(protocol, (ev.op, *self._detail(ev)))
        raise_fact(
            self, ctx, b, note, (n.kind, n.key), ev.ts, src, key=f"{src}/{dst}/{protocol}", assets=(src, dst),
            uids=uids_of(ev.uid),
            explanation=(f"{src} sent {protocol} {ops} to {dst}: it was never {role} of {dst}; its {who} in "
                         f"{b.learned_for()}: {listing(known)}"),
            details={"protocol": protocol, "op": ev.op, "op_class": op_class, "dst": dst, "learned": known},
        )  # fmt: skip

    @staticmethod
    def _detail(ev: ProtocolEvent) -> tuple[str, ...]:
        f = ev.fields
        if ev.protocol == "modbus":
            return (str(f.get("unit", "")),)
        return tuple(str(f.get(k)) for k in ("object_type", "property") if f.get(k) is not None)

    def _edge(self, ts: float, src: str, dst: str, n: Novelty, ctx: AlertContext, uid: str | None, what: str) -> None:
        b = self.baseline
        protocol, port = str(n.key[2]), n.key[3]
        zone = b.zone_of(dst)
        where = zone.name if zone is not None else dst
        known = b.sources_of(dst, protocol)
        raise_fact(
            self, ctx, b, "new_ot_edge", (n.kind, n.key), ts, src, key=f"{src}/{where}/{protocol}",
            assets=(src, dst), uids=uids_of(uid),
            explanation=(f"{src} spoke {protocol} to {dst} (port {port}, {what}) for the first time: {dst}'s "
                         f"{protocol} peers in {b.learned_for()}: {listing(known)}"),
            details={"protocol": protocol, "port": port, "dst": dst, "first": what, "learned": known,
                     "dst_zone": getattr(zone, "name", None)},
        )  # fmt: skip

    def _operation(self, ev: ProtocolEvent, n: Novelty, points: list[Novelty], ctx: AlertContext) -> bool:
        """A new operation on a learned edge; True when it is a command (it then names the new points written).

        One new_command per source, device and protocol in the suppression interval: an engineer's write session
        (a register and a coil, then another) is one alert whose repeats are counted, not four."""
        b = self.baseline
        src, dst, protocol = ev.src, ev.dst, ev.protocol
        op = tuple(str(p) for p in n.key[3:])
        op_class = b.op_class(protocol, ev.op)
        command = op_class in COMMANDS
        note = "new_command" if command else "new_operation"
        learned = b.ops_on(src, dst, protocol)
        key = f"{src}/{dst}/{protocol}/commands" if command else f"{src}/{dst}/{'/'.join(op)}"
        written = ""
        details: dict[str, Any] = {"protocol": protocol, "op": ev.op, "op_class": op_class, "dst": dst,
                                   "operation": list(op)}  # fmt: skip
        if command and points:
            space = str(points[0].key[2])
            written = f", writing {_point_text(protocol, space, str(points[0].key[3]))} (never written before)"
            details.update(space=space, addresses=[str(p.key[3]) for p in points[:32]],
                           values=[p.value for p in points[:32]])  # fmt: skip
        raise_fact(
            self, ctx, b, note, (n.kind, n.key), ev.ts, src, key=key, assets=(src, dst), uids=uids_of(ev.uid),
            explanation=(f"{src} sent {protocol} {op_text(protocol, op)} to {dst}{written}, never seen on this edge "
                         f"in {b.learned_for()}; learned: {ops_listing(protocol, learned)}"),
            details=details,
        )  # fmt: skip
        return command

    def _points(self, ev: ProtocolEvent, points: list[Novelty], ctx: AlertContext) -> None:
        b = self.baseline
        src, dst, protocol = ev.src, ev.dst, ev.protocol
        first = points[0]
        space = str(first.key[2])
        addrs = [str(p.key[3]) for p in points]
        what = _point_text(protocol, space, addrs[0]) + (f" and {len(addrs) - 1} more" if len(addrs) > 1 else "")
        raise_fact(
            self, ctx, b, "new_write_point", (first.kind, first.key), ev.ts, src, key=f"{src}/{dst}/{space}",
            assets=(src, dst), uids=uids_of(ev.uid),
            explanation=(f"{src} wrote {what} of {dst} ({protocol} {ev.op}), never written in {b.learned_for()} "
                         f"(written then in {space}: {b.points_text(dst, protocol, space)})"),
            details={"protocol": protocol, "op": ev.op, "op_class": b.op_class(protocol, ev.op), "dst": dst,
                     "space": space, "addresses": addrs[:32], "values": [p.value for p in points[:32]]},
            remember={"value": first.value},
        )  # fmt: skip

    def _value(self, ev: ProtocolEvent, n: Novelty, ctx: AlertContext) -> None:
        b = self.baseline
        src, dst, protocol = ev.src, ev.dst, ev.protocol
        space, addr = str(n.key[2]), str(n.key[3])
        learned = b.facts.get("point", n.key) or [None, None, 0]
        lo, hi = learned[0], learned[1]
        count = int(learned[2]) if len(learned) > 2 else 0
        raise_fact(
            self, ctx, b, "write_out_of_range", (n.kind, n.key), ev.ts, src, key=f"{src}/{dst}/{space}/{addr}",
            assets=(src, dst), uids=uids_of(ev.uid),
            explanation=(f"{src} wrote {n.value:g} to {_point_text(protocol, space, addr)} of {dst}: far outside "
                         f"the {lo:g} to {hi:g} written in {b.learned_for()} ({count} writes)"
                         if lo is not None and hi is not None else
                         f"{src} wrote {n.value:g} to {_point_text(protocol, space, addr)} of {dst}, far outside "
                         f"the range of its peers"),
            details={"protocol": protocol, "op": ev.op, "op_class": b.op_class(protocol, ev.op), "dst": dst,
                     "space": space, "address": addr, "value": n.value, "learned_range": [lo, hi],
                     "priority": ev.fields.get("priority")},
            remember={"value": n.value},
        )  # fmt: skip

    def on_flow(self, flow: Flow, ctx: AlertContext) -> None:
        """An edge of an OT device, by a protocol without a decoder, never seen in learning."""
        found = self.baseline.assess_flow(flow)
        for n in found:
            if n.kind == "edge":
                fid = flow.id
                self._edge(flow.ts, fid.orig_h, fid.resp_h, n, ctx, fid.uid, f"{fid.proto}/{fid.resp_p}")

    def on_tick(self, now: float, ctx: AlertContext) -> None:
        """No windows to close."""
