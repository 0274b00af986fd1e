"""The seeded attack-chain captures (simulators/itgen/chain.py): deterministic, clean for tshark, decoded into
every step's events, and judged by the real detectors exactly as the ground truth says (the benign one: silence).

The replay is the pipeline's own order with real components: PcapReader -> Dissector -> FlowTable (the registered
decoders plus DNS, DHCP, HTTP, SMB and LDAP, which protocols/__init__.py does not register yet) -> for each event
and conn record the DetectorEngine first, then the AssetInventory. Alerts are stamped with the packet time at
which the engine raised them (the time of the frame being processed), which is what the `within` bounds of the
ground truth limit: an unanswered SYN is judged TCP_ATTEMPT (5 s) after it was sent, an unanswered UDP datagram
UDP_ATTEMPT (5 s) after (the FlowTable reports it to the detectors then, and ends the flow at its idle timeout).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from appliance.alert import Alert
from appliance.capture.dissect import Dissector
from appliance.capture.pcapfile import PcapReader
from appliance.detectors import build_detectors
from appliance.detectors.engine import DetectorEngine
from appliance.detectors.scan import failed_attempt
from appliance.detectors.settings import DetectorSettings
from appliance.flows import FlowTable
from appliance.inventory import AssetInventory
from appliance.model import Flow, ProtocolEvent
from protocols import DECODERS
from protocols.base import DecoderFactory
from protocols.dhcp import DhcpDecoder
from protocols.dns import DnsDecoder, DnsTcpDecoder
from protocols.http import HttpDecoder
from protocols.ldap import LdapDecoder
from protocols.smb import SmbDecoder
from simulators.itgen.chain import (
    ATTACKER,
    UDP_ATTEMPT,
    EventSpec,
    FlowSpec,
    GroundTruth,
    Step,
    main,
    write_benign,
    write_chain,
)
from simulators.itgen.chain_steps import ATTACKER_HOSTNAME, NMAP_PROBE

UNREGISTERED: list[DecoderFactory] = [DnsDecoder, DnsTcpDecoder, DhcpDecoder, HttpDecoder, SmbDecoder, LdapDecoder]
SEED = 1


@dataclass
class Replay:
    """What the sensor made of one capture."""

    events: list[ProtocolEvent] = field(default_factory=list)
    flows: list[Flow] = field(default_factory=list)
    alerts: list[tuple[float, Alert]] = field(default_factory=list)  # (packet time when raised, alert)
    engine: DetectorEngine | None = None


def replay(pcap: Path) -> Replay:
    """Run a capture through FlowTable, DetectorEngine (default settings) and a fresh AssetInventory."""
    out = Replay()
    inventory = AssetInventory()
    settings = DetectorSettings()
    clock = [0.0]
    engine = DetectorEngine(build_detectors(settings), lambda a: out.alerts.append((clock[0], a)),
                            suppress=settings.suppress, inventory=inventory)  # fmt: skip
    out.engine = engine

    def on_event(ev: ProtocolEvent) -> None:
        out.events.append(ev)
        engine.on_event(ev)
        inventory.on_event(ev)

    def on_flow(flow: Flow) -> None:
        out.flows.append(flow)
        engine.on_flow(flow)
        inventory.on_flow(flow)

    table = FlowTable([*DECODERS, *(d for d in UNREGISTERED if d not in DECODERS)], on_event, on_flow,
                      on_attempt=engine.on_flow)  # fmt: skip
    dissector = Dissector()
    with PcapReader(pcap) as reader:
        for linktype, ts, data, wire_len in reader:
            clock[0] = ts
            if linktype != 1 or not table.frame(ts, data):
                pkt = dissector.dissect(linktype, ts, data, wire_len)
                if pkt is not None:
                    table.process(pkt)
    table.flush()
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, GroundTruth]]:
    """Both captures of SEED, written once for the module."""
    d = tmp_path_factory.mktemp("chain")
    return {"chain": (d / "chain.pcap", write_chain(d / "chain.pcap", SEED)),
            "benign": (d / "benign.pcap", write_benign(d / "benign.pcap", SEED))}  # fmt: skip


@pytest.fixture(scope="module")
def replays(built: dict[str, tuple[Path, GroundTruth]]) -> dict[str, Replay]:
    """Both captures replayed once for the module."""
    return {name: replay(path) for name, (path, _) in built.items()}


def test_same_seed_same_bytes(tmp_path: Path, built: dict[str, tuple[Path, GroundTruth]]) -> None:
    assert main([str(tmp_path), "--seed", str(SEED)]) == 0
    for name, (path, truth) in built.items():
        assert (tmp_path / f"{name}.pcap").read_bytes() == path.read_bytes()
        assert json.loads((tmp_path / f"{name}.truth.json").read_text()) == json.loads(truth.to_json())
    other = write_chain(tmp_path / "other.pcap", SEED + 1)
    assert (tmp_path / "other.pcap").read_bytes() != built["chain"][0].read_bytes()
    assert [s.name for s in other.steps] == [s.name for s in built["chain"][1].steps]


def test_ground_truth_shape(built: dict[str, tuple[Path, GroundTruth]]) -> None:
    chain, benign = built["chain"][1], built["benign"][1]
    names = [s.name for s in chain.steps]
    assert names == ["history", "new_hostname_logon", "ldap_recon", "nmap_service_probe", "tcp_scan_9401", "rdp_scan",
                     "udp_enumeration", "reverse_dns_sweep", "smb_bruteforce", "modbus_write"]  # fmt: skip
    assert all(a.start < b.start and a.end <= b.start for a, b in zip(chain.steps[1:], chain.steps[2:], strict=False))
    assert chain.steps[1].start - chain.first_ts > DetectorSettings().new_device.settle
    ldap = chain.steps[2]
    assert 52 <= ldap.end - ldap.start <= 54  # the incident's 53-second LDAP connection
    hostname = chain.steps[1].alerts[0]
    assert (hostname.detector, hostname.note, hostname.techniques) == ("new_device", "hostname_change",
                                                                        ("T0859", "T1078"))  # fmt: skip
    assert chain.steps[-1].alerts == () and benign.expected_alerts() == []
    assert {s.name for s in benign.steps} == {"history", "ptr_handful", "admin_ldap_query", "gpo_lookups",
                                              "mistyped_password", "backup_fanout"}  # fmt: skip


@pytest.mark.parametrize("name", ["chain", "benign"])
def test_tshark_finds_nothing_malformed(name: str, built: dict[str, tuple[Path, GroundTruth]]) -> None:
    assert shutil.which("tshark"), "tshark is missing: `make test` installs it (Debian package tshark)"
    path = built[name][0]
    done = subprocess.run(["tshark", "-r", str(path), "-q", "-z", "expert,warn"], capture_output=True, text=True,
                          timeout=300, check=True)  # fmt: skip
    report = done.stdout
    assert "Errors (" not in report and "Malformed" not in report, report
    warned = [line.split() for line in report.splitlines() if line.strip()[:1].isdigit()]
    assert all(w[1:3] == ["Sequence", "TCP"] for w in warned), report  # only the scans' RSTs


def _matches(ev: ProtocolEvent, spec: EventSpec, step: Step) -> bool:
    if (ev.protocol, ev.op, ev.kind) != (spec.protocol, spec.op, spec.kind) or not step.start <= ev.ts <= step.end:
        return False
    if (spec.src and ev.src != spec.src) or (spec.dst and ev.dst != spec.dst):
        return False
    return all(ev.fields.get(k) == v for k, v in spec.fields.items())


def _flow_matches(flow: Flow, spec: FlowSpec, step: Step) -> bool:
    fid = flow.id
    return (fid.proto, fid.orig_h, fid.resp_p) == (spec.proto, spec.orig_h, spec.resp_p) and \
        step.start <= flow.ts <= step.end and failed_attempt(flow) == spec.failed  # fmt: skip


@pytest.mark.parametrize("name", ["chain", "benign"])
def test_every_step_is_decoded(
    name: str, built: dict[str, tuple[Path, GroundTruth]], replays: dict[str, Replay]
) -> None:
    truth, seen = built[name][1], replays[name]
    assert [e for e in seen.events if e.kind == "weird"] == []
    for step in truth.steps:
        assert step.events or step.flows, step.name
        for spec in step.events:
            hits = [e for e in seen.events if _matches(e, spec, step)]
            assert len(hits) == spec.count, (step.name, spec, len(hits))
            if spec.total is not None:
                key, total = spec.total
                assert sum(e.fields[key] for e in hits) == total, (step.name, spec)
        for fspec in step.flows:
            flows = [f for f in seen.flows if _flow_matches(f, fspec, step)]
            assert len(flows) == fspec.count, (step.name, fspec, len(flows))


def test_chain_details_decoded(built: dict[str, tuple[Path, GroundTruth]], replays: dict[str, Replay]) -> None:
    steps = {s.name: s for s in built["chain"][1].steps}
    events = replays["chain"].events
    sweep = steps["reverse_dns_sweep"]
    asked = [e.fields["ptr_address"] for e in events if e.op == "query" and e.kind == "request" and
             e.src == ATTACKER and sweep.start <= e.ts <= sweep.end]  # fmt: skip
    assert len(set(asked)) == 300 and all(a.startswith("10.20.") for a in asked)
    assert sweep.end - sweep.start < 60
    logon = steps["new_hostname_logon"]
    names = {e.fields.get("hostname") for e in events if e.protocol == "smb" and e.dst == ATTACKER and
             e.ts < logon.start and "hostname" in e.fields}  # fmt: skip
    assert names == {"LAPTOP-JSMITH"}  # before the chain the address only ever logged on as the laptop
    later = {e.fields.get("hostname") for e in events if e.protocol == "smb" and e.dst == ATTACKER and
             e.ts >= logon.start and "hostname" in e.fields}  # fmt: skip
    assert later == {ATTACKER_HOSTNAME}
    probes = [e for e in events if e.protocol == "http" and e.fields.get("uri") == NMAP_PROBE]
    assert probes and {e.fields.get("uri_unescaped") for e in probes} == {"/nice ports,/Trinity.txt.bak"}
    bind = next(e for e in events if e.protocol == "ldap" and e.op == "bind" and e.src == ATTACKER)
    assert "Spring2024" not in json.dumps(bind.fields, default=str)  # the decoder never keeps a password


def test_chain_raises_the_ground_truth(built: dict[str, tuple[Path, GroundTruth]], replays: dict[str, Replay]) -> None:
    truth, seen = built["chain"][1], replays["chain"]
    assert seen.engine is not None and not seen.engine.errors
    expected = truth.expected_alerts()
    got = [(a.detector, a.note) for _, a in seen.alerts]
    assert got == [(e.detector, e.note) for _, e in expected]
    for (raised_at, alert), (step, exp) in zip(seen.alerts, expected, strict=True):
        assert alert.src == ATTACKER == step.src
        assert alert.techniques == exp.techniques and alert.severity == exp.severity
        assert step.start <= alert.ts <= step.end, (exp.note, alert.ts - step.start)
        assert step.start <= raised_at <= step.start + exp.within, (exp.note, raised_at - step.start)
    udp = next(r for r, a in seen.alerts if a.note == "udp_enumeration")
    first_probe = next(s for s in truth.steps if s.name == "udp_enumeration").start
    assert UDP_ATTEMPT <= udp - first_probe < 60.0  # judged when unanswered for 5 s, not at the 60 s idle timeout


def test_benign_raises_nothing(built: dict[str, tuple[Path, GroundTruth]], replays: dict[str, Replay]) -> None:
    seen = replays["benign"]
    assert seen.engine is not None and not seen.engine.errors
    assert [(a.detector, a.note, a.src) for _, a in seen.alerts] == []
    assert sum(seen.engine.suppressed.values()) == 0
    settle_passed = built["benign"][1].steps[1].start - built["benign"][1].first_ts
    assert settle_passed > DetectorSettings().new_device.settle  # judged with every detector awake
