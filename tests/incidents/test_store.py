"""IncidentStore persistence and readers: saved and resumed through SQLite, operator actions recorded with who and
when and applied by a running sensor, snapshot rows that are copies, incidents.jsonl rows, failing listeners."""

from __future__ import annotations

import itertools
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from appliance.incidents.persist import IncidentError, IncidentLog, dumps, record_action
from appliance.incidents.settings import IncidentSettings
from appliance.incidents.store import LOG_RATE, IncidentStore
from appliance.store import Store
from tests.incidents.kit import PLC, T0, VPN, alert, chain, lookup


def fresh() -> IncidentStore:
    return IncidentStore(IncidentSettings(), lookup())


def saved(state: Path) -> IncidentStore:
    s = fresh()
    for a in chain():
        s.on_alert(a)
    with Store(state) as db:
        assert s.sync(db) == 1
    return s


def test_incidents_are_saved_and_a_restart_resumes_them(tmp_path: Path) -> None:
    before = saved(tmp_path).snapshot()
    again = fresh()
    with Store(tmp_path) as db:
        assert again.load(db) == 1
        assert again.snapshot() == before
        again.on_alert(alert(T0 + 900, "ot_pivot", "device_control", VPN, PLC, protocol="modbus", dst=PLC))
        again.sync(db)
        rows = db.connection.execute("SELECT incident_id, state, severity, actor FROM incidents").fetchall()
    (row,) = again.snapshot()
    assert row["incident_id"] == before[0]["incident_id"] and row["version"] == before[0]["version"] + 1
    assert row["timeline"][-1]["note"] == "device_control" and len(row["timeline"]) == len(chain()) + 1
    assert rows == [(row["incident_id"], "open", "critical", VPN)]


def test_closed_incidents_are_kept_but_not_resumed(tmp_path: Path) -> None:
    s = saved(tmp_path)
    s.tick(T0 + 3 * 86400)
    with Store(tmp_path) as db:
        s.sync(db)
        again = fresh()
        assert again.load(db) == 0
        (state,) = db.connection.execute("SELECT state FROM incidents").fetchone()
    assert state == "closed"


def test_an_unreadable_row_is_skipped_and_counted(tmp_path: Path) -> None:
    saved(tmp_path)
    with Store(tmp_path) as db:
        db.connection.execute("INSERT INTO incidents VALUES ('bad', 'x', 'open', 'low', 0, 0, '{not json')")
        db.connection.execute("INSERT INTO incidents VALUES ('bad2', 'x', 'open', 'low', 0, 0, '{\"incident_id\": 1}')")
        db.connection.commit()
        again = fresh()
        assert again.load(db) == 1 and again.skipped_rows == 2


def test_ack_and_close_are_recorded_with_who_and_when(tmp_path: Path) -> None:
    incident_id = saved(tmp_path).snapshot()[0]["incident_id"]
    with Store(tmp_path) as db:
        conn = db.connection
        row = record_action(conn, incident_id, "ack", "alice", ts=1_800_000_000.0)
        assert row["state"] == "acknowledged" and row["history"][-1]["who"] == "alice"
        with pytest.raises(IncidentError, match="acknowledged already"):
            record_action(conn, incident_id, "ack", "bob")
        record_action(conn, incident_id, "close", "bob", ts=1_800_000_060.0)
        with pytest.raises(IncidentError, match="closed already"):
            record_action(conn, incident_id, "ack", "bob")
        with pytest.raises(IncidentError, match="no incident 'INC-nope'"):
            record_action(conn, "INC-nope", "ack", "bob")
        actions = conn.execute("SELECT seq, ts, who, action, data FROM actions ORDER BY seq").fetchall()
        stored = json.loads(conn.execute("SELECT data FROM incidents").fetchone()[0])
    assert [(a[1], a[2], a[3]) for a in actions] == [
        (1_800_000_000.0, "alice", "incident_ack"), (1_800_000_060.0, "bob", "incident_close"),
    ]  # fmt: skip
    assert json.loads(actions[0][4]) == {"incident_id": incident_id, "state": "acknowledged", "previous": "open"}
    assert stored["state"] == "closed" and stored["closed_reason"] == "operator"
    assert [h["who"] for h in stored["history"]] == ["alice", "bob"]


def test_a_running_sensor_applies_actions_recorded_by_another_connection(tmp_path: Path) -> None:
    s = saved(tmp_path)
    seen: list[dict[str, Any]] = []
    s.subscribe(seen.append)
    incident_id = s.snapshot()[0]["incident_id"]
    with Store(tmp_path) as sensor_db:
        other = sqlite3.connect(tmp_path / "otwatch.sqlite")
        record_action(other, incident_id, "ack", "alice")
        other.close()
        s.sync(sensor_db)  # applies the ack before saving: the save does not undo it
        stored = json.loads(sensor_db.connection.execute("SELECT data FROM incidents").fetchone()[0])
        assert s.snapshot()[0]["state"] == "acknowledged" and stored["state"] == "acknowledged"
        assert seen[-1]["state"] == "acknowledged" and seen[-1]["history"][-1]["who"] == "alice"
        other = sqlite3.connect(tmp_path / "otwatch.sqlite")
        record_action(other, incident_id, "close", "bob")
        other.close()
        s.sync(sensor_db)
        assert s.live == 0 and s.snapshot()[0]["state"] == "closed"
        s.sync(sensor_db)  # applied once only
    assert [r["state"] for r in seen] == ["acknowledged", "closed"]


def test_snapshot_rows_are_copies(tmp_path: Path) -> None:
    s = saved(tmp_path)
    row = s.snapshot()[0]
    row["state"] = "mangled"
    row["timeline"].clear()
    again = s.snapshot()[0]
    assert again["state"] == "open" and len(again["timeline"]) == len(chain())


def test_a_failing_listener_is_counted_and_the_others_still_run() -> None:
    s = fresh()
    got: list[str] = []

    def broken(row: dict[str, Any]) -> None:
        raise RuntimeError("sink down")

    s.subscribe(broken)
    s.subscribe(lambda row: got.append(row["incident_id"]))
    for a in chain()[:2]:
        s.on_alert(a)
    assert s.listener_errors == 2 and len(got) == 2


def test_the_log_gets_one_row_per_update_with_its_version(tmp_path: Path) -> None:
    s = fresh()
    log = IncidentLog(tmp_path / "logs")
    s.subscribe(log.write)
    for a in chain():
        s.on_alert(a)
    rows = [json.loads(line) for line in (tmp_path / "logs" / "incidents.jsonl").read_text().splitlines()]
    assert [r["version"] for r in rows] == list(range(1, len(chain()) + 1)) and log.rows == len(chain())
    assert {r["incident_id"] for r in rows} == {s.snapshot()[0]["incident_id"]}
    assert rows[-1] == s.snapshot()[0]


def test_max_closed_kept_bounds_what_readers_see() -> None:
    s = IncidentStore(IncidentSettings(idle=60, max_closed_kept=2), lookup())
    for i in range(5):
        s.on_alert(alert(T0 + i * 1000, "scan", "rdp_scan", VPN, port=3389, key=f"k{i}"))
    s.tick(T0 + 10_000)
    rows = s.snapshot()
    assert [r["state"] for r in rows] == ["closed", "closed"] and rows[-1]["first_ts"] == T0 + 4000


def _sweep(s: IncidentStore, n: int, step: float, start: float = T0) -> None:
    """A sweep: one port-scan alert per host, `step` seconds apart."""
    for i in range(n):
        s.on_alert(alert(start + i * step, "scan", "port_scan", VPN, f"10.20.{9 + i // 250}.{i % 250}", key=f"k{i}"))


def _published(s: IncidentStore) -> list[tuple[dict[str, Any], int]]:
    """Every record the listeners get, with its size in bytes as logged."""
    seen: list[tuple[dict[str, Any], int]] = []
    s.subscribe(lambda row: seen.append((row, len(dumps(row)))))
    return seen


def test_routine_updates_wait_in_proportion_to_the_record_and_nothing_is_lost(tmp_path: Path) -> None:
    s = fresh()
    seen = _published(s)
    _sweep(s, 300, 0.01)  # 300 alerts in 3 s of packet time: the record grows to ~150 kB
    assert [row["alerts"] for row, _ in seen][:1] == [1] and len(seen) <= 3
    for (before, size), (after, _) in itertools.pairwise(seen):  # each waited for the last record's size
        assert after["last_ts"] - before["last_ts"] >= size / LOG_RATE, (before["alerts"], after["alerts"])
    with Store(tmp_path) as db:
        s.sync(db)  # without a packet time: what was held is published
    final, final_size = seen[-1]
    assert final["alerts"] == 300 and s.snapshot()[0] == final and final["version"] == len(seen)
    assert [row["version"] for row, _ in seen] == list(range(1, len(seen) + 1))
    # the log grows with what is new, not with the square of the incident's size
    assert sum(size for _, size in seen) < 3 * final_size


def test_a_long_sweep_is_published_periodically(tmp_path: Path) -> None:
    s = fresh()
    seen = _published(s)
    _sweep(s, 400, 2.0)  # 800 s of packet time
    assert 5 <= len(seen) < 100
    for (before, size), (after, _) in itertools.pairwise(seen):
        assert after["last_ts"] - before["last_ts"] >= size / LOG_RATE
    assert 300 < seen[-1][0]["alerts"] < 400  # the last update is at most one wait behind
    with Store(tmp_path) as db:
        s.sync(db, T0 + 10_000)  # at a packet time when the held update is due
    assert seen[-1][0]["alerts"] == 400 == s.snapshot()[0]["alerts"]


def test_a_new_phase_state_or_severity_is_published_at_once() -> None:
    s = fresh()
    seen = _published(s)
    _sweep(s, 150, 0.01)
    n = len(seen)
    pivot = alert(T0 + 1.6, "ot_pivot", "it_to_ot_write", VPN, PLC, protocol="modbus", op="write_single_register",
                  op_class="write", dst=PLC)  # fmt: skip
    s.on_alert(pivot)  # inside the wait of the large record, but it reaches a new phase
    assert len(seen) == n + 1 and seen[-1][0]["alerts"] == 151
    assert set(seen[-1][0]["phases"]) > set(seen[-2][0]["phases"]) and seen[-1][0]["severity"] == "critical"


def test_a_large_incident_is_rebuilt_at_most_once_a_second() -> None:
    s = fresh()
    seen = _published(s)
    _sweep(s, 120, 0.01)
    s.tick(T0 + 100)  # the held sweep is published: 120 entries, a large incident
    assert seen[-1][0]["alerts"] == 120
    s.on_alert(alert(T0 + 100.5, "ot_pivot", "it_to_ot_write", VPN, PLC, protocol="modbus",
                     op="write_single_register", op_class="write", dst=PLC))  # fmt: skip
    s.tick(T0 + 100.9)  # a new phase, but less than a second after the last rebuild: held
    assert seen[-1][0]["alerts"] == 120
    s.tick(T0 + 101.0)
    assert seen[-1][0]["alerts"] == 121 and "impair" in seen[-1][0]["phases"]
