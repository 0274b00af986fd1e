"""The zone policy: traffic between zones that no rule allows raises (high into OT/BMS/IoT, medium otherwise),
allowed pairs, traffic inside a zone and addresses outside every zone stay quiet, undecoded connections are judged
by transport and port, a rule naming an unknown zone is a config error named by its key, and without rules the
detector is not built at all."""

from __future__ import annotations

import pytest

from appliance.alert import Alert
from appliance.config import Config, ConfigError, ZonePolicyRule, load_config
from appliance.detectors import build_detectors
from appliance.detectors.engine import DetectorEngine
from appliance.detectors.settings import DetectorSettings
from appliance.detectors.zone_policy import ZonePolicyDetector
from appliance.inventory import AssetInventory
from appliance.model import Flow, FlowId, ProtocolEvent
from appliance.pipeline import zone_map

T0 = 1_700_000_000.0
CORP, HMI, HMI2, PLC, CAM, WWW, NET = "10.20.4.5", "10.50.1.100", "10.50.1.101", "10.50.1.11", "10.70.1.21", \
    "172.16.10.10", "8.8.8.8"  # fmt: skip
ZONES = [
    {"name": "corp-it", "cidrs": ["10.20.4.0/22"], "domain": "IT"},
    {"name": "ot-control", "cidrs": ["10.50.1.0/24"], "domain": "OT"},
    {"name": "iot-cameras", "cidrs": ["10.70.1.0/24"], "domain": "IoT"},
    {"name": "dmz", "cidrs": ["172.16.10.0/24"], "domain": "DMZ"},
]
POLICY = [
    {"from": "ot-control", "to": "iot-cameras", "protocols": ["mqtt"]},
    {"from": "corp-it", "to": "dmz", "protocols": ["http", "tcp/443"]},
    {"from": "*", "to": "corp-it", "protocols": ["dns"]},
]


def config(policy: list[dict[str, object]] = POLICY) -> Config:
    return Config.model_validate({"zones": ZONES, "zone_policy": policy})


def event(src: str, dst: str, protocol: str, op: str, ts: float = T0) -> ProtocolEvent:
    fid = FlowId(f"C{src}{dst}{protocol}", src, 40000, dst, 1, "tcp")
    return ProtocolEvent(ts, fid, protocol, op, "request", True, src, dst, {})


def flow(src: str, dst: str, port: int, ts: float = T0, service: str | None = None) -> Flow:
    fid = FlowId(f"F{src}{dst}{port}", src, 40001, dst, port, "tcp")
    return Flow(fid, ts, 1.0, service, 10, 10, "SF", 0, "ShADadFf", 5, 300, 5, 300)


def run(items: list[ProtocolEvent | Flow], cfg: Config | None = None) -> list[Alert]:
    cfg = cfg or config()
    alerts: list[Alert] = []
    inventory = AssetInventory(zone_map(cfg))
    engine = DetectorEngine([ZonePolicyDetector(cfg.zone_policy)], alerts.append, inventory=inventory)
    for item in items:
        if isinstance(item, Flow):
            engine.on_flow(item)
        else:
            engine.on_event(item)
    return alerts


def test_traffic_no_rule_allows_raises_once_per_source_zone_and_protocol() -> None:
    alerts = run([
        event(CORP, PLC, "modbus", "read_holding_registers"),
        event(CORP, PLC, "modbus", "read_holding_registers", T0 + 1),  # a repeat: counted
        event(CORP, WWW, "smb", "negotiate", T0 + 2),
    ])  # fmt: skip
    assert [(a.note, a.severity, a.src, a.details["dst_zone"], a.details["protocol"]) for a in alerts] == [
        ("policy_violation_into_ot", "high", CORP, "ot-control", "modbus"),
        ("policy_violation", "medium", CORP, "dmz", "smb"),
    ]  # fmt: skip
    assert alerts[0].techniques == ("T0886",)
    assert alerts[0].explanation == ("10.20.4.5 (corp-it, IT) sent modbus read_holding_registers to 10.50.1.11 "
                                     "(ot-control, OT): the zone policy allows nothing from corp-it to ot-control")
    assert alerts[1].explanation.endswith("the zone policy allows only http, tcp/443 from corp-it to dmz")


def test_allowed_pairs_inside_a_zone_and_outside_every_zone_stay_quiet() -> None:
    assert run([
        event(HMI, CAM, "mqtt", "publish"),  # ot-control -> iot-cameras: mqtt allowed
        event(CORP, WWW, "http", "GET"),  # corp-it -> dmz: http allowed
        event(CAM, CORP, "dns", "query"),  # any zone -> corp-it: dns allowed
        event(HMI, PLC, "modbus", "write_single_register"),  # inside ot-control
        event(HMI2, NET, "http", "GET"),  # to the internet: ot_internet's business
        event(HMI, CAM, "mqtt", "subscribe", T0 + 1),
    ]) == []  # fmt: skip
    assert run([event(CAM, HMI, "mqtt", "publish")])[0].note == "policy_violation_into_ot"  # a rule has a direction


def test_undecoded_connections_are_judged_by_transport_and_port() -> None:
    alerts = run([flow(CORP, PLC, 22), flow(CORP, WWW, 443), flow(CORP, PLC, 502, service="modbus")])
    assert [(a.note, a.details["protocol"]) for a in alerts] == [("policy_violation_into_ot", "tcp/22")]


def test_a_rule_naming_an_unknown_zone_is_named_by_its_key(tmp_path: object) -> None:
    with pytest.raises(ValueError, match=r"rule 0: to: 'plcs' is not a zone name"):
        config([{"from": "corp-it", "to": "plcs", "protocols": ["modbus"]}])
    path = tmp_path / "otwatch.yml"  # type: ignore[operator]
    path.write_text("zones: []\nzone_policy:\n  - {from: corp, to: '*', protocols: [dns], port: 53}\n")
    with pytest.raises(ConfigError, match="zone_policy"):
        load_config(path)


def test_the_detector_exists_only_with_a_policy() -> None:
    names = [d.name for d in build_detectors(DetectorSettings())]
    assert "zone_policy" not in names
    rules = [ZonePolicyRule.model_validate(r) for r in POLICY]
    assert "zone_policy" in [d.name for d in build_detectors(DetectorSettings(), None, rules)]
