"""Sensor counters kept on the pipeline thread, and the immutable snapshot readers (exporters, CLI) get."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# Operation classes for the activity metrics: what a protocol operation does to a device.
OP_CLASSES = ("read", "write", "command", "discovery", "diagnostic", "auth", "other")
# Distinct (src, dst, protocol, op) request keys kept for the zone-crossing metrics; requests of keys beyond the cap
# are counted in `requests_overflow` (the metrics then undercount crossings, and say so).
MAX_REQUEST_KEYS = 100_000


@dataclass(slots=True)
class PipelineStats:
    """Mutable counters owned by the pipeline thread."""

    started_wall: float = field(default_factory=time.time)
    packets: int = 0
    bytes: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> frames not decoded (linktype, ethertype...)
    events: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (protocol, op, kind) -> n
    weird: Counter[tuple[str, str]] = field(default_factory=Counter)  # (protocol, name) -> n
    alerts: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (detector, note, severity) -> raised
    requests: dict[tuple[str, str, str, str], int] = field(default_factory=dict)  # (src, dst, protocol, op) -> n
    asset_alerts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (address, severity) -> alerts naming it
    requests_overflow: int = 0
    flows_total: int = 0
    flows_live: int = 0
    flows_evicted: int = 0
    capture_drops: int = 0
    last_packet_ts: float = 0.0
    first_packet_ts: float = 0.0
    truncated: str | None = None

    def snapshot(self) -> StatsSnapshot:
        """An immutable copy for readers on other threads."""
        return StatsSnapshot(
            packets=self.packets,
            bytes=self.bytes,
            skipped=MappingProxyType(dict(self.skipped)),
            events=MappingProxyType(dict(self.events)),
            weird=MappingProxyType(dict(self.weird)),
            alerts=MappingProxyType(dict(self.alerts)),
            requests=MappingProxyType(dict(self.requests)),
            requests_overflow=self.requests_overflow,
            asset_alerts=MappingProxyType(dict(self.asset_alerts)),
            flows_total=self.flows_total,
            flows_live=self.flows_live,
            flows_evicted=self.flows_evicted,
            capture_drops=self.capture_drops,
            first_packet_ts=self.first_packet_ts,
            last_packet_ts=self.last_packet_ts,
            truncated=self.truncated,
        )


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """A point-in-time copy of the pipeline counters."""

    packets: int
    bytes: int
    skipped: Mapping[str, int]
    events: Mapping[tuple[str, str, str], int]
    weird: Mapping[tuple[str, str], int]
    alerts: Mapping[tuple[str, str, str], int]
    flows_total: int
    flows_live: int
    flows_evicted: int
    capture_drops: int
    first_packet_ts: float
    last_packet_ts: float
    truncated: str | None
    requests: Mapping[tuple[str, str, str, str], int] = field(default_factory=lambda: MappingProxyType({}))
    requests_overflow: int = 0
    asset_alerts: Mapping[tuple[str, str], int] = field(default_factory=lambda: MappingProxyType({}))
