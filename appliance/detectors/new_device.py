"""New devices and devices that changed: a known address with a hostname or MAC never seen for it, a new address.

The attack this product exists for came in over the VPN with an employee's static address, from another machine:
the address was known, its NTLM workstation name was not. Names are compared by their first label, case-folded
(`LAPTOP-JSMITH` from NTLM is `laptop-jsmith.corp.example` from DNS). Reads the inventory as it was before the
event (the pipeline runs detectors first). A fresh sensor (empty inventory) stays quiet for `settle` seconds of
packet time while it learns the site; with an inventory loaded from the state directory it judges at once. A new
address is judged when it first initiates something (a request, a connection, a client connected to the broker),
before its flow has ended; an address first seen answering is not a new device (it was there, silent).
"""

from __future__ import annotations

from typing import ClassVar

from appliance.asset_record import normalize_mac
from appliance.detectors.base import AlertContext, Note, notes_of
from appliance.detectors.settings import NewDeviceSettings
from appliance.hostnames import HOSTNAME_PROTOCOLS, hostname_facts
from appliance.model import Flow, ProtocolEvent


def short_name(name: str) -> str:
    """The first label of a host name, case-folded."""
    return name.split(".", 1)[0].casefold()


# ICMP and ICMPv6 error types (their flows are keyed by type in orig_p): unreachable, source quench, redirect, time
# exceeded, parameter problem; ICMPv6 destination unreachable, packet too big, time exceeded, parameter problem
ICMP_ERRORS = frozenset({1, 2, 3, 4, 5, 11, 12})


class NewDeviceDetector:
    """Hostname and MAC changes of known addresses, and addresses never seen before."""

    name: ClassVar[str] = "new_device"
    notes: ClassVar[dict[str, Note]] = notes_of(
        Note(
            "hostname_change", "high", 65, ("T0859", "T1078"),
            "a known address used by a machine with another name (e.g. valid credentials used from another computer)",
        ),
        Note("new_mac", "medium", 50, ("T0849", "T1557.002"), "a known address seen with a MAC never seen for it"),
        Note("new_device", "low", 30, ("T1200",), "an address never seen before on the network"),
    )  # fmt: skip
    event_protocols: ClassVar[frozenset[str]] = HOSTNAME_PROTOCOLS
    all_events: ClassVar[bool] = True  # a new address is judged at its first event, before its flow has ended
    wants_flows: ClassVar[bool] = True

    def __init__(self, settings: NewDeviceSettings | None = None) -> None:
        self.settings = settings or NewDeviceSettings()
        self._judge_from: float | None = None  # packet time from which alerts are raised

    def _judging(self, ts: float, ctx: AlertContext) -> bool:
        if self._judge_from is None:
            inventory = ctx.inventory
            fresh = inventory is None or inventory.asset_count() == 0
            self._judge_from = ts + (self.settings.settle if fresh else 0.0)
        return ts >= self._judge_from and ctx.inventory is not None

    def on_event(self, ev: ProtocolEvent, ctx: AlertContext) -> None:
        """A sender never seen before; the names an event gives addresses against the names the inventory knows."""
        inventory = ctx.inventory
        if inventory is None:
            return
        src = ev.src
        if (src and (ev.kind == "request" or ev.op == "client_connected") and not inventory.knows(src)
                and self._judging(ev.ts, ctx) and inventory.could_be_asset(src)):  # an initiator, not a responder
            self._new(ev.ts, src, ev.dst, ev.uid, f"{ev.protocol} {ev.op}", ctx)
        if ev.protocol not in HOSTNAME_PROTOCOLS or not self._judging(ev.ts, ctx):
            return
        for ip, name, source in hostname_facts(ev):
            if source == "dns":  # a resolver's answer is a claim about an address, not the machine speaking
                continue
            known = inventory.hostnames_of(ip)
            if not known or short_name(name) in {short_name(k) for k in known}:
                continue
            ctx.alert(
                self, "hostname_change", ev.ts, ip, assets=(ip,), uids=(ev.uid,) if ev.uid else (),
                key=f"{ip}/{short_name(name)}",
                explanation=(
                    f"{ip} authenticated or asked for an address as {name!r} ({source}); the address was only ever "
                    f"seen as {', '.join(repr(k) for k in known[:5])}"
                ),
                details={"hostname": name, "source": source, "known": known[:16]},
            )  # fmt: skip

    def on_flow(self, flow: Flow, ctx: AlertContext) -> None:
        """A connection from an address never seen, or from a known address with another MAC."""
        if not self._judging(flow.ts, ctx):
            return
        inventory = ctx.inventory
        assert inventory is not None
        ip = flow.id.orig_h
        if flow.id.proto == "icmp" and flow.id.orig_p in ICMP_ERRORS:
            return  # an ICMP error answers something (a probe of a closed port): the host started nothing
        if not inventory.knows(ip):
            if inventory.could_be_asset(ip):
                self._new(flow.ts, ip, flow.id.resp_h, flow.id.uid, f"{flow.id.proto}/{flow.id.resp_p}", ctx,
                          flow.orig_mac)  # fmt: skip
            return
        mac = normalize_mac(flow.orig_mac)
        known_mac = inventory.mac_of(ip)
        if mac and known_mac and mac != known_mac and not inventory.is_gateway_mac(mac):
            ctx.alert(
                self, "new_mac", flow.ts, ip, uids=(flow.id.uid,), key=f"{ip}/{mac}",
                explanation=f"{ip} sent from MAC {mac}; the address was only ever seen with {known_mac}",
                details={"mac": mac, "known_mac": known_mac},
            )  # fmt: skip

    def _new(
        self, ts: float, ip: str, peer: str, uid: str | None, what: str, ctx: AlertContext, mac: str | None = None
    ) -> None:
        if not ctx.fresh(self, "new_device", ip, ts):
            return
        ctx.alert(
            self, "new_device", ts, ip, uids=(uid,) if uid else (),
            explanation=f"{ip} was never seen before; first seen sending {what} to {peer}",
            details={"mac": mac, "first_peer": peer, "first": what},
        )  # fmt: skip

    def on_tick(self, now: float, ctx: AlertContext) -> None:
        """No windows to close."""
