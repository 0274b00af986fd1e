"""The HTTP endpoint: listen address parsing, /metrics, /-/healthy, /-/ready, stop()."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter

from appliance.export.web import parse_listen, start_web


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("demo_things", "Things.", registry=registry).inc(3)
    return registry


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_parse_listen() -> None:
    assert parse_listen(":9847") == ("", 9847)
    assert parse_listen("0.0.0.0:9847") == ("0.0.0.0", 9847)
    assert parse_listen("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_listen("[::1]:9847") == ("::1", 9847)
    assert parse_listen("[::]:9847") == ("::", 9847)
    assert parse_listen("localhost:9847") == ("localhost", 9847)
    for bad in ("9847", "host:", "host:port", ":70000", "::1:9847", ""):
        with pytest.raises(ValueError):
            parse_listen(bad)


def test_metrics_health_ready_and_unknown_paths() -> None:
    ready = {"value": False}
    server = start_web("127.0.0.1:0", _registry(), ready_fn=lambda: ready["value"])
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert server.url == base
        status, text = _get(base + "/metrics")
        assert status == 200 and "demo_things_total 3.0" in text
        assert _get(base + "/-/healthy") == (200, "otwatch is Healthy.\n")
        assert _get(base + "/-/ready") == (503, "otwatch is not ready.\n")
        ready["value"] = True
        assert _get(base + "/-/ready") == (200, "otwatch is Ready.\n")
        assert _get(base + "/nope")[0] == 404
        request = urllib.request.Request(base + "/-/healthy", method="POST", data=b"")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=10)
        assert err.value.code == 405
    finally:
        server.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback on this host")
def test_ipv6_listen_address() -> None:
    server = start_web("[::1]:0", _registry())
    try:
        assert server.url == f"http://[::1]:{server.port}"
        status, text = _get(server.url + "/metrics")
        assert status == 200 and "demo_things_total 3.0" in text
    finally:
        server.stop()
