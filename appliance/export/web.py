"""The HTTP endpoint: /metrics (classic text, OpenMetrics when the Accept header asks), /-/healthy, /-/ready.

Served by a threading WSGI server on a background thread. The listen address is in Prometheus form: `:9847`
(every interface, IPv6 and IPv4 when the host has IPv6), `127.0.0.1:9847`, `[::1]:9847`, `localhost:9847`;
port 0 picks a free port (see `WebServer.port`).
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from prometheus_client import make_wsgi_app
from prometheus_client.registry import Collector

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


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing: a scrape every few seconds is not news."""


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    dual_stack = False

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


def make_app(registry: Collector, ready_fn: Callable[[], bool] | None = None) -> WsgiApp:
    """The WSGI application: /metrics from `registry`, health and readiness, a short index page."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Route one request."""
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return metrics(environ, start_response)
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _text(start_response, "405 Method Not Allowed", "use GET\n")
        if path == "/-/healthy":
            return _text(start_response, "200 OK", "otwatch is Healthy.\n")
        if path == "/-/ready":
            if ready_fn is None or ready_fn():
                return _text(start_response, "200 OK", "otwatch is Ready.\n")
            return _text(start_response, "503 Service Unavailable", "otwatch is not ready.\n")
        if path == "/":
            return _text(start_response, "200 OK", "otwatch sensor: /metrics /-/healthy /-/ready\n")
        return _text(start_response, "404 Not Found", "not found\n")

    return app


class WebServer:
    """A running HTTP endpoint on a background thread; `stop()` ends it."""

    def __init__(self, server: _Server) -> None:
        self._server = server
        self.host = str(server.server_address[0])
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(target=server.serve_forever, name="otwatch-web", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The base URL of the endpoint (wildcard hosts shown as loopback)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def stop(self) -> None:
        """Stop serving, close the socket and wait for the thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_web(listen: str, registry: Collector, ready_fn: Callable[[], bool] | None = None) -> WebServer:
    """Serve /metrics, /-/healthy and /-/ready on `listen` (Prometheus `host:port` form) in the background."""
    host, port = parse_listen(listen)
    server = _bind(host, port)
    server.set_app(make_app(registry, ready_fn))
    return WebServer(server)
