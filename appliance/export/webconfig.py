"""The web configuration file, in the format of Prometheus exporters (exporter-toolkit's `web-config.yml`).

    tls_server_config:      cert_file/key_file (or inline cert/key), client_auth_type, client_ca_file (or client_ca),
                            client_allowed_sans, min_version, max_version, cipher_suites, prefer_server_cipher_suites,
                            curve_preferences
    http_server_config:     http2 (accepted; otwatch serves HTTP/1.1), headers (the five exporter-toolkit allows)
    basic_auth_users:       user name -> bcrypt hash
    rate_limit:             interval (a duration: 100ms, 1s), burst

The file is read once at start (no reload) and checked whole: every bad key or value is named by its path
(`tls_server_config.min_version: ...`), certificates and keys are loaded then, and nothing secret (a key, a hash)
is ever shown. Relative paths are taken from the file's directory, as exporter-toolkit does. What Python's `ssl`
cannot do is refused by name: the client_auth_type values that accept an unverified client certificate
(RequestClientCert, RequireAnyClientCert) and more than one curve in curve_preferences.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from appliance.config import describe_error

CLIENT_AUTH_TYPES = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
UNVERIFIED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert")  # Go accepts any certificate; ssl cannot

TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}

# Go's names (crypto/tls CipherSuites()) -> OpenSSL's, for TLS 1.0-1.2
CIPHER_SUITES = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",  # Go's older alias
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
# TLS 1.3 suites are not configurable in Go either: accepted, and TLS 1.3 keeps its defaults
TLS13_SUITES = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")

CURVES = {"CurveP256": "prime256v1", "CurveP384": "secp384r1", "CurveP521": "secp521r1", "X25519": "X25519"}

# the response headers exporter-toolkit lets a user set, with their allowed values (None: any)
HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}

_BCRYPT = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
_DURATION = re.compile(r"(?:(\d+)(ms|s|m|h|d|w|y))+")
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_SECRET_KEYS = ("basic_auth_users", "tls_server_config.key")


class WebConfigError(ValueError):
    """A web configuration file that cannot be used; the message names the file and each bad key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsServerConfig(_Strict):
    """`tls_server_config`: the server's certificate and the TLS policy."""

    cert_file: str = ""
    key_file: str = ""
    cert: str = ""
    key: str = ""
    client_ca_file: str = ""
    client_ca: str = ""
    client_auth_type: str = "NoClientCert"
    client_allowed_sans: list[str] = []
    min_version: str = "TLS12"
    max_version: str = "TLS13"
    cipher_suites: list[str] = []
    prefer_server_cipher_suites: bool = True
    curve_preferences: list[str] = []


class HttpServerConfig(_Strict):
    """`http_server_config`: HTTP/2 (accepted, not served) and extra response headers."""

    http2: bool = True
    headers: dict[str, str] = {}


class RateLimitConfig(_Strict):
    """`rate_limit`: at most one request per `interval` beyond a `burst`; interval 0 turns it off."""

    interval: str | float = 0
    burst: int = Field(0, ge=0)


class WebConfigFile(_Strict):
    """The whole file."""

    tls_server_config: TlsServerConfig | None = None
    http_server_config: HttpServerConfig = HttpServerConfig()
    basic_auth_users: dict[str, str] | None = None
    rate_limit: RateLimitConfig = RateLimitConfig()


@dataclass(frozen=True)
class WebSettings:
    """A checked web configuration, ready to serve with (the defaults: plain HTTP, no auth)."""

    source: Path | None = None
    tls: ssl.SSLContext | None = None
    client_auth_type: str = "NoClientCert"
    client_allowed_sans: frozenset[str] = frozenset()
    users: Mapping[str, bytes] = field(default_factory=lambda: MappingProxyType({}))
    headers: tuple[tuple[str, str], ...] = ()
    rate_interval: float = 0.0
    rate_burst: int = 0

    def describe(self) -> str:
        """A short account of what is on, for the start-up line (never a secret)."""
        parts = []
        if self.tls is not None:
            parts.append("TLS" if self.client_auth_type == "NoClientCert" else f"TLS ({self.client_auth_type})")
        if self.users:
            parts.append(f"basic auth ({len(self.users)} user{'s' if len(self.users) != 1 else ''})")
        if self.rate_interval > 0:
            parts.append("rate limit")
        return ", ".join(parts) or "plain HTTP, no auth"


def parse_duration(text: str | float) -> float:
    """Seconds in a Prometheus duration (`100ms`, `1s`, `1m30s`) or a plain number of seconds."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        if text < 0:
            raise ValueError("must not be negative")
        return float(text)
    value = str(text).strip()
    if value == "0":
        return 0.0
    if not _DURATION.fullmatch(value):
        raise ValueError(f"{value!r} is not a duration (e.g. 100ms, 1s, 1m30s)")
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(value))


def _check_users(users: Mapping[str, str] | None, problems: list[str]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name, hashed in (users or {}).items():
        match = _BCRYPT.fullmatch(hashed.strip())
        if match is None:
            problems.append(f"basic_auth_users.{name}: not a bcrypt hash (make one with `htpasswd -nBC 10 \"\"`)")
        elif not 4 <= int(match.group(1)) <= 31:
            problems.append(f"basic_auth_users.{name}: bcrypt cost must be 4 to 31")
        elif ":" in name:
            problems.append(f"basic_auth_users.{name}: a user name cannot contain ':' (basic auth splits on it)")
        else:
            out[name] = hashed.strip().encode("ascii")
    return out


def _check_headers(headers: Mapping[str, str], problems: list[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for name, value in headers.items():
        allowed = HEADERS.get(name, ())
        if allowed == ():
            problems.append(f"http_server_config.headers.{name}: this header cannot be set (only {', '.join(HEADERS)})")
        elif allowed is not None and value not in allowed:
            problems.append(f"http_server_config.headers.{name}: must be one of {', '.join(allowed)} (got {value!r})")
        elif value:  # blank: unset, as in exporter-toolkit
            out.append((name, value))
    return tuple(out)


def _resolve(base: Path, name: str) -> str:
    return str(base / name) if name and not os.path.isabs(name) else name


def _readable(key: str, path: str) -> str:
    if not os.access(path, os.R_OK):
        reason = "no such file" if not os.path.exists(path) else "permission denied"
        raise WebConfigError(f"tls_server_config.{key}: cannot read {path} ({reason})")
    return path


def _load_certificate(ctx: ssl.SSLContext, tls: TlsServerConfig, base: Path) -> None:
    """Load the server certificate and key (files, or inline PEM); raise WebConfigError naming the key."""

    def no_password() -> str:
        raise WebConfigError("tls_server_config.key_file: the key is encrypted; give an unencrypted key")

    cert_key = "cert_file" if tls.cert_file else "cert"
    key_key = "key_file" if tls.key_file else "key"
    with tempfile.TemporaryDirectory(prefix="otwatch-tls-") as tmp:  # ssl loads a chain from files only
        paths = []
        for key, name, text in ((cert_key, tls.cert_file, tls.cert), (key_key, tls.key_file, tls.key)):
            if name:
                paths.append(_readable(key, _resolve(base, name)))
                continue
            path = os.path.join(tmp, key)
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as f:
                f.write(text)
            paths.append(path)
        try:
            ctx.load_cert_chain(paths[0], paths[1], password=no_password)
        except ssl.SSLError as exc:
            raise WebConfigError(
                f"tls_server_config.{cert_key}/{key_key}: not a PEM certificate and its key ({exc.reason})"
            ) from None


def _load_client_ca(ctx: ssl.SSLContext, tls: TlsServerConfig, base: Path) -> None:
    try:
        if tls.client_ca_file:
            ctx.load_verify_locations(cafile=_readable("client_ca_file", _resolve(base, tls.client_ca_file)))
        elif tls.client_ca:
            ctx.load_verify_locations(cadata=tls.client_ca)
        else:  # as Go does with no ClientCAs: the system's trusted CAs
            ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    except ssl.SSLError as exc:
        key = "client_ca_file" if tls.client_ca_file else "client_ca"
        raise WebConfigError(f"tls_server_config.{key}: no PEM CA certificate in it ({exc.reason})") from None


def _check_tls(tls: TlsServerConfig, problems: list[str]) -> None:
    """Check the TLS policy values (everything but loading the files)."""
    p = "tls_server_config"
    if tls.cert_file and tls.cert:
        problems.append(f"{p}: give cert_file or cert, not both")
    if tls.key_file and tls.key:
        problems.append(f"{p}: give key_file or key, not both")
    if tls.client_ca_file and tls.client_ca:
        problems.append(f"{p}: give client_ca_file or client_ca, not both")
    if not (tls.cert_file or tls.cert):
        problems.append(f"{p}.cert_file: missing (the server certificate)")
    if not (tls.key_file or tls.key):
        problems.append(f"{p}.key_file: missing (the server certificate's key)")
    if tls.client_auth_type in UNVERIFIED_CLIENT_AUTH:
        problems.append(
            f"{p}.client_auth_type: {tls.client_auth_type} accepts client certificates without verifying them, which "
            "Python's ssl cannot do; use RequireAndVerifyClientCert (or VerifyClientCertIfGiven) with client_ca_file"
        )
    elif tls.client_auth_type not in CLIENT_AUTH_TYPES:
        problems.append(
            f"{p}.client_auth_type: must be one of {', '.join(CLIENT_AUTH_TYPES)} (got {tls.client_auth_type!r})"
        )
    if tls.client_allowed_sans and tls.client_auth_type != "RequireAndVerifyClientCert":
        problems.append(f"{p}.client_allowed_sans: needs client_auth_type RequireAndVerifyClientCert")
    for key in ("min_version", "max_version"):
        if getattr(tls, key) not in TLS_VERSIONS:
            problems.append(f"{p}.{key}: must be one of {', '.join(TLS_VERSIONS)} (got {getattr(tls, key)!r})")
    low, high = TLS_VERSIONS.get(tls.min_version), TLS_VERSIONS.get(tls.max_version)
    if low is not None and high is not None and low > high:
        problems.append(f"{p}.max_version: {tls.max_version} is below min_version {tls.min_version}")
    for i, name in enumerate(tls.cipher_suites):
        if name not in CIPHER_SUITES and name not in TLS13_SUITES:
            problems.append(f"{p}.cipher_suites[{i}]: unknown or insecure cipher suite {name!r} (Go's names)")
    for i, name in enumerate(tls.curve_preferences):
        if name not in CURVES:
            problems.append(f"{p}.curve_preferences[{i}]: must be one of {', '.join(CURVES)} (got {name!r})")
    if len(tls.curve_preferences) > 1:
        problems.append(f"{p}.curve_preferences: Python's ssl sets one curve only; list one")


def _check_sans(sans: list[str], problems: list[str]) -> frozenset[str]:
    out = set()
    for i, san in enumerate(sans):
        if not san:
            problems.append(f"tls_server_config.client_allowed_sans[{i}]: empty")
        try:
            out.add(str(ipaddress.ip_address(san)))
        except ValueError:
            out.add(san)
    return frozenset(out)


def _tls_context(tls: TlsServerConfig, base: Path) -> ssl.SSLContext:
    """The server SSLContext for a checked `tls_server_config` (loads the files)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = TLS_VERSIONS[tls.min_version]
    ctx.maximum_version = TLS_VERSIONS[tls.max_version]
    legacy = [CIPHER_SUITES[name] for name in tls.cipher_suites if name in CIPHER_SUITES]
    if legacy:
        try:
            ctx.set_ciphers(":".join(dict.fromkeys(legacy)))
        except ssl.SSLError:
            raise WebConfigError(
                "tls_server_config.cipher_suites: none of these is available in this OpenSSL"
            ) from None
    if tls.prefer_server_cipher_suites:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    if tls.curve_preferences:
        ctx.set_ecdh_curve(CURVES[tls.curve_preferences[0]])
    _load_certificate(ctx, tls, base)
    ctx.verify_mode = CLIENT_AUTH_TYPES[tls.client_auth_type]
    if ctx.verify_mode != ssl.CERT_NONE:
        _load_client_ca(ctx, tls, base)
    return ctx


def check_web_config(data: Any, base: Path) -> WebSettings:
    """Check parsed YAML (a mapping) and build the settings; raise WebConfigError listing every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise WebConfigError(f"the top level must be a mapping of keys, not {type(data).__name__}")
    try:
        parsed = WebConfigFile.model_validate(data)
    except ValidationError as exc:
        raise WebConfigError("\n  ".join(describe_error(e, _SECRET_KEYS) for e in exc.errors())) from None
    problems: list[str] = []
    users = _check_users(parsed.basic_auth_users, problems)
    headers = _check_headers(parsed.http_server_config.headers, problems)
    try:
        interval = parse_duration(parsed.rate_limit.interval)
    except ValueError as exc:
        problems.append(f"rate_limit.interval: {exc}")
        interval = 0.0
    if interval > 0 and parsed.rate_limit.burst < 1:
        problems.append("rate_limit.burst: must be at least 1 when rate_limit.interval is set")
    tls = parsed.tls_server_config
    sans: frozenset[str] = frozenset()
    if tls is not None and not tls.model_fields_set:
        tls = None  # an empty section: plain HTTP, as in exporter-toolkit
    if tls is not None:
        _check_tls(tls, problems)
        sans = _check_sans(tls.client_allowed_sans, problems)
    if problems:
        raise WebConfigError("\n  ".join(problems))
    return WebSettings(
        tls=_tls_context(tls, base) if tls is not None else None,
        client_auth_type=tls.client_auth_type if tls is not None else "NoClientCert",
        client_allowed_sans=sans,
        users=MappingProxyType(users),
        headers=headers,
        rate_interval=interval,
        rate_burst=parsed.rate_limit.burst,
    )


def load_web_config(path: Path) -> WebSettings:
    """Read and check a `web-config.yml`; raise WebConfigError naming the file and every bad key."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise WebConfigError(f"web config {path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise WebConfigError(f"web config {path}: not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise WebConfigError(f"web config {path}: not valid YAML: {exc}") from None
    try:
        settings = check_web_config(data, Path(path).resolve().parent)
    except WebConfigError as exc:
        raise WebConfigError(f"web config {path}:\n  {exc}") from None
    return dataclasses.replace(settings, source=Path(path))
