"""A seeded generator of the incident's attack chain and of its benign look-alikes, with ground truth.

    python -m simulators.itgen.chain OUT_DIR [--seed S]

writes OUT_DIR/chain.pcap, OUT_DIR/benign.pcap, OUT_DIR/chain.truth.json and OUT_DIR/benign.truth.json.

Both captures start with the same day of ordinary traffic (simulators/itgen/chain_site.py): 24.75 hours of packet
time from 06:00 on a Monday, long enough for a fresh sensor's `detectors.new_device.settle` (86400 s, the default)
to pass, so the detectors judge with their default settings. In that history the employee's laptop LAPTOP-JSMITH
logs on with NTLM from the VPN address 10.8.0.23 and a web server's PTR lookups name it laptop-jsmith.corp.local.
chain.pcap then carries the intrusion (simulators/itgen/chain_steps.py) from that address, with a few look-alikes
mixed in before it and the HMI polling the chiller PLC every 2 s throughout (the packets that move the clock on);
benign.pcap carries every look-alike once more after the settle time instead, and no attack.

The ground truth lists each step: name, packet-time span, source, the alerts it must raise (detector, note,
severity, technique ids read from the detectors' note tables, and `within`: the seconds of packet time after the
step's start by which the alert is raised), the decoded events and conn records that show it. The output is a pure
function of the seed: one `random.Random(seed)`, a fixed start, no wall clock.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from random import Random
from typing import Any

from appliance.detectors.alert_burst import AlertBurstDetector
from appliance.detectors.auth_bruteforce import AuthBruteforceDetector
from appliance.detectors.base import Detector
from appliance.detectors.dns_sweep import DnsSweepDetector
from appliance.detectors.ldap_recon import LdapReconDetector
from appliance.detectors.new_device import NewDeviceDetector
from appliance.detectors.recon_tools import ReconToolDetector
from appliance.detectors.scan import ScanDetector
from simulators.itgen import chain_steps as steps
from simulators.itgen.chain_site import BACKUP_HOSTS, Site, history, hmi_poll, lookalikes, mistyped, reverse_lookup
from simulators.itgen.chain_site import handful as ptr_handful
from simulators.itgen.chain_wire import Capture

__all__ = ["GENERATOR_VERSION", "START_TS", "EventSpec", "ExpectedAlert", "FlowSpec", "GroundTruth", "Step",
           "main", "write_benign", "write_chain"]  # fmt: skip

GENERATOR_VERSION = 1
START_TS = 1_717_394_400.0  # 2024-06-03 06:00:00 UTC, a Monday
HISTORY_QUARTERS = 99  # 24.75 h of ordinary traffic
CHAIN_AT = START_TS + 89_400.0  # 07:50 on the Tuesday: after the default settle time (86400 s)
UDP_ATTEMPT = 5.0  # an unanswered UDP datagram is judged this long after it was sent (the FlowTable's udp_attempt)
TCP_ATTEMPT = 5.0  # an unanswered SYN is judged this long after it was sent (a refused one after its RST)
ATTACKER = "10.8.0.23"


@dataclass(frozen=True)
class ExpectedAlert:
    """An alert a step must raise: detector and note, their severity and ATT&CK ids (from the detector's note
    table), and the seconds of packet time after the step's start by which the sensor raises it."""

    detector: str
    note: str
    severity: str
    techniques: tuple[str, ...]
    within: float


@dataclass(frozen=True)
class EventSpec:
    """Decoded events that show a step: `count` events of protocol/op/kind sent by `src` (to `dst`, if given)
    inside the step's span whose fields hold `fields`; `total` = (field, sum of that field over them)."""

    protocol: str
    op: str
    kind: str
    count: int
    src: str = ""
    dst: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    total: tuple[str, int] | None = None


@dataclass(frozen=True)
class FlowSpec:
    """Conn records that show a step: `count` flows of `proto` from `orig_h` to port `resp_p` starting inside
    the step's span, all failed (never established / never answered) or all not."""

    proto: str
    orig_h: str
    resp_p: int
    count: int
    failed: bool


@dataclass(frozen=True)
class Step:
    """One step of a capture: what it is, when, from where, and what the sensor must make of it."""

    name: str
    description: str
    src: str
    start: float
    end: float
    alerts: tuple[ExpectedAlert, ...] = ()
    events: tuple[EventSpec, ...] = ()
    flows: tuple[FlowSpec, ...] = ()


@dataclass(frozen=True)
class GroundTruth:
    """What a generated capture holds: its steps in time order, and the alerts they must raise in that order."""

    capture: str
    seed: int
    frames: int
    first_ts: float
    last_ts: float
    settings: str
    steps: tuple[Step, ...]
    generator_version: int = GENERATOR_VERSION

    def expected_alerts(self) -> list[tuple[Step, ExpectedAlert]]:
        """Every expected alert with its step, in the order the sensor raises them."""
        return [(s, a) for s in self.steps for a in s.alerts]

    def to_json(self) -> str:
        """The ground truth as indented JSON (stable key order)."""
        return json.dumps(asdict(self), indent=1) + "\n"


def expect(detector: type[Detector], note: str, within: float) -> ExpectedAlert:
    """An expected alert, its severity and technique ids read from the detector's note table."""
    spec = detector.notes[note]
    return ExpectedAlert(detector.name, note, spec.severity, spec.techniques, float(within))


SETTINGS = ("the detectors' defaults (appliance.detectors.settings); detectors.new_device.settle 86400 s: the "
            "history is 89400 s long before the chain")  # fmt: skip


def _site(seed: int) -> tuple[Capture, Site]:
    rng = Random(seed)
    cap = Capture(Random(rng.getrandbits(64)), round(START_TS * 1e6))
    site = Site(Random(rng.getrandbits(64)))
    return cap, site


def _history_step(s: Site, end: float, made: dict[str, int], extra: str = "") -> Step:
    return Step("history", "a day of ordinary traffic (NTLM logons as LAPTOP-JSMITH from 10.8.0.23, PTR answers "
                "naming it, intranet browsing, Modbus polling, GPO lookups, DHCP renewals, a nightly backup of 200 "
                "hosts, an admin's LDAP query, a mistyped password)" + extra,
                s.laptop.ip, START_TS, end,
                events=(EventSpec("smb", "session_setup", "response", made["laptop_logons"], s.fs01.ip, s.laptop.ip,
                                  {"hostname": "LAPTOP-JSMITH", "success": True}),
                        EventSpec("dns", "response", "response", made["laptop_ptr"], s.dc1.ip, s.web01.ip,
                                  {"ptr_address": s.laptop.ip, "answers": ["laptop-jsmith.corp.local"]})))  # fmt: skip


def _finish(cap: Capture, path: str | Path, name: str, seed: int, found: list[Step]) -> GroundTruth:
    n = cap.write(path)
    frames = cap.sorted_frames()
    return GroundTruth(name, seed, n, frames[0][0] / 1e6, frames[-1][0] / 1e6, SETTINGS, tuple(found))


def write_chain(path: str | Path, seed: int = 1) -> GroundTruth:
    """Write the history and the attack chain to a pcap at `path`; return its ground truth."""
    cap, s = _site(seed)
    made = history(cap, s, START_TS, HISTORY_QUARTERS)
    a, c = ATTACKER, CHAIN_AT
    found = [_history_step(s, c, made, "; after the settle time a workstation resolves 6 PTRs and a user "
                                        "mistypes a password twice")]  # fmt: skip
    reverse_lookup(cap, s, s.ws050, ptr_handful(s), c - 900)  # look-alikes after the settle time, before the chain
    mistyped(cap, s, c - 600)
    hmi_poll(cap, s, c - 60, 330, 2.0)  # the clock: a poll every 2 s until after the last step

    def step(
        name: str,
        fn: Any,
        at: float,
        alerts: tuple[ExpectedAlert, ...] = (),
        events: tuple[EventSpec, ...] = (),
        flows: tuple[FlowSpec, ...] = (),
    ) -> None:
        end = fn(cap, s, at)
        doc = " ".join((fn.__doc__ or "").split()).split(": ", 1)[-1].rstrip(".")  # without "Step N: "
        found.append(Step(name, doc, a, at, end, alerts, events, flows))

    step("new_hostname_logon", steps.new_hostname_logon, c, (expect(NewDeviceDetector, "hostname_change", 5),),
         (EventSpec("smb", "session_setup", "response", 1, s.dc1.ip, a,
                    {"hostname": steps.ATTACKER_HOSTNAME, "username": "jsmith", "success": True}),))  # fmt: skip
    step(
        "ldap_recon",
        steps.ldap_recon,
        c + 20,
        (
            expect(LdapReconDetector, "ad_enumeration", 15),
            expect(LdapReconDetector, "large_directory_read", 53),
            expect(AlertBurstDetector, "multiple_alerts", 53),
        ),
        (
            EventSpec("ldap", "bind", "request", 1, a, s.dc2.ip, {"opcode": "bind simple"}),
            EventSpec("ldap", "search", "request", 5, a, s.dc2.ip),
            EventSpec("ldap", "search_result_done", "response", 5, s.dc2.ip, a, total=("result_count", 1434)),
        ),
    )
    step(
        "nmap_service_probe",
        steps.nmap_probe,
        c + 120,
        (expect(ReconToolDetector, "scanner_probe", 3),),
        (EventSpec("http", "request", "request", 1, a, s.web01.ip, {"uri": steps.NMAP_PROBE}),),
    )
    step(
        "tcp_scan_9401",
        steps.tcp_scan_9401,
        c + 130,
        (expect(ScanDetector, "address_scan", 20),),
        (EventSpec("http", "request", "request", 2, a, "", {"uri": steps.NMAP_PROBE}),),
        (FlowSpec("tcp", a, 9401, steps.SCAN_9401 - 2, True), FlowSpec("tcp", a, 9401, 2, False)),
    )
    step(
        "rdp_scan",
        steps.rdp_scan,
        c + 170,
        (expect(ScanDetector, "rdp_scan", 20),),
        flows=(FlowSpec("tcp", a, 3389, steps.SCAN_RDP, True),),
    )
    step(
        "udp_enumeration",
        steps.udp_enumeration,
        c + 200,
        (expect(ScanDetector, "udp_enumeration", UDP_ATTEMPT + 15),),
        (EventSpec("bacnet", "who_is", "request", steps.UDP_HOSTS, a),),
        tuple(FlowSpec("udp", a, p, steps.UDP_HOSTS, True) for p in steps.UDP_PORTS),
    )
    step(
        "reverse_dns_sweep",
        steps.reverse_sweep,
        c + 300,
        (expect(DnsSweepDetector, "reverse_dns_sweep", 10),),
        (
            EventSpec("dns", "query", "request", steps.SWEEP, a, s.dc1.ip, {"qtype_name": "PTR"}),
            EventSpec("dns", "response", "response", 5, s.dc1.ip, a, {"qtype_name": "PTR", "rcode_name": "NOERROR"}),
            EventSpec("dns", "response", "exception", steps.SWEEP - 5, s.dc1.ip, a, {"rcode_name": "NXDOMAIN"}),
        ),
    )
    tries = len(steps.BRUTE_HOSTS) * steps.BRUTE_TRIES
    step(
        "smb_bruteforce",
        steps.bruteforce,
        c + 420,
        (
            expect(AuthBruteforceDetector, "default_credentials", 15),
            expect(AuthBruteforceDetector, "bruteforce", 15),
            expect(AuthBruteforceDetector, "success_after_failures", 20),
        ),
        (
            EventSpec(
                "smb",
                "session_setup",
                "exception",
                tries,
                "",
                a,
                {"username": "administrator", "success": False, "status": "STATUS_LOGON_FAILURE"},
            ),
            EventSpec(
                "smb", "session_setup", "response", 1, s.sql01.ip, a, {"username": "administrator", "success": True}
            ),
        ),
        (FlowSpec("tcp", a, 445, tries + 1, False),),
    )
    step(
        "modbus_write",
        steps.modbus_write,
        c + 480,
        (),  # no detector yet: OT writes from IT are a later issue
        (EventSpec("modbus", "write_single_register", "request", 1, a, s.plc.ip),),
    )
    return _finish(cap, path, "chain.pcap", seed, found)


def write_benign(path: str | Path, seed: int = 1) -> GroundTruth:
    """Write the history and every benign look-alike (after the settle time) to a pcap; return its ground truth."""
    cap, s = _site(seed)
    made = history(cap, s, START_TS, HISTORY_QUARTERS)
    t = CHAIN_AT
    found = [_history_step(s, t, made)]
    hmi_poll(cap, s, t - 60, 240, 2.0)
    spans = lookalikes(cap, s, t)
    what = {
        "ptr_handful": ("a workstation resolves the same 6 addresses (PTR) three times", s.ws050.ip,
                        (EventSpec("dns", "query", "request", 18, s.ws050.ip, s.dc1.ip, {"qtype_name": "PTR"}),), ()),
        "admin_ldap_query": ("an administrator's single LDAP query (sAMAccountName=jdoe)", s.adm01.ip,
                             (EventSpec("ldap", "search", "request", 1, s.adm01.ip, s.dc1.ip,
                                        {"filter": "(sAMAccountName=jdoe)"}),), ()),
        "gpo_lookups": ("a workstation's group-policy LDAP lookups (NTLM bind, base searches)", s.ws050.ip,
                        (EventSpec("ldap", "search", "request", 5, s.ws050.ip, s.dc1.ip, {"scope": "base"}),), ()),
        "mistyped_password": ("a user mistypes the password twice, then logs on", s.ws061.ip,
                              (EventSpec("smb", "session_setup", "exception", 2, s.fs01.ip, s.ws061.ip,
                                         {"success": False}),
                               EventSpec("smb", "session_setup", "response", 1, s.fs01.ip, s.ws061.ip,
                                         {"success": True, "hostname": "WS-061"})), ()),
        "backup_fanout": ("a backup server's successful SMB sessions with 200 hosts", s.bkp01.ip,
                          (EventSpec("smb", "session_setup", "response", BACKUP_HOSTS, "", s.bkp01.ip,
                                     {"success": True, "hostname": "BKP01"}),),
                          (FlowSpec("tcp", s.bkp01.ip, 445, BACKUP_HOSTS, False),)),
    }  # fmt: skip
    for name, (start, end) in spans.items():
        desc, src, events, flows = what[name]
        found.append(Step(name, desc, src, start, end, (), events, flows))
    return _finish(cap, path, "benign.pcap", seed, found)


def main(argv: list[str] | None = None) -> int:
    """Command line: write chain.pcap, benign.pcap and their ground truth into a directory."""
    parser = argparse.ArgumentParser(prog="python -m simulators.itgen.chain", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, writer in (("chain", write_chain), ("benign", write_benign)):
        truth = writer(out / f"{name}.pcap", args.seed)
        (out / f"{name}.truth.json").write_text(truth.to_json())
        alerts = len(truth.expected_alerts())
        print(
            f"{out / (name + '.pcap')}: {truth.frames} frames, {truth.last_ts - truth.first_ts:.0f} s, "
            f"{len(truth.steps)} steps, {alerts} expected alerts"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
