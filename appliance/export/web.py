"""The HTTP endpoint: /metrics (classic text, OpenMetrics when the Accept header asks), /-/healthy, /-/ready, and
the read-only JSON API under /api/v1/ (appliance/export/api.py) when it is given its sources.

Served by a threading WSGI server on a background thread. The listen address is in Prometheus form: `:9847`
(every interface, IPv6 and IPv4 when the host has IPv6), `127.0.0.1:9847`, `[::1]:9847`, `localhost:9847`;
port 0 picks a free port (see `WebServer.port`). TLS (with client certificates), basic auth, response headers and a
rate limit come from a web config file in the exporter-toolkit format (appliance/export/webconfig.py): the TLS
handshake runs on the request's thread, not the accepting one, so a slow client holds up nobody else.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import socketserver
import ssl
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from prometheus_client import make_wsgi_app
from prometheus_client.registry import Collector

from appliance.export.api import API_PREFIX, ApiSources, make_api_app
from appliance.export.webauth import BasicAuth, guard
from appliance.export.webconfig import WebSettings

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def parse_listen(listen: str) -> tuple[str, int]:
    """Split `host:port` (`:9847`, `0.0.0.0:9847`, `[::1]:9847`) into host (brackets removed) and port."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"{listen!r} is not HOST:PORT (e.g. ':9847', '127.0.0.1:9847', '[::1]:9847')")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{listen!r}: write an IPv6 address in brackets, e.g. '[::1]:9847'")
    return host, int(port_text)


HANDSHAKE_TIMEOUT = 10.0  # seconds a client has to finish the TLS handshake
REQUEST_TIMEOUT = 60.0  # seconds of silence before a connection is dropped


class _QuietHandler(WSGIRequestHandler):
    timeout = REQUEST_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing: a scrape every few seconds is not news (and a request line may carry secrets)."""


def _peer_sans(cert: dict[str, Any]) -> set[str]:
    """The subject alternative names of a verified peer certificate (IP addresses normalised)."""
    out = set()
    for kind, value in cert.get("subjectAltName", ()):
        if kind == "IP Address":
            with contextlib.suppress(ValueError):
                value = str(ipaddress.ip_address(value.strip()))
        out.add(value)
    return out


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    dual_stack = False
    tls: ssl.SSLContext | None = None
    allowed_sans: frozenset[str] = frozenset()

    def get_request(self) -> tuple[Any, Any]:
        """Accept a connection; with TLS, wrap it (the handshake waits for the request's own thread)."""
        sock, address = self.socket.accept()
        if self.tls is None:
            return sock, address
        try:
            return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address
        except (OSError, ValueError):
            sock.close()
            raise

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Run the TLS handshake and the client-certificate SAN check, then serve the request."""
        if self.tls is not None:
            try:
                request.settimeout(HANDSHAKE_TIMEOUT)
                request.do_handshake()
            except (OSError, ValueError):
                return  # a failed handshake (no/bad client certificate, plain HTTP, timeout): just close
            if self.allowed_sans and not _peer_sans(request.getpeercert() or {}) & self.allowed_sans:
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that broke mid-request is not worth a traceback; anything else is reported."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of the address; dual-stack for the `::` wildcard."""
        if self.dual_stack:
            with contextlib.suppress(OSError, AttributeError):
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host) or "localhost"
        self.server_port = int(port)
        self.setup_environ()


class _Server6(_Server):
    address_family = socket.AF_INET6


class _DualStackServer(_Server6):
    dual_stack = True


def _bind(host: str, port: int) -> _Server:
    if not host:  # every interface: IPv6 and IPv4 on one socket when the host has IPv6
        if socket.has_ipv6:
            with contextlib.suppress(OSError):
                return _DualStackServer(("::", port), _QuietHandler)
        return _Server(("0.0.0.0", port), _QuietHandler)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, address = infos[0][0], infos[0][4]
    server_class = _Server6 if family == socket.AF_INET6 else _Server
    return server_class((str(address[0]), int(address[1])), _QuietHandler)


def _text(start_response: Callable[..., Any], status: str, body: str) -> list[bytes]:
    data = body.encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data)))]
    start_response(status, headers)
    return [data]


def make_app(
    registry: Collector, ready_fn: Callable[[], bool] | None = None, *, api: ApiSources | None = None
) -> WsgiApp:
    """The WSGI application: /metrics from `registry`, health and readiness, the JSON API, a short index page."""
    from appliance.cli import otwatch_version
    from appliance.export.openapi import build_openapi

    metrics = make_wsgi_app(registry)
    api_app = make_api_app(api, lambda: build_openapi(otwatch_version())) if api is not None else None
    index = "otwatch sensor: /metrics /-/healthy /-/ready" + (" /api/v1/openapi.json" if api else "") + "\n"

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Route one request."""
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return metrics(environ, start_response)
        if api_app is not None and path.startswith(API_PREFIX):
            return api_app(environ, start_response)
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _text(start_response, "405 Method Not Allowed", "use GET\n")
        if path == "/-/healthy":
            return _text(start_response, "200 OK", "otwatch is Healthy.\n")
        if path == "/-/ready":
            if ready_fn is None or ready_fn():
                return _text(start_response, "200 OK", "otwatch is Ready.\n")
            return _text(start_response, "503 Service Unavailable", "otwatch is not ready.\n")
        if path == "/":
            return _text(start_response, "200 OK", index)
        return _text(start_response, "404 Not Found", "not found\n")

    return app


class WebServer:
    """A running HTTP endpoint on a background thread; `stop()` ends it."""

    def __init__(self, server: _Server, auth: BasicAuth | None = None) -> None:
        self._server = server
        self.host = str(server.server_address[0])
        self.port = int(server.server_address[1])
        self.auth = auth  # the basic-auth checker, when users are configured
        self._thread = threading.Thread(target=server.serve_forever, name="otwatch-web", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The base URL of the endpoint (wildcard hosts shown as loopback)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        scheme = "https" if self._server.tls is not None else "http"
        return f"{scheme}://[{host}]:{self.port}" if ":" in host else f"{scheme}://{host}:{self.port}"

    def stop(self) -> None:
        """Stop serving, close the socket and wait for the thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_web(
    listen: str,
    registry: Collector,
    ready_fn: Callable[[], bool] | None = None,
    *,
    settings: WebSettings | None = None,
    api: ApiSources | None = None,
) -> WebServer:
    """Serve /metrics, /-/healthy, /-/ready (and the API) on `listen` (Prometheus `host:port` form) in the background.

    `settings` (from `load_web_config`) adds TLS, basic auth, headers and the rate limit; without it, plain HTTP.
    """
    settings = settings or WebSettings()
    host, port = parse_listen(listen)
    server = _bind(host, port)
    server.tls = settings.tls
    server.allowed_sans = settings.client_allowed_sans
    if settings.tls is not None:
        server.base_environ["HTTPS"] = "on"
    auth = BasicAuth(settings.users) if settings.users else None
    server.set_app(guard(make_app(registry, ready_fn, api=api), settings, auth))
    return WebServer(server, auth)
