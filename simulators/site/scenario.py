"""Scenarios: attack steps as data (YAML), injected into a simulated site at a chosen time, with ground truth.

    name: vpn-intrusion-ot
    description: ...
    actor: intruder@laptop-jsmith   # the intruder's machine on that VPN worker's address; or a site host's name
    day: 1                          # days after the profile's start
    time: "07:50"
    pace: 1                         # 10: every offset and every in-step delay ten times longer
    steps:
      - {step: new_hostname_logon, after: 0}
      - {step: modbus_setpoint_write, after: 900, targets: [plc-crah-01]}

Steps are the IT chain's (simulators/itgen/chain_steps.py, unchanged) and the OT steps (simulators/site/attacks.py).
Each step becomes one ground-truth row: (scenario, step, technique ids, actor, targets, t_start, t_end), t_start and
t_end being the packet times of the step's first and last frame, and for a step built around one write or command,
t_action, the packet time of that frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from simulators.itgen import chain_steps
from simulators.mixgen.wire import Host
from simulators.site.attacks import OT_STEPS, FollowUp, StepContext
from simulators.site.profile import ProfileError, describe_error, load_yaml, parse_hhmm

__all__ = ["STEPS", "Scenario", "StepSpec", "TruthRow", "load_scenario", "step_fn"]

StepFn = Callable[[StepContext, float, float, list[Host]], list[FollowUp]]


def _chain(fn: Callable[..., float]) -> StepFn:
    def run(ctx: StepContext, t: float, pace: float, targets: list[Host]) -> list[FollowUp]:
        fn(ctx.cap, ctx.chain, t)
        return []

    run.__doc__ = fn.__doc__
    return run


STEPS: dict[str, tuple[StepFn, tuple[str, ...]]] = {
    "new_hostname_logon": (_chain(chain_steps.new_hostname_logon), ("T0859", "T1078")),
    "ldap_recon": (_chain(chain_steps.ldap_recon), ("T1087.002", "T1069.002", "T1482", "T1018")),
    "nmap_service_probe": (_chain(chain_steps.nmap_probe), ("T0846", "T1046")),
    "tcp_scan_9401": (_chain(chain_steps.tcp_scan_9401), ("T0846", "T1046")),
    "rdp_scan": (_chain(chain_steps.rdp_scan), ("T0846", "T1046")),
    "udp_enumeration": (_chain(chain_steps.udp_enumeration), ("T0846", "T1046")),
    "reverse_dns_sweep": (_chain(chain_steps.reverse_sweep), ("T0846", "T1018")),
    "smb_bruteforce": (_chain(chain_steps.bruteforce), ("T1110.001", "T0812", "T1078.001")),
    "chain_modbus_write": (_chain(chain_steps.modbus_write), ("T0836", "T0855")),
    **OT_STEPS,
}
"""Every step a scenario may use: name -> (function, ATT&CK technique ids)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StepSpec(_Strict):
    """One step of a scenario: which, when (seconds after the scenario's start, before pacing), against what."""

    step: str
    after: float = Field(0.0, ge=0)
    targets: list[str] = Field(default_factory=list)

    @field_validator("step")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in STEPS:
            raise ValueError(f"unknown step {value!r} (known: {', '.join(sorted(STEPS))})")
        return value


class Scenario(_Strict):
    """A scenario: actor, start (day and time), pace and steps."""

    name: str = Field(min_length=1)
    description: str = ""
    actor: str = "intruder@laptop-jsmith"
    day: int = Field(1, ge=0)
    time: str = "07:50"
    pace: float = Field(1.0, gt=0, le=1000)
    steps: list[StepSpec] = Field(min_length=1)

    @field_validator("time")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        parse_hhmm(value)
        return value

    def offset(self) -> float:
        """Seconds after the profile's start at which the scenario begins."""
        return self.day * 86400.0 + parse_hhmm(self.time)


@dataclass
class TruthRow:
    """One ground-truth row: a scenario step (or a benign novelty, scenario "benign") and its packet-time span."""

    scenario: str
    step: str
    techniques: tuple[str, ...]
    actor: str
    actor_ip: str
    targets: tuple[str, ...]
    t_start: float
    t_end: float
    description: str = ""
    t_action: float | None = None  # the decisive frame (write, command) of a single-action step

    def to_dict(self) -> dict[str, object]:
        """The row as a JSON-ready dict."""
        d = asdict(self)
        d["techniques"], d["targets"] = list(self.techniques), list(self.targets)
        return d


def step_fn(name: str) -> tuple[StepFn, tuple[str, ...]]:
    """A step's function and technique ids."""
    return STEPS[name]


def load_scenario(path: str | Path, day: int | None = None, time: str | None = None, pace: float | None = None,
                  ) -> Scenario:  # fmt: skip
    """Read and validate a scenario file, with optional overrides of its day, time and pace."""
    data = load_yaml(path)
    for key, value in (("day", day), ("time", time), ("pace", pace)):
        if value is not None:
            data[key] = value
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = "\n  ".join(describe_error(e) for e in exc.errors())
        raise ProfileError(f"scenario {path}: {len(exc.errors())} problem(s):\n  {problems}") from None
