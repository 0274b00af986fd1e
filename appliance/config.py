"""The YAML configuration: schema, defaults and validation that names the bad key or value by its path."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_STATE_DIR = Path("/var/lib/otwatch")
DEFAULT_LISTEN = ":9847"


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and each bad key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CaptureConfig(_Strict):
    """Live capture settings."""

    interface: str | None = None
    snaplen: int = Field(65535, ge=64, le=262144)
    promiscuous: bool = True
    ring_block_size: int = Field(1 << 20, ge=4096)
    ring_block_count: int = Field(64, ge=2, le=4096)


class FlowConfig(_Strict):
    """FlowTable limits and idle timeouts (seconds of packet time)."""

    max_flows: int = Field(100_000, ge=16)  # about 1.4 KB each: 140 MB at the bound
    tcp_idle_timeout: float = Field(300.0, gt=0)
    udp_idle_timeout: float = Field(60.0, gt=0)
    icmp_idle_timeout: float = Field(60.0, gt=0)
    max_out_of_order_bytes: int = Field(256 * 1024, ge=0)


class ZoneConfig(_Strict):
    """A network zone: its CIDRs, security domain and Purdue level."""

    name: str = Field(min_length=1)
    cidrs: list[str] = Field(min_length=1)
    domain: Literal["IT", "VPN", "DMZ", "OT", "BMS", "IoT"]
    purdue_level: float | None = Field(None, ge=0, le=5)

    @field_validator("cidrs")
    @classmethod
    def _valid_cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(f"{cidr!r} is not an IP network ({exc})") from None
        return value


class WebConfig(_Strict):
    """The HTTP endpoint serving /metrics."""

    listen_address: str = DEFAULT_LISTEN

    @field_validator("listen_address")
    @classmethod
    def _valid_listen(cls, value: str) -> str:
        parse_listen_address(value)
        return value


class InventoryConfig(_Strict):
    """Asset inventory rules."""

    router_mac_threshold: int = Field(8, ge=2)
    save_interval: float = Field(30.0, gt=0)


class MetricsConfig(_Strict):
    """Prometheus exposition limits."""

    max_asset_series: int = Field(5000, ge=0)


class Config(_Strict):
    """The whole otwatch configuration."""

    state_dir: Path = DEFAULT_STATE_DIR
    log_dir: Path | None = None
    uid_seed: int = 0
    capture: CaptureConfig = CaptureConfig()
    flows: FlowConfig = FlowConfig()
    zones: list[ZoneConfig] = []
    web: WebConfig = WebConfig()
    inventory: InventoryConfig = InventoryConfig()
    metrics: MetricsConfig = MetricsConfig()


def parse_listen_address(value: str) -> tuple[str, int]:
    """Split a Prometheus-style listen address (`:9847`, `127.0.0.1:9847`, `[::1]:9847`) into host and port."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT (e.g. ':9847', '127.0.0.1:9847', '[::1]:9847')")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port_text)


def _describe(err: Mapping[str, Any]) -> str:
    path = ".".join(str(p) for p in err.get("loc", ())) or "(top level)"
    if err.get("type") == "extra_forbidden":
        return f"{path}: unknown key"
    msg = str(err.get("msg", "invalid"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return f"{path}: {msg} (got {err.get('input')!r})"


def load_config(path: Path | None) -> Config:
    """Read and validate a YAML config file (None: the defaults); raise ConfigError naming every bad key."""
    if path is None:
        return Config()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config {path}: cannot read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: the top level must be a mapping of keys, not {type(data).__name__}")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = "\n  ".join(_describe(e) for e in exc.errors())
        raise ConfigError(f"config {path}: {len(exc.errors())} problem(s):\n  {problems}") from None
