"""The webhook sink: one HTTP(S) POST of a JSON document per record, retried with exponential backoff.

A 2xx answer delivers the record. A connection error, a timeout, 408, 425, 429 or a 5xx answer is retried (backoff
`backoff_base` doubling up to `backoff_max`, `max_retries` times); any other answer (400, 401, 404...) will not
change by retrying: the record counts as failed at once. The connection is kept alive between records and opened
again after an error. Redirects are not followed. Authentication comes from files: a bearer token
(`bearer_token_file`) or basic auth (`username` and `password_file`); the Authorization header is never logged.
"""

from __future__ import annotations

import base64
import http.client
import ssl
from collections.abc import Callable
from urllib.parse import urlsplit

from appliance.export.sinks.base import PermanentSinkError, QueuedSink, Record, SinkError, log_stderr
from appliance.export.sinks.formats import dumps, ecs_document, json_document
from appliance.export.sinks.settings import WebhookSinkSettings

RETRY_STATUS = frozenset({408, 425, 429})


class WebhookSink(QueuedSink):
    """POSTs records to one URL from its own thread."""

    type = "webhook"

    def __init__(
        self,
        name: str,
        settings: WebhookSinkSettings,
        *,
        authorization: str | None,
        tls: ssl.SSLContext | None,
        version: str,
        log: Callable[[str], None] = log_stderr,
    ) -> None:
        self.settings = settings
        parts = urlsplit(settings.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._tls = tls if tls is not None or not self._https else ssl.create_default_context()
        self._version = version
        headers = {"User-Agent": f"otwatch/{version}", **settings.headers, "Content-Type": "application/json"}
        if authorization is not None:
            headers["Authorization"] = authorization
        self._headers = headers
        self._conn: http.client.HTTPConnection | None = None
        super().__init__(
            name, queue_size=settings.queue_size, max_retries=settings.max_retries,
            backoff_base=settings.backoff_base, backoff_max=settings.backoff_max, log=log,
        )  # fmt: skip

    def body(self, record: Record) -> bytes:
        """The request body in the configured format."""
        s = self.settings
        if s.format == "ecs":
            return dumps(ecs_document(record, s.sensor, self._version))
        return dumps(json_document(record, s.sensor))

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            timeout = self.settings.timeout
            if self._https:
                self._conn = http.client.HTTPSConnection(self._host, self._port, timeout=timeout, context=self._tls)
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        return self._conn

    def deliver(self, record: Record) -> None:
        """POST the record; raise SinkError on what a retry may fix, PermanentSinkError on the rest."""
        conn = self._connection()
        try:
            conn.request("POST", self._path, body=self.body(record), headers=self._headers)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.disconnect()
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else (str(exc) or type(exc).__name__)
            raise SinkError(f"{self._host}:{self._port}: {why}") from None
        status = response.status
        if response.will_close:
            self.disconnect()
        if 200 <= status < 300:
            return
        if status in RETRY_STATUS or status >= 500:
            raise SinkError(f"HTTP {status} {response.reason}")
        raise PermanentSinkError(f"HTTP {status} {response.reason} (not retried)")

    def disconnect(self) -> None:
        """Close the kept-alive connection."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def basic_authorization(username: str, password: str) -> str:
    """The Authorization header value of HTTP basic auth."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
