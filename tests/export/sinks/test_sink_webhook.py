"""The webhook sink against a real HTTP server on loopback: retries and backoff (counted), auth from files, the
bounded queue dropping and counting, and the shutdown deadline."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest
from sinkkit import Webhook, make_alert

from appliance.export.sinks.base import SinkSetupError, backoff_delays
from appliance.export.sinks.fanout import SinkSet, build_sink
from appliance.export.sinks.settings import WebhookSinkSettings
from tests.test_run_live import wait_for

TOKEN = "t0ken-s3cret"


def _sinkset(logs: list[str], url: str, **settings: Any) -> SinkSet:
    cfg = WebhookSinkSettings.model_validate({"type": "webhook", "url": url, "sensor": "edge-1",
                                              "backoff_base": 0.001, "backoff_max": 0.004, **settings})  # fmt: skip
    return SinkSet([(cfg, build_sink(cfg, 0, "0.1.0", logs.append))])


def test_backoff_schedule() -> None:
    assert backoff_delays(1.0, 60.0, 8) == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff_delays(0.5, 0.5, 2) == [0.5, 0.5] and backoff_delays(1, 2, 0) == []


def test_fails_first_n_then_delivers_in_order(tmp_path: Path) -> None:
    hook = Webhook(fail_first=3)
    logs: list[str] = []
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    sinks = _sinkset(logs, hook.url, bearer_token_file=str(token), headers={"X-Site": "dc-1"})
    try:
        for i in range(4):
            sinks.publish_alert(make_alert(i))
        bodies = hook.wait(4)
        sinks.close(time.monotonic() + 5)
    finally:
        hook.close()
    assert hook.requests == 3 + 4  # the first record was retried 3 times, the others went at once
    health = sinks.health()[0]
    assert (health.sent, health.retries, health.failed, health.dropped) == (4, 3, 0, 0)
    assert [b["alert"]["explanation"] for b in bodies] == [make_alert(i).explanation for i in range(4)]
    assert {b["kind"] for b in bodies} == {"alert"} and {b["sensor"] for b in bodies} == {"edge-1"}
    assert {h["Authorization"] for h in hook.headers} == {f"Bearer {TOKEN}"}
    assert {h["X-Site"] for h in hook.headers} == {"dc-1"} and set(hook.paths) == {"/hook?x=1"}
    assert all(TOKEN not in line for line in logs) and any("HTTP 503" in line for line in logs)


def test_gives_up_after_max_retries_and_goes_on() -> None:
    hook = Webhook(fail_first=3)
    logs: list[str] = []
    sinks = _sinkset(logs, hook.url, max_retries=2, format="ecs")
    try:
        sinks.publish_alert(make_alert(1))  # 3 attempts, all 503: failed
        sinks.publish_alert(make_alert(2))  # the 4th request: delivered
        bodies = hook.wait(1)
        sinks.close(time.monotonic() + 5)
    finally:
        hook.close()
    health = sinks.health()[0]
    assert (hook.requests, health.sent, health.failed, health.retries) == (4, 1, 1, 2)
    assert bodies[0]["event"]["kind"] == "alert" and bodies[0]["message"] == make_alert(2).explanation


def test_a_client_error_is_not_retried() -> None:
    hook = Webhook(fail_first=1, fail_status=400)
    logs: list[str] = []
    sinks = _sinkset(logs, hook.url)
    try:
        sinks.publish_alert(make_alert(1))
        sinks.publish_alert(make_alert(2))
        hook.wait(1)
        sinks.close(time.monotonic() + 5)
    finally:
        hook.close()
    health = sinks.health()[0]
    assert (hook.requests, health.sent, health.failed, health.retries) == (2, 1, 1, 0)
    assert any("HTTP 400" in line and "not retried" in line for line in logs)


def test_basic_auth_from_a_password_file(tmp_path: Path) -> None:
    hook = Webhook()
    (tmp_path / "pw").write_text("p@ss:word")
    sinks = _sinkset([], hook.url, username="otwatch", password_file=str(tmp_path / "pw"))
    try:
        sinks.publish_alert(make_alert(1))
        hook.wait(1)
        sinks.close(time.monotonic() + 5)
    finally:
        hook.close()
    assert hook.headers[0]["Authorization"] == "Basic " + base64.b64encode(b"otwatch:p@ss:word").decode()


def test_a_full_queue_drops_and_counts() -> None:
    hook = Webhook()
    logs: list[str] = []
    hook.release.clear()  # the receiver holds every request until released
    sinks = _sinkset(logs, hook.url, queue_size=3)
    try:
        sinks.publish_alert(make_alert(0))
        wait_for(lambda: hook.requests == 1, "the worker is inside the first POST")
        for i in range(1, 6):  # 3 fit in the queue, 2 are dropped
            sinks.publish_alert(make_alert(i))
        health = sinks.health()[0]
        assert (health.queue_depth, health.queue_capacity, health.dropped) == (3, 3, 2)
        hook.release.set()
        bodies = hook.wait(4)
        sinks.close(time.monotonic() + 5)
    finally:
        hook.close()
    assert [b["alert"]["uids"] for b in bodies] == [[f"C{i:05d}"] for i in range(4)]
    health = sinks.health()[0]
    assert (health.sent, health.dropped, health.queue_depth) == (4, 2, 0)


def test_close_flushes_the_queue() -> None:
    hook = Webhook()
    sinks = _sinkset([], hook.url, queue_size=100)
    try:
        for i in range(50):
            sinks.publish_alert(make_alert(i))
        sinks.close(time.monotonic() + 10)  # returns once all 50 are delivered
        assert len(hook.bodies) == 50
    finally:
        hook.close()
    assert sinks.health()[0].sent == 50
    sinks.publish_alert(make_alert(99))  # after close: counted as dropped, never sent
    assert sinks.health()[0].dropped == 1


def test_close_stops_at_the_deadline_and_counts_what_is_left() -> None:
    hook = Webhook(fail_first=10**6)  # never accepts
    logs: list[str] = []
    sinks = _sinkset(logs, hook.url, max_retries=1000, backoff_base=0.01, backoff_max=0.01)
    try:
        for i in range(5):
            sinks.publish_alert(make_alert(i))
        wait_for(lambda: sinks.health()[0].retries >= 2, "retrying")
        sinks.close(time.monotonic() + 0.2)
    finally:
        hook.close()
    health = sinks.health()[0]
    assert (health.sent, health.failed, health.dropped, health.queue_depth) == (0, 0, 5, 0)
    assert any("5 record(s) not delivered before the shutdown deadline" in line for line in logs)


def test_secret_file_errors_name_the_key_not_the_secret(tmp_path: Path) -> None:
    base = {"type": "webhook", "url": "https://siem.example/hook"}
    cfg = WebhookSinkSettings.model_validate({**base, "bearer_token_file": str(tmp_path / "nope")})
    with pytest.raises(SinkSetupError, match=r"^sinks\.1\.bearer_token_file: cannot read .*nope"):
        build_sink(cfg, 1, "0")
    (tmp_path / "two").write_text("abc\ndef\n")
    cfg = WebhookSinkSettings.model_validate({**base, "bearer_token_file": str(tmp_path / "two")})
    with pytest.raises(SinkSetupError, match=r"more than one line") as err:
        build_sink(cfg, 0, "0")
    assert "abc" not in str(err.value)
    (tmp_path / "empty").write_text("\n")
    cfg = WebhookSinkSettings.model_validate({**base, "username": "u", "password_file": str(tmp_path / "empty")})
    with pytest.raises(SinkSetupError, match=r"^sinks\.0\.password_file: .* is empty"):
        build_sink(cfg, 0, "0")
