"""Reverse DNS sweeps: one source asking PTR records for many distinct addresses in a short time.

A workstation resolves a handful of addresses (a log viewer, `netstat -a`), and a busy server resolves its scattered
clients; a sweep walks a range (an attacker mapping hostnames before moving, `nmap -sL`, `dnsrecon -r`). Counts
distinct addresses asked by PTR queries per source in a sliding window of packet time, within one /24 (an IPv6
/64) and in all: a sweep is `distinct_addresses` in one range, or `distinct_total` anywhere (a sweep in random
order). Thresholds in `detectors.dns_sweep`.
"""

from __future__ import annotations

import ipaddress
from typing import ClassVar

from appliance.detectors.base import AlertContext, Note, notes_of
from appliance.detectors.settings import DnsSweepSettings
from appliance.detectors.windows import DistinctWindow
from appliance.model import Flow, ProtocolEvent

PTR = 12


def ptr_address(fields: dict[str, object]) -> str | None:
    """The address a PTR query asks about (the decoder's `ptr_address`), None for another query."""
    qtype = fields.get("qtype_name")
    if qtype != "PTR" and fields.get("qtype") != PTR:
        return None
    address = fields.get("ptr_address")
    return address if isinstance(address, str) and address else None


def address_range(address: str) -> str:
    """The /24 (IPv4) or /64 (IPv6, as text: the first four groups) an address is in, as a key."""
    if ":" in address:
        return ":".join(address.split(":")[:4])
    return address.rpartition(".")[0]


def covering_network(addresses: list[str]) -> str:
    """The smallest network that holds every address (`10.20.0.0/16`), or "" for mixed families."""
    try:
        ips = [ipaddress.ip_address(a) for a in addresses]
    except ValueError:
        return ""
    if not ips or len({ip.version for ip in ips}) != 1:
        return ""
    low, high = min(ips), max(ips)
    bits = low.max_prefixlen
    span = int(low) ^ int(high)
    prefix = bits - span.bit_length()
    return str(ipaddress.ip_network(f"{low}/{prefix}", strict=False))


class DnsSweepDetector:
    """Distinct PTR targets per querier in a sliding window."""

    name: ClassVar[str] = "dns_sweep"
    notes: ClassVar[dict[str, Note]] = notes_of(
        Note(
            "reverse_dns_sweep", "medium", 55, ("T0846", "T1018"),
            "PTR queries for many distinct addresses from one source (hostname discovery)",
        ),
    )  # fmt: skip
    event_protocols: ClassVar[frozenset[str]] = frozenset({"dns"})
    wants_flows: ClassVar[bool] = False

    def __init__(self, settings: DnsSweepSettings | None = None) -> None:
        s = self.settings = settings or DnsSweepSettings()
        self._asked = DistinctWindow(s.window, s.max_sources, max(s.distinct_addresses, s.distinct_total) * 2)
        self._ranges = DistinctWindow(s.window, s.max_sources, s.distinct_addresses * 2)  # (src, /24) -> addresses

    def on_event(self, ev: ProtocolEvent, ctx: AlertContext) -> None:
        """Count a PTR query by its sender; raise when the sender crosses the threshold."""
        if ev.kind != "request":
            return
        address = ptr_address(ev.fields)
        if address is None:
            return
        s = self.settings
        uid = ev.uid or ""
        n = self._asked.add(ev.src, address, ev.ts, uid)
        in_range = self._ranges.add((ev.src, address_range(address)), address, ev.ts, uid)
        if in_range >= s.distinct_addresses:
            asked = self._ranges.items((ev.src, address_range(address)))
            threshold = f"threshold {s.distinct_addresses} in one /24"
        elif n >= s.distinct_total:
            asked = self._asked.items(ev.src)
            threshold = f"threshold {s.distinct_total} in all"
        else:
            return
        if not ctx.fresh(self, "reverse_dns_sweep", ev.src, ev.ts):
            return
        network = covering_network(asked)
        where = f" in {network}" if network else ""
        ctx.alert(
            self, "reverse_dns_sweep", ev.ts, ev.src, assets=(ev.src, ev.dst), uids=self._asked.evidence(ev.src),
            explanation=(
                f"{ev.src} made PTR queries for {len(asked)} distinct addresses{where} within {s.window:g} s "
                f"({threshold}) to {ev.dst}"
            ),
            details={
                "addresses": len(asked), "network": network, "resolver": ev.dst, "first": asked[0], "last": asked[-1],
            },
        )  # fmt: skip

    def on_flow(self, flow: Flow, ctx: AlertContext) -> None:
        """Not used: the queries are events."""

    def on_tick(self, now: float, ctx: AlertContext) -> None:
        """Forget queriers whose queries all left the window."""
        self._asked.expire(now)
        self._ranges.expire(now)
