"""Risk scores: additive, every factor with its points and why, per incident and per asset."""

from __future__ import annotations

from typing import Any

from appliance.alert import Alert
from appliance.incidents.facts import CRITICALITY, AssetFacts
from appliance.incidents.risk import FACTORS, MAX_SCORE
from appliance.incidents.settings import IncidentSettings
from appliance.incidents.store import IncidentStore
from tests.incidents.kit import BMS, DC, HMI, PLC, T0, VPN, alert, chain, lookup


def run(*alerts: Alert) -> IncidentStore:
    s = IncidentStore(IncidentSettings(), lookup())
    for a in alerts:
        s.on_alert(a)
    return s


def factors(row: dict[str, Any]) -> dict[str, int]:
    return {f["factor"]: f["points"] for f in row["risk_factors"]}


def test_a_write_from_the_vpn_into_a_plc_scores_each_factor() -> None:
    write = alert(T0, "ot_pivot", "it_to_ot_write", VPN, PLC, protocol="modbus", op="write_single_register",
                  op_class="write", dst=PLC)  # fmt: skip
    (row,) = run(write).snapshot()
    assert factors(row) == {"zone_crossing": 25, "asset_criticality": 20, "operation_severity": 15, "novelty": 0,
                            "anomaly": 0, "phases": 20}  # fmt: skip
    assert row["risk"] == 80 == sum(factors(row).values())
    why = {f["factor"]: f["why"] for f in row["risk_factors"]}
    assert "10.8.0.23" in why["zone_crossing"] and "PLC 10.50.1.10 (cooling, OT)" in why["zone_crossing"]
    assert why["asset_criticality"] == "PLC: 10.50.1.10"
    assert why["operation_severity"] == "write write_single_register to 10.50.1.10"
    assert [f["factor"] for f in row["risk_factors"]] == list(FACTORS)


def test_commands_outweigh_writes_and_novelty_and_anomaly_add_their_points() -> None:
    restart = alert(T0, "ot_pivot", "device_control", VPN, BMS, protocol="bacnet", op="reinitialize_device", dst=BMS,
                    anomaly_score=0.6, novel=True)  # fmt: skip
    (row,) = run(restart).snapshot()
    f = factors(row)
    assert f["operation_severity"] == 20 and f["anomaly"] == 9 and f["novelty"] == 10
    assert f["zone_crossing"] == 25 and f["asset_criticality"] == 20 and f["phases"] == 10
    assert row["risk"] == 94


def test_the_score_is_capped_at_100_and_the_full_chain_reaches_it() -> None:
    (row,) = run(*chain()).snapshot()
    assert row["risk"] == MAX_SCORE == sum(factors(row).values())
    (more,) = run(*chain(), alert(T0 + 500, "ot_pivot", "device_control", VPN, PLC, anomaly_score=1.0)).snapshot()
    assert more["risk"] == MAX_SCORE < sum(factors(more).values())  # 25 + 20 + 20 + 10 + 15 + 30
    assert factors(row)["novelty"] == 10  # the hostname change
    assert factors(row)["phases"] == 4 + 6 + 10 + 10


def test_an_it_only_incident_has_no_crossing_and_a_low_criticality() -> None:
    (row,) = run(alert(T0, "ldap_recon", "ad_enumeration", VPN, DC)).snapshot()
    f = factors(row)
    assert f["zone_crossing"] == 0 and f["asset_criticality"] == CRITICALITY["IT host"] and f["phases"] == 4
    assert row["risk"] == 8


def test_criticality_ranks_controllers_over_workstations_over_it_hosts() -> None:
    plc, hmi, it = (AssetFacts("a", category=c).criticality()[0] for c in ("PLC", "HMI/SCADA", "IT host"))
    assert plc > hmi > it
    assert AssetFacts("a", domain="OT").criticality()[0] > AssetFacts("a", domain="IT").criticality()[0]


def test_asset_risk_scores_each_address_of_the_live_incidents() -> None:
    s = run(*chain(), alert(T0 + 900, "ot_pivot", "device_control", HMI, PLC, protocol="modbus", op="diagnostics"))
    risk = s.asset_risk()
    assert risk[PLC].points("zone_crossing") == 25 and risk[PLC].points("asset_criticality") == 20
    assert risk[PLC].points("operation_severity") == 20  # the HMI's command outweighs the VPN host's write
    assert risk[VPN].points("novelty") == 10 and risk[VPN].points("phases") == 30
    assert risk[DC].points("zone_crossing") == 0 and risk[DC].score < risk[PLC].score
    assert all(0 <= r.score <= MAX_SCORE for r in risk.values())
    assert s.asset_risk()[PLC].to_dict()["factors"][0] == {
        "factor": "zone_crossing", "points": 25, "why": risk[PLC].factors[0].why,
    }  # fmt: skip
    s.tick(T0 + 3 * 86400)  # idle: closed incidents carry no asset risk
    assert s.asset_risk() == {}
