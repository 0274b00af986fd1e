"""The site's device models, made from a profile and a seed for both renderings of the site: the offline synthesis
(simulators.site.simulate writes their traffic into a pcap) and the live site (simulators.live serves the same
devices with pymodbus, bacpypes3 and mosquitto).

`site_models(profile, rng)` draws from `rng` in a fixed order (the layout, the PLCs' process streams, the SCADA
pollers' streams, the BACnet controllers), so that the same seed gives the same hosts, addresses, PLC identities and
process streams and BACnet instances in both; `live_models(profile, seed)` replays the draws `simulate()` makes for
that seed. The seeds of each model's stream are kept, so that a live device process can rebuild its own model.
"""

from __future__ import annotations

from dataclasses import dataclass
from random import Random

from simulators.site.bms import BmsDevice
from simulators.site.layout import Layout
from simulators.site.ot import Plc
from simulators.site.profile import SiteProfile
from simulators.site.schedule import Rhythm

__all__ = ["SiteModels", "live_models", "plc_vendor_index", "site_models"]


@dataclass
class SiteModels:
    """The laid-out site and its field-device models, with the seeds of their random streams."""

    layout: Layout
    rhythm: Rhythm
    plcs: list[Plc]
    plc_seeds: list[int]
    poller_seeds: list[int]  # one per SCADA/HMI host, in layout order
    devices: list[BmsDevice]
    device_seeds: list[int]
    brng: Random  # the BMS front end's stream, which continues after the controllers' draws


def plc_vendor_index(profile: SiteProfile, i: int) -> int:
    """The vendor profile index of the profile's i-th PLC (its `vendor`, else its position)."""
    vendor = profile.ot.plcs[i].vendor
    return vendor if vendor is not None else i


def site_models(profile: SiteProfile, rng: Random) -> SiteModels:
    """Lay out the site and make the PLC and BACnet controller models, drawing from `rng` in a fixed order."""
    rhythm = Rhythm(profile)
    layout = Layout(profile, Random(rng.getrandbits(64)))
    prng = Random(rng.getrandbits(64))
    plcs, plc_seeds = [], []
    for i, spec in enumerate(profile.ot.plcs):
        plc_seeds.append(prng.getrandbits(64))
        plcs.append(Plc(layout.hosts[spec.name], spec.kind, plc_vendor_index(profile, i), Random(plc_seeds[-1])))
    poller_seeds = [prng.getrandbits(64) for _ in layout.role("scada")]
    brng = Random(rng.getrandbits(64))
    devices, device_seeds = [], []
    for i, d in enumerate(profile.bms.devices):
        device_seeds.append(brng.getrandbits(64))
        devices.append(BmsDevice(layout.hosts[d.name], d.kind, i, Random(device_seeds[-1])))
    return SiteModels(layout, rhythm, plcs, plc_seeds, poller_seeds, devices, device_seeds, brng)


def live_models(profile: SiteProfile, seed: int) -> SiteModels:
    """The models `simulate(profile, ..., seed)` makes: the same hosts, identities and BACnet instances."""
    rng = Random(seed)
    rng.getrandbits(64)  # simulate() seeds its capture's stream first
    return site_models(profile, rng)
