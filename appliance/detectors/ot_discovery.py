"""OT discovery from a new source: Modbus unit-id sweeps, register scans (many distinct blocks read) and device
identification (FC43/14, FC17), BACnet Who-Is (broadcast or swept by unicast) and device walks (the object list, or
the names of many objects).

"New" means the baseline never saw that source do it (the SCADA server that reads each PLC's identity at every
reconnection is not discovering anything). The first discovery message of a new source raises at once (a scan is
seen within a second); the sweep counts (`baseline.discovery`: distinct unit ids, distinct (function, address)
blocks read, or distinct objects whose names are read, from one source to one device within `window` seconds)
raise when the source's messages are not learned facts.
One alert per source, device (or zone) and kind in the suppression interval.
"""

from __future__ import annotations

from typing import ClassVar

from appliance.baseline import Baseline, Novelty
from appliance.baseline.extract import named_objects
from appliance.baseline.settings import DiscoverySettings
from appliance.detectors.base import AlertContext, Note, notes_of
from appliance.detectors.learned import listing, raise_fact, uids_of
from appliance.detectors.windows import DistinctWindow
from appliance.model import Flow, ProtocolEvent

NOTE_OF = {
    "fc43": "modbus_device_identification", "fc17": "modbus_device_identification", "who_is": "bacnet_who_is_sweep",
    "who_has": "bacnet_who_is_sweep", "device_walk": "bacnet_device_walk",
}  # fmt: skip
WHAT = {"fc43": "read device identification (FC43/14)", "fc17": "report server id (FC17)",
        "who_is": "Who-Is", "who_has": "Who-Has", "device_walk": "a read of the object list"}  # fmt: skip


class OtDiscoveryDetector:
    """Discovery of OT devices by sources never seen discovering."""

    name: ClassVar[str] = "ot_discovery"
    notes: ClassVar[dict[str, Note]] = notes_of(
        Note("modbus_unit_sweep", "high", 70, ("T0846", "T0888"),
             "one source trying many Modbus unit ids of a device (finding what sits behind a gateway)"),
        Note("modbus_register_scan", "high", 65, ("T0861", "T0801"),
             "one source reading many distinct register or coil blocks of a device it was never seen reading"),
        Note("modbus_device_identification", "medium", 55, ("T0888",),
             "a source never seen asking for device identities asking a device's (FC43/14, FC17)"),
        Note("bacnet_who_is_sweep", "medium", 60, ("T0846",),
             "a source never seen sending Who-Is sending it (broadcast, or unicast to address after address)"),
        Note("bacnet_device_walk", "high", 65, ("T0888", "T0861"),
             "a source never seen doing so reading a BACnet device's object list or the names of many objects"),
    )  # fmt: skip
    event_protocols: ClassVar[frozenset[str]] = frozenset()  # ot_baseline hands it the events that broke facts
    wants_flows: ClassVar[bool] = False

    def __init__(self, baseline: Baseline, settings: DiscoverySettings | None = None) -> None:
        self.baseline = baseline
        self.settings = settings or DiscoverySettings()
        s = self.settings
        self.units = DistinctWindow(s.window, 10_000, 256)  # (src, dst) -> unit ids not learned on the edge
        self.objects = DistinctWindow(s.window, 10_000, 1024)  # (src, dst) -> objects whose names were read
        self.blocks = DistinctWindow(s.window, 10_000, 1024)  # (src, dst) -> (function, address) blocks read
        self.targets = DistinctWindow(s.window, 10_000, 1024)  # src -> addresses it sent Who-Is to

    def on_event(self, ev: ProtocolEvent, ctx: AlertContext) -> None:
        """Judge one Modbus or BACnet request (when called directly; in the pipeline ot_baseline calls `judge`)."""
        found = self.baseline.assess(ev)
        if found:
            self.judge(ev, found, ctx)

    def judge(self, ev: ProtocolEvent, found: tuple[Novelty, ...], ctx: AlertContext) -> None:
        """Judge a request that broke learned facts (`found`), of a source the baseline does not know doing it."""
        if ev.protocol not in ("modbus", "bacnet"):
            return
        uid = ev.uid or ""
        if ev.op in ("who_is", "who_has"):
            self.targets.add(ev.src, ev.dst, ev.ts, uid)
        for n in found:
            if n.kind == "discovery":
                self._first(ev, n, ctx)
        if ev.protocol == "modbus" and any(n.kind in ("op", "edge", "commander") for n in found):
            count = self.units.add((ev.src, ev.dst), ev.fields.get("unit"), ev.ts, uid)
            if count >= self.settings.unit_ids:
                self._sweep(ev, "unit_sweep", "modbus_unit_sweep", count, ctx)
            address = ev.fields.get("address")
            if address is not None and ev.op.startswith("read_"):
                count = self.blocks.add((ev.src, ev.dst), f"{ev.op}:{address}", ev.ts, uid)
                if count >= self.settings.register_blocks:
                    self._sweep(ev, "register_scan", "modbus_register_scan", count, ctx)
        objects = named_objects(ev)
        if objects:
            count = 0
            for obj in objects:
                count = self.objects.add((ev.src, ev.dst), obj, ev.ts, uid)
            if count >= self.settings.objects:
                self._sweep(ev, "device_walk", "bacnet_device_walk", count, ctx)

    def _first(self, ev: ProtocolEvent, n: Novelty, ctx: AlertContext) -> None:
        b = self.baseline
        what = str(n.key[1])
        note = NOTE_OF.get(what)
        if note is None:
            return
        zone = b.zone_of(ev.dst)
        where = zone.name if zone is not None and what in ("who_is", "who_has") else ev.dst
        sent_to = self.targets.items(ev.src)
        known = b.discovery_sources(what)
        raise_fact(
            self, ctx, b, note, (n.kind, n.key), ev.ts, ev.src, key=f"{ev.src}/{where}/{what}",
            assets=(ev.src, ev.dst), uids=uids_of(ev.uid),
            explanation=(f"{ev.src} sent {WHAT[what]} to {ev.dst}: never seen doing so in {b.learned_for()} "
                         f"(sources of {WHAT[what]} then: {listing(known)})"),
            details={"protocol": ev.protocol, "op": ev.op, "op_class": "discovery", "dst": ev.dst, "kind": what,
                     "targets": sent_to[:32], "learned": known},
        )  # fmt: skip

    def _sweep(self, ev: ProtocolEvent, what: str, note: str, count: int, ctx: AlertContext) -> None:
        b = self.baseline
        if b.facts.has("discovery", (ev.src, what)):  # accepted as normal by an operator
            return
        if what == "unit_sweep":
            seen = f"{count} unit ids ({', '.join(str(u) for u in self.units.items((ev.src, ev.dst))[:12])}...)"
            evidence = self.units.evidence((ev.src, ev.dst))
        elif what == "register_scan":
            seen = f"reading {count} distinct blocks ({', '.join(self.blocks.items((ev.src, ev.dst))[:6])}, ...)"
            evidence = self.blocks.evidence((ev.src, ev.dst))
        else:
            seen = f"the names of {count} objects"
            evidence = self.objects.evidence((ev.src, ev.dst))
        raise_fact(
            self, ctx, b, note, ("discovery", (ev.src, what)), ev.ts, ev.src, key=f"{ev.src}/{ev.dst}/{what}",
            assets=(ev.src, ev.dst), uids=evidence,
            explanation=(f"{ev.src} tried {seen} of {ev.dst} within {self.settings.window:g} s; in "
                         f"{b.learned_for()} it never spoke {ev.protocol} that way to {ev.dst}"),
            details={"protocol": ev.protocol, "op": ev.op, "op_class": "discovery", "dst": ev.dst, "kind": what,
                     "count": count},
        )  # fmt: skip

    def on_flow(self, flow: Flow, ctx: AlertContext) -> None:
        """Not used: judged on events."""

    def on_tick(self, now: float, ctx: AlertContext) -> None:
        """Forget sources whose windows are over."""
        self.units.expire(now)
        self.objects.expire(now)
        self.blocks.expire(now)
        self.targets.expire(now)
