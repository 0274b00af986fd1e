"""Correlation with hand-made alerts: one incident per actor with a deterministic id, victims and namesakes that
join, low alerts held until something worth an incident happens, idle closing in packet time, meta alerts,
repeats counted and replays ignored, an acknowledged incident reopened by a new phase."""

from __future__ import annotations

import re

from appliance.incidents.correlate import Correlator
from appliance.incidents.facts import StaticLookup
from appliance.incidents.settings import IncidentSettings
from appliance.incidents.store import IncidentStore
from tests.incidents.kit import DC, PLC, SQL, T0, VPN, VPN2, alert, chain, lookup


def store(**settings: object) -> IncidentStore:
    return IncidentStore(IncidentSettings.model_validate(settings), lookup())


def test_the_alerts_of_one_actor_form_one_incident_with_a_deterministic_id() -> None:
    ids = []
    for _ in range(2):
        s = store()
        for a in chain():
            s.on_alert(a)
        rows = s.snapshot()
        assert len(rows) == 1
        ids.append(rows[0]["incident_id"])
        assert rows[0]["actor"] == VPN and rows[0]["alerts"] == len(chain())
        assert [e["note"] for e in rows[0]["timeline"]] == [a.note for a in chain()]
        assert rows[0]["version"] == len(chain())  # one update per alert
    assert ids[0] == ids[1] and re.fullmatch(r"INC-20240604-065000-[0-9a-f]{6}", ids[0])


def test_different_actors_form_different_incidents() -> None:
    s = store()
    s.on_alert(alert(T0, "scan", "rdp_scan", VPN, port=3389))
    s.on_alert(alert(T0 + 1, "scan", "rdp_scan", "10.20.5.50", port=3389))
    assert sorted(r["actor"] for r in s.snapshot()) == ["10.20.5.50", VPN]


def test_low_alerts_alone_form_no_incident_but_join_one_that_forms_soon_after() -> None:
    s = store()
    s.on_alert(alert(T0, "new_device", "new_device", VPN))
    assert s.snapshot() == [] and s.live == 0
    s.on_alert(alert(T0 + 600, "scan", "rdp_scan", VPN, port=3389))
    (row,) = s.snapshot()
    assert [e["note"] for e in row["timeline"]] == ["new_device", "rdp_scan"] and row["first_ts"] == T0


def test_a_low_alert_older_than_the_join_window_stays_out() -> None:
    s = store(join_window=3600)
    s.on_alert(alert(T0, "new_device", "new_device", VPN))
    s.on_alert(alert(T0 + 3601, "scan", "rdp_scan", VPN, port=3389))
    (row,) = s.snapshot()
    assert [e["note"] for e in row["timeline"]] == ["rdp_scan"]


def test_a_statistical_anomaly_alone_forms_no_incident_but_joins_one() -> None:
    s = store(join_window=3600)
    s.on_alert(alert(T0, "ot_anomaly", "statistical_anomaly", VPN))  # medium, but names no kill-chain step
    assert s.snapshot() == []
    s.on_alert(alert(T0 + 60, "scan", "rdp_scan", VPN, port=3389))
    (row,) = s.snapshot()
    assert [e["note"] for e in row["timeline"]] == ["statistical_anomaly", "rdp_scan"]


def test_min_severity_low_makes_every_alert_an_incident() -> None:
    s = store(min_severity="low")
    s.on_alert(alert(T0, "new_device", "new_device", VPN))
    assert len(s.snapshot()) == 1


def test_a_target_that_acts_within_the_window_joins_the_incident_and_later_does_not() -> None:
    s = store(join_window=3600)
    s.on_alert(alert(T0, "auth_bruteforce", "success_after_failures", VPN, SQL, server=SQL))
    s.on_alert(alert(T0 + 600, "scan", "smb_scan", SQL, "10.20.9.1", port=445))  # the victim scans on
    (row,) = s.snapshot()
    assert row["actors"] == [VPN, SQL] and row["alerts"] == 2
    s.on_alert(alert(T0 + 600 + 7200, "scan", "rdp_scan", DC, port=3389))  # DC was never a target
    assert len(s.snapshot()) == 2
    late = store(join_window=3600)
    late.on_alert(alert(T0, "auth_bruteforce", "success_after_failures", VPN, SQL, server=SQL))
    late.on_alert(alert(T0 + 3601, "scan", "smb_scan", SQL, port=445))
    assert len(late.snapshot()) == 2


def test_an_actor_with_the_same_host_name_at_another_address_joins() -> None:
    s = store()
    s.on_alert(alert(T0, "new_device", "hostname_change", VPN))  # VPN is known as DESKTOP-7QK2M1
    s.on_alert(alert(T0 + 900, "scan", "rdp_scan", VPN2, port=3389))  # desktop-7qk2m1.corp.local
    (row,) = s.snapshot()
    assert row["actors"] == [VPN, VPN2]


def test_an_incident_closes_after_the_idle_interval_of_packet_time() -> None:
    s = store(idle=600)
    s.on_alert(alert(T0, "scan", "rdp_scan", VPN, port=3389))
    s.tick(T0 + 599)
    assert s.snapshot()[0]["state"] == "open"
    s.tick(T0 + 661)  # checked at most once a minute of packet time
    (row,) = s.snapshot()
    assert row["state"] == "closed" and row["closed_reason"] == "idle" and row["history"][-1]["who"] == "otwatch"
    s.on_alert(alert(T0 + 700, "scan", "rdp_scan", VPN, port=3389, key="again"))
    rows = s.snapshot()
    assert [r["state"] for r in rows] == ["closed", "open"] and rows[0]["incident_id"] != rows[1]["incident_id"]


def test_an_alert_after_the_idle_interval_starts_a_new_incident_by_itself() -> None:
    s = store()  # default idle: 24 h
    s.on_alert(alert(T0, "scan", "rdp_scan", VPN, port=3389))
    s.on_alert(alert(T0 + 86400, "scan", "rdp_scan", VPN, port=3389, key="later"))
    assert [r["state"] for r in s.snapshot()] == ["closed", "open"]
    s2 = store()
    s2.on_alert(alert(T0, "scan", "rdp_scan", VPN, port=3389))
    s2.on_alert(alert(T0 + 86399, "scan", "rdp_scan", VPN, port=3389, key="later"))
    assert [r["state"] for r in s2.snapshot()] == ["open"]


def test_a_meta_alert_attaches_to_its_subjects_incident_without_a_phase() -> None:
    s = store()
    for a in chain()[:3]:
        s.on_alert(a)
    s.on_alert(alert(T0 + 141, "alert_burst", "multiple_alerts", VPN, DC))
    (row,) = s.snapshot()
    assert row["timeline"][-1]["note"] == "multiple_alerts" and row["timeline"][-1]["phases"] == []
    assert row["phases"] == ["it_recon", "credential_access"]
    assert "T1021" in row["techniques"]


def test_a_repeat_with_the_same_key_counts_and_the_same_alert_again_changes_nothing() -> None:
    s = store()
    first = alert(T0, "scan", "rdp_scan", VPN, port=3389)
    s.on_alert(first)
    s.on_alert(alert(T0 + 3600, "scan", "rdp_scan", VPN, port=3389))  # after the engine's suppression interval
    (row,) = s.snapshot()
    assert len(row["timeline"]) == 1 and row["timeline"][0]["count"] == 2 and row["alerts"] == 2
    assert row["timeline"][0]["last_ts"] == T0 + 3600 and row["version"] == 2
    s.on_alert(first)  # the same capture replayed
    assert s.snapshot()[0]["version"] == 2 and s.updates == 2


def test_an_acknowledged_incident_reopens_when_it_reaches_a_new_phase() -> None:
    s = store()
    s.on_alert(alert(T0, "scan", "rdp_scan", VPN, port=3389))
    inc = next(iter(s.correlator.live.values()))
    inc.set_state("acknowledged", T0 + 1, "alice", "ack")
    s.on_alert(alert(T0 + 10, "scan", "smb_scan", VPN, port=445))  # the same phase: stays acknowledged
    assert s.snapshot()[0]["state"] == "acknowledged"
    s.on_alert(alert(T0 + 20, "ot_pivot", "it_to_ot", VPN, PLC, protocol="modbus", op_class="read", dst=PLC))
    row = s.snapshot()[0]
    assert row["state"] == "open" and row["history"][-1]["action"] == "reopen"
    assert "pivot_into_ot" in row["history"][-1]["reason"]


def test_severity_is_the_highest_alert_raised_at_a_pivot_and_at_impair() -> None:
    s = store()
    s.on_alert(alert(T0, "scan", "address_scan", VPN, port=9401))
    assert s.snapshot()[0]["severity"] == "medium"
    s.on_alert(alert(T0 + 5, "ot_pivot", "it_to_ot", VPN, PLC, severity="medium", protocol="modbus", dst=PLC))
    assert s.snapshot()[0]["severity"] == "high"
    s.on_alert(alert(T0 + 9, "ot_pivot", "device_control", VPN, PLC, severity="medium", protocol="modbus", dst=PLC))
    assert s.snapshot()[0]["severity"] == "critical"


def test_an_alert_without_an_actor_is_counted_not_correlated() -> None:
    c = Correlator(IncidentSettings(), StaticLookup())
    a = alert(T0, "scan", "rdp_scan", VPN)
    bare = a.__class__(a.ts, a.detector, a.note, a.severity, a.score, a.techniques, "", (), (), "", "k")
    assert c.add(bare) == [] and c.uncorrelated == 1


def test_the_timeline_is_in_time_order_whatever_the_arrival_order() -> None:
    s = store()
    alerts = chain()
    for a in [alerts[1], alerts[0], *alerts[2:]]:
        s.on_alert(a)
    row = s.snapshot()[0]
    assert [e["ts"] for e in row["timeline"]] == sorted(e["ts"] for e in row["timeline"])
    assert row["first_ts"] == T0
