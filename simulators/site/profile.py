"""The site profile: zones with subnets, the devices in them, the working rhythm and the benign novelty, read from
YAML and validated with pydantic; an error names every bad key (`plcs.2.kind: ...`, `zones.0.cidr: unknown key`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = ["ProfileError", "SiteProfile", "describe_error", "load_profile", "load_yaml", "parse_hhmm"]


class ProfileError(ValueError):
    """A profile or scenario file that cannot be used; the message names the file and every bad key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_hhmm(text: str) -> float:
    """Seconds after midnight of an "HH:MM" or "HH:MM:SS" time of day."""
    parts = text.split(":")
    if not 2 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{text!r} is not HH:MM")
    h, m, s = (int(p) for p in [*parts, "0"][:3])
    if h > 23 or m > 59 or s > 59:
        raise ValueError(f"{text!r} is not a time of day")
    return h * 3600.0 + m * 60.0 + s


class Zone(_Strict):
    """A network zone: name, one subnet, security domain and Purdue level."""

    name: str = Field(min_length=1)
    cidr: str
    domain: Literal["IT", "VPN", "DMZ", "OT", "BMS", "IoT"]
    purdue_level: float | None = Field(None, ge=0, le=5)

    @field_validator("cidr")
    @classmethod
    def _valid_cidr(cls, value: str) -> str:
        net = ipaddress.ip_network(value, strict=False)
        if net.version != 4 or net.num_addresses < 8:
            raise ValueError(f"{value!r} must be an IPv4 subnet of at least 8 addresses")
        return value


class Named(_Strict):
    """A host given by name, with an optional fixed address (else the next free one of its zone)."""

    name: str = Field(min_length=1)
    ip: str | None = None


class Plc(Named):
    """A PLC: what it runs (cooling loop or power distribution), and optionally which vendor profile (index)."""

    kind: Literal["cooling", "power"]
    vendor: int | None = Field(None, ge=0)


class OtSection(_Strict):
    """The OT control zone: PLCs, SCADA/HMI pollers and engineering workstations."""

    zone: str
    plcs: list[Plc] = Field(min_length=1)
    scada: list[Named] = Field(min_length=1)
    engineering: list[Named] = Field(default_factory=list)
    poll_seconds: float = Field(5.0, gt=0.2)


class BmsDevice(Named):
    """A BACnet controller: CRAH/CRAC unit, chiller, power meter or access-control panel."""

    kind: Literal["crah", "crac", "chiller", "power_meter", "access_control"]


class BmsSection(_Strict):
    """The BMS zone: controllers and the front end that polls them."""

    zone: str
    devices: list[BmsDevice] = Field(min_length=1)
    front_end: Named
    poll_seconds: float = Field(60.0, gt=1.0)
    operator_writes_per_day: int = Field(2, ge=0, le=100)


class IotSection(_Strict):
    """The IoT zone: cameras, sensors and gateways publishing to a broker, and the broker's subscribers."""

    zone: str
    broker: Named
    cameras: list[Named] = Field(default_factory=list)
    sensors: list[Named] = Field(default_factory=list)
    gateways: list[Named] = Field(default_factory=list)
    historian: Named
    vms: Named | None = None
    telemetry_seconds: float = Field(30.0, gt=1.0)
    snapshot_seconds: float = Field(600.0, gt=10.0)


class Server(Named):
    """An IT server by role."""

    role: Literal["dc", "file", "app", "db", "web", "backup"]


class ItSection(_Strict):
    """Corporate IT: servers (server room), workstations and admin hosts (office), and the DMZ."""

    server_zone: str
    office_zone: str
    servers: list[Server] = Field(min_length=1)
    workstations: int = Field(10, ge=1, le=1000)
    admins: list[Named] = Field(default_factory=list)
    dmz_zone: str | None = None
    dmz: list[Named] = Field(default_factory=list)

    @model_validator(mode="after")
    def _needs_dc_file_web(self) -> ItSection:
        roles = {s.role for s in self.servers}
        missing = {"dc", "file", "web"} - roles
        if missing:
            raise ValueError(f"servers lack role(s) {sorted(missing)}")
        return self


class VpnWorker(_Strict):
    """A remote worker on the VPN pool: laptop name, account and static address."""

    name: str = Field(min_length=1)
    user: str = Field(min_length=1)
    ip: str


class VpnSection(_Strict):
    """The VPN pool: its zone and the remote workers (all behind the concentrator's MAC)."""

    zone: str
    workers: list[VpnWorker] = Field(default_factory=list)


class Maintenance(_Strict):
    """A weekly maintenance window: weekday (0 = Monday), start time, length in hours."""

    weekday: int = Field(ge=0, le=6)
    start: str
    hours: float = Field(gt=0, le=24)

    @field_validator("start")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        parse_hhmm(value)
        return value


class Schedule(_Strict):
    """The site's rhythm: office hours and workdays, OT shift changes, maintenance windows."""

    office_hours: tuple[int, int] = (8, 18)
    workdays: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])
    shifts: list[str] = Field(default_factory=lambda: ["06:00", "14:00", "22:00"])
    maintenance: list[Maintenance] = Field(default_factory=list)
    backup_at: str = "01:00"

    @field_validator("shifts")
    @classmethod
    def _times(cls, value: list[str]) -> list[str]:
        for t in value:
            parse_hhmm(t)
        return value


class Novelty(_Strict):
    """A benign new thing on a given day and time: a camera onboarded, a firmware update, an engineer's writes."""

    kind: Literal["camera_onboarded", "firmware_update", "engineer_write_session", "bms_device_added"]
    day: int = Field(ge=0)
    time: str
    target: str | None = None
    name: str | None = None
    ip: str | None = None

    @field_validator("time")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        parse_hhmm(value)
        return value


class LiveSection(_Strict):
    """How the live site (`python -m simulators.live`) renders the profile: a subset and faster periods (optional).

    The offline synthesis ignores this section. Periods default to the profile's own (ot.poll_seconds, ...).
    """

    max_per_kind: int | None = Field(None, ge=1)  # at most N PLCs, BACnet controllers, cameras, sensors, ...
    poll_seconds: float | None = Field(None, gt=0.05)
    bms_poll_seconds: float | None = Field(None, gt=0.05)
    telemetry_seconds: float | None = Field(None, gt=0.05)
    write_every: int = Field(0, ge=0)  # an operator write by the HMI and the BMS front end every N cycles (0: none)
    command_every: int = Field(0, ge=0)  # a VMS camera command every N telemetry cycles (0: none)
    identify_every: int = Field(0, ge=0)  # the pollers and the front end identify again every N cycles (0: once)
    restart_seconds: float = Field(25.0, ge=0, le=600)  # how long a BACnet controller is silent after Reinitialize


class SiteProfile(_Strict):
    """A whole simulated site."""

    name: str = Field(min_length=1)
    start: datetime = datetime(2024, 6, 3, tzinfo=UTC)  # a Monday, midnight UTC
    domain: str = "corp.local"
    zones: list[Zone] = Field(min_length=1)
    ot: OtSection
    bms: BmsSection
    iot: IotSection
    it: ItSection
    vpn: VpnSection
    schedule: Schedule = Schedule()
    novelty: list[Novelty] = Field(default_factory=list)
    live: LiveSection = LiveSection()

    @model_validator(mode="after")
    def _zones_exist(self) -> SiteProfile:
        names = {z.name for z in self.zones}
        if len(names) != len(self.zones):
            raise ValueError("zone names must be unique")
        used = [("ot.zone", self.ot.zone), ("bms.zone", self.bms.zone), ("iot.zone", self.iot.zone),
                ("it.server_zone", self.it.server_zone), ("it.office_zone", self.it.office_zone),
                ("vpn.zone", self.vpn.zone)]  # fmt: skip
        if self.it.dmz_zone is not None:
            used.append(("it.dmz_zone", self.it.dmz_zone))
        for key, zone in used:
            if zone not in names:
                raise ValueError(f"{key}: no zone named {zone!r}")
        return self

    def start_ts(self) -> float:
        """The first second of the simulation (UTC epoch)."""
        start = self.start if self.start.tzinfo else self.start.replace(tzinfo=UTC)
        return start.timestamp()

    def zone(self, name: str) -> Zone:
        """The zone of that name."""
        return next(z for z in self.zones if z.name == name)


def describe_error(err: Mapping[str, Any]) -> str:
    """One validation problem as `dotted.key: message`."""
    path = ".".join(str(p) for p in err.get("loc", ())) or "(top level)"
    if err.get("type") == "extra_forbidden":
        return f"{path}: unknown key"
    msg = str(err.get("msg", "invalid"))
    msg = msg.removeprefix("Value error, ")
    return f"{path}: {msg}"


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML file's top-level mapping; ProfileError if it cannot be read or is not a mapping."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: the top level must be a mapping of keys")
    return data


def load_profile(path: str | Path) -> SiteProfile:
    """Read and validate a site profile; raise ProfileError naming every bad key."""
    data = load_yaml(path)
    try:
        return SiteProfile.model_validate(data)
    except ValidationError as exc:
        problems = "\n  ".join(describe_error(e) for e in exc.errors())
        raise ProfileError(f"profile {path}: {len(exc.errors())} problem(s):\n  {problems}") from None
