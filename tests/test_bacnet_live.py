"""Live BACnet/IP on loopback: simulated bacpypes3 devices, a scripted BMS front end, tshark's verdict on the wire,
and `otwatch run` turning the session into BACnet logs and inventory assets.

Each device has its own 127.0.47.x address on UDP 47808 (bacpypes3 also listens on 127.255.255.255:47808 for
broadcasts); the front end sits on 127.0.47.10:47809, because bacpypes3 short-circuits any unicast to 127.* on its
own port. Devices run with fixed values (`--interval 0`) so that every value read is known.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from protocols import DECODERS
from simulators.bacnet_device import PROFILES, Walker, build_points
from tests.test_run_live import free_port, http_get, wait_for

ROOT = Path(__file__).resolve().parents[1]
BACNET_PORT = 47808
BROADCAST = "127.255.255.255"
FRONTEND = "127.0.47.10"
FRONTEND_PORT = 47809
RANGE = (1000, 1999)
LOCK = Path(tempfile.gettempdir()) / "otwatch-bacnet-live.lock"
DEVICE_PROPERTIES = ("object-name", "vendor-name", "model-name", "firmware-revision", "application-software-version",
                     "location")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Sim:
    """One simulated device of the test site."""

    ip: str
    instance: int
    name: str
    kind: str
    vendor_id: int
    vendor: str
    model: str
    firmware: str


DEVICES = (
    Sim("127.0.47.11", 1001, "CRAH-01", "crah", 24, "Automated Logic Corporation", "OptiFlex G5CE", "7.0.102"),
    Sim("127.0.47.12", 2001, "CH-01", "chiller", 2, "The Trane Company", "Tracer UC800", "6.20.0"),
    Sim("127.0.47.13", 3001, "PM-MSB-01", "power-meter", 10, "Schneider Electric", "PowerLogic ION9000", "3.1.2"),
    Sim("127.0.47.14", 4001, "ACP-01", "access-panel", 8, "Delta Controls", "eBCON", "4.40.0"),
)
BY_IP = {d.ip: d for d in DEVICES}
WRITE_TARGET = DEVICES[0]  # the front end writes the setpoint of the lowest device instance


def udp_sockets() -> Counter[tuple[str, int]]:
    """How many UDP sockets are bound to each (address, port) in this network namespace (from /proc/net/udp)."""
    bound: Counter[tuple[str, int]] = Counter()
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        ip_hex, port_hex = line.split()[1].split(":")
        bound[(socket.inet_ntoa(struct.pack("<I", int(ip_hex, 16))), int(port_hex, 16))] += 1
    return bound


def stop(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM a process we started, by PID; kill it if it does not end."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def devices(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sim, ...]]:
    """The simulated devices, serving (both of each one's sockets bound) until the module's tests are done.

    Broadcasts on lo reach every device on the machine: a concurrent run of this module (another checkout's `make
    test`) waits for this one's lock instead of answering its Who-Is.
    """
    with LOCK.open("a") as lock:
        wait_for(lambda: take_lock(lock), f"the lock {LOCK} held by another run of the BACnet live tests", 600.0)
        yield from serve_devices(tmp_path_factory)


def take_lock(lock: IO[str]) -> bool:
    """True once this process holds an exclusive lock on the file (released when the file is closed)."""
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def serve_devices(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sim, ...]]:
    """Start the devices, wait until they listen, yield them, stop them by PID."""
    busy = [d.ip for d in DEVICES if udp_sockets()[(d.ip, BACNET_PORT)]]
    assert not busy, f"something already serves BACnet on {busy}: a device left over from a killed run?"
    before = udp_sockets()[(BROADCAST, BACNET_PORT)]
    log_dir = tmp_path_factory.mktemp("bacnet-devices")
    started: list[subprocess.Popen[str]] = []
    try:
        for d in DEVICES:
            command = [sys.executable, "-m", "simulators.bacnet_device", "--address", f"{d.ip}/8", "--instance",
                       str(d.instance), "--name", d.name, "--kind", d.kind, "--vendor-id", str(d.vendor_id),
                       "--model", d.model, "--firmware", d.firmware, "--interval", "0"]  # fmt: skip
            with (log_dir / f"{d.name}.err").open("w") as err:
                started.append(subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, text=True))

        def all_bound() -> bool:
            for d, proc in zip(DEVICES, started, strict=True):
                assert proc.poll() is None, (log_dir / f"{d.name}.err").read_text()
            bound = udp_sockets()
            return bool(
                all(bound[(d.ip, BACNET_PORT)] for d in DEVICES)
                and bound[(BROADCAST, BACNET_PORT)] >= before + len(DEVICES)
            )

        wait_for(all_bound, "every simulated device to bind its unicast and broadcast sockets")
        yield DEVICES
    finally:
        for proc in started:
            stop(proc)


def run_frontend() -> dict[str, Any]:
    """Run the scripted BMS session against the devices; its JSON summary (it must succeed)."""
    done = subprocess.run(
        [sys.executable, "-m", "simulators.bms_frontend", "--address", f"{FRONTEND}:{FRONTEND_PORT}", "--broadcast",
         f"{BROADCAST}:{BACNET_PORT}", "--expect", str(len(DEVICES)), "--range", f"{RANGE[0]}-{RANGE[1]}", "--cov",
         "--timeout", "10"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def bacnet_messages(summary: dict[str, Any]) -> int:
    """The BACnet messages of a session: 2 Who-Is, the I-Ams, each confirmed request and its answer, and the COV
    notification (a confirmed request) with its ACK."""
    return 2 + summary["i_ams"] + 2 * summary["confirmed_requests"] + 2


def check_summary(summary: dict[str, Any]) -> None:
    """The front end discovered every device and read back exactly what the simulators serve."""
    assert summary["errors"] == []
    assert summary["who_is"]["global"] == [d.instance for d in DEVICES]
    assert summary["who_is"]["ranged"] == [d.instance for d in DEVICES if RANGE[0] <= d.instance <= RANGE[1]]
    assert summary["i_ams"] == len(DEVICES) + 1
    for d, got in zip(DEVICES, summary["devices"], strict=True):
        assert (got["instance"], got["address"], got["vendor_id"]) == (d.instance, d.ip, d.vendor_id)
        assert got["properties"] == {
            "object-name": d.name, "vendor-name": d.vendor, "model-name": d.model, "firmware-revision": d.firmware,
            "application-software-version": "1.4.2", "location": "Data Hall 1",
        }  # fmt: skip
        profile = PROFILES[d.kind]
        assert got["points"]["analog-input,1"]["present-value"] == pytest.approx(profile.analogs[0].value, abs=1e-4)
        assert got["points"]["analog-input,1"]["object-name"] == profile.analogs[0].name
        assert got["points"]["analog-value,1"]["object-name"] == profile.setpoint[0]
        assert len(got["points"]) == len(profile.analogs) + 1
    write = summary["write"]
    assert (write["device"], write["ok"], write["readback"]) == (WRITE_TARGET.instance, True, 21.5)
    assert write["priority_array"][7] == 21.5 and write["priority_array"].count(None) == 15
    cov = summary["cov"]
    assert cov["values"]["present-value"] == pytest.approx(PROFILES[WRITE_TARGET.kind].analogs[0].value, abs=1e-4)
    assert cov["values"]["status-flags"] == [0, 0, 0, 0]


def test_walker_is_seeded_and_stays_within_bounds() -> None:
    loop = asyncio.new_event_loop()  # bacpypes3 objects schedule a task when built: give them a loop of their own
    asyncio.set_event_loop(loop)
    try:
        _walk_all_profiles()
        loop.run_until_complete(asyncio.sleep(0))  # let the objects' post-init tasks run before the loop closes
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def _walk_all_profiles() -> None:
    for kind, profile in PROFILES.items():
        a, b = build_points(kind), build_points(kind)
        walk_a, walk_b = Walker(a, kind, seed=7), Walker(b, kind, seed=7)
        for _ in range(300):
            walk_a.step()
            walk_b.step()
        values_a = [float(obj.presentValue) for obj, _ in walk_a.points]
        assert values_a == [float(obj.presentValue) for obj, _ in walk_b.points]
        assert values_a != [analog.value for analog in profile.analogs]
        assert all(an.low <= v <= an.high for v, an in zip(values_a, profile.analogs, strict=True))


TSHARK_FIELDS = (
    "udp.dstport", "ip.src", "ip.dst", "bvlc.function", "bacnet.dnet", "bacapp.type", "bacapp.confirmed_service",
    "bacapp.unconfirmed_service", "_ws.expert.severity", "_ws.malformed",
)  # fmt: skip
WARNING = 0x00600000  # Wireshark's PI_WARN: a malformed packet is a PI_ERROR


def test_devices_and_front_end_speak_well_formed_bacnet(devices: tuple[Sim, ...], tmp_path: Path) -> None:
    tshark = shutil.which("tshark")
    assert tshark, "tshark is missing: `make test` installs it (Debian package tshark)"
    sentinel = free_port()  # a datagram to this port proves the capture has started
    out_path = tmp_path / "tshark.tsv"
    fields = [arg for f in TSHARK_FIELDS for arg in ("-e", f)]
    with out_path.open("w") as out, (tmp_path / "tshark.err").open("w") as err:
        capture = subprocess.Popen(
            [tshark, "-i", "lo", "-n", "-l", "-f", f"udp and (port {BACNET_PORT} or port {sentinel})", "-T", "fields",
             "-E", "separator=/t", *fields],
            stdout=out, stderr=err, text=True,
        )  # fmt: skip

    def rows() -> list[list[str]]:
        return [line.split("\t") for line in out_path.read_text().splitlines()]

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:

            def capturing() -> bool:
                assert capture.poll() is None, (tmp_path / "tshark.err").read_text()
                probe.sendto(b"ready?", ("127.0.0.1", sentinel))
                return any(r[0] == str(sentinel) for r in rows())

            wait_for(capturing, "tshark to capture on lo")
        summary = run_frontend()
        expected = bacnet_messages(summary)
        wait_for(lambda: sum(r[0] != str(sentinel) for r in rows()) >= expected, f"{expected} BACnet packets")
    finally:
        stop(capture)
    check_summary(summary)

    packets = [dict(zip(TSHARK_FIELDS, r, strict=False)) for r in rows() if r[0] != str(sentinel)]
    ours = [p for p in packets if FRONTEND in (p["ip.src"], p["ip.dst"])]
    assert len(ours) == expected
    severities = [int(s) for p in ours for s in p["_ws.expert.severity"].split(",") if s]
    assert [p for p in ours if p["_ws.malformed"]] == []
    assert [s for s in severities if s >= WARNING] == []
    who_is = [p for p in ours if p["bacapp.unconfirmed_service"] == "8"]
    assert [(p["ip.dst"], p["bvlc.function"]) for p in who_is] == [(BROADCAST, "0x0b")] * 2
    assert [p["bacnet.dnet"] for p in who_is] == ["65535", ""]  # global, then local broadcast
    i_ams = [p["ip.src"] for p in ours if p["bacapp.unconfirmed_service"] == "0"]
    assert Counter(i_ams) == Counter([d.ip for d in DEVICES] + [WRITE_TARGET.ip])
    requests = Counter(p["bacapp.confirmed_service"] for p in ours if p["bacapp.type"] == "0")
    answers = Counter(p["bacapp.confirmed_service"] for p in ours if p["bacapp.type"] in ("2", "3"))
    # readProperty 12: 7 per device + 2 read-backs; readPropertyMultiple 14; writeProperty 15; subscribeCOV 5 (and
    # its cancellation); confirmedCOVNotification 1
    assert requests == {"12": 7 * len(DEVICES) + 2, "14": len(DEVICES), "15": 1, "5": 2, "1": 1}
    assert answers == requests


def bacnet_events(metrics: str) -> float:
    """The sum of otwatch_protocol_events_total samples for BACnet in an exposition."""
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("otwatch_protocol_events_total{") and 'protocol="bacnet"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSONL log."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_decodes_a_bms_session_into_bacnet_logs_and_inventory(devices: tuple[Sim, ...], tmp_path: Path) -> None:
    assert "bacnet" in {d.name for d in DECODERS}, "no BACnet decoder in protocols.DECODERS"
    web_port = free_port()
    state, logs = tmp_path / "state", tmp_path / "logs"
    sensor = subprocess.Popen(
        [sys.executable, "-m", "appliance", "run", "--interface", "lo", "--web.listen-address",
         f"127.0.0.1:{web_port}", "--state", str(state), "--log-dir", str(logs)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        metrics_url = f"http://127.0.0.1:{web_port}/metrics"
        wait_for(lambda: http_get(f"http://127.0.0.1:{web_port}/-/ready") is not None, "the sensor's /-/ready")
        summary = run_frontend()
        check_summary(summary)
        expected = bacnet_messages(summary)
        wait_for(lambda: bacnet_events(http_get(metrics_url) or "") >= expected, f"{expected} BACnet events")
        sensor.send_signal(signal.SIGTERM)
        _, err = sensor.communicate(timeout=30)
        assert sensor.returncode == 0, err
    finally:
        stop(sensor)

    rows = [r for r in jsonl(logs / "bacnet.jsonl") if FRONTEND in (r["src"], r["dst"])]
    weird_log = logs / "weird.jsonl"
    weirds = jsonl(weird_log) if weird_log.exists() else []
    assert [w for w in weirds if w["source"] == "bacnet" and FRONTEND in (w["src"], w["dst"])] == []
    check_discovery(rows)
    check_reads(rows)
    check_multiple_reads(rows)
    check_write_and_cov(rows)
    check_detail_logs(logs)
    check_inventory(state)


def check_discovery(rows: list[dict[str, Any]]) -> None:
    """Two broadcast Who-Is (global, then ranged) from the front end; an I-Am from each device (two from the one
    in range) with its instance and vendor."""
    who_is = [r for r in rows if r["op"] == "who_is"]
    assert [(r["src"], r["dst"], r["kind"], r["bvlc_function"], r["pdu_type"]) for r in who_is] == [
        (FRONTEND, BROADCAST, "request", "Original_Broadcast_NPDU", "UNCONFIRMED_REQUEST")
    ] * 2
    assert [r.get("range") for r in who_is] == ["All", f"{RANGE[0]}-{RANGE[1]}"]
    assert who_is[0]["dnet"] == 65535 and "dnet" not in who_is[1]
    i_ams = [r for r in rows if r["op"] == "i_am"]
    assert Counter(r["src"] for r in i_ams) == Counter([d.ip for d in DEVICES] + [WRITE_TARGET.ip])
    for r in i_ams:
        d = BY_IP[r["src"]]
        assert (r["dst"], r["kind"], r["bvlc_function"]) == (FRONTEND, "request", "Original_Unicast_NPDU")
        assert (r["object_type"], r["instance_number"]) == ("device", d.instance)
        assert (r["vendor_id"], r["vendor"]) == (d.vendor_id, d.vendor)
        assert (r["max_apdu"], r["segmentation"]) == (1476, "segmented-both")


def check_reads(rows: list[dict[str, Any]]) -> None:
    """ReadProperty of each device object's identity properties: requests from the front end, ACKs with values."""
    for d in DEVICES:
        expected = {"object-name": d.name, "vendor-name": d.vendor, "model-name": d.model,
                    "firmware-revision": d.firmware, "application-software-version": "1.4.2",
                    "location": "Data Hall 1"}  # fmt: skip
        reads = [r for r in rows if r["op"] == "read_property" and d.ip in (r["src"], r["dst"])
                 and r.get("object_type") == "device"]  # fmt: skip
        requests = {r["invoke_id"]: r for r in reads if r["kind"] == "request"}
        acks = {r["invoke_id"]: r for r in reads if r["kind"] == "response"}
        assert set(requests) == set(acks) and len(requests) == len(DEVICE_PROPERTIES) + 1
        for invoke_id, req in requests.items():
            ack = acks[invoke_id]
            assert (req["src"], req["dst"], ack["src"], ack["dst"]) == (FRONTEND, d.ip, d.ip, FRONTEND)
            assert (req["pdu_type"], req["pdu_service"]) == ("CONFIRMED_REQUEST", "read_property")
            assert (ack["pdu_type"], ack["pdu_service"]) == ("COMPLEX_ACK", "read_property")
            assert req["instance_number"] == ack["instance_number"] == d.instance
            assert req["property"] == ack["property"]
        got = {ack["property"]: ack["values"] for ack in acks.values() if ack["property"] in expected}
        assert got == {p: [v] for p, v in expected.items()}
        object_list = next(ack["values"] for ack in acks.values() if ack["property"] == "object-list")
        assert {"object_type": "analog-value", "instance_number": 1} in object_list
        assert {"object_type": "device", "instance_number": d.instance} in object_list


def check_multiple_reads(rows: list[dict[str, Any]]) -> None:
    """One ReadPropertyMultiple per device of present-value, units and object-name of its analog points."""
    requests = [r for r in rows if r["op"] == "read_property_multiple" and r["kind"] == "request"]
    acks = [r for r in rows if r["op"] == "read_property_multiple" and r["kind"] == "response"]
    assert sorted(r["dst"] for r in requests) == sorted(r["src"] for r in acks) == sorted(d.ip for d in DEVICES)
    for ack in acks:
        profile = PROFILES[BY_IP[ack["src"]].kind]
        props = {(p["object_type"], p["instance_number"], p["property"]): p for p in ack["properties"]}
        assert len(props) == 3 * (len(profile.analogs) + 1)
        (supply,) = props[("analog-input", 1, "present-value")]["values"]
        assert supply == pytest.approx(profile.analogs[0].value, abs=1e-4)
        assert props[("analog-input", 1, "object-name")]["values"] == [profile.analogs[0].name]
        assert props[("analog-value", 1, "object-name")]["values"] == [profile.setpoint[0]]
    for req in requests:
        wanted = {(p["object_type"], p["instance_number"], p["property"]) for p in req["properties"]}
        assert ("analog-value", 1, "present-value") in wanted and ("analog-input", 1, "units") in wanted


def check_write_and_cov(rows: list[dict[str, Any]]) -> None:
    """The setpoint write at priority 8 with its simple ACK; the COV subscription and the notification."""
    writes = [r for r in rows if r["op"] == "write_property"]
    assert [(r["kind"], r["pdu_type"], r["pdu_service"]) for r in writes] == [
        ("request", "CONFIRMED_REQUEST", "write_property"),
        ("response", "SIMPLE_ACK", "write_property"),
    ]
    req, ack = writes
    assert (req["src"], req["dst"], ack["src"]) == (FRONTEND, WRITE_TARGET.ip, WRITE_TARGET.ip)
    assert (req["object_type"], req["instance_number"], req["property"]) == ("analog-value", 1, "present-value")
    assert (req["priority"], req["values"]) == (8, [21.5])
    assert ack["invoke_id"] == req["invoke_id"]
    subscribe = [r["kind"] for r in rows if r["op"] == "subscribe_cov"]
    assert subscribe == ["request", "response", "request", "response"]  # subscription, then its cancellation
    (note,) = [r for r in rows if r["op"] == "confirmed_cov_notification" and r["kind"] == "request"]
    assert (note["src"], note["dst"], note["initiating_device"]) == (WRITE_TARGET.ip, FRONTEND, WRITE_TARGET.instance)
    assert (note["monitored_object_type"], note["monitored_instance"]) == ("analog-input", 1)
    assert {p["property"] for p in note["properties"]} == {"present-value", "status-flags"}


def check_detail_logs(logs: Path) -> None:
    """ICSNPP's detail logs: discovery rows for Who-Is and I-Am, property rows for the reads and the write."""
    discovery = [r for r in jsonl(logs / "bacnet_discovery.jsonl") if FRONTEND in (r["source_h"], r["destination_h"])]
    who_is = [r for r in discovery if r["pdu_service"] == "who-is"]
    assert [r["range"] for r in who_is] == ["All", f"{RANGE[0]}-{RANGE[1]}"]
    i_ams = {(r["source_h"], r["instance_number"], r["vendor"]) for r in discovery if r["pdu_service"] == "i-am"}
    assert i_ams == {(d.ip, d.instance, d.vendor) for d in DEVICES}
    props = [r for r in jsonl(logs / "bacnet_property.jsonl") if FRONTEND in (r["source_h"], r["destination_h"])]
    for d in DEVICES:
        vendor = [r for r in props if r["pdu_service"] == "read-property-ack" and r["source_h"] == d.ip
                  and r["property"] == "vendor-name"]  # fmt: skip
        assert len(vendor) == 1 and d.vendor in vendor[0]["value"]
        objects = [r["value"] for r in props if r["pdu_service"] == "read-property-ack" and r["source_h"] == d.ip
                   and r["property"] == "object-list"]  # fmt: skip
        assert "analog-value: 1" in objects and f"device: {d.instance}" in objects
    (write,) = [r for r in props if r["pdu_service"] == "write-property"]  # ICSNPP's text (its README says -request)
    assert (write["destination_h"], write["object_type"], write["instance_number"]) == (
        WRITE_TARGET.ip, "analog-value", 1,
    )  # fmt: skip
    assert (write["property"], float(write["value"])) == ("present-value", 21.5)


def check_inventory(state: Path) -> None:
    """Each device a `BMS controller` with its instance, vendor, model and firmware from BACnet; the front end a
    `BMS workstation`."""
    inventory = subprocess.run(
        [sys.executable, "-m", "appliance", "inventory", "--state", str(state), "--json"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    assets = {a["ip"]: a for a in (json.loads(line) for line in inventory.stdout.splitlines())}
    for d in DEVICES:
        asset = assets[d.ip]
        assert asset["category"] == "BMS controller", asset
        assert (asset["bacnet_device_instance"], asset["bacnet_vendor_id"]) == (d.instance, d.vendor_id)
        for attr, value in (("vendor", d.vendor), ("model", d.model), ("firmware", d.firmware)):
            assert asset[attr]["value"] == value, (attr, asset[attr])
            assert asset[attr]["source"].startswith("bacnet"), (attr, asset[attr])
    assert assets[FRONTEND]["category"] == "BMS workstation", assets[FRONTEND]
