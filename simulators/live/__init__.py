"""The live half of the simulated site (issue 6): real pymodbus, bacpypes3 and mosquitto peers on loopback addresses,
each counting the writes and control commands it receives and who sent them. See simulators.live.site."""

from simulators.live.plan import SitePlan, small_plan
from simulators.live.procs import SiteError
from simulators.live.site import LiveSite, Write

__all__ = ["LiveSite", "SiteError", "SitePlan", "Write", "small_plan"]
