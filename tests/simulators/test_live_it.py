"""The live IT site on loopback: the puppets answer by their rules and leave nothing behind; the sensor capturing
`lo` live raises the whole intrusion chain's alerts from the VPN address, and no weird record for these flows."""

from __future__ import annotations

import json
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from random import Random

import pytest

from simulators.itgen.chain_wire import ntlmv2_auth, ptr_name
from simulators.itgen.smb_ldap_msgs import der, eq, ntlm_challenge
from simulators.live_it import clients, wire
from simulators.live_it.attacker import Attacker, StepRun
from simulators.live_it.plan import DEFAULT_PASSWORD, USER, USER_PASSWORD, ItPlan
from simulators.live_it.servers import ItServers
from tests.test_run_live import alerts_metric, free_port, http_get, wait_for

ROOT = Path(__file__).resolve().parents[2]
OURS = ("127.8.", "127.20.")  # the VPN address and the IT servers and scan targets


def bound_here() -> list[tuple[str, str, int]]:
    """(table, address, port) of every IPv4 TCP/UDP socket a process holds on one of the live IT site's addresses
    (TIME_WAIT remnants of closed connections belong to no process: inode 0)."""
    out = []
    for table in ("tcp", "udp"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] == "0":
                continue
            ip_hex, port_hex = fields[1].split(":")
            ip = socket.inet_ntoa(struct.pack("<I", int(ip_hex, 16)))
            if ip.startswith(OURS):
                out.append((table, ip, int(port_hex, 16)))
    return out


def test_ntlm_proof_checks_the_password_the_server_never_sees() -> None:
    rng = Random(3)
    chal = wire.challenge_of(ntlm_challenge(rng, "CORP", "FS01", "CORP", "fs01.corp.local", "corp.local", "corp.local"))
    auth = wire.with_proof(ntlmv2_auth(rng, "CORP", "jsmith", "LAPTOP-JSMITH", "fs01"), "Spring2024!", chal)
    assert wire.auth_fields(auth)[:3] == ("CORP", "jsmith", "LAPTOP-JSMITH")
    assert wire.verify(auth, chal, {"jsmith": "Spring2024!"})
    assert not wire.verify(auth, chal, {"jsmith": "Spring2024?"})
    assert not wire.verify(auth, b"\x00" * 8, {"jsmith": "Spring2024!"})
    assert not wire.verify(auth, chal, {"administrator": "Spring2024!"})


def test_ldap_filter_and_ber_reading() -> None:
    users = der(0xA0, eq("objectCategory", "person") + eq("objectClass", "user"))
    person = {"objectClass": ["top", "user"], "objectCategory": ["person"]}
    computer = {"objectClass": ["top", "user", "computer"], "objectCategory": ["computer"]}
    flt = wire.read_element(users)
    assert flt is not None
    assert wire.matches(flt[:2], person) and not wire.matches(flt[:2], computer)
    assert wire.matches((0x87, b"objectclass"), person) and not wire.matches((0x87, b"adminCount"), person)
    assert wire.read_element(users[:-1]) is None  # incomplete: wait for more bytes
    with pytest.raises(ValueError):
        wire.read_element(b"\x30\x85\x00\x00\x00\x00\x01")


def test_puppets_answer_by_their_rules_and_stop_leaves_nothing() -> None:
    plan, rng = ItPlan(), Random(5)
    threads_before = set(threading.enumerate())
    assert not bound_here(), f"the site's addresses are already in use: {bound_here()}"
    with ItServers(plan) as servers:
        p = plan.ports
        assert ("tcp", plan.dc2.address, p.ldap) in bound_here()
        assert clients.smb_logon(plan.vpn, plan.fs01.address, p.smb, "fs01", "CORP", USER, "LAPTOP-JSMITH",
                                 USER_PASSWORD, rng)  # fmt: skip
        assert not clients.smb_logon(plan.vpn, plan.sql01.address, p.smb, "sql01", ".", "administrator", "X",
                                     "admin", rng)  # fmt: skip
        assert clients.smb_logon(plan.vpn, plan.sql01.address, p.smb, "sql01", ".", "administrator", "X",
                                 DEFAULT_PASSWORD, rng, "C$")  # fmt: skip
        with clients.LdapSession(plan.vpn, plan.dc2.address, p.ldap) as ldap:
            assert ldap.bind("jsmith@corp.local", "wrong") == 49
            assert ldap.bind("jsmith@corp.local", USER_PASSWORD) == 0
            users = der(0xA0, eq("objectCategory", "person") + eq("objectClass", "user"))
            assert ldap.search("DC=corp,DC=local", users, ["sAMAccountName"], page=500) == 1180
            assert ldap.search("DC=corp,DC=local", eq("adminCount", "1"), []) == 14
        dns = clients.DnsClient(plan.vpn, plan.dc1.address, p.dns, rng)
        named = dns.ask(ptr_name(plan.vpn), 12)
        nx = dns.ask(ptr_name("127.20.0.99"), 12)
        dns.close()
        assert named is not None and b"\x0dlaptop-jsmith\x04corp\x05local\x00" in named and named[3] & 0x0F == 0
        assert nx is not None and nx[3] & 0x0F == 3
        assert clients.http_get(plan.vpn, plan.web01.address, p.http, "/nice%20ports").startswith(b"HTTP/1.1 404")
        assert not clients.tcp_attempt(plan.vpn, "127.20.30.1", 9401)  # nothing listens: refused
        assert servers.tally["smb logon ok fs01"] == 1 and servers.tally["smb logon failed sql01"] == 1
        assert servers.tally["ldap entries"] == 1194
    assert not servers.running
    assert not bound_here()
    assert set(threading.enumerate()) <= threads_before


def test_live_chain_raises_every_alert_of_the_intrusion(tmp_path: Path) -> None:
    """`otwatch run --interface lo` while the laptop's history (8 s) and then the chain play; SIGTERM; alerts.jsonl
    holds each step's alerts from the VPN address, each at or after its step's start, and none from the learning."""
    plan = ItPlan()
    web_port = free_port()
    config = tmp_path / "otwatch.yml"
    config.write_text("detectors:\n  new_device:\n    settle: 5\n")
    logs = tmp_path / "logs"
    sensor = subprocess.Popen(
        [sys.executable, "-m", "appliance", "run", "--interface", "lo", "--config", str(config),
         "--web.listen-address", f"127.0.0.1:{web_port}", "--state", str(tmp_path / "state"), "--log-dir", str(logs)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    expected = {
        "new_hostname_logon": ["hostname_change"],
        "ldap_recon": ["ad_enumeration", "large_directory_read", "multiple_alerts"],
        "nmap_service_probe": ["scanner_probe"],
        "tcp_scan_9401": ["address_scan"],
        "rdp_scan": ["rdp_scan"],
        "udp_enumeration": ["udp_enumeration"],
        "reverse_dns_sweep": ["reverse_dns_sweep"],
        "smb_bruteforce": ["default_credentials", "bruteforce", "success_after_failures"],
    }
    notes = [n for step in expected.values() for n in step]
    try:
        metrics_url = f"http://127.0.0.1:{web_port}/metrics"
        wait_for(lambda: http_get(f"http://127.0.0.1:{web_port}/-/ready") is not None, "the sensor's /-/ready")
        said: list[str] = []
        with ItServers(plan):
            attacker = Attacker(plan, say=said.append)
            learn_start = time.time()
            assert attacker.learn(8.0, 1.5) >= 4
            runs: list[StepRun] = attacker.play(pause=1.0)
        assert [r.name for r in runs] == list(expected)
        assert said[0].endswith("step 1: new_hostname_logon") and "success with the default password" in said[-1]

        def raised() -> bool:
            text = http_get(metrics_url) or ""
            return all(alerts_metric(text, note) >= 1 for note in notes)

        wait_for(raised, "every alert of the chain in /metrics")  # UDP probes are judged 5 s after they were sent
        sensor.send_signal(signal.SIGTERM)
        _, err = sensor.communicate(timeout=30)
        assert sensor.returncode == 0, err
    finally:
        if sensor.poll() is None:
            sensor.kill()
            sensor.wait(timeout=10)
    assert not bound_here()

    rows = [json.loads(line) for line in (logs / "alerts.jsonl").read_text().splitlines()]
    ours = [r for r in rows if r["src"] == plan.vpn]
    assert sorted(r["note"] for r in ours) == sorted(notes)  # each once, nothing else from the VPN address
    site = [r for r in rows if r["src"].startswith(OURS)]  # other loopback traffic is not this test's to judge
    assert not [r for r in site if r["ts"] < runs[0].start], "alerts during the benign learning phase"
    starts = {r.name: r.start for r in runs}
    for step, step_notes in expected.items():
        for note in step_notes:
            row = next(r for r in ours if r["note"] == note)
            assert row["ts"] >= starts[step], f"{note} raised before its step {step} started"
    logon = next(r for r in ours if r["note"] == "hostname_change")
    assert logon["details"]["hostname"] == "DESKTOP-7QK2M1"
    assert "laptop-jsmith" in str(logon["details"]["known"]).lower()
    assert not [r for r in site if r["src"] != plan.vpn and r["ts"] >= learn_start], "alerts from the servers"
    weird = logs / "weird.jsonl"
    strays = [json.loads(line) for line in weird.read_text().splitlines()] if weird.exists() else []
    assert not [w for w in strays if str(w.get("src", "")).startswith(OURS) or str(w.get("dst", "")).startswith(OURS)]
    ldap = [json.loads(line) for line in (logs / "ldap.jsonl").read_text().splitlines()]
    assert sum(r.get("result_count", 0) for r in ldap if r["op"] == "search_result_done") == 1434


def test_command_line_stops_everything_on_sigterm() -> None:
    """`python -m simulators.live_it` killed by PID with SIGTERM while learning: it stops its servers, says what they
    answered, exits 0, and no socket of the site is left."""
    cli = subprocess.Popen([sys.executable, "-m", "simulators.live_it", "--learn-seconds", "60"], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert cli.stdout is not None
        lines = [cli.stdout.readline() for _ in range(8)]
        assert lines[0].startswith("IT servers up") and lines[7].startswith("learning: LAPTOP-JSMITH")
        cli.send_signal(signal.SIGTERM)
        out, err = cli.communicate(timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait(timeout=10)
    assert cli.returncode == 0, err
    assert "interrupted" in err and "what the servers answered:" in out
    assert not bound_here()
