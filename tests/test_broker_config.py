"""The `broker:` config section and what `otwatch run` checks of it at start (files read, TLS context built)."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.broker import BrokerSetupError, prepare
from appliance.cli import main
from appliance.config import BrokerConfig, ConfigError, load_config
from tests.mqttkit import ROOT, Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """One PKI per test module."""
    return make_pki(tmp_path_factory.mktemp("pki"))


def _load(tmp_path: Path, text: str) -> BrokerConfig:
    path = tmp_path / "otwatch.yml"
    path.write_text(text)
    broker = load_config(path).broker
    assert broker is not None
    return broker


def _problems(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    return str(err.value)


def test_defaults(tmp_path: Path) -> None:
    assert load_config(None).broker is None
    b = _load(tmp_path, "broker:\n  host: broker.site\n")
    assert (b.port, b.protocol, b.client_id, b.username, b.password_file, b.tls) == (
        1883, "3.1.1", f"otwatch-{socket.gethostname()}", None, None, None
    )  # fmt: skip
    assert (b.keepalive, b.reconnect_min_seconds, b.reconnect_max_seconds, b.topics, b.qos) == (
        60, 1, 60, ["#", "$SYS/#"], 2
    )  # fmt: skip


def test_tls_changes_the_default_port_and_yaml_numbers_are_versions(tmp_path: Path) -> None:
    b = _load(tmp_path, "broker:\n  host: b\n  protocol: 5\n  tls: {}\n")
    assert (b.port, b.protocol, b.tls is not None) == (8883, "5", True)
    b = _load(tmp_path, "broker:\n  host: b\n  port: 1884\n  tls: {insecure_skip_verify: true}\n")
    assert b.port == 1884 and b.tls is not None and b.tls.insecure_skip_verify


@pytest.mark.parametrize(
    ("section", "named"),
    [
        ("port: 0", "broker.port: Input should be greater than or equal to 1"),
        ("protocol: 4", "broker.protocol: Input should be '3.1.1' or '5'"),
        ("protocol: 3.1", "broker.protocol:"),
        ("password_file: /etc/pw", "broker.password_file: a password needs broker.username"),
        ("tls: {key_file: k.pem}", "broker.tls.key_file: a client key needs broker.tls.cert_file"),
        ("tls: {ca: x}", "broker.tls.ca: unknown key"),
        ("topics: []", "broker.topics:"),
        ("topics: ['a/#/b']", "'#' must be a whole level"),
        ("topics: ['a/b+']", "'+' must be a whole level"),
        ("qos: 3", "broker.qos:"),
        ("keepalive: 1", "broker.keepalive:"),
        ("reconnect_min_seconds: 10\n  reconnect_max_seconds: 5", "broker.reconnect_max_seconds: must be at least"),
        ("passwd: x", "broker.passwd: unknown key"),
    ],
)
def test_bad_values_are_named_by_path(tmp_path: Path, section: str, named: str) -> None:
    assert named in _problems(tmp_path, f"broker:\n  host: b\n  {section}\n")


def test_host_is_required(tmp_path: Path) -> None:
    assert "broker.host: Field required" in _problems(tmp_path, "broker:\n  port: 1883\n")


def test_password_is_read_at_start_and_never_shown(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret with spaces \n")
    settings = prepare(BrokerConfig(host="b", username="u", password_file=secret))
    assert settings.password == "s3cret with spaces "  # only the line end goes
    assert "s3cret" not in repr(settings) and settings.address == "b:1883"
    assert prepare(BrokerConfig(host="::1", port=1)).address == "[::1]:1"


@pytest.mark.parametrize(("content", "problem"), [(None, "cannot read"), ("\n", "is empty"), (b"\xff\xfe", "UTF-8")])
def test_bad_password_files(tmp_path: Path, content: str | bytes | None, problem: str) -> None:
    secret = tmp_path / "pw"
    if isinstance(content, bytes):
        secret.write_bytes(content)
    elif content is not None:
        secret.write_text(content)
    with pytest.raises(BrokerSetupError) as err:
        prepare(BrokerConfig(host="b", username="u", password_file=secret))
    assert str(err.value).startswith("broker.password_file: ") and problem in str(err.value)


def test_tls_context_from_the_files(pki: Pki) -> None:
    settings = prepare(BrokerConfig.model_validate(
        {"host": "127.0.0.1", "tls": {"ca_file": pki.ca, "cert_file": pki.client_cert, "key_file": pki.client_key}}
    ))  # fmt: skip
    ctx = settings.tls
    assert ctx is not None and ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert [c["subject"] for c in ctx.get_ca_certs()] == [((("commonName", "otwatch test CA"),),)]
    loose = prepare(BrokerConfig.model_validate({"host": "b", "tls": {"insecure_skip_verify": True}})).tls
    assert loose is not None and loose.verify_mode == ssl.CERT_NONE and not loose.check_hostname


def test_unusable_tls_files_are_named(tmp_path: Path, pki: Pki) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    cases = [
        ({"ca_file": tmp_path / "missing.pem"}, "broker.tls.ca_file: "),
        ({"ca_file": garbage}, "broker.tls.ca_file: "),
        ({"cert_file": tmp_path / "missing.pem"}, "broker.tls.cert_file: "),
        ({"cert_file": garbage}, "broker.tls.cert_file: "),
        ({"cert_file": pki.client_cert, "key_file": tmp_path / "missing.key"}, "broker.tls.key_file: "),
        ({"cert_file": pki.client_cert, "key_file": pki.server_key}, "broker.tls.key_file: "),  # not its key
        ({"cert_file": pki.client_cert, "key_file": pki.client_key_encrypted}, "broker.tls.key_file: the key is enc"),
    ]
    for tls, named in cases:
        with pytest.raises(BrokerSetupError) as err:
            prepare(BrokerConfig.model_validate({"host": "b", "tls": tls}))
        assert str(err.value).startswith(named), (tls, str(err.value))


def test_run_fails_at_start_naming_the_missing_password_file(tmp_path: Path) -> None:
    config = tmp_path / "otwatch.yml"
    config.write_text(f"broker:\n  host: 127.0.0.1\n  username: u\n  password_file: {tmp_path / 'nope'}\n")
    done = subprocess.run(
        [sys.executable, "-m", "appliance", "run", "--config", str(config), "--state", str(tmp_path / "state")],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"broker.password_file: cannot read {tmp_path / 'nope'}: No such file or directory" in done.stderr
    assert not (tmp_path / "state").exists()  # nothing was started


def test_run_fails_at_start_naming_the_unreadable_ca(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    config = tmp_path / "otwatch.yml"
    config.write_text(f"broker:\n  host: 127.0.0.1\n  tls:\n    ca_file: {garbage}\n")
    assert main(["run", "--config", str(config), "--state", str(tmp_path / "state")]) == 2
    err = capsys.readouterr().err
    assert f"otwatch: config {config}: broker.tls.ca_file: cannot use {garbage} as a CA file" in err
