"""A simulated data-center site for offline synthesis (`otwatch simulate`).

profile (YAML model) -> layout (hosts in zones) -> device models and traffic sources: ot (PLC process, SCADA
pollers), bms (BACnet controllers, front end), iot (MQTT devices, broker, subscribers), it (IT hosts, VPN workers);
schedule (diurnal rhythm, shifts, maintenance windows); novelty (benign new things); scenario + attacks (injected
steps with ground truth); capture (the streaming pcap writer with a packet clock); simulate (the hour loop).
"""

from __future__ import annotations

import sys
from pathlib import Path

from simulators.site.profile import ProfileError, SiteProfile, load_profile
from simulators.site.scenario import Scenario, load_scenario
from simulators.site.simulate import simulate

__all__ = ["ProfileError", "Scenario", "SiteProfile", "load_profile", "load_scenario", "run_simulate", "simulate"]


def run_simulate(profile: Path, days: int, seed: int, out: Path, scenarios: list[Path], at: str | None = None,
                 pace: float | None = None) -> int:  # fmt: skip
    """The `otwatch simulate` command: validate the inputs, simulate, print a summary; returns an exit code."""
    day: int | None = None
    time: str | None = None
    try:
        if at is not None:
            head, sep, time = at.partition("@")
            if not sep or not head.isdigit():
                raise ProfileError(f"--at {at!r}: expected DAY@HH:MM, e.g. 1@07:50")
            day = int(head)
        site = load_profile(profile)
        loaded = [load_scenario(p, day, time, pace) for p in scenarios]
        if days < 1:
            raise ProfileError("--days must be at least 1")
        summary = simulate(site, days, seed, out, loaded)
    except (ProfileError, KeyError, ValueError) as exc:
        print(f"otwatch: {exc}", file=sys.stderr)
        return 2
    hosts = sum(summary["hosts"].values())
    print(f"{summary['pcap']}: {summary['frames']:,} frames, {summary['bytes']:,} bytes, {days} day(s), "
          f"{hosts} hosts, {summary['steps']} ground-truth rows, {summary['seconds']:.1f} s")  # fmt: skip
    print(f"{summary['truth']}; zones for `otwatch replay --config`: {Path(out) / 'zones.yml'}")
    return 0
