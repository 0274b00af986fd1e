"""Learning and protecting: the site-wide mode, the operator's override, and each device's own learning window.

The site learns from its first packet for `learning_days` of packet time, then protects. An operator may force
either mode (`otwatch mode learn|protect`): the override holds until changed. A device first seen while the site
protects learns on its own for `device_learning_days` from its first message (its novelty is learned, not
alerted), unless it joins a peer group first (it then inherits the group's baseline and is judged at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DAY = 86400.0
LEARN = "learn"
PROTECT = "protect"
MODES = (LEARN, PROTECT)


@dataclass(frozen=True, slots=True)
class Progress:
    """Where learning stands: the mode, the fraction of the learning period done (1.0 when protecting), when the
    current period started and when it ends (packet time; None when open-ended or not started), and whether an
    operator set the mode (`manual`) and who."""

    mode: str
    fraction: float
    started: float | None
    ends: float | None
    manual: bool = False
    who: str | None = None


class Modes:
    """The site's mode over packet time (pipeline thread; `progress()` may be read from any thread)."""

    def __init__(self, learning_days: float, device_learning_days: float) -> None:
        self.learning = learning_days * DAY
        self.device_learning = device_learning_days * DAY
        self.site_start: float | None = None  # packet time of the first thing the baseline saw
        self.override: str | None = None  # an operator's mode, until changed
        self.override_ts: float | None = None  # packet time from which the override holds
        self.override_who: str | None = None
        self.now = 0.0  # the latest packet time seen

    def start(self, ts: float) -> None:
        """The first packet time (learning starts here unless already started)."""
        if self.site_start is None:
            self.site_start = ts

    def learn_end(self) -> float | None:
        """When the automatic learning period ends (None before the first packet)."""
        return None if self.site_start is None else self.site_start + self.learning

    def mode(self, ts: float) -> str:
        """The site's mode at packet time `ts`."""
        if self.override is not None:
            return self.override
        end = self.learn_end()
        return LEARN if end is None or ts < end else PROTECT

    def site_learning(self, ts: float) -> bool:
        """True while the whole site learns."""
        if self.override is not None:
            return self.override == LEARN
        end = self.learn_end()
        return end is None or ts < end

    def set_mode(self, mode: str, ts: float, who: str) -> None:
        """An operator forces a mode from packet time `ts`."""
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        self.override, self.override_ts, self.override_who = mode, ts, who

    def device_window(self, ts: float) -> float:
        """The end of the learning window of a device first seen at `ts` (0.0: it learns with the site)."""
        return 0.0 if self.site_learning(ts) else ts + self.device_learning

    def progress(self) -> Progress:
        """The mode and learning progress at the latest packet time."""
        now = self.now
        manual = self.override is not None
        if manual and self.override == LEARN:
            return Progress(LEARN, 0.0, self.override_ts, None, True, self.override_who)
        if manual:
            return Progress(PROTECT, 1.0, self.override_ts, None, True, self.override_who)
        start, end = self.site_start, self.learn_end()
        if start is None or end is None:
            return Progress(LEARN, 0.0, None, None)
        if now >= end:
            return Progress(PROTECT, 1.0, end, None)
        fraction = (now - start) / self.learning if self.learning > 0 else 1.0
        return Progress(LEARN, max(0.0, min(1.0, fraction)), start, end)

    def to_dict(self) -> dict[str, Any]:
        """The state to save."""
        return {"site_start": self.site_start, "override": self.override, "override_ts": self.override_ts,
                "override_who": self.override_who, "now": self.now}  # fmt: skip

    def restore(self, data: dict[str, Any]) -> None:
        """Resume from `to_dict` output (the configured periods stay those of the config)."""
        start = data.get("site_start")
        self.site_start = float(start) if start is not None else None
        override = data.get("override")
        self.override = override if override in MODES else None
        ots = data.get("override_ts")
        self.override_ts = float(ots) if ots is not None else None
        who = data.get("override_who")
        self.override_who = str(who) if who is not None else None
        self.now = max(self.now, float(data.get("now") or 0.0))
