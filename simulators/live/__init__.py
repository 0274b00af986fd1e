"""The live half of the simulated site (issue 6): the profile's devices as real pymodbus, bacpypes3 and mosquitto
peers on loopback addresses or in network namespaces, each counting the writes and control commands it receives and
who sent them. See simulators.live.site (LiveSite), simulators.live.profile_plan (plan_from_profile) and
docs/simulator.md."""

from simulators.live.plan import SitePlan, small_plan
from simulators.live.procs import SiteError
from simulators.live.profile_plan import PlanError, plan_from_profile
from simulators.live.site import LiveSite, Write

__all__ = ["LiveSite", "PlanError", "SiteError", "SitePlan", "Write", "plan_from_profile", "small_plan"]
