"""The YAML configuration: schema, defaults and validation that names the bad key or value by its path."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from appliance.baseline.settings import BaselineSettings
from appliance.detectors.settings import DetectorSettings
from appliance.export.sinks.settings import SinkList
from appliance.incidents.settings import IncidentSettings
from appliance.mqtt_options import password_needs_user, protocol_text, tls_default_port

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


class ZonePolicyRule(_Strict):
    """Traffic allowed between two zones: `from` and `to` are zone names or "*", `protocols` names ("*": any)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_zone: str = Field(alias="from", min_length=1)
    to_zone: str = Field(alias="to", min_length=1)
    protocols: list[str] = Field(min_length=1)

    @field_validator("protocols")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [p.strip().lower() for p in value]


class WebConfig(_Strict):
    """The HTTP endpoint serving /metrics."""

    listen_address: str = DEFAULT_LISTEN
    config_file: Path | None = None  # TLS and basic auth: a web-config.yml as Prometheus exporters read (docs/web.md)

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


class BrokerTlsConfig(_Strict):
    """TLS towards the MQTT broker: the CA that signs its certificate, an optional client certificate."""

    ca_file: Path | None = None  # None: the system's trusted CAs
    cert_file: Path | None = None
    key_file: Path | None = None  # None: the key is in cert_file
    insecure_skip_verify: bool = False

    @field_validator("key_file")
    @classmethod
    def _key_needs_cert(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and info.data.get("cert_file") is None:
            raise ValueError("a client key needs broker.tls.cert_file too")
        return value


def _default_client_id() -> str:
    return f"otwatch-{socket.gethostname()}"


def _valid_filter(topic: str) -> str:
    """Check an MQTT topic filter: `#` only as the last level, `+` only as a whole level."""
    if not topic:
        raise ValueError("a topic filter cannot be empty")
    levels = topic.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise ValueError(f"{topic!r}: '#' must be a whole level and the last one")
        if "+" in level and level != "+":
            raise ValueError(f"{topic!r}: '+' must be a whole level")
    return topic


class BrokerConfig(_Strict):
    """A read-only session with the site's MQTT broker (subscribe only, never publish)."""

    host: str = Field(min_length=1)
    port: int = Field(1883, ge=1, le=65535)  # default 8883 when tls is set
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    client_id: str = Field(default_factory=_default_client_id, min_length=1, max_length=65535)
    username: str | None = None
    password_file: Path | None = None  # read at start; the password is never logged or shown
    tls: BrokerTlsConfig | None = None
    keepalive: int = Field(60, ge=5, le=65535)
    reconnect_min_seconds: int = Field(1, ge=1, le=3600)
    reconnect_max_seconds: int = Field(60, ge=1, le=86400)
    topics: list[str] = Field(default_factory=lambda: ["#", "$SYS/#"], min_length=1)
    qos: int = Field(2, ge=0, le=2)  # the highest QoS asked for: a message shows min(publisher's QoS, this)

    @model_validator(mode="before")
    @classmethod
    def _tls_port(cls, data: Any) -> Any:
        return tls_default_port(data)

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_text(cls, value: Any) -> Any:
        return protocol_text(value)

    @field_validator("password_file")
    @classmethod
    def _password_needs_user(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        password_needs_user(value, info.data.get("username"), "broker.username")
        return value

    @field_validator("reconnect_max_seconds")
    @classmethod
    def _max_not_below_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("reconnect_min_seconds")
        if low is not None and value < low:
            raise ValueError(f"must be at least broker.reconnect_min_seconds ({low})")
        return value

    @field_validator("topics")
    @classmethod
    def _valid_topics(cls, value: list[str]) -> list[str]:
        for topic in value:
            _valid_filter(topic)
        return value


class Config(_Strict):
    """The whole otwatch configuration."""

    state_dir: Path = DEFAULT_STATE_DIR
    log_dir: Path | None = None
    uid_seed: int = 0
    # the protocols decoded, by decoder name (default: every one); the others' traffic is still in conn.jsonl
    protocols: list[str] | None = None
    capture: CaptureConfig = CaptureConfig()
    flows: FlowConfig = FlowConfig()
    zones: list[ZoneConfig] = []
    # which zone pairs may speak which protocols; when set, traffic between two zones that no rule allows is alerted
    zone_policy: list[ZonePolicyRule] = []
    web: WebConfig = WebConfig()
    inventory: InventoryConfig = InventoryConfig()
    metrics: MetricsConfig = MetricsConfig()
    broker: BrokerConfig | None = None
    detectors: DetectorSettings = DetectorSettings()
    baseline: BaselineSettings = BaselineSettings()
    sinks: SinkList = []  # alert forwarding (docs/sinks.md)
    incidents: IncidentSettings = IncidentSettings()

    @field_validator("protocols")
    @classmethod
    def _known_protocols(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        from protocols import DECODERS  # (here: the decoders import the model, not the configuration)

        known = sorted({d.name for d in DECODERS})
        names = [p.strip().lower() for p in value]
        for name in names:
            if name not in known:
                raise ValueError(f"{name!r} is not a decoded protocol (known: {', '.join(known)})")
        return names

    @field_validator("zone_policy")
    @classmethod
    def _policy_names_zones(cls, value: list[ZonePolicyRule], info: ValidationInfo) -> list[ZonePolicyRule]:
        names = {z.name for z in info.data.get("zones", [])}
        for i, rule in enumerate(value):
            for key, name in (("from", rule.from_zone), ("to", rule.to_zone)):
                if name != "*" and name not in names:
                    known = ", ".join(sorted(names)) or "none configured"
                    raise ValueError(f"rule {i}: {key}: {name!r} is not a zone name (zones: {known}; or \"*\")")
        return value


def parse_listen_address(value: str) -> tuple[str, int]:
    """Split a Prometheus-style listen address (`:9847`, `127.0.0.1:9847`, `[::1]:9847`) into host and port."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT (e.g. ':9847', '127.0.0.1:9847', '[::1]:9847')")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port_text)


def describe_error(err: Mapping[str, Any], secret: tuple[str, ...] = ()) -> str:
    """One pydantic error as `dotted.key: what is wrong (got value)`; the value is left out under `secret` keys."""
    path = ".".join(str(p) for p in err.get("loc", ())) or "(top level)"
    if err.get("type") == "extra_forbidden":
        return f"{path}: unknown key"
    msg = str(err.get("msg", "invalid"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if secret and path.startswith(secret):
        return f"{path}: {msg}"
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
        problems = "\n  ".join(describe_error(e) for e in exc.errors())
        raise ConfigError(f"config {path}: {len(exc.errors())} problem(s):\n  {problems}") from None
