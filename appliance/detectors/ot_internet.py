"""OT, BMS and IoT devices talking to the internet: a connection between a device of those zones (the baseline's
`internet_domains`) and a public (globally routable) address, never seen in learning.

A controller that reaches out to a public address is beaconing or being exfiltrated through; one answering a
public address is exposed. Connections seen in learning (a BMS vendor's cloud service) stay allowed. Judged on
finished connections (and unanswered attempts): one alert per device, public address and port.
"""

from __future__ import annotations

from typing import ClassVar

from appliance.baseline import Baseline
from appliance.detectors.base import AlertContext, Note, notes_of
from appliance.detectors.learned import raise_fact
from appliance.model import Flow, ProtocolEvent


class OtInternetDetector:
    """OT devices and public addresses."""

    name: ClassVar[str] = "ot_internet"
    notes: ClassVar[dict[str, Note]] = notes_of(
        Note("ot_internet", "high", 75, ("T0883", "T0869"),
             "an OT, BMS or IoT device and a public address connected, never seen in learning"),
    )  # fmt: skip
    event_protocols: ClassVar[frozenset[str]] = frozenset()
    wants_flows: ClassVar[bool] = True

    def __init__(self, baseline: Baseline) -> None:
        self.baseline = baseline

    def on_event(self, ev: ProtocolEvent, ctx: AlertContext) -> None:
        """Not used: judged on connections."""

    def on_flow(self, flow: Flow, ctx: AlertContext) -> None:
        """A connection between an OT device and a public address."""
        b = self.baseline
        for n in b.assess_flow(flow):
            if n.kind != "internet":
                continue
            device, public, service, port = (str(n.key[0]), str(n.key[1]), str(n.key[2]), n.key[3])
            outbound = flow.id.orig_h == device
            zone = b.zone_of(device)
            where = f"{zone.name}, {zone.domain}" if zone is not None else "no zone"
            what = (f"{device} ({where}) connected to the public address {public} ({service}, port {port})"
                    if outbound else f"the public address {public} connected to {device} ({where}) on port {port}")
            raise_fact(
                self, ctx, b, "ot_internet", (n.kind, n.key), flow.ts, device if outbound else public,
                key=f"{device}/{public}/{port}", assets=(device, public), uids=(flow.id.uid,),
                explanation=f"{what}: never seen in {b.learned_for()}",
                details={"protocol": service, "port": port, "dst": flow.id.resp_h, "public": public,
                         "direction": "outbound" if outbound else "inbound", "conn_state": flow.conn_state},
            )  # fmt: skip

    def on_tick(self, now: float, ctx: AlertContext) -> None:
        """No windows to close."""
