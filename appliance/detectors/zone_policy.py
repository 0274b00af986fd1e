"""The site's zone policy: which zone pairs may speak which protocols (`zone_policy:` in the config).

Built only when the config has rules. Traffic from one configured zone to another that no rule allows raises
`policy_violation_into_ot` (high: into an OT, BMS or IoT zone) or `policy_violation`: decoded requests at once (a
Modbus read from the corporate network to a PLC zone is seen at its first message), connections of protocols otwatch
does not decode (`tcp/22`, `udp/161`) when their record is written. Traffic inside one zone, and to or from addresses
outside every zone (the internet: `ot_internet`), is not the policy's business. A rule allows `from` -> `to` (zone
names or "*") for its `protocols` (decoded protocol names, `tcp/PORT`, `udp/PORT`, or "*"). One alert per source,
destination zone and protocol in the suppression interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from appliance.detectors.base import AlertContext, Note, notes_of
from appliance.model import Flow, ProtocolEvent
from appliance.zones import Zone

if TYPE_CHECKING:
    from appliance.config import ZonePolicyRule

INTO_OT = frozenset({"OT", "BMS", "IoT"})


class ZonePolicyDetector:
    """Requests and connections between zones that the configured policy does not allow."""

    name: ClassVar[str] = "zone_policy"
    notes: ClassVar[dict[str, Note]] = notes_of(
        Note("policy_violation_into_ot", "high", 75, ("T0886",),
             "traffic into an OT, BMS or IoT zone that the site's zone policy does not allow for its protocol"),
        Note("policy_violation", "medium", 50, ("T0886",),
             "traffic between two other zones that the site's zone policy does not allow for its protocol"),
    )  # fmt: skip
    event_protocols: ClassVar[frozenset[str]] = frozenset()
    all_events: ClassVar[bool] = True
    wants_flows: ClassVar[bool] = True

    def __init__(self, rules: Sequence[ZonePolicyRule]) -> None:
        self.rules = tuple((r.from_zone, r.to_zone, frozenset(r.protocols)) for r in rules)
        self._allowed: dict[tuple[str, str, str], bool] = {}  # (from zone, to zone, protocol) -> allowed

    def allows(self, src_zone: str, dst_zone: str, protocol: str) -> bool:
        """Whether a rule allows `protocol` from one zone to the other."""
        key = (src_zone, dst_zone, protocol)
        known = self._allowed.get(key)
        if known is None:
            known = any(
                f in ("*", src_zone) and t in ("*", dst_zone) and ("*" in protos or protocol in protos)
                for f, t, protos in self.rules
            )
            self._allowed[key] = known
        return known

    def on_event(self, ev: ProtocolEvent, ctx: AlertContext) -> None:
        """Judge a decoded request."""
        if ev.kind == "request" and ev.src and ev.dst:
            self._judge(ev.ts, ev.src, ev.dst, ev.protocol, f"{ev.protocol} {ev.op}", ev.uid, ctx)

    def on_flow(self, flow: Flow, ctx: AlertContext) -> None:
        """Judge a connection no decoder recognised (decoded ones were judged by their requests)."""
        if flow.service:
            return
        fid = flow.id
        if fid.proto not in ("tcp", "udp"):
            return
        protocol = f"{fid.proto}/{fid.resp_p}"
        self._judge(flow.ts, fid.orig_h, fid.resp_h, protocol, protocol, fid.uid, ctx)

    def _judge(self, ts: float, src: str, dst: str, protocol: str, what: str, uid: str | None,
               ctx: AlertContext) -> None:  # fmt: skip
        inventory = ctx.inventory
        if inventory is None:
            return
        zs, zd = inventory.zone_of(src), inventory.zone_of(dst)
        if zs is None or zd is None or zs.name == zd.name or self.allows(zs.name, zd.name, protocol):
            return
        key = f"{src}/{zd.name}/{protocol}"
        note = "policy_violation_into_ot" if zd.domain in INTO_OT else "policy_violation"
        if not ctx.fresh(self, note, key, ts):
            return
        ctx.alert(
            self, note, ts, src, assets=(src, dst), uids=(uid,) if uid else (), key=key,
            explanation=(f"{src} ({_where(zs)}) sent {what} to {dst} ({_where(zd)}): the zone policy allows "
                         f"{_allowed_text(self.rules, zs.name, zd.name)}"),
            details={"protocol": protocol, "dst": dst, "src_zone": zs.name, "dst_zone": zd.name},
        )  # fmt: skip

    def on_tick(self, now: float, ctx: AlertContext) -> None:
        """No windows to close."""


def _where(zone: Zone) -> str:
    return f"{zone.name}, {zone.domain}"


def _allowed_text(rules: tuple[tuple[str, str, frozenset[str]], ...], src_zone: str, dst_zone: str) -> str:
    """What the rules allow from one zone to the other, in words."""
    allowed = sorted({p for f, t, protos in rules if f in ("*", src_zone) and t in ("*", dst_zone) for p in protos})
    return f"only {', '.join(allowed)} from {src_zone} to {dst_zone}" if allowed else (
        f"nothing from {src_zone} to {dst_zone}")
