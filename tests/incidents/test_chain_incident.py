"""The attack chain (simulators/itgen/chain.py) through the real `otwatch replay` with its zones: one incident for
the VPN actor with four phases in order; a restart (the same capture replayed with the same state directory)
continues it; `otwatch incidents` shows it, and `ack`/`close` are recorded in the actions table with who and when.

Phases reachable in this capture with today's detectors: IT recon, credential access, pivot into OT and impair
(the Modbus read and write of step 6). OT discovery is not reachable here: the capture's only OT step reads
holding registers and writes one, and no detector yet raises on a unit-id or Who-Is sweep as such (see
test_scenario_incident.py for a capture in which it is reached through the op class of the crossing)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from appliance.detectors.techniques import unknown_techniques
from appliance.incidents.phases import PHASES
from simulators.itgen.chain import ATTACKER, CHAIN_AT, write_benign, write_chain

ZONES = """zones:
  - {name: vpn, cidrs: [10.8.0.0/24], domain: VPN, purdue_level: 4}
  - {name: corp, cidrs: [10.20.0.0/16], domain: IT, purdue_level: 4}
  - {name: cooling, cidrs: [10.50.1.0/24], domain: OT, purdue_level: 1}
"""


def otwatch(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the CLI."""
    cmd = [sys.executable, "-m", "appliance", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)


def replay(pcap: Path, config: Path, state: Path, out: Path) -> dict[str, Any]:
    """`otwatch replay --json`: its summary."""
    done = otwatch("replay", pcap, "--config", config, "--state", state, "--out", out, "--json", "--no-progress")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chain replayed once into base/state (logs in base/logs)."""
    base = tmp_path_factory.mktemp("chain")
    write_chain(base / "chain.pcap", seed=1)
    (base / "zones.yml").write_text(ZONES)
    summary = replay(base / "chain.pcap", base / "zones.yml", base / "state", base / "logs")
    (base / "summary.json").write_text(json.dumps(summary))
    return base


def copy_state(base: Path, tmp: Path) -> Path:
    shutil.copytree(base / "state", tmp / "state")
    return tmp / "state"


def test_the_chain_forms_one_incident_for_the_vpn_actor_with_four_phases_in_order(base: Path) -> None:
    log = rows(base / "logs" / "incidents.jsonl")
    assert {r["incident_id"] for r in log} == {log[0]["incident_id"]}  # one incident
    assert [r["version"] for r in log] == list(range(1, len(log) + 1))
    last = log[-1]
    assert last["actor"] == ATTACKER and last["actors"] == [ATTACKER] and last["state"] == "open"
    assert last["phases"] == ["it_recon", "credential_access", "pivot_into_ot", "impair"]
    assert [p["phase"] for p in last["phase_times"]] == last["phases"]
    assert [PHASES.index(p) for p in last["phases"]] == sorted(PHASES.index(p) for p in last["phases"])
    first = {p["phase"]: p["first_ts"] for p in last["phase_times"]}
    # the stolen-credential logon came first, then recon; the pivot and the write came after every IT step
    assert CHAIN_AT <= first["credential_access"] < first["it_recon"] < first["pivot_into_ot"] <= first["impair"]
    alerts = rows(base / "logs" / "alerts.jsonl")
    assert last["alerts"] == len(alerts) and {a["src"] for a in alerts} == {ATTACKER}
    assert last["severity"] == "critical" and last["risk"] == 100
    assert last["title"].startswith("VPN host 10.8.0.23: IT recon -> credential access -> pivot into OT")
    assert last["title"].endswith("OT write to cooling PLC")
    assert unknown_techniques(last["techniques"]) == [] and {"T0855", "T0836", "T1110.001"} <= set(last["techniques"])
    assert set(last["technique_names"]) == set(last["techniques"])
    plc = next(a for a in last["asset_details"] if a["ip"] == "10.50.1.10")
    assert (plc["zone"], plc["domain"], plc["category"], plc["role"]) == ("cooling", "OT", "PLC", "target")
    assert "tcp dport 502" in last["response"]["nftables_block"]
    assert {"LAPTOP-JSMITH", "DESKTOP-7QK2M1"} <= set(last["actor_hostnames"])  # names from the live inventory
    assert last["narrative"].startswith("VPN host 10.8.0.23 in zone vpn, known as LAPTOP-JSMITH")
    assert json.loads((base / "summary.json").read_text())["incidents"] == {"open": 1, "acknowledged": 0, "closed": 0}


def test_the_incident_is_in_the_state_database(base: Path) -> None:
    db = sqlite3.connect(base / "state" / "otwatch.sqlite")
    stored = db.execute("SELECT incident_id, actor, state, severity, data FROM incidents").fetchall()
    db.close()
    assert len(stored) == 1 and stored[0][1:4] == (ATTACKER, "open", "critical")
    assert json.loads(stored[0][4]) == rows(base / "logs" / "incidents.jsonl")[-1]


def test_otwatch_incidents_shows_the_table_and_the_records(base: Path) -> None:
    done = otwatch("incidents", "--state", base / "state")
    assert done.returncode == 0, done.stderr
    header, line, *rest = done.stdout.splitlines()
    assert rest == [] and header.split() == ["ID", "STATE", "SEVERITY", "RISK", "ACTOR", "PHASES", "TITLE", "FIRST",
                                             "LAST"]  # fmt: skip
    record = rows(base / "logs" / "incidents.jsonl")[-1]
    assert line.split()[:6] == [record["incident_id"], "open", "critical", "100", ATTACKER, "recon>creds>pivot>impair"]
    assert "VPN host 10.8.0.23: IT recon" in line and "2024-06-04 06:50:00" in line
    as_json = otwatch("incidents", "--state", base / "state", "--json")
    assert [json.loads(x) for x in as_json.stdout.splitlines()] == [record]


def test_a_restart_continues_the_incident_instead_of_duplicating_it(base: Path, tmp_path: Path) -> None:
    state = copy_state(base, tmp_path)
    before = rows(base / "logs" / "incidents.jsonl")[-1]
    summary = replay(base / "chain.pcap", base / "zones.yml", state, tmp_path / "logs")
    assert summary["incidents"] == {"open": 1, "acknowledged": 0, "closed": 0}
    db = sqlite3.connect(state / "otwatch.sqlite")
    stored = db.execute("SELECT data FROM incidents").fetchall()
    db.close()
    assert len(stored) == 1
    after = json.loads(stored[0][0])
    assert after["incident_id"] == before["incident_id"] and after["version"] >= before["version"]
    keys = [e["key"] for e in after["timeline"]]
    assert len(keys) == len(set(keys)) and set(keys) == {e["key"] for e in before["timeline"]}
    assert after["phases"] == before["phases"]
    for r in rows(tmp_path / "logs" / "incidents.jsonl"):  # updates of the second run: the same incident
        assert r["incident_id"] == before["incident_id"] and r["version"] > before["version"]


def test_ack_and_close_are_recorded_in_actions_with_who_and_when(base: Path, tmp_path: Path) -> None:
    state = copy_state(base, tmp_path)
    incident_id = rows(base / "logs" / "incidents.jsonl")[-1]["incident_id"]
    t0 = time.time()
    done = otwatch("incidents", "ack", incident_id, "--who", "alice", "--state", state)
    assert done.returncode == 0 and done.stdout.strip() == f"{incident_id}: acknowledged by alice", done.stderr
    shown = otwatch("incidents", "--state", state).stdout.splitlines()[1].split()
    assert shown[:2] == [incident_id, "acknowledged"]
    again = otwatch("incidents", "ack", incident_id, "--state", state)
    assert again.returncode == 1 and "acknowledged already" in again.stderr
    assert otwatch("incidents", "close", incident_id, "--who", "bob", "--state", state).returncode == 0
    db = sqlite3.connect(state / "otwatch.sqlite")
    actions = db.execute("SELECT ts, who, action, data FROM actions ORDER BY seq").fetchall()
    db.close()
    assert [(a[1], a[2]) for a in actions] == [("alice", "incident_ack"), ("bob", "incident_close")]
    assert all(t0 <= ts <= time.time() for ts, *_ in actions)
    assert json.loads(actions[0][3])["incident_id"] == incident_id
    assert otwatch("incidents", "--state", state).stdout.startswith("no open incidents")
    closed = otwatch("incidents", "--all", "--state", state).stdout.splitlines()[1].split()
    assert closed[:2] == [incident_id, "closed"]
    # a replay after the close: the closed incident stays closed, its alerts start a new one
    replay(base / "chain.pcap", base / "zones.yml", state, tmp_path / "logs")
    listed = [json.loads(x) for x in otwatch("incidents", "--all", "--json", "--state", state).stdout.splitlines()]
    assert [(r["incident_id"] == incident_id, r["state"]) for r in listed] == [(True, "closed"), (False, "open")]
    assert listed[0]["history"][-1]["who"] == "bob"


def test_the_who_defaults_to_the_login_name(base: Path, tmp_path: Path) -> None:
    import getpass

    state = copy_state(base, tmp_path)
    incident_id = rows(base / "logs" / "incidents.jsonl")[-1]["incident_id"]
    done = otwatch("incidents", "ack", incident_id, "--state", state)
    assert done.returncode == 0 and done.stdout.strip().endswith(f"by {getpass.getuser()}")


def test_bad_incident_commands_say_what_is_wrong(base: Path, tmp_path: Path) -> None:
    no_id = otwatch("incidents", "ack", "--state", base / "state")
    assert no_id.returncode == 2 and "give the incident ID" in no_id.stderr
    unknown = otwatch("incidents", "close", "INC-nope", "--state", copy_state(base, tmp_path))
    assert unknown.returncode == 1 and "no incident 'INC-nope'" in unknown.stderr
    empty = otwatch("incidents", "--state", tmp_path / "nothing")
    assert empty.returncode == 1 and "no otwatch database" in empty.stderr
    assert not (tmp_path / "nothing").exists()


def test_the_benign_capture_forms_no_incident(tmp_path: Path) -> None:
    write_benign(tmp_path / "benign.pcap", seed=1)
    (tmp_path / "zones.yml").write_text(ZONES)
    summary = replay(tmp_path / "benign.pcap", tmp_path / "zones.yml", tmp_path / "state", tmp_path / "logs")
    assert summary["incidents"] == {"open": 0, "acknowledged": 0, "closed": 0}
    assert not (tmp_path / "logs" / "incidents.jsonl").exists()
    assert otwatch("incidents", "--state", tmp_path / "state").stdout.startswith("no open incidents")
