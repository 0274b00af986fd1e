"""The web endpoint's guard: basic auth against bcrypt hashes, the rate limit and the configured response headers.

Every refusal looks the same whatever was wrong: a missing header, a malformed one, an unknown user or a wrong
password all get `401 Unauthorized`, `WWW-Authenticate: Basic` and one fixed body. An unknown user is checked
against a decoy hash of the same cost, so that timing does not tell which users exist (as exporter-toolkit does).
bcrypt is slow on purpose (about 60 ms at cost 10), so a successful check is remembered: the cache key is an
HMAC, under a key made at start, of the user, the stored hash and the password, so neither a password nor a
reusable digest of it is kept. Failures are not cached (each costs a bcrypt run: that is what slows guessing).
Nothing here logs anything.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import bcrypt

from appliance.export.webconfig import WebSettings

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

UNAUTHORIZED_BODY = b"Unauthorized\n"
TOO_MANY_BODY = b"Too Many Requests\n"
BCRYPT_MAX_BYTES = 72  # bcrypt reads no further; Go and htpasswd ignore the rest the same way


class BasicAuth:
    """Checks `Authorization: Basic ...` values against bcrypt hashes, caching successful checks."""

    def __init__(self, users: Mapping[str, bytes], cache_size: int = 1024) -> None:
        self._users = dict(users)
        self._key = secrets.token_bytes(32)
        self._cache: OrderedDict[bytes, None] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()  # one bcrypt run at a time (CPU-bound), and the cache
        cost = max((int(h.split(b"$")[2]) for h in self._users.values()), default=10)
        self._decoy = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(cost))
        self.bcrypt_runs = 0  # how many bcrypt comparisons ran (a cached success runs none)

    def _cache_key(self, user: bytes, hashed: bytes, password: bytes) -> bytes:
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        for part in (user, hashed, password):
            mac.update(len(part).to_bytes(4, "big"))
            mac.update(part)
        return mac.digest()

    def check(self, authorization: str | None) -> bool:
        """True when the header names a configured user with the right password."""
        credentials = _parse_basic(authorization)
        if credentials is None:
            return False
        user, password = credentials
        try:
            name = user.decode("utf-8")
        except UnicodeDecodeError:
            name = None
        hashed = self._users.get(name) if name is not None else None
        known = hashed is not None
        target = hashed if hashed is not None else self._decoy
        key = self._cache_key(user, target, password)
        with self._lock:
            if known and key in self._cache:
                self._cache.move_to_end(key)
                return True
            self.bcrypt_runs += 1
            ok = bcrypt.checkpw(password[:BCRYPT_MAX_BYTES], target) and known
            if ok:
                self._cache[key] = None
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return ok


def _parse_basic(authorization: str | None) -> tuple[bytes, bytes] | None:
    """(user, password) from an `Authorization: Basic` value; None for anything else."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        # WSGI hands header values over as latin-1 text: back to the bytes that were sent
        decoded = base64.b64decode(token.strip().encode("latin-1"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return None
    user, sep, password = decoded.partition(b":")
    return (user, password) if sep else None


class RateLimit:
    """A token bucket: `burst` requests at once, then one per `interval` seconds."""

    def __init__(self, interval: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._burst = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """Take a token if there is one."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._last) / self._interval)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


def _plain(start_response: Callable[..., Any], status: str, body: bytes, extra: list[tuple[str, str]]) -> list[bytes]:
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), *extra]
    start_response(status, headers)
    return [body]


def guard(app: WsgiApp, settings: WebSettings, auth: BasicAuth | None = None) -> WsgiApp:
    """Wrap a WSGI app with the settings' rate limit, basic auth and response headers."""
    extra = list(settings.headers)
    names = {name.lower() for name, _ in extra}
    if auth is None and settings.users:
        auth = BasicAuth(settings.users)
    limit = RateLimit(settings.rate_interval, settings.rate_burst) if settings.rate_interval > 0 else None
    if not extra and auth is None and limit is None:
        return app

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Refuse, or pass the request on with the extra headers added to the answer."""

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            kept = [(k, v) for k, v in headers if k.lower() not in names]
            return start_response(status, kept + extra, exc_info)

        if limit is not None and not limit.allow():
            return _plain(start_response, "429 Too Many Requests", TOO_MANY_BODY, extra)
        if auth is not None and not auth.check(environ.get("HTTP_AUTHORIZATION")):
            challenge = [("WWW-Authenticate", "Basic"), *extra]
            return _plain(start_response, "401 Unauthorized", UNAUTHORIZED_BODY, challenge)
        return app(environ, start)

    return guarded
