"""The playbooks around the role: ansible-lint at the production profile (offline), the example inventory, and the
optional Prometheus and Grafana plays run for real against local directories (promtool checks the result)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from appliance.config import Config
from tests.ansible.boxkit import ANSIBLE_DIR, BIN, ansible_env, run_playbook
from tests.ansible.buildcache import REPO

pytestmark = [
    pytest.mark.ansible,
    pytest.mark.skipif(os.geteuid() != 0, reason="the plays write files owned by root"),
]

SCRAPE_PASSWORD = "scrape-secret-1"


def _home(tmp_path: Path) -> Path:
    """A private ANSIBLE_HOME (with its tmp directory) for one test."""
    home = tmp_path / "home"
    (home / "tmp").mkdir(parents=True)
    return home


def test_ansible_lint_production_profile_offline(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    done = subprocess.run(
        [str(BIN / "ansible-lint"), "--offline", "--profile", "production", "--nocolor"],
        cwd=ANSIBLE_DIR,
        env=ansible_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-6000:]
    assert "Profile 'production' was required, and it passed" in done.stderr + done.stdout


def _local_inventory(directory: Path, group: str) -> Path:
    """Two sites of sensors (never contacted) and this machine as the `group` server (local connection)."""
    inventory = {
        "all": {
            "children": {
                "otwatch": {
                    "children": {
                        "site_fra1": {
                            "hosts": {"fra1-sensor-01": {"ansible_host": "10.110.0.21"}},
                            "vars": {"otwatch_site": "fra1"},
                        },
                        "site_ams2": {
                            "hosts": {"ams2-sensor-01": {"ansible_host": "10.120.0.21",
                                                         "otwatch_web_listen_address": "[::]:9900"}},
                            "vars": {"otwatch_site": "ams2"},
                        },
                    }
                },
                group: {"hosts": {"monitor-01": {"ansible_connection": "local", "ansible_become": False}}},
            }
        }
    }  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "hosts.yml").write_text(yaml.safe_dump(inventory))
    return directory


def test_prometheus_play_adds_the_sensors(tmp_path: Path) -> None:
    home = _home(tmp_path)
    etc = tmp_path / "prometheus"
    etc.mkdir()
    config = etc / "prometheus.yml"
    config.write_text("global: {scrape_interval: 15s}\nscrape_configs:\n  - job_name: node\n"
                      "    static_configs: [{targets: ['localhost:9100']}]\n")  # fmt: skip
    owner = {"otwatch_prometheus_owner": "root", "otwatch_prometheus_group": "root"}
    extra = {
        "otwatch_prometheus_config_file": str(config),
        "otwatch_prometheus_file_sd_dir": str(etc / "file_sd"),
        "otwatch_prometheus_rules_dir": str(etc / "rules"),
        "otwatch_prometheus_scrape_username": "prometheus",
        "otwatch_prometheus_scrape_password": SCRAPE_PASSWORD,
        "otwatch_prometheus_reload": False,
        **owner,
    }
    inventory = _local_inventory(tmp_path / "inventory", "prometheus_servers")
    first = run_playbook("prometheus.yml", inventory, home, extra)
    assert first.returncode == 0, first.output[-6000:]
    assert first.counts("monitor-01")["changed"] >= 4

    targets = yaml.safe_load((etc / "file_sd/otwatch.yml").read_text())
    assert targets == [
        {"labels": {"sensor": "ams2-sensor-01", "site": "ams2"}, "targets": ["10.120.0.21:9900"]},
        {"labels": {"sensor": "fra1-sensor-01", "site": "fra1"}, "targets": ["10.110.0.21:9847"]},
    ]
    merged = yaml.safe_load(config.read_text())
    jobs = {job["job_name"]: job for job in merged["scrape_configs"]}
    assert set(jobs) == {"node", "otwatch"}
    assert jobs["otwatch"]["basic_auth"] == {
        "username": "prometheus",
        "password_file": str(etc / "file_sd/otwatch.pass"),
    }
    assert jobs["otwatch"]["file_sd_configs"] == [{"files": [str(etc / "file_sd/otwatch.yml")]}]
    assert merged["rule_files"] == [str(etc / "rules/otwatch.rules.yml")]
    assert (etc / "rules/otwatch.rules.yml").read_bytes() == (REPO / "docs/prometheus/otwatch.rules.yml").read_bytes()
    assert (etc / "file_sd/otwatch.pass").read_text() == SCRAPE_PASSWORD
    assert (etc / "file_sd/otwatch.pass").stat().st_mode & 0o777 == 0o640
    check = subprocess.run(["promtool", "check", "config", str(config)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr

    again = run_playbook("prometheus.yml", inventory, home, extra)
    assert again.returncode == 0 and again.counts("monitor-01")["changed"] == 0, again.output[-6000:]


def test_grafana_play_provisions_every_dashboard(tmp_path: Path) -> None:
    home = _home(tmp_path)
    dashboards = tmp_path / "dashboards-src"
    dashboards.mkdir()
    for source in sorted((REPO / "docs/grafana/dashboards").glob("*.json")):
        shutil.copy(source, dashboards / source.name)
    (dashboards / "extra.json").write_text(json.dumps({"uid": "extra", "title": "extra", "panels": []}))
    extra = {
        "otwatch_grafana_dashboards_dir": str(dashboards),
        "otwatch_grafana_provisioning_dir": str(tmp_path / "provisioning"),
        "otwatch_grafana_dashboards_path": str(tmp_path / "lib/dashboards/otwatch"),
        "otwatch_grafana_prometheus_url": "http://10.100.0.10:9090",
        "otwatch_grafana_owner": "root",
        "otwatch_grafana_group": "root",
        "otwatch_grafana_restart": False,
    }
    inventory = _local_inventory(tmp_path / "inventory", "grafana_servers")
    first = run_playbook("grafana.yml", inventory, home, extra)
    assert first.returncode == 0, first.output[-6000:]

    copied = sorted(p.name for p in (tmp_path / "lib/dashboards/otwatch").iterdir())
    assert copied == sorted(p.name for p in dashboards.iterdir())
    assert len(copied) >= 2
    for name in copied:
        assert (tmp_path / "lib/dashboards/otwatch" / name).read_bytes() == (dashboards / name).read_bytes()
    source = yaml.safe_load((tmp_path / "provisioning/datasources/otwatch.yml").read_text())
    assert source["apiVersion"] == 1
    assert source["datasources"][0] | {"jsonData": None} == {
        "name": "otwatch Prometheus", "uid": "otwatch-prometheus", "type": "prometheus", "access": "proxy",
        "url": "http://10.100.0.10:9090", "isDefault": False, "jsonData": None,
    }  # fmt: skip
    provider = yaml.safe_load((tmp_path / "provisioning/dashboards/otwatch.yml").read_text())["providers"][0]
    assert provider["type"] == "file" and provider["options"]["path"] == str(tmp_path / "lib/dashboards/otwatch")

    api = run_playbook("grafana.yml", inventory, home, {**extra, "otwatch_grafana_method": "api"}, ("--syntax-check",))
    assert api.returncode == 0, api.output[-3000:]


def _inventory_host(host: str, home: Path) -> dict[str, Any]:
    done = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", "inventory/example", "--host", host],
        cwd=ANSIBLE_DIR,
        env=ansible_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dict(json.loads(done.stdout))


@pytest.mark.parametrize("host", ["fra1-sensor-01", "ams2-sensor-01"])
def test_example_inventory_renders_a_valid_config(host: str, tmp_path: Path) -> None:
    hostvars = _inventory_host(host, _home(tmp_path))
    assert hostvars["otwatch_site"] == host[:4]
    config: dict[str, Any] = {
        "capture": {"interface": hostvars["otwatch_capture_interface"]},
        "zones": hostvars["otwatch_zones"],
        "detectors": hostvars["otwatch_detectors"],
        "web": {"listen_address": hostvars["otwatch_web_listen_address"], "config_file": "/etc/otwatch/web-config.yml"},
    }
    if "otwatch_broker" in hostvars:
        config["broker"] = {**hostvars["otwatch_broker"], "password_file": "/etc/otwatch/broker.pass"}
    parsed = Config.model_validate(config)  # otwatch's own schema, as `otwatch check-config` applies it
    assert len(parsed.zones) >= 3
    assert {z.domain for z in parsed.zones} & {"OT", "BMS"}
