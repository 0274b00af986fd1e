"""The baseline in SQLite: a restarted sensor resumes what it learned (facts, channels and their periods, modes,
device windows) instead of relearning; operator actions (`otwatch mode`, `otwatch learn`) are recorded with who and
when and applied by the sensor at its next save or start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.baseline import BaselineSettings
from appliance.baseline.persist import LEARN_ACTION, MODE_ACTION, find_broken, record_action, resume, save, sync
from appliance.cli import main
from appliance.store import Store
from tests.baseline.kit import PLC, SCADA, T0, VPN, Site, learn_normal_site, modbus

SETTINGS = BaselineSettings(learning_days=1 / 24, device_learning_days=1 / 24)


def test_a_restart_resumes_what_was_learned(tmp_path: Path) -> None:
    site = Site(SETTINGS)
    end = learn_normal_site(site)
    b = site.baseline
    with Store(tmp_path) as store:
        save(b, store.connection)
    again = Site(SETTINGS)
    with Store(tmp_path) as store:
        assert resume(again.baseline, store.connection) == []
    a = again.baseline
    assert a.facts.counts() == b.facts.counts() and a.facts.tables == b.facts.tables
    assert a.assets == b.assets
    assert a.modes.to_dict() == b.modes.to_dict() and a.progress() == b.progress()
    assert a.progress().mode == "protect"
    assert {k: (c.period, c.fixed) for k, c in a.channels.items()} == {k: (c.period, c.fixed)
                                                                         for k, c in b.channels.items()}  # fmt: skip
    assert a.channels[(SCADA, PLC, "modbus", "read_holding_registers", "1")].period == 5.0
    # judged at once, the same way: the poll is normal, the intruder is not
    assert again.mine(again.feed(modbus(SCADA, PLC, "read_holding_registers", end + 5))) == []
    assert again.mine(again.feed(modbus(VPN, PLC, "read_holding_registers", end + 6))) == [
        ("ot_baseline", "rogue_modbus_master", VPN)]
    # a second save writes only what changed
    with Store(tmp_path) as store:
        save(a, store.connection)
        rows = store.connection.execute("SELECT count(*) FROM baselines WHERE kind LIKE 'fact:%'").fetchone()[0]
    assert rows == sum(a.facts.counts().values())


def test_operator_actions_are_recorded_and_applied(tmp_path: Path) -> None:
    site = Site(SETTINGS)
    end = learn_normal_site(site, until=T0 + 600)  # ten minutes: still learning
    assert site.baseline.progress().mode == "learn"
    with Store(tmp_path) as store:
        seq = record_action(store.connection, "alice", MODE_ACTION, {"mode": "protect"})
        assert sync(site.baseline, store.connection) == ["mode protect (by alice)"]
        row = store.connection.execute("SELECT ts, who, action, data FROM actions WHERE seq = ?", (seq,)).fetchone()
    assert row[1:] == ("alice", MODE_ACTION, '{"mode":"protect"}') and row[0] > 1.7e9
    p = site.baseline.progress()
    assert (p.mode, p.manual, p.who, p.started) == ("protect", True, "alice", end)
    alerts = site.feed(modbus(VPN, PLC, "read_holding_registers", end + 1))
    rogue = next(a for a in alerts if a.note == "rogue_modbus_master")
    assert "its masters in 10 minutes of learning (then protect, set by alice)" in rogue.explanation
    with Store(tmp_path) as store:
        save(site.baseline, store.connection)
        assert find_broken(store.connection, rogue.key) == find_broken(store.connection, rogue.details["fact_id"])
        fid, record = find_broken(store.connection, rogue.details["fact_id"])  # type: ignore[misc]
        assert record["kind"] == "commander" and record["key"] == [VPN, PLC, "modbus"]
        record_action(store.connection, "bob", LEARN_ACTION, {"fact_id": fid})
    restarted = Site(SETTINGS)
    with Store(tmp_path) as store:
        assert resume(restarted.baseline, store.connection) == [f"learned {fid} (by bob)"]
        assert find_broken(store.connection, fid) is not None  # removed at the next save
        save(restarted.baseline, store.connection)
        assert find_broken(store.connection, fid) is None
    assert restarted.baseline.facts.has("commander", (VPN, PLC, "modbus"))
    assert ("ot_baseline", "rogue_modbus_master", VPN) not in restarted.mine(
        restarted.feed(modbus(VPN, PLC, "read_holding_registers", end + 7200)))


def test_otwatch_mode_and_learn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    config = tmp_path / "otwatch.yml"
    config.write_text("baseline: {learning_days: 2}\n")
    assert main(["mode", "--state", str(state), "--config", str(config)]) == 1  # nothing stored yet
    assert "no otwatch database" in capsys.readouterr().err
    assert main(["mode", "protect", "--who", "carol", "--state", str(state)]) == 0
    assert "recorded: mode protect by carol" in capsys.readouterr().out
    site = Site(SETTINGS)
    learn_normal_site(site, until=T0 + 3 * 3600)
    alert = site.feed(modbus(VPN, PLC, "read_holding_registers", T0 + 3 * 3600 + 1))[-1]
    with Store(state) as store:
        resume(site.baseline, store.connection)  # the sensor's start applies carol's switch
        save(site.baseline, store.connection)
    assert main(["mode", "--state", str(state), "--config", str(config), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["mode"], shown["manual"], shown["who"]) == ("protect", True, "carol")
    assert shown["changes"][0]["who"] == "carol" and shown["changes"][0]["applied"] is True
    assert main(["mode", "--state", str(state), "--config", str(config)]) == 0
    assert "mode         protect (set by carol)" in capsys.readouterr().out
    assert main(["learn", "nope", "--state", str(state)]) == 1
    assert "no alert with fact id or key 'nope'" in capsys.readouterr().err
    assert main(["learn", alert.key, "--who", "dave", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    assert f"recorded: learn commander ['{VPN}', '{PLC}', 'modbus']" in out and "by dave" in out
