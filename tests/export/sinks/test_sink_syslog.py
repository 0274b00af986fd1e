"""The syslog sink against real receivers on loopback: UDP, TCP (octet counting), TLS with a test CA, CEF and ECS."""

from __future__ import annotations

import json
import ssl
import time
from typing import Any

import pytest
from sinkkit import NASTY, SyslogTcp, SyslogUdp, client_tls, make_alert, parse_cef

from appliance.export.sinks.base import SinkSetupError
from appliance.export.sinks.fanout import SinkSet, build_sink
from appliance.export.sinks.settings import SyslogSinkSettings
from tests.mqttkit import Pki
from tests.test_run_live import free_port, wait_for


def _sinkset(logs: list[str], **settings: Any) -> SinkSet:
    cfg = SyslogSinkSettings.model_validate({"type": "syslog", "host": "127.0.0.1", "hostname": "edge-1",
                                             "backoff_base": 0.01, "backoff_max": 0.05, **settings})  # fmt: skip
    return SinkSet([(cfg, build_sink(cfg, 0, "0.1.0", logs.append))])


def _server_tls(pki: Pki, *, require_client: bool = False) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    if require_client:
        ctx.load_verify_locations(cafile=str(pki.ca))
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def test_udp_cef() -> None:
    server = SyslogUdp()
    logs: list[str] = []
    sinks = _sinkset(logs, port=server.port, facility="local4")
    try:
        alerts = [make_alert(i, sev) for i, sev in enumerate(["low", "medium", "high", "critical"])]
        for a in alerts:
            sinks.publish_alert(a)
        got = server.wait(4)
        sinks.close(time.monotonic() + 5)
    finally:
        server.close()
    assert [m.msgid for m in got] == ["alert"] * 4
    assert [m.pri for m in got] == [20 * 8 + s for s in (5, 4, 3, 2)]
    assert [m.sd["meta"]["sequenceId"] for m in got] == ["1", "2", "3", "4"]
    assert {(m.hostname, m.app_name, m.sd["origin"]["software"]) for m in got} == {("edge-1", "otwatch", "otwatch")}
    for m, a in zip(got, alerts, strict=True):
        assert m.timestamp.timestamp() == pytest.approx(a.ts, abs=1e-6)
        header, ext = parse_cef(m.msg)
        assert header[3] == "scan/address_scan" and ext["msg"] == a.explanation and ext["src"] == a.src
    health = sinks.health()[0]
    assert (health.sent, health.failed, health.dropped, health.type) == (4, 0, 0, "syslog")


def test_tcp_ecs_and_reconnect_after_the_receiver_drops_the_connection() -> None:
    server = SyslogTcp()
    logs: list[str] = []
    sinks = _sinkset(logs, port=server.port, protocol="tcp", format="ecs")
    try:
        sinks.publish_alert(make_alert(1))
        first = server.wait(1)
        wait_for(lambda: sinks.health()[0].sent == 1, "sent 1")
        assert sinks.health()[0].connected
        server.drop_connections()  # the receiver restarts: the sink notices the close and reconnects
        for i in range(2, 6):
            sinks.publish_alert(make_alert(i))
        got = server.wait(5)
        sinks.close(time.monotonic() + 5)
    finally:
        server.close()
    assert server.connections == 2 and first[0].msgid == "alert"
    docs = [json.loads(m.msg) for m in got]
    assert [d["otwatch"]["alert"]["explanation"] for d in docs] == [f"alert {i}: {NASTY}" for i in range(1, 6)]
    assert docs[0]["threat"]["technique"]["id"] == ["T0846", "T1046"] and docs[0]["source"]["ip"] == "10.8.0.23"
    assert [m.sd["meta"]["sequenceId"] for m in got] == [str(i) for i in range(1, 6)]  # none lost, none repeated
    assert sinks.health()[0].sent == 5


def test_tcp_receiver_down_then_up_retries_with_backoff() -> None:
    port = free_port()
    logs: list[str] = []
    sinks = _sinkset(logs, port=port, protocol="tcp", max_retries=1000, backoff_base=0.01, backoff_max=0.02)
    try:
        sinks.publish_alert(make_alert(1))
        wait_for(lambda: sinks.health()[0].retries >= 3, "retries while the receiver is down")
        assert not sinks.health()[0].connected and sinks.health()[0].sent == 0
        server = SyslogTcp(port=port)
        try:
            got = server.wait(1)
            wait_for(lambda: sinks.health()[0].sent == 1, "delivered once the receiver is up")
        finally:
            sinks.close(time.monotonic() + 5)
            server.close()
    finally:
        sinks.close(time.monotonic())
    assert parse_cef(got[0].msg)[1]["msg"] == make_alert(1).explanation
    assert any("retrying with backoff" in line for line in logs) and any("delivering again" in line for line in logs)


def test_tls_with_a_test_ca_and_a_client_certificate(pki: Pki) -> None:
    server = SyslogTcp(_server_tls(pki, require_client=True))
    logs: list[str] = []
    sinks = _sinkset(logs, port=server.port, protocol="tcp", tls=client_tls(pki))
    try:
        for i in range(3):
            sinks.publish_alert(make_alert(i))
        got = server.wait(3)
        sinks.close(time.monotonic() + 5)
    finally:
        server.close()
    assert [parse_cef(m.msg)[1]["msg"] for m in got] == [make_alert(i).explanation for i in range(3)]
    assert sinks.health()[0].sent == 3


def test_tls_refuses_a_receiver_the_ca_did_not_sign(tmp_path: Any, pki: Pki) -> None:
    from tests.mqttkit import make_pki

    other = make_pki(tmp_path / "other")
    server = SyslogTcp(_server_tls(pki))
    logs: list[str] = []
    sinks = _sinkset(logs, port=server.port, protocol="tcp", tls={"ca_file": str(other.ca)}, max_retries=1)
    try:
        sinks.publish_alert(make_alert(1))
        wait_for(lambda: sinks.health()[0].failed == 1, "the record fails after its retry")
        sinks.close(time.monotonic() + 5)
    finally:
        server.close()
    health = sinks.health()[0]
    assert (health.sent, health.retries, health.connected) == (0, 1, False) and server.messages == []
    assert any("CERTIFICATE_VERIFY_FAILED" in line for line in logs)


def test_tls_setup_errors_name_the_key(tmp_path: Any, pki: Pki) -> None:
    cfg = SyslogSinkSettings.model_validate(
        {"type": "syslog", "host": "h", "protocol": "tcp", "tls": {"ca_file": str(tmp_path / "missing.pem")}}
    )
    with pytest.raises(SinkSetupError, match=r"^sinks\.2\.tls\.ca_file: cannot use"):
        build_sink(cfg, 2, "0")
    tls = client_tls(pki, "client_key_encrypted")
    cfg = SyslogSinkSettings.model_validate({"type": "syslog", "host": "h", "protocol": "tcp", "tls": tls})
    with pytest.raises(SinkSetupError, match=r"^sinks\.0\.tls\.key_file: the key is encrypted"):
        build_sink(cfg, 0, "0")
