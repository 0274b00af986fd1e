"""Basic auth from the web config on a real server over TLS: identical refusals, the bcrypt cache, nothing logged,
headers on refusals, the rate limit."""

from __future__ import annotations

import base64
import logging
import ssl
from pathlib import Path

import bcrypt
import pytest

from appliance.export.api import ApiSources
from appliance.export.webauth import BasicAuth, RateLimit
from appliance.export.webconfig import load_web_config
from tests.export.test_web_tls import (
    Answer,
    Pki,
    client_context,
    pki_fixture,  # noqa: F401  (the `pki` fixture)
    request,
    serve,
    tls_config,
    write_web_config,
)

USER, PASSWORD = "prometheus", "s3cret-Pa55word"
OTHER_USER, OTHER_PASSWORD = "grafana", "an0ther one"


def _hash(password: str, cost: int = 4) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()


def basic(user: str, password: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def users() -> dict[str, str]:
    """Two users; one hash in the `$2y$` spelling of htpasswd."""
    return {USER: _hash(PASSWORD), OTHER_USER: _hash(OTHER_PASSWORD).replace("$2b$", "$2y$", 1)}


def _comparable(answer: Answer) -> tuple[int, list[tuple[str, str]], bytes]:
    return answer.status, sorted((k, v) for k, v in answer.headers.items() if k != "date"), answer.body


def test_every_refusal_is_the_same_401(pki: Pki, tmp_path: Path, users: dict[str, str]) -> None:
    config = {"tls_server_config": tls_config(pki), "basic_auth_users": users,
              "http_server_config": {"headers": {"X-Frame-Options": "sameorigin"}}}  # fmt: skip
    with serve(load_web_config(write_web_config(tmp_path, config)), ApiSources(lambda: ())) as server:
        ctx = client_context(pki)
        refusals = {
            "no header": {},
            "unknown user": basic("nobody", PASSWORD),
            "wrong password": basic(USER, "wrong"),
            "another user's password": basic(USER, OTHER_PASSWORD),
            "empty password": basic(USER, ""),
            "no colon": {"Authorization": "Basic " + base64.b64encode(USER.encode()).decode()},
            "not base64": {"Authorization": "Basic !!!"},
            "other scheme": {"Authorization": "Bearer " + PASSWORD},
            "password as user": basic(PASSWORD, USER),
        }
        answers = {name: request(server, "/metrics", ctx, headers) for name, headers in refusals.items()}
        first = _comparable(answers["no header"])
        assert first[0] == 401 and first[2] == b"Unauthorized\n"
        assert ("www-authenticate", "Basic") in first[1] and ("x-frame-options", "sameorigin") in first[1]
        for name, answer in answers.items():
            assert _comparable(answer) == first, name
        for path in ("/metrics", "/-/healthy", "/-/ready", "/", "/api/v1/assets", "/api/v1/openapi.json", "/nope"):
            assert request(server, path, ctx).status == 401, path  # every path is guarded
        ok = request(server, "/metrics", ctx, basic(USER, PASSWORD))
        assert ok.status == 200 and b"demo_things_total 3.0" in ok.body
        assert request(server, "/api/v1/assets", ctx, basic(OTHER_USER, OTHER_PASSWORD)).status == 200  # $2y$


def test_successes_are_cached_and_failures_are_not(pki: Pki, tmp_path: Path, users: dict[str, str]) -> None:
    config = {"tls_server_config": tls_config(pki), "basic_auth_users": users}
    with serve(load_web_config(write_web_config(tmp_path, config))) as server:
        auth = server.auth
        assert auth is not None and auth.bcrypt_runs == 0
        ctx = client_context(pki)
        for _ in range(3):
            assert request(server, "/metrics", ctx, basic(USER, PASSWORD)).status == 200
        assert auth.bcrypt_runs == 1  # the first success ran bcrypt; the others came from the cache
        for _ in range(3):
            assert request(server, "/metrics", ctx, basic(USER, "wrong")).status == 401
        assert auth.bcrypt_runs == 4  # each failure runs bcrypt again
        assert request(server, "/metrics", ctx, basic("nobody", "x")).status == 401
        assert auth.bcrypt_runs == 5  # an unknown user costs a bcrypt run too (the decoy hash)
        assert request(server, "/metrics", ctx, basic(USER, PASSWORD + "x")).status == 401  # not a cache hit
        assert request(server, "/metrics", ctx, {"Authorization": "Basic !!!"}).status == 401
        assert auth.bcrypt_runs == 6  # a malformed header runs nothing


def test_nothing_secret_is_logged(
    pki: Pki, tmp_path: Path, users: dict[str, str], capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    config = {"tls_server_config": tls_config(pki), "basic_auth_users": users}
    caplog.set_level(logging.DEBUG)
    with serve(load_web_config(write_web_config(tmp_path, config))) as server:
        ctx = client_context(pki)
        for headers in (basic(USER, "wrong-guess"), basic("nobody", PASSWORD), basic(USER, PASSWORD), {}):
            request(server, f"/metrics?token={PASSWORD}", ctx, headers)
        with pytest.raises(ssl.SSLCertVerificationError):  # a failed handshake
            request(server, "/metrics", ssl.create_default_context())
    out, err = capfd.readouterr()
    logged = out + err + caplog.text
    for secret in (PASSWORD, "wrong-guess", users[USER], base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()):
        assert secret not in logged
    assert logged == ""  # the endpoint writes nothing at all, not even for a failed handshake


def test_long_passwords_compare_on_their_first_72_bytes_as_in_go() -> None:
    long = "p" * 72
    auth = BasicAuth({USER: bcrypt.hashpw(long.encode(), bcrypt.gensalt(4))})
    header = basic(USER, long + "ignored beyond 72 bytes")["Authorization"]
    assert auth.check(header)
    assert not auth.check(basic(USER, "p" * 71)["Authorization"])


def test_rate_limit_token_bucket() -> None:
    now = [100.0]
    limit = RateLimit(interval=2.0, burst=2, clock=lambda: now[0])
    assert [limit.allow() for _ in range(3)] == [True, True, False]
    now[0] += 1.0
    assert not limit.allow()  # half a token
    now[0] += 1.0
    assert limit.allow() and not limit.allow()
    now[0] += 100.0
    assert [limit.allow() for _ in range(3)] == [True, True, False]  # never more than the burst


def test_rate_limit_answers_429(pki: Pki, tmp_path: Path) -> None:
    config = {"tls_server_config": tls_config(pki), "rate_limit": {"interval": "1h", "burst": 2}}
    with serve(load_web_config(write_web_config(tmp_path, config))) as server:
        ctx = client_context(pki)
        statuses = [request(server, "/-/healthy", ctx).status for _ in range(3)]
    assert statuses == [200, 200, 429]
