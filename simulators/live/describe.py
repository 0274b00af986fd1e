"""What runs where in a live site, one line each (LiveSite.describe, `python -m simulators.live`)."""

from __future__ import annotations

from simulators.live.netns import Fabric
from simulators.live.plan import BACNET_PORT, SitePlan

__all__ = ["describe"]


def describe(plan: SitePlan, pids: dict[str, int], fabric: Fabric | None = None) -> list[str]:
    """The zones, devices and clients of a plan with their addresses and PIDs (and namespaces, if any)."""

    def pid(name: str) -> str:
        where = f" ns {fabric.hosts[name]}" if fabric is not None and name in fabric.hosts else ""
        return f"pid {pids.get(name, '-')}{where}"

    mode = "network namespaces" if plan.netns else "loopback"
    lines = [f"site {plan.profile} (seed {plan.seed}) on {mode}" + (f"; bridge br0 in ns {fabric.bridge_ns}"
                                                                       if fabric is not None else "")]  # fmt: skip
    used = {plan.zone_of(a).name for a in [*plan.devices, *plan.clients]}
    lines += [f"zone {z.name:<12} {z.cidr:<16} {z.domain}" for z in plan.zones if z.name in used]
    for p in plan.plcs:
        lines.append(f"PLC    {p.name:<15} {p.address}:{p.port:<6} {pid(p.name)}  FC43: {p.vendor} / "
                     f"{p.product_code} / {p.revision} (unit {','.join(map(str, p.units))}, {p.kind})")  # fmt: skip
    for d in plan.bms:
        lines.append(f"BACnet {d.name:<15} {d.address}:{BACNET_PORT} {pid(d.name)}  device,{d.instance}: "
                     f"{d.vendor_name} / {d.model} / {d.firmware} ({d.kind})")  # fmt: skip
    if plan.mqtt:
        lines.append(f"MQTT   {'mosquitto':<15} {plan.broker}:{plan.broker_port:<5} {pid('mosquitto')}")
        mqtt = ", ".join(f"{c.client_id}@{c.address} ({c.kind}, {c.base})" for c in plan.mqtt)
        lines.append(f"client {'mqtt-clients':<15} {pid('mqtt-clients')}: {mqtt}")
    for poller in plan.pollers:
        lines.append(f"client {poller.name:<15} {poller.address} {pid(poller.name)}: Modbus polls of "
                     f"{', '.join(poller.plcs)} every {poller.period:g} s")  # fmt: skip
    if plan.bms:
        lines.append(f"client {plan.frontend_name:<15} {plan.frontend}:{plan.frontend_port} {pid(plan.frontend_name)}"
                     f": Who-Is, ReadPropertyMultiple every {plan.bms_poll_seconds:g} s, COV subscriptions")
    lines += [f"left out: {note}" for note in plan.notes]
    return lines
