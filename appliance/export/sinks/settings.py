"""The `sinks:` config section: where alerts and incidents are forwarded as they happen, one entry per sink.

Each entry has a `type` (jsonl, syslog, mqtt, webhook), the settings of that type, and the common `name`,
`min_severity` and `include` keys. A bad key is named by its path (`sinks.1.port`), as everywhere in the config:
the entry is validated by the model of its type, so pydantic's error paths stay those of the YAML file. Secrets
(passwords, bearer tokens, TLS keys) are never config values, only the paths of files read at start.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationInfo,
    field_validator,
    model_validator,
)

from appliance.alert import SEVERITIES
from appliance.mqtt_options import password_needs_user, protocol_text, tls_default_port

SINK_TYPES = ("jsonl", "syslog", "mqtt", "webhook")
FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7, "uucp": 8,
    "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14, "solaris-cron": 15,
    "local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}  # fmt: skip
Include = Literal["alerts", "incidents"]
INCLUDE: tuple[Include, ...] = ("alerts", "incidents")
TOPIC_FIELDS = ("sensor", "kind", "severity", "detector")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def default_sensor_name() -> str:
    """The sensor's name when a sink does not set one: the host name."""
    return socket.gethostname() or "otwatch"


class TlsSettings(_Strict):
    """TLS towards a receiver: the CA that signs its certificate, an optional client certificate."""

    ca_file: Path | None = None  # None: the system's trusted CAs
    cert_file: Path | None = None
    key_file: Path | None = None  # None: the key is in cert_file
    server_name: str | None = None  # the name to verify (default: the host the sink connects to)
    insecure_skip_verify: bool = False

    @field_validator("key_file")
    @classmethod
    def _key_needs_cert(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and info.data.get("cert_file") is None:
            raise ValueError("a client key needs tls.cert_file too")
        return value


class SinkBase(_Strict):
    """The keys every sink has: its name, what it forwards, and how its queue and retries behave."""

    name: str | None = None  # default: "<type>-<position in the list>"
    min_severity: Literal["low", "medium", "high", "critical"] = "low"
    include: list[Include] = Field(default_factory=lambda: list(INCLUDE))
    queue_size: int = Field(1000, ge=1, le=1_000_000)  # records waiting for a network sink; more are dropped
    max_retries: int = Field(5, ge=0, le=1000)  # attempts after the first before a record counts as failed
    backoff_base: float = Field(1.0, gt=0, le=3600)  # seconds before the first retry, doubled at each next one
    backoff_max: float = Field(60.0, gt=0, le=86400)
    timeout: float = Field(5.0, gt=0, le=600)  # seconds for one connect or send

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise ValueError("1-64 letters, digits, '.', '_' or '-' (it becomes a Prometheus label value)")
        return value

    @field_validator("include")
    @classmethod
    def _some_include(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("forward at least one of alerts, incidents")
        return value

    @field_validator("backoff_max")
    @classmethod
    def _max_not_below_base(cls, value: float, info: ValidationInfo) -> float:
        base = info.data.get("backoff_base")
        if base is not None and value < base:
            raise ValueError(f"must be at least backoff_base ({base})")
        return value

    def wants(self, kind: str, severity: str) -> bool:
        """Whether this sink forwards a record of this kind ("alert"/"incident") and severity."""
        if f"{kind}s" not in self.include:
            return False
        rank = SEVERITIES.index(severity) if severity in SEVERITIES else 0
        return rank >= SEVERITIES.index(self.min_severity)


class JsonlSinkSettings(SinkBase):
    """A JSON-lines file, rotated by size and/or age, keeping `keep` rotated files (path.1 newest)."""

    type: Literal["jsonl"]
    path: Path
    format: Literal["json", "ecs"] = "json"
    max_bytes: int = Field(10 * 1024 * 1024, ge=0)  # 0: no rotation by size
    max_age: float = Field(0.0, ge=0)  # seconds a file is written before it is rotated; 0: no rotation by age
    keep: int = Field(5, ge=1, le=1000)
    sensor: str = Field(default_factory=default_sensor_name, min_length=1)


class SyslogSinkSettings(SinkBase):
    """Syslog (RFC 5424) over UDP, or TCP with octet-counting framing (RFC 6587), optionally in TLS (RFC 5425)."""

    type: Literal["syslog"]
    host: str = Field(min_length=1)
    port: int = Field(514, ge=1, le=65535)  # 6514 by default with tls
    protocol: Literal["udp", "tcp"] = "udp"
    format: Literal["cef", "ecs"] = "cef"
    tls: TlsSettings | None = None
    facility: str | int = "local0"
    hostname: str = Field(default_factory=lambda: socket.gethostname() or "-")  # no DNS lookup at start
    app_name: str = Field("otwatch", min_length=1, max_length=48)
    sensor: str = Field(default_factory=default_sensor_name, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _tls_port(cls, data: Any) -> Any:
        if isinstance(data, dict) and "port" not in data and data.get("tls") is not None:
            return {**data, "port": 6514}
        return data

    @field_validator("tls")
    @classmethod
    def _tls_needs_tcp(cls, value: TlsSettings | None, info: ValidationInfo) -> TlsSettings | None:
        if value is not None and info.data.get("protocol") != "tcp":
            raise ValueError("TLS needs protocol: tcp (syslog over DTLS is not supported)")
        return value

    @field_validator("facility")
    @classmethod
    def _valid_facility(cls, value: str | int) -> str | int:
        if (isinstance(value, int) and not 0 <= value <= 23) or (isinstance(value, str) and value not in FACILITIES):
            raise ValueError(f"a facility number 0-23 or one of {', '.join(FACILITIES)}")
        return value

    @field_validator("hostname", "app_name")
    @classmethod
    def _printable_ascii(cls, value: str) -> str:
        if not value or len(value) > 255 or any(not 33 <= ord(ch) <= 126 for ch in value):
            raise ValueError("1-255 printable US-ASCII characters without spaces (RFC 5424)")
        return value

    @property
    def facility_code(self) -> int:
        """The facility as its number."""
        return self.facility if isinstance(self.facility, int) else FACILITIES[self.facility]


class MqttSinkSettings(SinkBase):
    """Publishing to a monitoring broker (a fleet-wide view): never the site broker of the read-only session."""

    type: Literal["mqtt"]
    host: str = Field(min_length=1)
    port: int = Field(1883, ge=1, le=65535)  # 8883 by default with tls
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    client_id: str = Field(
        default_factory=lambda: f"otwatch-sink-{default_sensor_name()}", min_length=1, max_length=65535
    )
    username: str | None = None
    password_file: Path | None = None  # read at start; never logged
    tls: TlsSettings | None = None
    keepalive: int = Field(60, ge=5, le=65535)
    topic: str = "otwatch/{sensor}/{kind}"
    qos: Literal[1, 2] = 1
    retain: bool = False
    format: Literal["json", "ecs"] = "json"
    sensor: str = Field(default_factory=default_sensor_name, min_length=1)

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
        password_needs_user(value, info.data.get("username"), "username")
        return value

    @field_validator("topic")
    @classmethod
    def _valid_topic(cls, value: str) -> str:
        if not value or "#" in value or "+" in value or "\x00" in value:
            raise ValueError("a topic name: not empty, no '#', '+' or NUL")
        for field in re.findall(r"{([^{}]*)}", value):
            if field not in TOPIC_FIELDS:
                known = ", ".join(f"{{{f}}}" for f in TOPIC_FIELDS)
                raise ValueError(f"unknown placeholder {{{field}}}; known: {known}")
        if re.sub(r"{[^{}]*}", "", value).count("{") or re.sub(r"{[^{}]*}", "", value).count("}"):
            raise ValueError("unbalanced '{' or '}'")
        return value


class WebhookSinkSettings(SinkBase):
    """An HTTP(S) POST of one JSON document per record, retried with exponential backoff."""

    type: Literal["webhook"]
    url: str
    format: Literal["json", "ecs"] = "json"
    headers: dict[str, str] = Field(default_factory=dict)  # plain headers; secrets go in the *_file keys
    bearer_token_file: Path | None = None
    username: str | None = None
    password_file: Path | None = None
    tls: TlsSettings | None = None
    sensor: str = Field(default_factory=default_sensor_name, min_length=1)

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("an http:// or https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("no credentials in the URL: use username and password_file (or bearer_token_file)")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", key):
                raise ValueError(f"{key!r} is not an HTTP header name")
            if key.lower() == "authorization":
                raise ValueError("no Authorization header in the config: use bearer_token_file or password_file")
            if any(ch in text for ch in "\r\n\x00"):
                raise ValueError(f"header {key}: the value has a line break or NUL")
        return value

    @model_validator(mode="after")
    def _one_auth(self) -> WebhookSinkSettings:
        if self.password_file is not None and not self.username:
            raise ValueError("a password_file needs username too")
        if self.bearer_token_file is not None and self.username:
            raise ValueError("give either bearer_token_file or username/password_file, not both")
        if self.tls is not None and urlsplit(self.url).scheme != "https":
            raise ValueError("tls settings need an https:// url")
        return self


SinkSettings = JsonlSinkSettings | SyslogSinkSettings | MqttSinkSettings | WebhookSinkSettings
_MODELS: dict[str, type[SinkBase]] = {
    "jsonl": JsonlSinkSettings,
    "syslog": SyslogSinkSettings,
    "mqtt": MqttSinkSettings,
    "webhook": WebhookSinkSettings,
}


class _Kind(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["jsonl", "syslog", "mqtt", "webhook"]


def _validate_sink(data: Any) -> SinkBase:
    """Validate one entry with the model of its type, so that error paths are those of the entry itself."""
    if isinstance(data, SinkBase):
        return data
    if not isinstance(data, dict):
        raise ValueError(f"a sink is a mapping with a type ({', '.join(SINK_TYPES)})")
    kind = _Kind.model_validate(data).type  # a missing or unknown type is reported as sinks.N.type
    return _MODELS[kind].model_validate(data)


def _unique_names(sinks: list[Any]) -> list[Any]:
    seen: set[str] = set()
    for i, sink in enumerate(sinks):
        name = sink_name(sink, i)
        if name in seen:
            raise ValueError(f"two sinks are named {name!r}: give each a distinct name")
        seen.add(name)
    return sinks


def sink_name(sink: SinkBase, index: int) -> str:
    """The sink's name: the configured one, else `<type>-<index>`."""
    return sink.name or f"{getattr(sink, 'type', 'sink')}-{index}"


SinkEntry = Annotated[SinkSettings, PlainValidator(_validate_sink)]
SinkList = Annotated[list[SinkEntry], AfterValidator(_unique_names)]
