"""The site's rhythm in packet time: days, office hours with a diurnal curve, OT shift changes, maintenance windows.

Day 0 starts at the profile's `start` (midnight UTC of a Monday by default); weekday = (start weekday + day) % 7.
"""

from __future__ import annotations

import math

from simulators.site.profile import SiteProfile, parse_hhmm

__all__ = ["DAY", "HOUR", "Rhythm"]

DAY = 86400.0
HOUR = 3600.0


class Rhythm:
    """When things happen at the site."""

    def __init__(self, profile: SiteProfile) -> None:
        self.start = profile.start_ts()
        self.first_weekday = profile.start.weekday()
        sched = profile.schedule
        self.office = sched.office_hours
        self.workdays = set(sched.workdays)
        self.shift_offsets = sorted(parse_hhmm(s) for s in sched.shifts)
        self.windows = [(m.weekday, parse_hhmm(m.start), m.hours * HOUR) for m in sched.maintenance]
        self.backup_offset = parse_hhmm(sched.backup_at)

    def day_start(self, day: int) -> float:
        """Packet time of midnight starting day `day`."""
        return self.start + day * DAY

    def weekday(self, day: int) -> int:
        """0 = Monday."""
        return (self.first_weekday + day) % 7

    def is_workday(self, day: int) -> bool:
        """An office day."""
        return self.weekday(day) in self.workdays

    def day_of(self, t: float) -> int:
        """The day number of a packet time."""
        return int((t - self.start) // DAY)

    def office_level(self, t: float) -> float:
        """How busy the office is at `t`, 0..1: a smooth curve over office hours on workdays, a lunch dip, a low
        floor at night and on weekends."""
        day = self.day_of(t)
        hour = (t - self.day_start(day)) / HOUR
        if not self.is_workday(day):
            return 0.03
        begin, end = self.office
        if hour < begin - 1 or hour >= end + 2:
            return 0.03
        x = (hour - (begin - 1)) / (end + 2 - (begin - 1))
        level = math.sin(math.pi * x) ** 1.5
        if 12.0 <= hour < 13.0:
            level *= 0.6
        return max(0.03, level)

    def is_office_hours(self, t: float) -> bool:
        """Inside office hours of a workday."""
        day = self.day_of(t)
        hour = (t - self.day_start(day)) / HOUR
        return self.is_workday(day) and self.office[0] <= hour < self.office[1]

    def maintenance(self, day: int) -> list[tuple[float, float]]:
        """The maintenance windows that start on day `day`, as (start, end) packet times."""
        base = self.day_start(day)
        return [(base + at, base + at + length) for wd, at, length in self.windows if wd == self.weekday(day)]

    def in_maintenance(self, t: float) -> bool:
        """Inside a maintenance window (one that started today or yesterday)."""
        day = self.day_of(t)
        return any(a <= t < b for d in (day - 1, day) for a, b in self.maintenance(d))

    def shifts(self, day: int) -> list[float]:
        """The OT shift changes of a day, as packet times."""
        base = self.day_start(day)
        return [base + s for s in self.shift_offsets]

    def backup_time(self, day: int) -> float:
        """When the nightly backup starts on day `day`."""
        return self.day_start(day) + self.backup_offset
