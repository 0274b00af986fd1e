"""The sensor pipeline: frames in, dissected packets through the FlowTable, events to logs, inventory and counters."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.alert import Alert
from appliance.baseline import Baseline
from appliance.capture.dissect import Dissector
from appliance.capture.live import TICK
from appliance.config import Config
from appliance.detectors import build_detectors
from appliance.detectors.engine import DetectorEngine
from appliance.export.api import RecentAlerts
from appliance.export.jsonl import DetailLines, DetailRows, JsonlLogs
from appliance.flows import FlowTable
from appliance.incidents.facts import InventoryLookup
from appliance.incidents.persist import IncidentLog
from appliance.incidents.store import IncidentStore
from appliance.inventory import AssetInventory
from appliance.model import REQUEST, WEIRD, Flow, ProtocolEvent
from appliance.stats import MAX_REQUEST_KEYS, PipelineStats
from appliance.zones import Zone, ZoneMap
from protocols import DECODERS
from protocols.base import DecoderFactory

if TYPE_CHECKING:
    from appliance.export.sinks.fanout import SinkSet

Frame = tuple[int, float, bytes, int]


def zone_map(config: Config) -> ZoneMap:
    """Build the ZoneMap from the configured zones."""
    return ZoneMap([Zone(z.name, tuple(z.cidrs), z.domain, z.purdue_level) for z in config.zones])


_OP_CLASSES = {d.name: d.op_classes for d in DECODERS}


def op_class(protocol: str, op: str) -> str:
    """The operation class (read, write, command, ...) of a protocol operation, from the decoder's table."""
    table = _OP_CLASSES.get(protocol)
    return table.get(op, "other") if table is not None else "other"


def detail_logs(decoders: list[DecoderFactory] | None = None) -> dict[str, DetailRows]:
    """The detail-log splitters of the decoders (the registered ones by default; a class's optional `log_rows`)."""
    out: dict[str, DetailRows] = {}
    for decoder in DECODERS if decoders is None else decoders:
        split = getattr(decoder, "log_rows", None)
        if split is not None:
            out[decoder.name] = split
    return out


def detail_lines(decoders: list[DecoderFactory] | None = None) -> dict[str, DetailLines]:
    """The encoded detail-log splitters of the decoders (the registered ones by default; optional `log_lines`)."""
    out: dict[str, DetailLines] = {}
    for decoder in DECODERS if decoders is None else decoders:
        split = getattr(decoder, "log_lines", None)
        if split is not None:
            out[decoder.name] = split
    return out


def _ignore(_: object) -> None:
    """A consumer switched off by the configuration."""


class Pipeline:
    """Owns the dissector, FlowTable, inventory and logs; every method runs on the one pipeline thread."""

    def __init__(
        self,
        config: Config,
        log_dir: Path | None,
        inventory: AssetInventory | None = None,
        *,
        decoders: list[DecoderFactory] | None = None,
        sinks: SinkSet | None = None,
    ) -> None:
        self.config = config
        self.sinks = sinks  # alert forwarding (appliance/export/sinks): non-blocking, fed on this thread
        self.stats = PipelineStats()
        self.dissector = Dissector()
        if decoders is None:
            wanted = config.protocols
            decoders = [d for d in DECODERS if wanted is None or d.name in wanted]
        self.logs = (
            JsonlLogs(log_dir, detail_logs=detail_logs(decoders), detail_lines=detail_lines(decoders))
            if log_dir is not None
            else None
        )
        self.inventory = inventory if inventory is not None else AssetInventory(zone_map(config))
        self.lock = threading.Lock()  # held while the pipeline mutates state that snapshot readers copy
        self.recent_alerts = RecentAlerts()  # the last alerts, for the JSON API (snapshot() from any thread)
        # events from other threads (the MQTT broker session): queued by submit(), handled on the pipeline thread
        self._inbox: deque[ProtocolEvent] = deque()
        fc = config.flows
        # the judge layer: detectors read the inventory as it was before each event (they run first)
        settings = config.detectors
        # the baseline (what is normal): it learns from each event after the detectors judged it (appliance/baseline)
        self.baseline = Baseline(
            config.baseline, zone_of=self.inventory.zone_of, snapshot=self.inventory.snapshot, op_class=op_class,
            unicast=self.inventory.could_be_asset,
        )  # fmt: skip
        self.detectors = DetectorEngine(
            build_detectors(settings, self.baseline, config.zone_policy), self._on_alert, suppress=settings.suppress,
            inventory=self.inventory,
        )  # fmt: skip
        # incidents: the alerts correlated per actor (owned here; other threads read incidents.snapshot())
        self.incidents = IncidentStore(config.incidents, InventoryLookup(self.inventory))
        if log_dir is not None:
            self.incidents.subscribe_text(IncidentLog(log_dir).write_text)
        if sinks is not None:
            self.incidents.subscribe(sinks.publish_incident)
        judging = settings.enabled
        self._judge = self.detectors.on_event if judging else _ignore
        self._judge_flow = self.detectors.on_flow if judging else _ignore
        learning = config.baseline.enabled
        self._learn = self.baseline.observe if learning else _ignore
        self._learn_flow = self.baseline.observe_flow if learning else _ignore
        self.flows = FlowTable(
            decoders,
            self._on_event,
            self._on_flow,
            max_flows=fc.max_flows,
            tcp_idle=fc.tcp_idle_timeout,
            udp_idle=fc.udp_idle_timeout,
            icmp_idle=fc.icmp_idle_timeout,
            max_ooo_bytes=fc.max_out_of_order_bytes,
            on_attempt=self._judge_flow,
            uid_seed=config.uid_seed,
        )

    def _on_event(self, ev: ProtocolEvent) -> None:
        stats = self.stats
        kind = ev.kind
        stats.events[(ev.protocol, ev.op, kind)] += 1
        if kind == REQUEST:
            requests = stats.requests
            key = (ev.src, ev.dst, ev.protocol, ev.op)
            n = requests.get(key)
            if n is not None:
                requests[key] = n + 1
            elif len(requests) < MAX_REQUEST_KEYS:
                requests[key] = 1
            else:
                stats.requests_overflow += 1
        elif kind == WEIRD:
            stats.weird[(ev.protocol, ev.op)] += 1
        if self.logs is not None:
            self.logs.write_event(ev)
        self._judge(ev)
        self._learn(ev)
        self.inventory.on_event(ev)

    def _on_alert(self, alert: Alert) -> None:
        stats = self.stats
        self.recent_alerts.append(alert)
        stats.alerts[(alert.detector, alert.note, alert.severity)] += 1
        for ip in alert.assets:
            stats.asset_alerts[(ip, alert.severity)] += 1
        if self.logs is not None:
            self.logs.write_alert(alert)
        if self.sinks is not None:
            self.sinks.publish_alert(alert)
        self.incidents.on_alert(alert)

    def submit(self, ev: ProtocolEvent) -> None:
        """Queue an event from another thread (thread-safe); the pipeline thread logs it and feeds the inventory."""
        self._inbox.append(ev)

    def drain(self) -> int:
        """Handle the queued events of other threads now (pipeline thread only); returns how many."""
        inbox = self._inbox
        n = 0
        while inbox:
            self._on_event(inbox.popleft())
            n += 1
        return n

    def _on_flow(self, flow: Flow) -> None:
        if self.logs is not None:
            self.logs.write_flow(flow)
        self._judge_flow(flow)
        self._learn_flow(flow)
        self.inventory.on_flow(flow)

    def run(
        self,
        frames: Iterable[Frame],
        *,
        progress: Callable[[int], None] | None = None,
        every: int = 65536,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        """Push every frame through the pipeline; call `progress(packets)` every `every` packets."""
        stats = self.stats
        dissect = self.dissector.dissect
        process = self.flows.process
        frame = self.flows.frame
        packets = stats.packets
        nbytes = stats.bytes
        last_ts = first_ts = stats.first_packet_ts
        next_report = packets + every
        try:
            for linktype, ts, data, wire_len in frames:
                if linktype == TICK:  # a live capture's periodic wake-up: on an idle link, time still passes
                    next_report = packets
                    self.flows.expire(ts)
                    self.detectors.tick(ts)
                    self.incidents.tick(ts)  # idle incidents close, held updates are written when due
                    if self._inbox:
                        self.drain()
                else:
                    if not first_ts:
                        first_ts = stats.first_packet_ts = ts
                    last_ts = ts
                    packets += 1
                    nbytes += wire_len
                    if linktype != 1 or not frame(ts, data):  # Ethernet frames of known flows: no Packet
                        pkt = dissect(linktype, ts, data, wire_len)
                        if pkt is not None:
                            process(pkt)
                if packets >= next_report:
                    next_report = packets + every
                    if self._inbox:
                        self.drain()
                    self._sync(packets, nbytes, last_ts)
                    if progress is not None:
                        progress(packets)
                    if should_stop is not None and should_stop():
                        break
        finally:
            self._sync(packets, nbytes, last_ts)

    def _sync(self, packets: int, nbytes: int, ts: float) -> None:
        stats = self.stats
        stats.packets = packets
        stats.bytes = nbytes
        if ts:
            stats.last_packet_ts = max(stats.last_packet_ts, ts)
        stats.skipped.clear()
        stats.skipped.update(self.dissector.skipped)
        stats.flows_live = self.flows.live
        stats.flows_total = self.flows.total
        stats.flows_evicted = self.flows.evicted

    def finish(self) -> None:
        """End of input: close every live flow, handle queued events, flush logs and write the asset table."""
        self.flows.flush()
        self.drain()
        stats = self.stats
        stats.flows_live = self.flows.live
        stats.flows_total = self.flows.total
        stats.flows_evicted = self.flows.evicted
        self.incidents.tick(stats.last_packet_ts)  # close the incidents idle at the end of the input
        if self.logs is not None:
            self.logs.write_assets(self.inventory.snapshot())
            self.logs.close()
