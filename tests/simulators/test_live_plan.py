"""The live site's plan from a profile (simulators.live.profile_plan): the devices `otwatch simulate` makes for the
same profile and seed (checked against the pcap of a simulated day: BACnet instances in the I-Ams, PLC identities
in the FC43 answers, MQTT client ids and topics), the fixed zone mapping onto loopback, the subsets, and bad input
named by its key."""

from __future__ import annotations

import ipaddress
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from simulators.live import PlanError, plan_from_profile, small_plan
from simulators.live.bacnet_model import model_from_spec as bacnet_model
from simulators.live.plc_model import model_from_spec as plc_model
from simulators.site import ProfileError, load_profile
from tests.simulators.conftest import SEED, wire_profile

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "simulators" / "profiles" / "site-small.yml"


def fc43(payload: bytes) -> tuple[str, ...]:
    """The objects of an FC43/14 response (after its MBAP header)."""
    objects, i = [], 7 + 7
    for _ in range(payload[7 + 6]):
        n = payload[i + 1]
        objects.append(payload[i + 2 : i + 2 + n].decode())
        i += 2 + n
    return tuple(objects)


def mqtt_names(segments: list[tuple[str, bytes]]) -> tuple[dict[str, str], set[str]]:
    """(client id -> its address, topics published) read from the clients' MQTT segments."""
    ids, topics = {}, set()
    for src, p in segments:
        i = 1
        while i < min(len(p), 5) and p[i] & 0x80:
            i += 1
        head = i + 1
        if head + 12 > len(p):  # a short segment (the tail of a large message), not a packet's head
            continue
        if p[0] == 0x10 and p[head : head + 6] == b"\x00\x04MQTT":
            n = struct.unpack_from(">H", p, head + 10)[0]
            ids[p[head + 12 : head + 12 + n].decode()] = src
        elif p[0] >> 4 == 3:
            n = struct.unpack_from(">H", p, head)[0]
            topic = p[head + 2 : head + 2 + n].decode(errors="replace")
            if topic.startswith("site/dc1/"):
                topics.add(topic)
    return ids, topics


def test_the_plan_has_the_devices_the_offline_site_has_for_the_same_seed(wire_day: dict[str, Any]) -> None:
    plan = plan_from_profile(wire_profile(), SEED, netns=True)  # the profile's own addresses, as in the pcap
    i_am = {src: int.from_bytes(p[9:13], "big") & 0x3FFFFF for src, _dst, p in wire_day["bacnet"]
            if p[6:8] == b"\x10\x00"}  # fmt: skip
    assert {d.address: d.instance for d in plan.bms} == {ip: i_am[ip] for ip in (d.address for d in plan.bms)}
    identities = {src: fc43(p) for is_request, src, _dst, p in wire_day["modbus"]
                  if not is_request and p[7] == 0x2B}  # fmt: skip
    for plc in plan.plcs:
        assert identities[plc.address][0] == plc.vendor
        assert identities[plc.address][1] == plc.product_code
        assert plc.units == plc_model(plc.name, plc.kind, plc.vendor_index, plc.seed).units
    ids, topics = mqtt_names(wire_day["mqtt"])
    assert {c.client_id: c.address for c in plan.mqtt} == {c.client_id: ids[c.client_id] for c in plan.mqtt}
    assert {f"{c.base}/status" for c in plan.mqtt if c.kind in ("camera", "sensor", "gateway")} <= topics
    assert {f"{c.base}/telemetry" for c in plan.mqtt if c.kind in ("camera", "sensor")} <= topics
    # each device process rebuilds the same model from what the plan gives it
    for d in plan.bms:
        model = bacnet_model(d.name, d.kind, d.index, d.seed)
        assert (model.instance, model.vendor, model.model, model.firmware) == (d.instance, d.vendor_name, d.model,
                                                                               d.firmware)  # fmt: skip


def test_zone_i_of_the_profile_is_127_10_plus_i_on_loopback_with_each_host_at_its_offset() -> None:
    profile = load_profile(PROFILE)
    lo, real = plan_from_profile(profile), plan_from_profile(profile, netns=True)
    assert [(z.name, z.cidr) for z in lo.zones] == [(z.name, f"127.{10 + i}.0.0/16") for i, z in
                                                    enumerate(profile.zones)]  # fmt: skip
    pairs = [*zip(lo.devices, real.devices, strict=True), *zip(lo.clients, real.clients, strict=True)]
    assert len(pairs) > 10
    for lo_ip, real_ip in pairs:
        lo_zone, real_zone = lo.zone_of(lo_ip), real.zone_of(real_ip)
        assert lo_zone.name == real_zone.name
        lo_offset = int(ipaddress.ip_address(lo_ip)) - int(ipaddress.ip_network(lo_zone.cidr).network_address)
        real_offset = int(ipaddress.ip_address(real_ip)) - int(ipaddress.ip_network(real_zone.cidr).network_address)
        assert lo_offset == real_offset
    zones: Any = lo.zones_config()["zones"]
    assert zones[4] == {"name": "ot-control", "cidrs": ["127.14.0.0/16"], "domain": "OT",
                        "purdue_level": 1.0}  # fmt: skip
    assert real.broadcast == "10.60.1.255" and lo.broadcast == "127.255.255.255"


def test_a_subset_takes_each_kind_in_turn_and_says_what_it_left_out() -> None:
    profile = load_profile(PROFILE)
    assert profile.live.max_per_kind == 3
    plan = plan_from_profile(profile)  # the profile's live section: at most 3 of each kind
    assert [p.name for p in plan.plcs] == ["plc-crah-01", "plc-chiller-01", "plc-swgr-01"]
    assert [d.kind for d in plan.bms] == ["crah", "crac", "chiller"]  # a CRAH, a CRAC, a chiller before a 2nd CRAH
    two = plan_from_profile(profile, max_per_kind=2)
    assert [p.kind for p in two.plcs] == ["cooling", "power"] and len(two.bms) == 2
    assert "PLCs: 2 of 4" in two.notes and "cameras: 2 of 5" in two.notes
    full = plan_from_profile(profile, max_per_kind=100)
    assert (len(full.plcs), len(full.bms), len(full.pollers), full.notes) == (4, 6, 2, ())
    assert full.pollers[1].period == 6 * full.pollers[0].period == 30.0  # the standby HMI, as offline
    small = small_plan()
    assert (len(small.plcs), len(small.bms), small.poll_seconds, small.write_every) == (3, 3, 0.5, 5)


def test_bad_counts_and_bad_live_keys_are_named(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match=r"counts: unknown kind\(s\) \['plcs'\]"):
        plan_from_profile(load_profile(PROFILE), counts={"plcs": 1})
    with pytest.raises(PlanError, match=r"counts.camera: -1"):
        plan_from_profile(load_profile(PROFILE), counts={"camera": -1})
    bad = tmp_path / "bad.yml"
    bad.write_text(PROFILE.read_text().replace("max_per_kind: 3", "max_per_kind: 0\n  polls: 1"))
    with pytest.raises(ProfileError) as err:
        load_profile(bad)
    assert "live.max_per_kind" in str(err.value) and "live.polls: unknown key" in str(err.value)
    done = subprocess.run([sys.executable, "-m", "simulators.live", "--profile", str(bad)], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, check=False)  # fmt: skip
    assert done.returncode == 2 and "live.polls: unknown key" in done.stderr
