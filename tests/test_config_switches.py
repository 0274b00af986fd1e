"""The configuration's switches of the pipeline's parts: `protocols` (which decoders run), `detectors.enabled` and
`baseline.enabled`, checked on a seeded mixed capture replayed in-process and through `otwatch replay`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.baseline import Baseline
from appliance.baseline.settings import BaselineSettings
from appliance.capture.pcapfile import PcapReader
from appliance.config import Config, ConfigError, load_config
from appliance.detectors import build_detectors
from appliance.detectors.settings import DetectorSettings
from appliance.pipeline import Frame, Pipeline
from simulators.mixed_capture import write_mixed_capture

LEARNED = {"ot_baseline", "ot_discovery", "ot_internet", "mqtt_baseline", "ot_timing", "ot_anomaly"}


@pytest.fixture(scope="module")
def mix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded 3,000-packet mix (Modbus, BACnet, MQTT, DNS, TLS, TCP noise)."""
    pcap = tmp_path_factory.mktemp("mix") / "mix.pcap"
    write_mixed_capture(pcap, packets=3000, seed=3)
    return pcap


@pytest.fixture(scope="module")
def frames(mix: Path) -> list[Frame]:
    """The frames of the mix."""
    return list(PcapReader(mix))


def _replay(frames: list[Frame], config: Config, out: Path) -> Pipeline:
    pipeline = Pipeline(config, out)
    pipeline.run(frames)
    pipeline.finish()
    return pipeline


def _services(out: Path) -> set[str]:
    return {json.loads(line).get("service", "-") for line in (out / "conn.jsonl").read_text().splitlines()}


def test_protocols_names_are_checked_and_normalised(tmp_path: Path) -> None:
    path = tmp_path / "otwatch.yml"
    path.write_text("protocols: [Modbus, ' bacnet']\n")
    assert load_config(path).protocols == ["modbus", "bacnet"]
    path.write_text("protocols: [modbus, modbuss]\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert "protocols" in message and "'modbuss' is not a decoded protocol" in message and "bacnet" in message


def test_only_the_named_protocols_are_decoded(frames: list[Frame], tmp_path: Path) -> None:
    every = _replay(frames, Config(), tmp_path / "all")
    assert {"modbus", "bacnet", "mqtt", "dns"} <= {protocol for protocol, _, _ in every.stats.events}
    some = _replay(frames, Config(protocols=["modbus", "bacnet"]), tmp_path / "some")
    assert {protocol for protocol, _, _ in some.stats.events} == {"modbus", "bacnet"}
    logs = {p.name for p in (tmp_path / "some").glob("*.jsonl")}
    assert {"modbus.jsonl", "bacnet.jsonl", "conn.jsonl"} <= logs and not {"mqtt.jsonl", "dns.jsonl"} & logs
    # the other protocols' traffic is still accounted, as connections without a service
    assert some.stats.packets == every.stats.packets == len(frames)
    assert _services(tmp_path / "some") == {"modbus", "bacnet", "-"}
    assert (tmp_path / "some" / "bacnet.jsonl").read_bytes() == (tmp_path / "all" / "bacnet.jsonl").read_bytes()


def test_detectors_and_baseline_switched_off(frames: list[Frame], tmp_path: Path) -> None:
    on = _replay(frames, Config(), tmp_path / "on")
    assert on.baseline.assets and on.detectors.detectors
    off_config = Config(detectors=DetectorSettings(enabled=False), baseline=BaselineSettings(enabled=False))
    off = _replay(frames, off_config, tmp_path / "off")
    assert not off.baseline.assets and not off.detectors.detectors and not off.stats.alerts
    # decoding, logs and the inventory are the same
    for log in ("modbus.jsonl", "bacnet.jsonl", "mqtt.jsonl", "conn.jsonl"):
        assert (tmp_path / "off" / log).read_bytes() == (tmp_path / "on" / log).read_bytes(), log
    assert sorted(a.ip for a in off.inventory.snapshot()) == sorted(a.ip for a in on.inventory.snapshot())


def test_a_disabled_baseline_leaves_out_the_detectors_of_learned_behaviour() -> None:
    names = {d.name for d in build_detectors(DetectorSettings(), Baseline(BaselineSettings()))}
    assert names >= LEARNED
    names_off = {d.name for d in build_detectors(DetectorSettings(), Baseline(BaselineSettings(enabled=False)))}
    assert not LEARNED & names_off and {"scan", "ot_pivot", "new_device"} <= names_off


def test_replay_with_the_switches_from_a_config_file(mix: Path, frames: list[Frame], tmp_path: Path) -> None:
    config = tmp_path / "otwatch.yml"
    config.write_text("protocols: [bacnet]\ndetectors: {enabled: false}\nbaseline: {enabled: false}\n")
    run = subprocess.run(
        [sys.executable, "-m", "appliance", "replay", str(mix), "--config", str(config), "--out",
         str(tmp_path / "out"), "--state", str(tmp_path / "state"), "--json", "--no-progress"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["packets"] == len(frames)
    assert (tmp_path / "out" / "bacnet.jsonl").stat().st_size > 0
    assert not (tmp_path / "out" / "modbus.jsonl").exists() and not (tmp_path / "out" / "alerts.jsonl").exists()
