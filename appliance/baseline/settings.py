"""The `baseline:` config section: learning periods, caps on what is remembered, and the learned detectors' knobs.

Defaults and where they come from: 14 days of site-wide learning and 7 days for a device first seen later (the
learning periods OT monitoring products propose: two working weeks see every shift and maintenance window; a week
sees a new device's whole weekly rhythm). Caps keep memory bounded on a large or hostile network; an entry that
would pass a cap is not kept, and the hit is counted (`Baseline.cap_hits`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CapSettings(_Strict):
    """How many learned facts of each kind are kept at most (a fact beyond a cap is not learned; hits counted)."""

    assets: int = Field(100_000, ge=16)
    edges: int = Field(200_000, ge=16)
    roles: int = Field(100_000, ge=16)
    operations: int = Field(200_000, ge=16)
    points: int = Field(200_000, ge=16)
    writers: int = Field(50_000, ge=16)
    discovery: int = Field(10_000, ge=16)
    channels: int = Field(100_000, ge=16)
    topics_per_client: int = Field(256, ge=1)  # MQTT topics one client may publish before they stop being learned
    broken: int = Field(10_000, ge=16)  # broken facts remembered for `otwatch learn`


class ChannelSettings(_Strict):
    """Polling channels (an edge and one read operation): a period is learned from `min_samples` inter-arrival times
    whose median is the period, when at least `regularity` of them lie within `tolerance` of it. A channel goes
    silent after max(`silence_factor` periods, `min_silence` s) without a message (a restart takes a minute or two:
    5 minutes is not a restart); its period changed when the median of the last 8 intervals moves by more than
    `tolerance` (a fraction of the period, at least 0.5 s)."""

    min_samples: int = Field(20, ge=4)
    regularity: float = Field(0.75, gt=0, le=1)
    tolerance: float = Field(0.5, gt=0)
    silence_factor: float = Field(10.0, ge=2)
    min_silence: float = Field(300.0, ge=1)
    check_every: float = Field(30.0, gt=0)  # seconds of packet time between two looks at every channel
    # protocols whose channels are timed: their reads (polls); for mqtt every publish (reporting, not polling)
    protocols: list[str] = Field(default_factory=lambda: ["modbus", "bacnet"])


class ValueSettings(_Strict):
    """Written values: far outside the learned range [lo, hi] means beyond a margin of max(`span_factor` x the
    span, `fraction` x the larger magnitude, `minimum`) on either side (a setpoint learned at 18.0-18.5 accepts
    13.4-23.1; the simulated attack's 26.0 degC on a 18.0 degC loop is outside)."""

    span_factor: float = Field(1.0, ge=0)
    fraction: float = Field(0.25, ge=0)
    minimum: float = Field(1.0, ge=0)


class DiscoverySettings(_Strict):
    """OT discovery: `unit_ids` distinct Modbus unit ids, `register_blocks` distinct (function, address) blocks read,
    or `objects` distinct BACnet objects whose names are read, from one source to one device within `window` s."""

    window: float = Field(60.0, gt=0)
    unit_ids: int = Field(5, ge=2)
    objects: int = Field(8, ge=2)
    register_blocks: int = Field(16, ge=2)


class ModelSettings(_Strict):
    """The statistical baseline: feature windows of `window` seconds per device; an IsolationForest (fixed
    `random_state`) per device with at least `min_windows` windows of history, else per peer group; the alert
    threshold is the `quantile` of the benign training scores plus `margin`; refit every `retrain_every` seconds
    of packet time on the last `max_windows` windows that raised nothing.

    An isolation tree splits between the lowest and highest training values, so a value beyond the range of a
    feature (and any change of a feature that never varied) is not isolated: a window is also anomalous when a count
    exceeds its training maximum by more than max(`range_span` x the training span, `range_fraction` x the maximum,
    `range_minimum`) -- more messages, peers, failed connections, reads, writes, exceptions or operations than the
    device ever had."""

    enabled: bool = True
    window: float = Field(900.0, ge=60)
    min_windows: int = Field(96, ge=8)
    max_windows: int = Field(2000, ge=16)
    trees: int = Field(50, ge=10, le=500)
    max_samples: int = Field(256, ge=16)
    quantile: float = Field(0.995, gt=0.5, le=1.0)
    margin: float = Field(0.08, ge=0)
    retrain_every: float = Field(86400.0, ge=600)
    random_state: int = 7
    range_span: float = Field(1.0, ge=0)
    range_fraction: float = Field(0.25, ge=0)
    range_minimum: float = Field(5.0, ge=0)


class BaselineSettings(_Strict):
    """The whole `baseline:` section; `enabled: false` learns nothing and leaves out the detectors of learned
    behaviour (what is already learned and stored is kept, unchanged)."""

    enabled: bool = True
    learning_days: float = Field(14.0, ge=0)
    device_learning_days: float = Field(7.0, ge=0)
    ot_domains: list[str] = Field(default_factory=lambda: ["OT", "BMS", "IoT"])  # zones whose flows are learned
    internet_domains: list[str] = Field(default_factory=lambda: ["OT", "BMS", "IoT"])  # devices kept off the internet
    peer_groups: bool = True
    min_group: int = Field(2, ge=1)  # members a peer group needs before a new device may inherit its baseline
    category_peers: bool = True  # an established writer may write the same kind of point on same-category devices
    mqtt_topic_levels: int = Field(6, ge=1)  # a topic is learned by its first N levels
    caps: CapSettings = CapSettings()
    channels: ChannelSettings = ChannelSettings()
    values: ValueSettings = ValueSettings()
    discovery: DiscoverySettings = DiscoverySettings()
    model: ModelSettings = ModelSettings()
