"""Shared fixtures of the simulator tests: `wire_day`, one simulated day in which the offline site emits every kind
of message it can (the polls, a maintenance window with its writes, the engineer's write session, a firmware
update, a camera onboarded, the whole intrusion with DeviceCommunicationControl and ReinitializeDevice), read back
into Modbus/TCP and BACnet/IP messages."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulators.site import load_profile, load_scenario, simulate
from simulators.site.profile import Maintenance, Novelty, SiteProfile

PROFILES = Path(__file__).resolve().parents[2] / "simulators" / "profiles"
SEED = 11


def packets(pcap: Path) -> Iterator[tuple[float, bytes]]:
    """(time, frame) of every record of a classic pcap."""
    data = pcap.read_bytes()
    off = 24
    while off < len(data):
        sec, usec, n, _ = struct.unpack_from("<IIII", data, off)
        yield sec + usec / 1e6, data[off + 16 : off + 16 + n]
        off += 16 + n


def wire_profile() -> SiteProfile:
    """The small site with its maintenance window and its benign novelty all on day 0 (a Monday)."""
    p = load_profile(PROFILES / "site-small.yml")
    schedule = p.schedule.model_copy(update={"maintenance": [Maintenance(weekday=0, start="02:00", hours=3)]})
    novelty = [Novelty(kind="engineer_write_session", day=0, time="02:20", target="plc-crah-01"),
               Novelty(kind="firmware_update", day=0, time="03:10", target="plc-ups-01"),
               Novelty(kind="camera_onboarded", day=0, time="10:40", name="cam-06")]  # fmt: skip
    return p.model_copy(update={"schedule": schedule, "novelty": novelty})


@pytest.fixture(scope="session")
def wire_day(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The day's pcap and messages: `modbus` (is_request, source IP, destination IP, MBAP frame), `bacnet` (source
    IP, destination IP, UDP payload) and `mqtt` (source IP, TCP payload) of the clients' segments to the broker."""
    out = tmp_path_factory.mktemp("wire-day")
    chain = load_scenario(PROFILES / "scenarios" / "vpn-intrusion-ot.yml", day=0, time="10:00")
    simulate(wire_profile(), 1, SEED, out, [chain])
    modbus, bacnet, mqtt = [], [], []
    for _t, f in packets(out / "site.pcap"):
        if f[12:14] != b"\x08\x00":
            continue
        ihl = (f[14] & 0x0F) * 4
        src, dst = ".".join(map(str, f[26:30])), ".".join(map(str, f[30:34]))
        l4 = 14 + ihl
        sport, dport = struct.unpack_from(">HH", f, l4)
        if f[23] == 6 and 502 in (sport, dport):
            payload = f[l4 + (f[l4 + 12] >> 4) * 4 :]
            if payload:
                modbus.append((dport == 502, src, dst, bytes(payload)))
        elif f[23] == 6 and dport == 1883:
            payload = f[l4 + (f[l4 + 12] >> 4) * 4 :]
            if payload:
                mqtt.append((src, bytes(payload)))
        elif f[23] == 17 and 47808 in (sport, dport):
            bacnet.append((src, dst, bytes(f[l4 + 8 :])))
    return {"dir": out, "modbus": modbus, "bacnet": bacnet, "mqtt": mqtt}
