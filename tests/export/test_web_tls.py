"""The endpoint over real TLS on 127.0.0.1: certificates made with the openssl CLI, requests with http.client/ssl.

TLS only, mTLS with RequireAndVerifyClientCert (no certificate, a certificate of another CA, the right one),
client_allowed_sans, VerifyClientCertIfGiven, TLS versions, cipher suites, inline PEM, response headers.
Helpers here (`make_pki`, `serve`, `request`) are shared by the other test_web* and test_api* modules.
"""

from __future__ import annotations

import http.client
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter

from appliance.export.api import ApiSources
from appliance.export.web import WebServer, start_web
from appliance.export.webconfig import WebSettings, load_web_config

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


@dataclass(frozen=True)
class Pki:
    """A test CA, a server certificate for 127.0.0.1/localhost, two clients of that CA and one of another CA."""

    folder: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path  # SAN DNS:prometheus.test
    client_key: Path
    other_cert: Path  # same CA, SAN DNS:other.test
    other_key: Path
    rogue_cert: Path  # another CA, SAN DNS:prometheus.test
    rogue_key: Path


def _openssl(folder: Path, *args: str) -> None:
    subprocess.run([OPENSSL, *args], cwd=folder, check=True, capture_output=True, timeout=30)


def _leaf(folder: Path, name: str, ca: str, san: str, usage: str) -> None:
    _openssl(folder, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}",
             "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-addext", f"subjectAltName={san}",
             "-addext", "basicConstraints=critical,CA:FALSE", "-addext", f"extendedKeyUsage={usage}")  # fmt: skip


def make_pki(folder: Path) -> Pki:
    """Make the certificates with the openssl CLI (EC P-256 keys, valid two days)."""
    folder.mkdir(parents=True, exist_ok=True)
    for ca in ("ca", "rogue-ca"):
        _openssl(folder, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2", "-subj", f"/CN=otwatch {ca}")  # fmt: skip
    _leaf(folder, "server", "ca", "DNS:localhost,IP:127.0.0.1", "serverAuth")
    _leaf(folder, "client", "ca", "DNS:prometheus.test", "clientAuth")
    _leaf(folder, "other", "ca", "DNS:other.test", "clientAuth")
    _leaf(folder, "rogue", "rogue-ca", "DNS:prometheus.test", "clientAuth")
    f = folder
    return Pki(f, f / "ca.pem", f / "server.pem", f / "server.key", f / "client.pem", f / "client.key",
               f / "other.pem", f / "other.key", f / "rogue.pem", f / "rogue.key")  # fmt: skip


@pytest.fixture(scope="module", name="pki")
def pki_fixture(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """One set of certificates for a test module."""
    return make_pki(tmp_path_factory.mktemp("pki"))


def write_web_config(folder: Path, data: dict[str, Any], name: str = "web-config.yml") -> Path:
    """Write a web config file (YAML) and return its path."""
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def registry() -> CollectorRegistry:
    """A registry with one known sample."""
    reg = CollectorRegistry()
    Counter("demo_things", "Things.", registry=reg).inc(3)
    return reg


@contextmanager
def serve(settings: WebSettings, api: ApiSources | None = None) -> Iterator[WebServer]:
    """Run the endpoint on 127.0.0.1 with these settings; stop it afterwards."""
    server = start_web("127.0.0.1:0", registry(), settings=settings, api=api)
    try:
        yield server
    finally:
        server.stop()


def client_context(pki: Pki, cert: str | None = None, **versions: ssl.TLSVersion) -> ssl.SSLContext:
    """A client context trusting the test CA, with one of the client certificates (client, other, rogue)."""
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    if cert is not None:
        ctx.load_cert_chain(str(pki.folder / f"{cert}.pem"), str(pki.folder / f"{cert}.key"))
    for name, value in versions.items():
        setattr(ctx, name, value)
    return ctx


@dataclass
class Answer:
    """An HTTP answer: status, headers (lower-case names), body; `cipher` for TLS."""

    status: int
    headers: dict[str, str]
    body: bytes
    cipher: tuple[str, str, int] | None = None


def request(server: WebServer, path: str, ctx: ssl.SSLContext | None = None, headers: dict[str, str] | None = None,
            method: str = "GET") -> Answer:  # fmt: skip
    """One request to the server (HTTPS when a context is given); raises on a refused handshake."""
    conn: http.client.HTTPConnection
    if ctx is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=10)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.connect()
        cipher = conn.sock.cipher() if isinstance(conn.sock, ssl.SSLSocket) else None
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body, cipher)
    finally:
        conn.close()


def tls_config(pki: Pki, **extra: Any) -> dict[str, Any]:
    """A tls_server_config section with the test server certificate."""
    return {"cert_file": str(pki.server_cert), "key_file": str(pki.server_key), **extra}


REFUSED = (ssl.SSLError, ConnectionError, http.client.RemoteDisconnected, OSError)


def test_tls_serves_metrics_health_and_api(pki: Pki, tmp_path: Path) -> None:
    settings = load_web_config(write_web_config(tmp_path, {"tls_server_config": tls_config(pki)}))
    with serve(settings, ApiSources(lambda: ())) as server:
        assert server.url == f"https://127.0.0.1:{server.port}"
        ctx = client_context(pki)
        metrics = request(server, "/metrics", ctx)
        assert metrics.status == 200 and b"demo_things_total 3.0" in metrics.body
        assert request(server, "/-/healthy", ctx).body == b"otwatch is Healthy.\n"
        assert request(server, "/api/v1/assets", ctx).status == 200
        with pytest.raises(ssl.SSLCertVerificationError):  # a client that does not trust the CA
            request(server, "/metrics", ssl.create_default_context())
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):  # plain HTTP to a TLS port
            request(server, "/metrics")
        assert request(server, "/metrics", ctx).status == 200  # still serving after the failures


def test_mtls_requires_a_certificate_of_the_client_ca(pki: Pki, tmp_path: Path) -> None:
    config = {"tls_server_config": tls_config(pki, client_auth_type="RequireAndVerifyClientCert",
                                              client_ca_file=str(pki.ca))}  # fmt: skip
    with serve(load_web_config(write_web_config(tmp_path, config))) as server:
        with pytest.raises(REFUSED):
            request(server, "/metrics", client_context(pki))  # no certificate
        with pytest.raises(REFUSED):
            request(server, "/metrics", client_context(pki, "rogue"))  # signed by another CA
        good = request(server, "/metrics", client_context(pki, "client"))
        assert good.status == 200 and b"demo_things_total 3.0" in good.body
        assert request(server, "/metrics", client_context(pki, "other")).status == 200


def test_client_allowed_sans_admits_only_the_listed_names(pki: Pki, tmp_path: Path) -> None:
    config = {"tls_server_config": tls_config(pki, client_auth_type="RequireAndVerifyClientCert",
                                              client_ca_file=str(pki.ca), client_allowed_sans=["prometheus.test"])}
    with serve(load_web_config(write_web_config(tmp_path, config))) as server:  # fmt: skip
        assert request(server, "/metrics", client_context(pki, "client")).status == 200
        with pytest.raises(REFUSED):
            request(server, "/metrics", client_context(pki, "other"))  # right CA, SAN not listed
        with pytest.raises(REFUSED):
            request(server, "/metrics", client_context(pki, "rogue"))  # listed SAN, wrong CA


def test_verify_client_cert_if_given(pki: Pki, tmp_path: Path) -> None:
    config = {"tls_server_config": tls_config(pki, client_auth_type="VerifyClientCertIfGiven",
                                              client_ca_file=str(pki.ca))}  # fmt: skip
    with serve(load_web_config(write_web_config(tmp_path, config))) as server:
        assert request(server, "/metrics", client_context(pki)).status == 200
        assert request(server, "/metrics", client_context(pki, "client")).status == 200
        with pytest.raises(REFUSED):
            request(server, "/metrics", client_context(pki, "rogue"))


def test_min_version_and_cipher_suites(pki: Pki, tmp_path: Path) -> None:
    tls13 = {"tls_server_config": tls_config(pki, min_version="TLS13")}
    with serve(load_web_config(write_web_config(tmp_path, tls13, "a.yml"))) as server:
        with pytest.raises(ssl.SSLError):
            request(server, "/metrics", client_context(pki, maximum_version=ssl.TLSVersion.TLSv1_2))
        answer = request(server, "/metrics", client_context(pki))
        assert answer.cipher is not None and answer.cipher[1] == "TLSv1.3"
    suite = "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
    tls12 = {"tls_server_config": tls_config(pki, max_version="TLS12", cipher_suites=[suite],
                                             curve_preferences=["CurveP256"])}  # fmt: skip
    with serve(load_web_config(write_web_config(tmp_path, tls12, "b.yml"))) as server:
        answer = request(server, "/metrics", client_context(pki))
        assert answer.status == 200
        assert answer.cipher is not None and answer.cipher[:2] == ("ECDHE-ECDSA-AES256-GCM-SHA384", "TLSv1.2")
        only_chacha = client_context(pki)
        only_chacha.set_ciphers("ECDHE-ECDSA-CHACHA20-POLY1305")
        only_chacha.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(ssl.SSLError):
            request(server, "/metrics", only_chacha)


def test_inline_certificate_and_key(pki: Pki, tmp_path: Path) -> None:
    config = {"tls_server_config": {"cert": pki.server_cert.read_text(), "key": pki.server_key.read_text()}}
    with serve(load_web_config(write_web_config(tmp_path, config))) as server:
        assert request(server, "/metrics", client_context(pki)).status == 200


def test_configured_headers_on_every_answer(pki: Pki, tmp_path: Path) -> None:
    headers = {"X-Frame-Options": "deny", "X-Content-Type-Options": "nosniff",
               "Strict-Transport-Security": "max-age=31536000", "Content-Security-Policy": ""}  # fmt: skip
    config = {"tls_server_config": tls_config(pki), "http_server_config": {"http2": True, "headers": headers}}
    with serve(load_web_config(write_web_config(tmp_path, config)), ApiSources(lambda: ())) as server:
        ctx = client_context(pki)
        for path in ("/metrics", "/-/healthy", "/api/v1/assets", "/api/v1/nope", "/nope"):
            answer = request(server, path, ctx)
            assert answer.headers["x-frame-options"] == "deny", path
            assert answer.headers["x-content-type-options"] == "nosniff", path
            assert answer.headers["strict-transport-security"] == "max-age=31536000", path
            assert "content-security-policy" not in answer.headers  # blank: unset
