"""What a detector is: its notes (with severity, score and ATT&CK ids), its hooks, and the context it raises through."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from appliance.alert import SEVERITIES, Alert
from appliance.model import Flow, ProtocolEvent
from appliance.zones import Zone


@dataclass(frozen=True, slots=True)
class Note:
    """One kind of finding a detector can raise: name, severity, score (0-100), ATT&CK ids, what it means."""

    name: str
    severity: str
    score: float
    techniques: tuple[str, ...]
    description: str

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"note {self.name}: severity {self.severity!r} is not one of {', '.join(SEVERITIES)}")
        if not 0 <= self.score <= 100:
            raise ValueError(f"note {self.name}: score {self.score} is outside 0-100")


class InventoryView(Protocol):
    """What detectors may ask the inventory (read only; as it was before the current event)."""

    def asset_count(self) -> int:
        """How many assets the inventory holds."""
        ...

    def knows(self, ip: str) -> bool:
        """True when the address is an asset."""
        ...

    def could_be_asset(self, ip: str) -> bool:
        """True when the address would become an asset if it sent (unicast, not unspecified)."""
        ...

    def hostnames_of(self, ip: str) -> list[str]:
        """The names the address went by, oldest first."""
        ...

    def protocols_of(self, ip: str) -> frozenset[str]:
        """The protocols the address was seen speaking (empty for an unknown address)."""
        ...

    def zone_of(self, ip: str) -> Zone | None:
        """The configured zone of an address (None when no zone holds it)."""
        ...

    def op_class(self, protocol: str, op: str) -> str:
        """The operation class (read, write, command, ...) of a protocol operation."""
        ...

    def mac_of(self, ip: str) -> str | None:
        """The MAC the address is known by (None when unknown or behind a gateway)."""
        ...

    def is_gateway_mac(self, mac: str) -> bool:
        """True when the MAC is a router's (many addresses behind it)."""
        ...


class AlertContext(Protocol):
    """What a detector raises alerts through (the engine), and the inventory it may read."""

    inventory: InventoryView | None

    def fresh(self, detector: Detector, note: str, key: str, ts: float) -> bool:
        """False (the repeat counted) when `note` about `key` is inside its suppression interval."""
        ...

    def alert(
        self,
        detector: Detector,
        note: str,
        ts: float,
        src: str,
        *,
        assets: tuple[str, ...] = (),
        uids: tuple[str, ...] = (),
        explanation: str,
        key: str = "",
        details: dict[str, Any] | None = None,
    ) -> Alert | None:
        """Raise `note` (None when suppressed as a repeat)."""
        ...


class Detector(Protocol):
    """A detector: a name, its notes, and hooks for events, finished flows and the passing of packet time."""

    name: ClassVar[str]
    notes: ClassVar[dict[str, Note]]

    def on_event(self, ev: ProtocolEvent, ctx: AlertContext) -> None:
        """One decoded protocol event."""
        ...

    def on_flow(self, flow: Flow, ctx: AlertContext) -> None:
        """One finished connection record."""
        ...

    def on_tick(self, now: float, ctx: AlertContext) -> None:
        """Packet time has reached `now` (windows may close)."""
        ...


class MetaDetector(Detector, Protocol):
    """A detector that also reads the alerts the others raise (`wants_alerts = True`)."""

    def on_alert(self, alert: Alert, ctx: AlertContext) -> None:
        """One alert raised by another detector."""
        ...


DetectorFactory = Callable[..., Detector]


def notes_of(*notes: Note) -> dict[str, Note]:
    """A detector's `notes` table from Note objects."""
    return {n.name: n for n in notes}
