"""End to end: `otwatch run` on `lo` with `--web.config.file` (TLS, RequireAndVerifyClientCert, basic auth), scraped
by a real Prometheus (Debian's package) with `basic_auth` and `tls_config`, until the target is up; the jobs with a
wrong password or no client certificate stay down. Both processes are started here and stopped by PID."""

from __future__ import annotations

import base64
import json
import shutil
import signal
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from tests.export.test_web_tls import make_pki, write_web_config
from tests.test_run_live import free_port, http_get, processes, wait_for  # noqa: F401  (processes is a fixture)

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PASSWORD = "scrape-Secret-1"


def _query(port: int, expr: str) -> list[dict[str, Any]]:
    text = http_get(f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    if text is None:
        return []
    body = json.loads(text)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _targets(port: int) -> dict[str, dict[str, Any]]:
    text = http_get(f"http://127.0.0.1:{port}/api/v1/targets")
    active = json.loads(text)["data"]["activeTargets"] if text else []
    return {t["labels"]["job"]: t for t in active}


def _https_get(url: str, ctx: Any, auth: str | None) -> tuple[int, bytes] | None:
    import ssl
    import urllib.error
    import urllib.request

    headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), context=ctx, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (OSError, ssl.SSLError):
        return None


@pytest.mark.skipif(not Path(PROMETHEUS).exists(), reason="prometheus is missing: `make test` installs it")
def test_prometheus_scrapes_otwatch_over_mtls_with_basic_auth(
    tmp_path: Path, processes: list[subprocess.Popen[str]]  # noqa: F811
) -> None:
    import ssl

    pki = make_pki(tmp_path / "pki")
    web_config = write_web_config(tmp_path, {
        "tls_server_config": {"cert_file": str(pki.server_cert), "key_file": str(pki.server_key),
                              "client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": str(pki.ca)},
        "basic_auth_users": {"prometheus": bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(8)).decode()},
    })  # fmt: skip
    web_port, prom_port = free_port(), free_port()
    sensor = subprocess.Popen(
        [sys.executable, "-m", "appliance", "run", "--interface", "lo", "--web.listen-address",
         f"127.0.0.1:{web_port}", "--web.config.file", str(web_config), "--state", str(tmp_path / "state"),
         "--log-dir", str(tmp_path / "logs")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    processes.append(sensor)
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    ctx.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    base = f"https://127.0.0.1:{web_port}"
    wait_for(lambda: _https_get(base + "/-/healthy", ctx, f"prometheus:{PASSWORD}") == (200, b"otwatch is Healthy.\n"),
             "otwatch's /-/healthy over mTLS with basic auth")  # fmt: skip
    assert _https_get(base + "/-/healthy", ctx, "prometheus:wrong") == (401, b"Unauthorized\n")
    assert _https_get(base + "/-/healthy", ssl.create_default_context(cafile=str(pki.ca)), None) is None  # no cert
    api = _https_get(base + "/api/v1/assets?limit=5", ctx, f"prometheus:{PASSWORD}")
    assert api is not None and api[0] == 200 and set(json.loads(api[1])) == {"items", "total", "limit", "next"}

    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD)
    tls = {"ca_file": str(pki.ca), "cert_file": str(pki.client_cert), "key_file": str(pki.client_key)}
    target = {"static_configs": [{"targets": [f"127.0.0.1:{web_port}"]}], "scheme": "https"}
    prom_config = tmp_path / "prometheus.yml"
    prom_config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            {"job_name": "otwatch", **target, "tls_config": tls,
             "basic_auth": {"username": "prometheus", "password_file": str(password_file)}},
            {"job_name": "wrong-password", **target, "tls_config": tls,
             "basic_auth": {"username": "prometheus", "password": "guess"}},
            {"job_name": "no-client-cert", **target, "tls_config": {"ca_file": str(pki.ca)},
             "basic_auth": {"username": "prometheus", "password_file": str(password_file)}},
        ],
    }))  # fmt: skip
    prometheus = subprocess.Popen(
        [PROMETHEUS, f"--config.file={prom_config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    processes.append(prometheus)
    wait_for(lambda: http_get(f"http://127.0.0.1:{prom_port}/-/ready") is not None, "Prometheus to be ready")

    def up(job: str) -> str | None:
        result = _query(prom_port, f'up{{job="{job}"}}')
        return str(result[0]["value"][1]) if result else None

    # the first sample shows in the query API only after 5-6 s (LIBRARIES.md): poll with a deadline
    wait_for(lambda: up("otwatch") == "1", "Prometheus to scrape otwatch (up == 1)", limit=60)
    assert _query(prom_port, 'otwatch_build_info{job="otwatch"}'), "otwatch's own metrics reached Prometheus"
    wait_for(lambda: up("wrong-password") is not None and up("no-client-cert") is not None,
             "the refused jobs' first samples", limit=60)  # fmt: skip
    assert up("wrong-password") == "0" and up("no-client-cert") == "0"
    targets = _targets(prom_port)
    assert targets["otwatch"]["health"] == "up", targets["otwatch"]
    assert "401" in targets["wrong-password"]["lastError"], targets["wrong-password"]
    assert targets["no-client-cert"]["health"] == "down" and targets["no-client-cert"]["lastError"]

    prometheus.send_signal(signal.SIGTERM)
    prometheus.wait(timeout=30)
    sensor.send_signal(signal.SIGTERM)
    _, err = sensor.communicate(timeout=30)
    assert sensor.returncode == 0, err
    assert "TLS (RequireAndVerifyClientCert), basic auth (1 user)" in err
    assert PASSWORD not in err and "guess" not in err
