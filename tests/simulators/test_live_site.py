"""The live site (simulators.live) for real on loopback: it comes up and goes down cleanly, its devices (the offline
models of the small profile) answer with their identities and process values and count the writes they get with
the sender's address, and `otwatch run` (capture on `lo` and a broker session) runs against it without sending a
single write or command: the safety test of issue 6.

Only 127/8 is used: PLCs on 127.14.0.x:502, BACnet controllers on 127.15.0.x:47808, mosquitto on 127.16.0.10:1883
(zones 4-6 of the profile); the test's own clients sit on .200 addresses of those zones. Waits poll with deadlines;
nothing sleeps a fixed time.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from bacpypes3.pdu import Address
from pymodbus.client import ModbusTcpClient

from simulators.bms_frontend import build_frontend
from simulators.live import LiveSite, SiteError, Write, small_plan
from simulators.live.plan import BACNET_PORT, BROADCAST, FRONTEND_PORT, SitePlan
from simulators.live.plc_model import model_from_spec
from simulators.live.procs import processes_mentioning, tcp_listening, udp_bound
from tests.test_run_live import free_port, http_get, wait_for

ROOT = Path(__file__).resolve().parents[2]
SESSION_ID = "otwatch-safety"


def zone_address_200(plan: SitePlan, address: str) -> str:
    """The test's own address in the zone of `address`: .200 of its /16."""
    return str(ipaddress.ip_network(plan.zone_of(address).cidr).network_address + 200)


PLAN = small_plan()
TESTER_MODBUS, TESTER_BACNET, TESTER_MQTT = (zone_address_200(PLAN, a) for a in (PLAN.hmi, PLAN.frontend, PLAN.broker))
# MQTT 3.1.1 CONNECT, clean session, keep-alive 60, client id "probe"; a CONNACK accepting it
CONNECT = bytes([0x10, 17, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 5]) + b"probe"
CONNACK_OK = bytes([0x20, 2, 0, 0])


@pytest.fixture
def site() -> Iterator[LiveSite]:
    """A small live site (3 PLCs, 3 BACnet devices, 2 cameras, a sensor, a VMS), stopped at the end whatever happens."""
    live = LiveSite(small_plan())
    live.start()
    try:
        yield live
    finally:
        live.stop()


def plausible(kind: str, regs: Sequence[int]) -> bool:
    """Holding registers 0-9 as the offline process model keeps them (tenths of a degree, of a volt, ...)."""
    if kind == "cooling":  # supply, return temperature, flow, pump %, setpoint 18.0, fan %, valve %, alarm word
        return 150 < regs[0] < 230 < regs[1] < 320 and regs[4] == 180 and all(0 < r <= 100 for r in regs[5:7])
    return all(2250 < v < 2350 for v in regs[0:3]) and 4990 < regs[7] < 5010  # phase voltages, frequency


def modbus_read_and_write(plan: SitePlan) -> None:
    """From the tester's address: every PLC answers with its process values (on its own unit id) and its FC43
    identity, and refuses another unit id; one write to the first PLC."""
    for plc in plan.plcs:
        unit = plc.units[0]
        assert plc.units == model_from_spec(plc.name, plc.kind, plc.vendor_index, plc.seed).units
        client = ModbusTcpClient(plc.address, port=plc.port, source_address=(TESTER_MODBUS, 0), timeout=5)
        assert client.connect(), plc
        regs = client.read_holding_registers(0, count=10, device_id=unit)
        assert not regs.isError() and plausible(plc.kind, regs.registers), (plc, regs.registers)
        ident: Any = client.read_device_information(read_code=1, object_id=0, device_id=unit)
        assert [ident.information[i] for i in range(3)] == [plc.vendor.encode(), plc.product_code.encode(),
                                                            plc.revision.encode()]  # fmt: skip
        other: Any = client.read_device_information(read_code=1, object_id=0, device_id=7)
        assert other.isError() and other.exception_code == 0x0B  # a unit id it does not serve
        if plc is plan.plcs[0]:
            assert not client.write_register(60, 123, device_id=unit).isError()
        client.close()


async def bacnet_read_and_write(plan: SitePlan) -> dict[str, Any]:
    """From the tester's address: every device's vendor-name and model-name; one WriteProperty to the first."""
    app = build_frontend(f"{TESTER_BACNET}:{FRONTEND_PORT}", f"{BROADCAST}:{BACNET_PORT}", 9900, "tester", 999)
    got: dict[str, Any] = {}
    try:
        for d in plan.bms:
            oid = f"device,{d.instance}"
            got[d.name] = (str(await app.read_property(Address(d.address), oid, "vendor-name")),
                           str(await app.read_property(Address(d.address), oid, "model-name")))  # fmt: skip
        first = plan.bms[0]
        await app.write_property(Address(first.address), "analog-value,1", "present-value", 19.5, priority=10)
    finally:
        app.close()
    return got


def mqtt_connect_and_command(host: str, port: int, topic: str, payload: bytes) -> bytes:
    """From the tester's address: a raw MQTT CONNECT, then (once accepted) a QoS 0 PUBLISH of a command and a
    DISCONNECT; returns the broker's answer to the CONNECT."""
    with socket.socket() as s:
        s.bind((TESTER_MQTT, 0))
        s.settimeout(5)
        s.connect((host, port))
        s.sendall(CONNECT)
        answer = b""
        while len(answer) < 4:
            chunk = s.recv(4 - len(answer))
            assert chunk, "the broker closed the connection"
            answer += chunk
        if answer == CONNACK_OK:
            body = len(topic).to_bytes(2, "big") + topic.encode() + payload
            s.sendall(bytes([0x30, len(body)]) + body + bytes([0xE0, 0]))
        return answer


def site_sockets(plan: SitePlan) -> list[str]:
    """The site's sockets still listening or bound."""
    addresses = set(plan.devices) | set(plan.clients)
    left = [f"tcp {ip}:{port}" for ip, port in tcp_listening() if ip in addresses]
    left += [f"udp {ip}:{port}" for (ip, port), n in udp_bound().items() if ip in addresses and n]
    return left


def test_live_site_comes_up_counts_writes_with_their_sender_and_goes_down_cleanly() -> None:
    plan = small_plan()
    site = LiveSite(plan)
    site.start()
    try:
        pids = [c.pid for c in site.children]
        workdir = str(site.workdir)
        assert len(pids) == len(plan.plcs) + len(plan.bms) + 4  # + mosquitto, MQTT clients, poller, front end
        zones = site.zones_file.read_text()
        assert "name: ot-control" in zones and "127.14.0.0/16" in zones and "domain: BMS" in zones
        modbus_read_and_write(plan)
        identities = asyncio.run(bacnet_read_and_write(plan))
        assert identities == {d.name: (d.vendor_name, d.model) for d in plan.bms}
        command = b'{"cmd": "reboot"}'
        cam = next(c for c in plan.mqtt if c.client_id == "cam-02")
        topic = f"{cam.base}/cmd"
        assert topic == "site/dc1/cam/02/cmd"  # the offline site's topics
        assert mqtt_connect_and_command(plan.broker, plan.broker_port, topic, command) == CONNACK_OK

        def tester_writes() -> list[Write]:
            return [w for w in site.writes() if w.sender in (TESTER_MODBUS, TESTER_BACNET, TESTER_MQTT)]

        wait_for(lambda: len(tester_writes()) >= 3, "the tester's three writes counted", 10)
        assert sorted(tester_writes(), key=lambda w: w.protocol) == [
            Write(plan.bms[0].name, "bacnet", "write_property", TESTER_BACNET,
                  "objectIdentifier=analog-value,1 propertyIdentifier=present-value priority=10"),
            Write(plan.plcs[0].name, "modbus", "write_single_register", TESTER_MODBUS, "address 60 value/quantity 123"),
            Write(topic, "mqtt", "publish", TESTER_MQTT, f"from probe ({len(command)} bytes)"),
        ]  # fmt: skip
        # the camera's own subscription saw the command too (the VMS commands cam-01 only, every fifth cycle)
        wait_for(lambda: site.statuses()["mqtt-clients"]["clients"]["cam-02"]["commands"] == {topic: 1},
                 "cam-02 to count the command", 10)  # fmt: skip

        def tester_reads(name: str, address: str) -> dict[str, int]:
            return dict(site.statuses()[name]["senders"].get(address, {}))

        # reads are counted too (the status files catch up within a second or two)
        want = {"read_holding_registers": 1, "read_device_identification": 2}  # its own unit id and unit 7
        wait_for(lambda: tester_reads(plan.plcs[1].name, TESTER_MODBUS) == want, "the tester's reads counted", 10)
        wait_for(lambda: tester_reads(plan.bms[1].name, TESTER_BACNET) == {"read_property": 2}, "BACnet reads", 10)
    finally:
        site.stop()
    print(f"\nlive site: up in {site.start_seconds:.2f} s, down in {site.stop_seconds:.2f} s; pids {pids}")
    assert site.killed == []  # every process ended on SIGTERM, none needed the SIGKILL after the deadline
    assert [pid for pid in pids if Path(f"/proc/{pid}").exists()] == []
    assert processes_mentioning(workdir) == []
    assert site_sockets(plan) == []
    assert site.left_behind == []  # the site's own check, made before it let go of the BACnet lock
    assert not Path(workdir).exists()
    final = site.statuses()  # their last words, kept after stop()
    assert {name: doc["state"] for name, doc in final.items()} == {name: "stopped" for name in final}
    assert len(final) == len(pids) - 1  # every process but mosquitto keeps a status


def test_a_device_failing_during_start_stops_everything_already_started() -> None:
    good = small_plan(plcs=2, bms=2, cameras=1, sensors=0)
    broken = replace(good.bms[1], kind="boiler")  # not a kind simulators.live.bms_device knows: argparse exits 2
    plan = replace(good, bms=(good.bms[0], broken))
    site = LiveSite(plan)
    with pytest.raises(SiteError, match=rf"{broken.name} \(pid \d+\) exited with 2"):
        site.start()
    assert set(site.pids) >= {"mosquitto", *(p.name for p in plan.plcs), *(d.name for d in plan.bms)}
    assert site.children == [] and site.killed == [] and site.left_behind == []
    assert [pid for pid in site.pids.values() if Path(f"/proc/{pid}").exists()] == []
    assert site_sockets(plan) == []
    assert site.workdir is not None and not site.workdir.exists()


# ---------------------------------------------------------------------------------------------- the safety test


HMI, FRONT_END, VMS = PLAN.pollers[0].name, PLAN.frontend_name, next(c.client_id for c in PLAN.mqtt if c.kind == "vms")


def metric(text: str, name: str) -> float:
    """The sum of the samples of one metric in an exposition."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and line[len(name)] in " {")  # fmt: skip


def status_after(site: LiveSite, name: str, key: str, moment: float) -> bool:
    """Whether a client's status says `key` (a wall-clock time) happened after `moment`."""
    return float(site.statuses().get(name, {}).get(key) or 0) > moment


def test_sensor_in_all_its_modes_sends_no_write_or_command_to_the_live_site(site: LiveSite, tmp_path: Path) -> None:
    plan = site.plan
    config = tmp_path / "otwatch.yml"
    config.write_text(json.dumps({"broker": {"host": plan.broker, "port": plan.broker_port, "client_id": SESSION_ID}}))
    web = free_port()
    state, logs = tmp_path / "state", tmp_path / "logs"
    sensor = subprocess.Popen(
        [sys.executable, "-m", "appliance", "run", "--interface", "lo", "--config", str(config),
         "--web.listen-address", f"127.0.0.1:{web}", "--state", str(state), "--log-dir", str(logs)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{web}/metrics"
        wait_for(lambda: metric(http_get(url) or "", "otwatch_broker_session_up") == 1, "the sensor's broker session")
        began = time.time()
        # a full round of the site's clients while the sensor listens: FC43 of every PLC, identity of every BACnet
        # device, a setpoint write by the HMI and by the front end, a VMS command to a camera
        wait_for(lambda: status_after(site, HMI, "last_identify", began), "the HMI's next identification", 15)
        wait_for(lambda: status_after(site, FRONT_END, "last_identify", began), "the front end's identify", 15)
        wait_for(lambda: {HMI, FRONT_END, VMS} <= {plan.clients[w.sender] for w in site.writes()},
                 "a write by the HMI and the front end and a VMS command", 15)  # fmt: skip
        moment = time.time()
        wait_for(lambda: metric(http_get(url) or "", "otwatch_last_packet_timestamp_seconds") >= moment,
                 "the capture to catch up")  # fmt: skip
        sensor.send_signal(signal.SIGTERM)
        _, err = sensor.communicate(timeout=30)
        assert sensor.returncode == 0, err
        ran = time.time() - began
    finally:
        if sensor.poll() is None:
            sensor.kill()
            sensor.wait(timeout=10)
    site.stop()

    clients = plan.clients
    writes = site.writes()
    by_sender = Counter((w.protocol, clients.get(w.sender, w.sender)) for w in writes)
    requests = {name: doc["senders"] for name, doc in site.statuses().items() if doc["role"] in ("plc", "bms")}
    total = sum(n for senders in requests.values() for ops in senders.values() for n in ops.values())
    print(
        f"\nsafety: the sensor ran {ran:.1f} s against the site; the devices answered {total} requests in all; "
        f"site clients {sorted(clients.items())}; "
        f"writes and commands received by sender: {dict(by_sender)}; the broker saw {site.mqtt_clients()}"
    )
    assert [w for w in writes if w.sender not in clients] == []
    assert {HMI, FRONT_END, VMS} <= {name for _proto, name in by_sender}  # the counters were alive
    # stronger: no device got any request at all (read or write) from anyone but the site's clients
    assert {name: set(senders) - set(clients) for name, senders in requests.items()} == {n: set() for n in requests}
    # the broker session was there (from 127.0.0.1) and published nothing; nobody but the site's clients published
    assert site.mqtt_clients()[SESSION_ID] == "127.0.0.1"
    assert [p for p in site.publishes() if p.sender not in clients] == []
    assert "broker session up with" in err

    done = subprocess.run([sys.executable, "-m", "appliance", "inventory", "--state", str(state), "--json"],
                          capture_output=True, text=True, check=True, cwd=ROOT)  # fmt: skip
    assets = {a["ip"]: a for a in map(json.loads, done.stdout.splitlines())}
    for plc in plan.plcs:
        vendor = assets[plc.address]["vendor"]
        assert (vendor["value"], vendor["source"]) == (plc.vendor, "modbus/fc43"), assets[plc.address]
    for d in plan.bms:
        asset = assets[d.address]
        assert (asset["category"], asset["bacnet_device_instance"]) == ("BMS controller", d.instance), asset
        assert [asset[k]["value"] for k in ("vendor", "model", "firmware")] == [d.vendor_name, d.model, d.firmware]


def test_cli_runs_the_site_for_a_given_time_and_says_what_runs_where(tmp_path: Path) -> None:
    zones = tmp_path / "zones.yml"
    done = subprocess.run(
        [sys.executable, "-m", "simulators.live", "--seconds", "1", "--plcs", "1", "--bms", "1", "--cameras", "1",
         "--sensors", "0", "--gateways", "0", "--pollers", "1", "--zones", str(zones)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    crah = PLAN.bms[0]
    assert "live site up in" in out and "live site down in" in out
    assert "PLC    plc-crah-01     127.14.0.10:502" in out and "FC43: Schneider Electric / BMX P34 2020" in out
    assert "BACnet crah-01         127.15.0.10:47808" in out and f"device,{crah.instance}: Johnson Controls" in out
    assert "MQTT   mosquitto       127.16.0.10:1883" in out and "cam-01@127.16.0.11 (camera, site/dc1/cam/01)" in out
    assert "left out: PLCs: 1 of 4" in out
    assert "NOT A SITE CLIENT" not in out
    assert "127.14.0.0/16" in zones.read_text()
    workdir = out.split("(work folder ", 1)[1].split(")", 1)[0]
    assert workdir.startswith("/") and processes_mentioning(workdir) == [] and not Path(workdir).exists()
