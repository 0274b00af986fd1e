"""Config validation: defaults, a full example, and errors that name the bad key by its path."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import ConfigError, load_config, parse_listen_address


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "otwatch.yml"
    path.write_text(text)
    return path


def test_defaults_without_a_file() -> None:
    config = load_config(None)
    assert config.state_dir == Path("/var/lib/otwatch")
    assert config.web.listen_address == ":9847"
    assert config.flows.max_flows == 100_000


def test_full_example_is_read(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
state_dir: /tmp/ow
capture: {interface: eth1, snaplen: 1514}
flows: {max_flows: 1000, tcp_idle_timeout: 120}
zones:
  - {name: cooling, cidrs: [10.20.0.0/24, "fd00::/64"], domain: OT, purdue_level: 1}
web: {listen_address: "127.0.0.1:9999"}
""",
        )
    )
    assert config.capture.interface == "eth1"
    assert config.flows.tcp_idle_timeout == 120
    assert config.zones[0].cidrs == ["10.20.0.0/24", "fd00::/64"]
    assert config.zones[0].purdue_level == 1


def test_unknown_key_is_named_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "flows:\n  max_flow: 10\n"))
    assert "flows.max_flow: unknown key" in str(err.value)


def test_bad_value_is_named_with_its_path(tmp_path: Path) -> None:
    text = "zones:\n  - {name: a, cidrs: [10.0.0.0/8]}\n  - {name: b, cidrs: [10.1.2.300/24], domain: OT}\n"
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    message = str(err.value)
    assert "zones.0.domain" in message  # missing
    assert "zones.1.cidrs" in message and "10.1.2.300/24" in message


def test_not_yaml_and_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "flows: [unclosed\n"))
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [(":9847", ("", 9847)), ("127.0.0.1:80", ("127.0.0.1", 80)), ("[::1]:9847", ("::1", 9847))],
)
def test_listen_address_forms(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen_address(text) == expected


def test_bad_listen_address_in_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"web\.listen_address"):
        load_config(write(tmp_path, "web: {listen_address: 'localhost'}\n"))


def test_demo_site_zones_config_is_valid() -> None:
    config = load_config(Path(__file__).resolve().parents[1] / "simulators/profiles/demo-zones.yml")
    assert [z.domain for z in config.zones] == ["OT", "BMS", "IoT", "IT"]
