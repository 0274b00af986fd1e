"""Offline synthesis of a site's pattern of life: `simulate(profile, days, seed, out_dir, scenarios)`.

Writes OUT/site.pcap (N days from the profile's start), OUT/truth.json (the site's hosts, maintenance windows,
benign novelty and scenario steps with their packet-time spans, and the steps' after-effects: a BACnet controller
silenced by DeviceCommunicationControl or restarting, with the requests it left unanswered) and OUT/zones.yml (an
otwatch config with the profile's zones). The output is a pure function of the profile, the scenarios, the days
and the seed: one `random.Random(seed)` feeds every source, packet time starts at the profile's start, no wall
clock.

The simulation runs an hour at a time: events (novelty, scenario steps and their follow-ups) split the hour into
segments; each source generates the activities that start in a segment, events run at their time, and the
frames earlier than the hour's end are written.
"""

from __future__ import annotations

import functools
import heapq
import json
import time
from collections.abc import Callable
from pathlib import Path
from random import Random
from typing import Any

import yaml

from simulators.site.attacks import StepContext
from simulators.site.bms import BmsFrontEnd
from simulators.site.capture import SiteCapture
from simulators.site.iot import TOPIC_ROOT, MqttSite
from simulators.site.it import ItSite
from simulators.site.models import site_models
from simulators.site.novelty import NOVELTY, World
from simulators.site.ot import OtPlant, ScadaPoller
from simulators.site.profile import SiteProfile, parse_hhmm
from simulators.site.scenario import Scenario, TruthRow, step_fn
from simulators.site.schedule import DAY, HOUR, Rhythm

__all__ = ["GENERATOR_VERSION", "build_world", "simulate"]

GENERATOR_VERSION = 2  # 2: bacpypes3 wire details, DCC and restart after-effects, truth "effects"
Event = tuple[float, int, Callable[[], None]]


def build_world(profile: SiteProfile, rng: Random, cap: SiteCapture) -> World:
    """Lay out the site and make every device model and traffic source."""
    t0 = profile.start_ts()
    models = site_models(profile, rng)
    rhythm, layout, plcs, devices, brng = models.rhythm, models.layout, models.plcs, models.devices, models.brng
    plant = OtPlant(plcs)
    scada = layout.role("scada")
    pollers = [ScadaPoller(h, plcs if i == 0 else plant.cooling(), profile.ot.poll_seconds * (1 if i == 0 else 6),
                           rhythm, Random(seed), t0)  # a standby HMI polls the cooling PLCs at a slower rate
               for i, (h, seed) in enumerate(zip(scada, models.poller_seeds, strict=True))]  # fmt: skip
    fe = BmsFrontEnd(layout.hosts[profile.bms.front_end.name], devices, layout.broadcast[profile.bms.zone], rhythm,
                     profile.bms.poll_seconds, profile.bms.operator_writes_per_day, brng, t0)  # fmt: skip
    iot = profile.iot
    mqtt = MqttSite(layout.hosts[iot.broker.name], rhythm, iot.telemetry_seconds, iot.snapshot_seconds,
                    Random(rng.getrandbits(64)))  # fmt: skip
    mqtt.add_subscriber(layout.hosts[iot.historian.name], "historian", [
        (f"{TOPIC_ROOT}/+/+/telemetry", 0), (f"{TOPIC_ROOT}/+/+/status", 0), (f"{TOPIC_ROOT}/gw/+/+/telemetry", 0)],
        t0 + 3.0)  # fmt: skip
    if iot.vms:
        mqtt.add_subscriber(
            layout.hosts[iot.vms.name],
            "vms",
            [(f"{TOPIC_ROOT}/cam/+/snapshot", 0), (f"{TOPIC_ROOT}/cam/+/status", 1)],
            t0 + 4.0,
        )
    for i, (kind, group) in enumerate((("camera", iot.cameras), ("sensor", iot.sensors), ("gateway", iot.gateways))):
        for k, n in enumerate(group):
            mqtt.add_device(layout.hosts[n.name], kind, t0 + 6.0 + i * 2 + k * 0.7)
    workers = profile.vpn.workers
    attacker = layout.attacker(workers[0].ip if workers else layout.first("ws").ip)
    chain = layout.chain_site(attacker)
    it = ItSite(layout, chain, rhythm, Random(rng.getrandbits(64)))
    ctx = StepContext(cap, layout, plant, devices, mqtt, attacker, chain, Random(rng.getrandbits(64)))
    return World(ctx, pollers, fe, mqtt, rhythm, it)


def _actor(world: World, scenario: Scenario) -> None:
    """Point the step context at the scenario's actor."""
    layout, ctx = world.ctx.layout, world.ctx
    who = scenario.actor
    if who.startswith("intruder@"):
        worker = who.split("@", 1)[1]
        host = layout.hosts.get(worker)
        if host is None:
            raise KeyError(f"scenario {scenario.name}: no VPN worker named {worker!r}")
        ctx.actor = layout.attacker(host.ip)
    elif who in layout.hosts:
        ctx.actor = layout.hosts[who]
    else:
        raise KeyError(f"scenario {scenario.name}: no actor {who!r} (a host name or intruder@WORKER)")
    ctx.chain.attacker = ctx.actor


class _Runner:
    """The event queue and the ground truth it fills."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.queue: list[Event] = []
        self.serial = 0
        self.truth: list[TruthRow] = []

    def at(self, t: float, fn: Callable[[], None]) -> None:
        self.serial += 1
        heapq.heappush(self.queue, (t, self.serial, fn))

    def scenario(self, sc: Scenario, start: float) -> None:
        for spec in sc.steps:
            t = start + spec.after * sc.pace
            self.at(t, functools.partial(self._step, sc, spec, t))

    def _step(self, sc: Scenario, spec: Any, t: float) -> None:
        _actor(self.world, sc)
        ctx = self.world.ctx
        fn, techniques = step_fn(spec.step)
        targets = [h for name in spec.targets for h in ctx.layout.resolve(name)]
        mark, effects = ctx.cap.mark(), len(ctx.effects)
        ctx.action = None
        follow = fn(ctx, t, sc.pace, targets)
        for effect in ctx.effects[effects:]:
            effect.scenario, effect.step = sc.name, spec.step
        span = ctx.cap.span(mark) or (t, t)
        row = TruthRow(
            sc.name,
            spec.step,
            techniques,
            ctx.actor.name,
            ctx.actor.ip,
            tuple(h.name for h in targets),
            span[0],
            span[1],
            " ".join((fn.__doc__ or "").split()),
            ctx.action,
        )
        self.truth.append(row)
        for when, later in follow:
            self.at(when, functools.partial(self._follow, row, later))

    def _follow(self, row: TruthRow, fn: Callable[[], None]) -> None:
        mark = self.world.ctx.cap.mark()
        fn()
        span = self.world.ctx.cap.span(mark)
        if span:
            row.t_start, row.t_end = min(row.t_start, span[0]), max(row.t_end, span[1])

    def novelty(self, kind: str, t: float, spec: Any) -> None:
        def run() -> None:
            mark = self.world.ctx.cap.mark()
            desc, targets = NOVELTY[kind](self.world, t, spec)
            span = self.world.ctx.cap.span(mark) or (t, t)
            actor = self.world.ctx.layout.role("eng")[0] if kind != "camera_onboarded" and \
                self.world.ctx.layout.role("eng") else self.world.ctx.layout.hosts[targets[0]]  # fmt: skip
            self.truth.append(TruthRow("benign", kind, (), actor.name, actor.ip, tuple(targets), min(span[0], t),
                                       max(span[1], t), desc))  # fmt: skip

        self.at(t, run)


def simulate(profile: SiteProfile, days: int, seed: int, out_dir: str | Path, scenarios: list[Scenario] | None = None,
             ) -> dict[str, Any]:  # fmt: skip
    """Write `days` days of the site's traffic with the scenarios injected; return a summary."""
    if days < 1:
        raise ValueError("days must be >= 1")
    began = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = Random(seed)
    start = profile.start_ts()
    cap = SiteCapture(Random(rng.getrandbits(64)), round(start * 1e6), out / "site.pcap")
    world = build_world(profile, rng, cap)
    rhythm = world.rhythm
    sources: list[Any] = [*world.pollers, world.front_end, world.mqtt, world.it]
    runner = _Runner(world)
    for n in profile.novelty:
        if n.day < days:
            runner.novelty(n.kind, start + n.day * DAY + parse_hhmm(n.time), n)
    for sc in scenarios or []:
        runner.scenario(sc, start + sc.offset())
    end = start + days * DAY
    t0 = start
    while t0 < end:
        t1 = t0 + HOUR
        a = t0
        while runner.queue and runner.queue[0][0] < t1:
            te, _, fn = heapq.heappop(runner.queue)
            te = max(te, a)
            for src in sources:
                src.run(cap, a, te)
            fn()
            a = te
        for src in sources:
            src.run(cap, a, t1)
        cap.flush(round(t1 * 1e6))
        t0 = t1
    frames = cap.close()
    seconds = time.perf_counter() - began
    truth = _truth(profile, world, rhythm, days, seed, runner.truth, cap, frames)
    (out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    zones = {"zones": [{"name": z.name, "cidrs": [z.cidr], "domain": z.domain, "purdue_level": z.purdue_level}
                       for z in profile.zones]}  # fmt: skip
    (out / "zones.yml").write_text(f"# otwatch config with the zones of profile {profile.name}\n"
                                   + yaml.safe_dump(zones, sort_keys=False))  # fmt: skip
    return {
        "pcap": str(out / "site.pcap"),
        "truth": str(out / "truth.json"),
        "frames": frames,
        "bytes": cap.bytes,
        "days": days,
        "seconds": seconds,
        "hosts": truth["hosts_by_role"],
        "steps": len(runner.truth),
    }


def _truth(profile: SiteProfile, world: World, rhythm: Rhythm, days: int, seed: int, rows: list[TruthRow],
           cap: SiteCapture, frames: int) -> dict[str, Any]:  # fmt: skip
    layout = world.ctx.layout
    windows = [w for d in range(days) for w in rhythm.maintenance(d)]
    return {
        "generator_version": GENERATOR_VERSION,
        "profile": profile.name,
        "seed": seed,
        "days": days,
        "frames": frames,
        "first_ts": (cap.first_us or 0) / 1e6,
        "last_ts": cap.last_us / 1e6,
        "hosts_by_role": {r: len(hs) for r, hs in sorted(layout.by_role.items())},
        "hosts": [
            {"name": h.name, "ip": h.ip, "mac": h.mac.hex(":"), "role": h.role, "zone": layout.zone_of[n]}
            for n, h in layout.hosts.items()
        ],
        "maintenance_windows": [{"start": a, "end": b} for a, b in windows],
        "shift_changes": [t for d in range(days) for t in rhythm.shifts(d)],
        "steps": [r.to_dict() for r in sorted(rows, key=lambda r: (r.t_start, r.step))],
        "effects": [e.to_dict() for e in sorted(world.ctx.effects, key=lambda e: e.t_start)],
    }
