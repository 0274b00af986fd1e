"""A live site from a site profile: the offline synthesis's device models (simulators.site.models), rendered live.

    plan_from_profile(load_profile("simulators/profiles/site-small.yml"), seed=1)

The hosts, PLC identities (FC43 vendor, product code, revision; unit ids), PLC process streams, BACnet controllers
(instance, vendor, model, firmware, objects), MQTT clients and topics, and SCADA pollers are those `otwatch simulate
--seed S` makes for the same profile and seed. Addresses: on loopback, zone i of the profile (in the order of its
`zones:` list) becomes 127.(10+i).0.0/16 and each host keeps its offset in its zone (10.50.1.10 in the fifth zone,
10.50.1.0/24, becomes 127.14.0.10); in network namespaces (`netns=True`) the profile's own addresses are used.

A live site may be a subset: at most `max_per_kind` PLCs, BACnet controllers, cameras, sensors, gateways and SCADA
pollers (the profile's `live.max_per_kind`, or the argument), or exact `counts` per kind (`KINDS`; a count of 0 for
`historian` or `vms` leaves that subscriber out). Within a kind the
sub-kinds are taken in turn (a cooling PLC, a power PLC, another cooling PLC, ...; a CRAH, a CRAC, a chiller, ...),
keeping the profile's order.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from simulators.live.plan import (
    BACNET_PORT,
    BROADCAST,
    FRONTEND_PORT,
    MQTT_PORT,
    PLC_MODELS,
    BmsDevice,
    MqttClient,
    Plc,
    Poller,
    SitePlan,
    Zone,
)
from simulators.site.models import live_models, plc_vendor_index
from simulators.site.profile import SiteProfile

__all__ = ["KINDS", "PlanError", "loopback_zones", "plan_from_profile"]

KINDS = ("plc", "bacnet", "camera", "sensor", "gateway", "scada", "historian", "vms")
FIRST_OCTET = 10  # zone i -> 127.(FIRST_OCTET + i).0.0/16
T = TypeVar("T")


class PlanError(ValueError):
    """A profile that cannot be rendered live (too many zones, a zone too large for its loopback /16, a bad count)."""


def loopback_zones(profile: SiteProfile) -> dict[str, ipaddress.IPv4Network]:
    """Zone name -> its loopback subnet (zone i -> 127.(10+i).0.0/16)."""
    if len(profile.zones) > 255 - FIRST_OCTET:
        raise PlanError(f"zones: {len(profile.zones)} zones, at most {255 - FIRST_OCTET} fit on loopback")
    return {z.name: ipaddress.IPv4Network(f"127.{FIRST_OCTET + i}.0.0/16") for i, z in enumerate(profile.zones)}


def _mapper(profile: SiteProfile, netns: bool) -> Callable[[str, str], str]:
    """(zone, profile address) -> live address."""
    nets = {z.name: ipaddress.IPv4Network(z.cidr, strict=False) for z in profile.zones}
    lo = loopback_zones(profile)

    def live(zone: str, ip: str) -> str:
        if netns:
            return ip
        offset = int(ipaddress.IPv4Address(ip)) - int(nets[zone].network_address)
        if not 0 < offset < 65535:
            raise PlanError(f"{ip} in zone {zone} ({nets[zone]}): its offset {offset} does not fit a loopback /16")
        return str(lo[zone].network_address + offset)

    return live


def _pick(items: Sequence[T], sub_kind: Callable[[T], str], limit: int | None) -> list[T]:
    """At most `limit` items, taking the sub-kinds in turn, in the items' order."""
    if limit is None or limit >= len(items):
        return list(items)
    seen: dict[str, int] = {}
    rank = []
    for i, item in enumerate(items):
        k = sub_kind(item)
        rank.append((seen.get(k, 0), i))
        seen[k] = seen.get(k, 0) + 1
    chosen = sorted(i for _r, i in sorted(rank)[:limit])
    return [items[i] for i in chosen]


def _limits(profile: SiteProfile, max_per_kind: int | None, counts: Mapping[str, int] | None) -> dict[str, int | None]:
    unknown = sorted(set(counts or {}) - set(KINDS))
    if unknown:
        raise PlanError(f"counts: unknown kind(s) {unknown} (known: {', '.join(KINDS)})")
    if max_per_kind is not None and max_per_kind < 1:
        raise PlanError(f"max_per_kind: {max_per_kind} (at least 1)")
    limit = max_per_kind if max_per_kind is not None else profile.live.max_per_kind
    out: dict[str, int | None] = {k: limit for k in KINDS}
    for k, n in (counts or {}).items():
        if n < 0:
            raise PlanError(f"counts.{k}: {n} (at least 0)")
        out[k] = n
    return out


def plan_from_profile(profile: SiteProfile, seed: int = 1, *, max_per_kind: int | None = None,
                      counts: Mapping[str, int] | None = None, netns: bool = False, broker_port: int = MQTT_PORT,
                      poll_seconds: float | None = None, bms_poll_seconds: float | None = None,
                      telemetry_seconds: float | None = None, write_every: int | None = None,
                      command_every: int | None = None, identify_every: int | None = None,
                      snapshot_every: int | None = None) -> SitePlan:  # fmt: skip
    """The live site of a profile for a seed (see the module's docstring); periods default to the profile's live
    section, then to its own periods."""
    models = live_models(profile, seed)
    layout, live = models.layout, _mapper(profile, netns)
    limits = _limits(profile, max_per_kind, counts)

    def addr(name: str) -> str:
        return live(layout.zone_of[name], layout.hosts[name].ip)

    plcs = [Plc(p.host.name, addr(p.host.name), p.vendor, p.product, p.revision, PLC_MODELS.get(p.vendor, p.product),
                kind=p.kind, vendor_index=plc_vendor_index(profile, i), seed=s, units=p.units)
            for i, (p, s) in enumerate(zip(models.plcs, models.plc_seeds, strict=True))]  # fmt: skip
    plcs = _pick(plcs, lambda p: p.kind, limits["plc"])
    devices = [BmsDevice(d.host.name, addr(d.host.name), d.instance, d.kind, d.vendor_id, d.vendor, d.model,
                         d.firmware, index=i, seed=s)
               for i, (d, s) in enumerate(zip(models.devices, models.device_seeds, strict=True))]  # fmt: skip
    devices = _pick(devices, lambda d: d.kind, limits["bacnet"])
    ops = profile.live
    period = poll_seconds or ops.poll_seconds or profile.ot.poll_seconds
    scada = layout.role("scada")
    cooling = tuple(p.name for p in plcs if p.kind == "cooling") or tuple(p.name for p in plcs)
    pollers = [Poller(h.name, addr(h.name), period * (1 if i == 0 else 6), tuple(p.name for p in plcs) if i == 0
                      else cooling, seed=s)
               for i, (h, s) in enumerate(zip(scada, models.poller_seeds, strict=True))]  # fmt: skip
    pollers = _pick(pollers, lambda _p: "scada", limits["scada"]) if plcs else []
    mqtt = _mqtt(profile, addr, limits)
    iot = profile.iot
    bms_zone = ipaddress.IPv4Network(profile.zone(profile.bms.zone).cidr, strict=False)
    telemetry = telemetry_seconds or ops.telemetry_seconds or iot.telemetry_seconds
    return SitePlan(
        plcs=tuple(plcs),
        bms=tuple(devices),
        mqtt=tuple(mqtt),
        pollers=tuple(pollers),
        broker=addr(iot.broker.name),
        frontend=addr(profile.bms.front_end.name),
        frontend_name=profile.bms.front_end.name,
        frontend_port=BACNET_PORT if netns else FRONTEND_PORT,
        broadcast=str(bms_zone.broadcast_address) if netns else BROADCAST,
        zones=_zones(profile, netns),
        broker_port=broker_port,
        bms_poll_seconds=bms_poll_seconds or ops.bms_poll_seconds or profile.bms.poll_seconds,
        telemetry_seconds=telemetry,
        snapshot_every=snapshot_every or max(1, round(iot.snapshot_seconds / telemetry)),
        keepalive=max(5, int(iot.telemetry_seconds)),
        write_every=ops.write_every if write_every is None else write_every,
        command_every=ops.command_every if command_every is None else command_every,
        identify_every=ops.identify_every if identify_every is None else identify_every,
        restart_seconds=ops.restart_seconds,
        profile=profile.name,
        seed=seed,
        netns=netns,
        notes=_notes(profile, layout.role("scada"), plcs, devices, pollers, mqtt),
    )


def _mqtt(profile: SiteProfile, addr: Callable[[str], str], limits: Mapping[str, int | None]) -> list[MqttClient]:
    """The MQTT clients as offline: cameras (credentials camera/axis-NNNN), sensors, gateways, historian, VMS."""
    iot = profile.iot
    out: list[MqttClient] = []
    for kind, group in (("camera", iot.cameras), ("sensor", iot.sensors), ("gateway", iot.gateways)):
        for number, n in enumerate(group[: limits[kind] if limits[kind] is not None else len(group)], start=1):
            user, password = ("camera", f"axis-{number:04d}") if kind == "camera" else ("", "")
            out.append(MqttClient(n.name, addr(n.name), kind, number, user, password))
    if limits["historian"] != 0:
        out.append(MqttClient(f"historian-{iot.historian.name}", addr(iot.historian.name), "historian", 1,
                              "historian", "s3cr3t-historian"))  # fmt: skip
    if iot.vms is not None and limits["vms"] != 0:
        out.append(MqttClient(f"vms-{iot.vms.name}", addr(iot.vms.name), "vms", 1, "vms", "s3cr3t-vms"))
    return out


def _zones(profile: SiteProfile, netns: bool) -> tuple[Zone, ...]:
    lo = loopback_zones(profile)
    return tuple(Zone(z.name, z.cidr if netns else str(lo[z.name]), z.domain, z.purdue_level) for z in profile.zones)


def _notes(profile: SiteProfile, scada: Sequence[object], plcs: Sequence[Plc], devices: Sequence[BmsDevice],
           pollers: Sequence[Poller], mqtt: Sequence[MqttClient]) -> tuple[str, ...]:  # fmt: skip
    iot = profile.iot
    have = {"PLCs": (len(plcs), len(profile.ot.plcs)), "BACnet controllers": (len(devices), len(profile.bms.devices)),
            "SCADA pollers": (len(pollers), len(scada)),
            "cameras": (sum(c.kind == "camera" for c in mqtt), len(iot.cameras)),
            "sensors": (sum(c.kind == "sensor" for c in mqtt), len(iot.sensors)),
            "gateways": (sum(c.kind == "gateway" for c in mqtt), len(iot.gateways))}  # fmt: skip
    return tuple(f"{what}: {n} of {total}" for what, (n, total) in have.items() if n < total)

