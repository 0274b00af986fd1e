"""The Baseline: observes every event and finished connection, learns what is normal, and tells detectors what broke.

The pipeline calls `observe(ev)` and `observe_flow(flow)` after the detectors have judged the same event, so a
detector asks `assess(ev)` (or `assess_flow(flow)`) for the facts the event breaks (`Novelty`): the answer is
computed once per event and reused by the observation. The hot path: an OT request of a known channel (every fact
of it learned, not a write) costs one dict lookup and the channel's timing update; any other event one or two dict
lookups. Packet time drives everything (`tick`): the end of learning, feature windows, channel timing, peer groups.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from appliance.baseline.anomaly import Anomaly, Models
from appliance.baseline.channels import Channel
from appliance.baseline.extract import (
    OT_PROTOCOLS,
    REPLIES,
    discovery_kind,
    is_command,
    op_keys,
    roles,
    written_points,
)
from appliance.baseline.facts import Key, fact_id
from appliance.baseline.features import FAILED_STATES, Windows
from appliance.baseline.knowledge import DST, EITHER, SRC, Knowledge
from appliance.baseline.modes import Progress
from appliance.baseline.peers import describe
from appliance.baseline.settings import BaselineSettings
from appliance.model import EXCEPTION, REQUEST, WEIRD, Asset, Flow, ProtocolEvent
from appliance.zones import Zone

PEER_REFRESH = 3600.0  # seconds of packet time between two looks at the inventory for peer groups ...
PEER_REFRESH_NEW = 120.0  # ... or after a device first seen while protecting, until it inherited or learnt
RELEARN_EVERY = 600.0  # seconds of packet time between two computations of the learning channels' periods
_NOTHING: tuple[Novelty, ...] = ()
_NO_FACTS: list[tuple[str, Key, Any]] = []  # shared, never changed
Evaluation = tuple["Channel | None", "Key", "list[tuple[str, Key, Any]]", "tuple[Novelty, ...]"]


@dataclass(frozen=True, slots=True)
class Novelty:
    """A fact an event breaks: its kind (a fact kind, or `value` for a written value far outside its range), key,
    and the value written (for points)."""

    kind: str
    key: Key
    value: float | None = None

    @property
    def fact_id(self) -> str:
        """The fact's id (what `otwatch learn` takes)."""
        return fact_id(self.kind, self.key)


@dataclass(frozen=True, slots=True)
class Timing:
    """A polling channel that went silent or changed its period (`what`: silence or period)."""

    what: str
    channel: Channel
    observed: float  # seconds of silence, or the recent period


class Baseline(Knowledge):
    """Learning and judging what is normal for the site and each device (pipeline thread only)."""

    def __init__(
        self,
        settings: BaselineSettings | None = None,
        *,
        zone_of: Callable[[str], Zone | None] | None = None,
        snapshot: Callable[[], Iterable[Asset]] | None = None,
        op_class: Callable[[str, str], str] | None = None,
        unicast: Callable[[str], bool] | None = None,
    ) -> None:
        super().__init__(settings or BaselineSettings())
        s = self.settings
        self.zone_of = zone_of or (lambda ip: None)
        self.snapshot = snapshot
        self.op_class = op_class or (lambda protocol, op: "other")
        self.unicast = unicast or (lambda ip: True)
        self.channels: dict[Key, Channel] = {}
        self.timed: dict[Key, Channel] = {}  # the channels whose timing is judged (polls)
        self.windows = Windows(s.model.window, s.caps.assets)
        self._stats = self.windows.stats  # the same dict: one attribute lookup on the hot path
        self.models = Models(s.model, self._group_of)
        self.anomalies: list[Anomaly] = []  # found, waiting for the anomaly detector
        self.timing: list[Timing] = []  # found, waiting for the timing detector
        self.broken: OrderedDict[str, dict[str, Any]] = OrderedDict()  # fact id -> what `otwatch learn` needs
        self.broken_dirty: set[str] = set()
        self.channel_dirty: set[Key] = set()
        self.inherited: dict[str, list[str]] = {}  # ip -> the peers whose baseline it inherited
        self.applied_seq = 0  # the last operator action applied
        self.cap_channels = 0
        self._ot_domains = frozenset(s.ot_domains)
        self._internet_domains = frozenset(s.internet_domains)
        self._levels = s.mqtt_topic_levels
        self._memo_ev: object = None
        self._memo: Evaluation | None = None
        self._next_tick = 0.0
        self._next_peers = 0.0
        self._next_check = 0.0
        self._next_relearn = 0.0
        self._was_learning = False
        self._public: dict[str, bool] = {}

    # ---- events ----

    def assess(self, ev: ProtocolEvent) -> tuple[Novelty, ...]:
        """The facts an OT request breaks that are judged now (empty when nothing, or while its owner learns)."""
        if ev is self._memo_ev and self._memo is not None:
            return self._memo[3]
        if ev.kind != REQUEST or ev.protocol not in OT_PROTOCOLS or not ev.src or not ev.dst:
            return _NOTHING
        self._memo_ev, self._memo = ev, self._evaluate(ev)
        return self._memo[3]

    def observe(self, ev: ProtocolEvent) -> None:
        """Learn from one event (after the detectors judged it)."""
        ts = ev.ts
        if ts >= self._next_tick:
            self.tick(ts)
        kind = ev.kind
        src = ev.src
        if kind == WEIRD or not src:
            return
        if src not in self.assets:
            self.add_asset(src, ts)
        if ev.protocol not in OT_PROTOCOLS:
            return
        if kind != REQUEST:
            st = self._stats.get(src)
            if st is not None:
                st.msgs_out += 1
                if kind == EXCEPTION:
                    st.exceptions += 1
            return
        if not ev.dst:
            return
        memo = self._memo
        if ev is self._memo_ev and memo is not None:
            self._memo_ev = self._memo = None
        else:
            memo = self._evaluate(ev)
        ch, ckey, pending, judged = memo
        if ch is not None and ch.known:  # the fast path
            ch.hit(ts, self.windows.index or 0)
            return
        for fkind, key, value in pending:
            self.facts.add(fkind, key, value)
        if ch is None:
            ch = self._channel(ev, ckey)
            if ch is None:
                return
        ch.known = not judged and not pending_points(pending) and not written_points(ev)
        if ch.known:
            ch.fast = (ch, ckey, _NO_FACTS, _NOTHING)
        ch.hit(ts, self.windows.index or 0)
        if ch.src_stats is not None and (pending or judged):
            ch.src_stats.new_facts += len(pending) + len(judged)

    def _channel(self, ev: ProtocolEvent, ckey: Key) -> Channel | None:
        if len(self.channels) >= self.settings.caps.channels:
            self.cap_channels += 1
            return None
        ch = Channel(ev.src, ev.dst, ev.protocol, tuple(ckey[3:]), ev.ts)
        self.prepare(ch)
        self.channels[ckey] = ch
        if ch.timed:
            self.timed[ckey] = ch
        self.channel_dirty.add(ckey)
        return ch

    def prepare(self, ch: Channel) -> None:
        """Set a channel's operation class, whether it is timed, and the feature counters it feeds."""
        op_class = self.op_class(ch.protocol, ch.op[0] if ch.op else "")
        ch.read, ch.write = op_class == "read", op_class in ("write", "command")
        ch.timed = ch.protocol in self.settings.channels.protocols and (ch.read or ch.protocol == "mqtt")
        ch.src_stats = self.windows.stats_for(ch.src)
        ch.dst_stats = self.windows.stats_for(ch.dst) if self.unicast(ch.dst) else None

    def _evaluate(self, ev: ProtocolEvent) -> Evaluation:
        src, dst, protocol, ts = ev.src, ev.dst, ev.protocol, ev.ts
        if protocol == "modbus":  # the commonest: its channel key without a call
            ckey: Key = (src, dst, protocol, ev.op, str(ev.fields.get("unit", "")))
            ops = [ckey[3:]]
        else:
            chan_op, ops = op_keys(ev, self._levels)
            ckey = (src, dst, protocol, *chan_op)
        ch = self.channels.get(ckey)
        if ch is not None and ch.known:
            return ch.fast
        op_class = self.op_class(protocol, ev.op)
        if src not in self.assets:  # a sender never seen: it starts its own learning now (or learns with the site)
            self.add_asset(src, ts)
        port = ev.flow.endpoints(ev.is_orig)[3] if ev.flow is not None else 0
        facts: list[tuple[str, Key, str]] = [("edge", (src, dst, protocol, port), EITHER)]
        facts += [("role", r, SRC if r[0] == src else DST) for r in roles(ev, self._levels)]
        facts += [("op", (src, dst, protocol, *op), EITHER) for op in ops]
        if is_command(ev, op_class):
            facts.append(("commander", (src, dst, protocol), DST))
        what = discovery_kind(ev)
        if what is not None:
            facts.append(("discovery", (src, what), SRC))
        pending: list[tuple[str, Key, Any]] = []
        via_peer: list[tuple[str, Key, Any]] = []  # allowed through a peer: learned unless the event broke a fact
        judged: list[Novelty] = []
        for kind, key, rule in facts:
            if key in self.facts.tables[kind]:
                continue
            if self.learnable(rule, src, dst, ts):
                pending.append((kind, key, ts))
            elif self.peer_fact(kind, key) is not None:
                via_peer.append((kind, key, ts))
            else:
                judged.append(Novelty(kind, key))
        learning = self.learnable(DST, src, dst, ts)
        for space, addr, value in written_points(ev):
            self._point((dst, protocol, space, addr), value, learning, pending if learning else via_peer, judged)
        if judged and protocol == "bacnet" and ev.op in REPLIES:
            judged = []  # an answer (I-Am, a COV notification): the request it answers was judged
        if not judged:
            pending += via_peer
        return ch, ckey, pending, tuple(judged)

    def _point(self, key: Key, value: float | None, learning: bool, pending: list[tuple[str, Key, Any]],
               judged: list[Novelty]) -> None:  # fmt: skip
        """A written point: never written (judged unless learnable or allowed through a peer), or its value far
        outside the learned range (an identical peer's range holds for a point first written here)."""
        dst = key[0]
        if not self.facts.has("point", key):
            peer = self.peer_fact("point", key)
            if peer is None:
                if learning:
                    pending.append(("point", key, _extend(None, value)))
                else:
                    judged.append(Novelty("point", key, value))
                return
            learned = self.facts.get("point", peer) if peer[0] in self.peers.group_peers(dst) else None
            if learned is not None and value is not None and not learning and self.far_outside(value, learned):
                judged.append(Novelty("value", key, value))
                pending.append(("point", key, list(learned)))
            else:
                pending.append(("point", key, _extend(learned, value)))
            return
        learned = self.facts.get("point", key)
        if value is None:
            return
        if learned is None:
            if learning:
                pending.append(("point", key, _extend(None, value)))
        elif self.far_outside(value, learned):
            if learning:
                pending.append(("point", key, _extend(learned, value)))
            else:
                judged.append(Novelty("value", key, value))
        elif learning:
            pending.append(("point", key, _extend(learned, value)))

    # ---- flows ----

    def assess_flow(self, flow: Flow) -> tuple[Novelty, ...]:
        """The facts a finished connection breaks: an edge of an OT device never seen (for protocols without a
        decoder of the baseline), an OT device and a public address never seen together."""
        if flow is self._memo_ev and self._memo is not None:
            return self._memo[3]
        self._memo_ev, self._memo = flow, self._evaluate_flow(flow)
        return self._memo[3]

    def _evaluate_flow(self, flow: Flow) -> Evaluation:
        fid = flow.id
        orig, resp = fid.orig_h, fid.resp_h
        zo, zr = self.zone_of(orig), self.zone_of(resp)
        ot_orig = zo is not None and zo.domain in self._ot_domains
        ot_resp = zr is not None and zr.domain in self._ot_domains
        if not ot_orig and not ot_resp:
            return None, (), [], _NOTHING
        ts = flow.ts
        service = flow.service or fid.proto
        facts: list[tuple[str, Key, str]] = []
        answered = flow.resp_pkts > 0 or flow.conn_state not in FAILED_STATES
        if zo is not None and zo.domain in self._internet_domains and self._is_public(resp):
            facts.append(("internet", (orig, resp, service, fid.resp_p), SRC))
        elif zr is not None and zr.domain in self._internet_domains and self._is_public(orig) and answered:
            facts.append(("internet", (resp, orig, service, fid.resp_p), DST))
        elif service not in OT_PROTOCOLS and fid.proto != "icmp":
            facts.append(("edge", (orig, resp, service, fid.resp_p), EITHER))
        pending: list[tuple[str, Key, Any]] = []
        judged: list[Novelty] = []
        for kind, key, rule in facts:
            if key in self.facts.tables[kind]:
                continue
            if self.learnable(rule, orig, resp, ts) or self.peer_fact(kind, key) is not None:
                pending.append((kind, key, ts))
            else:
                judged.append(Novelty(kind, key))
        return None, (), pending, tuple(judged)

    def observe_flow(self, flow: Flow) -> None:
        """Learn from one finished connection (after the detectors judged it)."""
        end = flow.ts + flow.duration
        if end >= self._next_tick:
            self.tick(end)
        fid = flow.id
        if fid.orig_h not in self.assets:
            self.add_asset(fid.orig_h, flow.ts)
        if flow is self._memo_ev and self._memo is not None:
            pending, judged = self._memo[2], self._memo[3]
            self._memo_ev = self._memo = None
        else:
            _, _, pending, judged = self._evaluate_flow(flow)
        for kind, key, value in pending:
            self.facts.add(kind, key, value)
        windows = self.windows
        for ip, peer, packets, nbytes in ((fid.orig_h, fid.resp_h, flow.orig_pkts, flow.orig_ip_bytes),
                                          (fid.resp_h, fid.orig_h, flow.resp_pkts, flow.resp_ip_bytes)):  # fmt: skip
            st = windows.stats.get(ip)
            if st is None:
                zone = self.zone_of(ip)
                if zone is None or zone.domain not in self._ot_domains or not self.unicast(ip):
                    continue
                st = windows.stats_for(ip)
                if st is None:
                    continue
            windows.credit_flow(st, packets, nbytes, flow.duration)
            st.add_peer(peer)
            st.add_port(fid.resp_p)
            if ip == fid.orig_h and flow.conn_state in FAILED_STATES:
                st.failed += 1
            st.new_facts += len(pending) + len(judged)

    def _is_public(self, ip: str) -> bool:
        known = self._public.get(ip)
        if known is None:
            try:
                addr = ipaddress.ip_address(ip.split("%", 1)[0])
                known = addr.is_global and not addr.is_multicast
            except ValueError:
                known = False
            if len(self._public) >= 65536:
                self._public.clear()
            self._public[ip] = known
        return known

    # ---- packet time ----

    def tick(self, now: float) -> None:
        """Packet time reached `now`: start learning, close feature windows, check channels, refresh peer groups."""
        if now < self._next_tick:
            return
        self._next_tick = now + 1.0
        self.modes.start(now)
        self.modes.now = max(self.modes.now, now)
        closed = self.windows.roll(now)
        if closed:
            protecting = not self.modes.site_learning(now)
            if protecting and self.settings.model.enabled and self.models.due(now):
                self.models.refit(now)
            for win in closed:
                judging = protecting and self.settings.model.enabled and not self.device_learning(win.ip, now)
                found = self.models.add(win, judging)
                if found is not None:
                    self.anomalies.append(found)
        if now >= self._next_peers:
            self._next_peers = now + PEER_REFRESH
            if not self.modes.site_learning(now):  # while the whole site learns, nothing is judged through peers
                self.refresh_peers(now)
        if now >= self._next_check:
            self._next_check = now + self.settings.channels.check_every
            self._check_channels(now)

    def refresh_peers(self, now: float) -> None:
        """Rebuild peer groups from the inventory; a learning device that matches a group inherits its baseline."""
        if self.snapshot is None or not self.settings.peer_groups:
            return
        self.peers.refresh(self.snapshot())
        waiting = False
        for ip, value in self.assets.items():
            if value[1] <= now:
                continue
            sig = self.peers.sig_of.get(ip)
            members = [m for m in self.peers.group_peers(ip) if not self.device_learning(m, now)]
            if sig is not None and len(members) >= self.settings.min_group:
                self.inherit(ip, now, describe(sig))
                self.inherited[ip] = members
            elif now - float(value[0]) < PEER_REFRESH:
                waiting = True  # first seen lately: its identity may still show (a PLC's FC43 answer, an I-Am)
        if waiting:
            self._next_peers = min(self._next_peers, now + PEER_REFRESH_NEW)

    def _check_channels(self, now: float) -> None:
        cs = self.settings.channels
        site_learning = self.modes.site_learning(now)
        relearn = now >= self._next_relearn or (self._was_learning and not site_learning)  # and at the end
        if relearn:
            self._next_relearn = now + RELEARN_EVERY
        self._was_learning = site_learning
        for key, ch in self.timed.items():
            if site_learning or self.device_learning(ch.src, now) or self.device_learning(ch.dst, now):
                if relearn:
                    ch.learn_period(cs)
                    self.channel_dirty.add(key)
                ch.fixed = False
                continue
            if not ch.fixed:
                if ch.period is None and ch.known and ch.count >= ch.tried + cs.min_samples:
                    ch.tried = ch.count  # a channel without a learned period (new, or irregular): found once
                    ch.learn_period(cs)
                ch.fixed = ch.period is not None
                if ch.fixed:
                    self.channel_dirty.add(key)
                continue
            period = ch.period
            limit = ch.silence_limit(cs)
            if period is None or limit is None:
                continue
            if not ch.silent and now - ch.last > limit:
                ch.silent = True
                self.timing.append(Timing("silence", ch, now - ch.last))
                continue
            recent = ch.recent_period()
            if recent is None or ch.silent:
                continue
            off = abs(recent - period) > max(cs.tolerance * period, 0.5)
            if off and not ch.changed:
                ch.changed = True
                self.timing.append(Timing("period", ch, recent))
            elif not off:
                ch.changed = False

    # ---- for detectors and operators ----

    def progress(self) -> Progress:
        """The mode and learning progress (mode, fraction, started, ends) at the latest packet time."""
        return self.modes.progress()

    def mark_alerted(self, assets: Iterable[str]) -> None:
        """An alert named these addresses: their current feature windows are not benign training data."""
        stats = self.windows.stats
        for ip in assets:
            st = stats.get(ip)
            if st is not None:
                st.alerted = True

    def remember(self, novelty_kind: str, key: Key, alert_key: str, ts: float, extra: dict[str, Any] | None = None,
                 ) -> str:  # fmt: skip
        """Keep a broken fact for `otwatch learn` (by its id or the alert's key); returns the fact id."""
        fid = fact_id(novelty_kind, key)
        self.broken.pop(fid, None)
        self.broken[fid] = {"kind": novelty_kind, "key": list(key), "alert_key": alert_key, "ts": ts, **(extra or {})}
        self.broken_dirty.add(fid)
        while len(self.broken) > self.settings.caps.broken:
            old, _ = self.broken.popitem(last=False)
            self.broken_dirty.add(old)
        return fid

    def take_anomalies(self) -> list[Anomaly]:
        """The anomalous windows found since the last call."""
        found, self.anomalies = self.anomalies, []
        return found

    def take_timing(self) -> list[Timing]:
        """The channel timing findings since the last call."""
        found, self.timing = self.timing, []
        return found

    def new_device(self, ts: float) -> None:
        """A device first seen while protecting: look for its peer group in PEER_REFRESH_NEW seconds."""
        self._next_peers = min(self._next_peers, ts + PEER_REFRESH_NEW)

    def _group_of(self, ip: str) -> tuple[str, list[str]]:
        sig = self.peers.sig_of.get(ip)
        return (describe(sig) if sig else "", self.peers.group_peers(ip))


def _extend(learned: list[float] | None, value: float | None) -> list[float] | None:
    """A value range [lowest, highest, writes] with one more value written."""
    if value is None:
        return list(learned) if learned is not None else None
    if learned is None:
        return [value, value, 1]
    n = int(learned[2]) if len(learned) > 2 else 0
    return [min(float(learned[0]), value), max(float(learned[1]), value), n + 1]


def pending_points(pending: list[tuple[str, Key, Any]]) -> bool:
    """True when a pending fact is a written point (its channel stays on the slow path)."""
    return any(kind == "point" for kind, _, _ in pending)
