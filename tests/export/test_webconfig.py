"""The web config file: exporter-toolkit's format accepted as node_exporter users write it; every bad key or value
named by its path; nothing secret in a message; `otwatch run` refuses a bad file at start with exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from appliance.config import load_config
from appliance.export.webconfig import WebConfigError, load_web_config, parse_duration
from tests.export.test_web_tls import (
    Pki,
    client_context,
    pki_fixture,  # noqa: F401  (the `pki` fixture)
    request,
    serve,
    tls_config,
    write_web_config,
)

ROOT = Path(__file__).resolve().parents[2]
HASH = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()


def test_a_node_exporter_web_config_is_taken_as_it_is(pki: Pki, tmp_path: Path) -> None:
    """Relative paths from the file's folder; every documented key of exporter-toolkit's format."""
    for name in ("ca.pem", "server.pem", "server.key"):
        (tmp_path / name).write_bytes((pki.folder / name).read_bytes())
    (tmp_path / "web-config.yml").write_text(f"""
tls_server_config:
  cert_file: server.pem
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.pem
  client_allowed_sans: ["prometheus.test"]
  min_version: TLS12
  max_version: TLS13
  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]
  prefer_server_cipher_suites: true
  curve_preferences: [X25519]
http_server_config:
  http2: true
  headers:
    X-Content-Type-Options: nosniff
basic_auth_users:
  prometheus: {HASH}
rate_limit:
  interval: 0
""")
    settings = load_web_config(tmp_path / "web-config.yml")
    assert settings.tls is not None and settings.client_auth_type == "RequireAndVerifyClientCert"
    assert settings.client_allowed_sans == {"prometheus.test"} and set(settings.users) == {"prometheus"}
    assert settings.headers == (("X-Content-Type-Options", "nosniff"),) and settings.rate_interval == 0
    assert settings.describe() == "TLS (RequireAndVerifyClientCert), basic auth (1 user)"
    with serve(settings) as server:
        import base64

        auth = {"Authorization": "Basic " + base64.b64encode(b"prometheus:pw").decode()}
        assert request(server, "/metrics", client_context(pki, "client"), auth).status == 200


def test_empty_file_and_empty_tls_section_mean_plain_http(tmp_path: Path) -> None:
    for text in ("", "tls_server_config:\n", "tls_server_config: {}\nbasic_auth_users: {}\n"):
        (tmp_path / "w.yml").write_text(text)
        settings = load_web_config(tmp_path / "w.yml")
        assert settings.tls is None and not settings.users and settings.describe() == "plain HTTP, no auth"


def _problems(tmp_path: Path, data: Any) -> str:
    path = tmp_path / "bad.yml"
    path.write_text(data) if isinstance(data, str) else write_web_config(tmp_path, data, "bad.yml")
    with pytest.raises(WebConfigError) as err:
        load_web_config(path)
    message = str(err.value)
    assert message.startswith(f"web config {path}")
    return message


BAD: list[tuple[str, Any, str]] = [
    ("unknown top key", {"tls_config": {}}, "tls_config: unknown key"),
    ("unknown tls key", {"tls_server_config": {"certfile": "x"}}, "tls_server_config.certfile: unknown key"),
    ("version", {"tls_server_config": {"min_version": "TLS14"}}, "tls_server_config.min_version: must be one of"),
    ("inverted versions", {"tls_server_config": {"min_version": "TLS13", "max_version": "TLS12"}},
     "tls_server_config.max_version: TLS12 is below min_version TLS13"),
    ("unverified client certs", {"tls_server_config": {"client_auth_type": "RequireAnyClientCert"}},
     "tls_server_config.client_auth_type: RequireAnyClientCert accepts client certificates without verifying"),
    ("request client cert", {"tls_server_config": {"client_auth_type": "RequestClientCert"}},
     "tls_server_config.client_auth_type: RequestClientCert"),
    ("auth type", {"tls_server_config": {"client_auth_type": "Maybe"}}, "tls_server_config.client_auth_type: must"),
    ("cipher", {"tls_server_config": {"cipher_suites": ["TLS_AES_128_GCM_SHA256", "TLS_RSA_WITH_RC4_128_SHA"]}},
     "tls_server_config.cipher_suites[1]: unknown or insecure cipher suite 'TLS_RSA_WITH_RC4_128_SHA'"),
    ("curve", {"tls_server_config": {"curve_preferences": ["P256"]}}, "tls_server_config.curve_preferences[0]:"),
    ("two curves", {"tls_server_config": {"curve_preferences": ["X25519", "CurveP256"]}},
     "tls_server_config.curve_preferences: Python's ssl sets one curve only"),
    ("sans without verification", {"tls_server_config": {"client_allowed_sans": ["a"]}},
     "tls_server_config.client_allowed_sans: needs client_auth_type RequireAndVerifyClientCert"),
    ("no cert", {"tls_server_config": {"min_version": "TLS12"}}, "tls_server_config.cert_file: missing"),
    ("no key", {"tls_server_config": {"cert_file": "a.pem"}}, "tls_server_config.key_file: missing"),
    ("both", {"tls_server_config": {"cert_file": "a", "cert": "b", "key_file": "k"}},
     "tls_server_config: give cert_file or cert, not both"),
    ("missing file", {"tls_server_config": {"cert_file": "nope.pem", "key_file": "nope.key"}},
     "tls_server_config.cert_file: cannot read"),
    ("header", {"http_server_config": {"headers": {"Content-Type": "x"}}},
     "http_server_config.headers.Content-Type: this header cannot be set"),
    ("header value", {"http_server_config": {"headers": {"X-Frame-Options": "allow"}}},
     "http_server_config.headers.X-Frame-Options: must be one of deny, sameorigin (got 'allow')"),
    ("http2", {"http_server_config": {"http2": "sometimes"}}, "http_server_config.http2: Input should be a valid"),
    ("hash", {"basic_auth_users": {"alice": "plaintext-password"}}, "basic_auth_users.alice: not a bcrypt hash"),
    ("users list", {"basic_auth_users": ["alice"]}, "basic_auth_users: Input should be a valid dictionary"),
    ("duration", {"rate_limit": {"interval": "soon", "burst": 1}}, "rate_limit.interval: 'soon' is not a duration"),
    ("burst", {"rate_limit": {"interval": "1s"}}, "rate_limit.burst: must be at least 1"),
    ("not a mapping", "- a\n- b\n", "the top level must be a mapping"),
    ("not yaml", "a: [\n", "not valid YAML"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "data", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_keys_and_values_are_named_by_their_path(tmp_path: Path, case: str, data: Any, expected: str) -> None:
    assert expected in _problems(tmp_path, data)


def test_every_problem_is_listed_and_no_secret_shown(tmp_path: Path) -> None:
    secret_key = "-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n"
    message = _problems(tmp_path, {
        "basic_auth_users": {"alice": "hunter2-not-a-hash", "bob": HASH},
        "tls_server_config": {"cert": "not a cert", "key": secret_key, "min_version": "SSL3"},
    })  # fmt: skip
    assert "basic_auth_users.alice" in message and "tls_server_config.min_version" in message
    assert "hunter2" not in message and "TOPSECRET" not in message and HASH not in message
    typed = _problems(tmp_path, {"basic_auth_users": {"alice": 12345678}})
    assert "basic_auth_users.alice" in typed and "12345678" not in typed


def test_certificate_problems_found_at_load(pki: Pki, tmp_path: Path) -> None:
    swapped = {"tls_server_config": {"cert_file": str(pki.server_cert), "key_file": str(pki.client_key)}}
    assert "tls_server_config.cert_file/key_file: not a PEM certificate and its key" in _problems(tmp_path, swapped)
    encrypted = tmp_path / "enc.key"
    subprocess.run(["openssl", "pkey", "-in", str(pki.server_key), "-aes256", "-passout", "pass:x", "-out",
                    str(encrypted)], check=True, capture_output=True)  # fmt: skip
    locked = {"tls_server_config": {"cert_file": str(pki.server_cert), "key_file": str(encrypted)}}
    assert "tls_server_config.key_file: the key is encrypted" in _problems(tmp_path, locked)
    no_ca = {"tls_server_config": tls_config(pki, client_auth_type="RequireAndVerifyClientCert",
                                             client_ca_file=str(pki.server_key))}  # fmt: skip
    assert "tls_server_config.client_ca_file: no PEM CA certificate in it" in _problems(tmp_path, no_ca)


def test_parse_duration() -> None:
    assert parse_duration("100ms") == pytest.approx(0.1)
    assert parse_duration("1m30s") == 90 and parse_duration(0) == 0 and parse_duration("0") == 0
    for bad in ("1x", "", "-1s", "s"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_the_config_file_key(tmp_path: Path) -> None:
    (tmp_path / "otwatch.yml").write_text("web:\n  listen_address: '127.0.0.1:9847'\n  config_file: /etc/web.yml\n")
    assert load_config(tmp_path / "otwatch.yml").web.config_file == Path("/etc/web.yml")


def test_run_refuses_a_bad_web_config_at_start_with_status_2(tmp_path: Path) -> None:
    bad = write_web_config(tmp_path, {"tls_server_config": {"cert_file": "x.pem", "key_file": "x.key",
                                                            "min_version": "TLS9"}})  # fmt: skip
    config = tmp_path / "otwatch.yml"
    config.write_text(f"web:\n  config_file: {bad}\n")
    for how in (["--web.config.file", str(bad)], ["--config", str(config)]):
        done = subprocess.run(
            [sys.executable, "-m", "appliance", "run", "--interface", "lo", "--web.listen-address", "127.0.0.1:0",
             "--state", str(tmp_path / "state"), *how],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert f"web config {bad}" in done.stderr
        assert "tls_server_config.min_version: must be one of TLS10, TLS11, TLS12, TLS13 (got 'TLS9')" in done.stderr
        assert "capturing" not in done.stderr  # nothing started


def test_the_sample_in_docs_web_md_is_accepted(pki: Pki, tmp_path: Path) -> None:
    text = (ROOT / "docs" / "web.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]]
    sample = next(b for b in blocks if b.startswith("tls_server_config:"))
    for doc_name, ours in (("sensor.pem", pki.server_cert), ("sensor.key", pki.server_key), ("ca.pem", pki.ca)):
        (tmp_path / doc_name).write_bytes(ours.read_bytes())  # relative paths: from the file's folder
    (tmp_path / "web-config.yml").write_text(sample)
    settings = load_web_config(tmp_path / "web-config.yml")
    assert settings.tls is not None and set(settings.users) == {"prometheus"}
    assert settings.rate_interval == pytest.approx(0.1) and settings.rate_burst == 20
    assert dict(settings.headers)["X-Frame-Options"] == "deny"
    scrape = next(b for b in blocks if b.startswith("scrape_configs:"))
    assert yaml.safe_load(scrape)["scrape_configs"][0]["scheme"] == "https"
