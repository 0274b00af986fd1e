"""A seeded generator of a realistic data-center traffic mix, written as a classic pcap (the bench workload).

The mix follows notes/PERFORMANCE.md: Modbus/TCP ~41%, BACnet/IP ~19%, MQTT ~18%, DNS ~4%, TLS on 443 ~10% and
TCP/UDP noise ~8% of packets, about `hosts` hosts in a few 10.x /24 subnets, each with a stable MAC. Every TCP
session starts with a handshake and carries consistent sequence and acknowledgement numbers; IPv4 lengths and
header checksums are correct, TCP/UDP checksums are zero. The output is a pure function of the arguments: one
`random.Random(seed)`, packet time starting at a fixed instant, no wall clock.

    python -m simulators.mixed_capture OUT.pcap [--packets N] [--seed S] [--hosts H]
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from random import Random
from typing import Any, Protocol

from simulators.mixgen.bacnet import BacnetTraffic
from simulators.mixgen.it import DnsTraffic, NoiseTraffic, TlsTraffic
from simulators.mixgen.modbus import ModbusTraffic
from simulators.mixgen.mqtt import MqttTraffic
from simulators.mixgen.net import Site

GENERATOR_VERSION = 1  # bump when the output for a given (packets, seed, hosts) changes
START_TS = 1_709_280_000  # 2024-03-01 08:00:00 UTC
MEAN_GAP_US = 200  # mean inter-packet gap: about 5,000 packets per second of packet time
LINKTYPE_ETHERNET = 1
SNAPLEN = 65535

# share of packets per traffic family; the order fixes the random draws, so it is part of the output format
MIX: tuple[tuple[str, float], ...] = (
    ("modbus", 0.41),
    ("bacnet", 0.19),
    ("mqtt", 0.18),
    ("dns", 0.04),
    ("tls", 0.10),
    ("noise", 0.08),
)

_GLOBAL_HEADER = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
_FLUSH_EVERY = 8192


class _Traffic(Protocol):
    def step(self) -> None: ...


def pcap_global_header(linktype: int = LINKTYPE_ETHERNET, snaplen: int = SNAPLEN) -> bytes:
    """The 24-byte header of a classic little-endian, microsecond pcap file."""
    return _GLOBAL_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)


def write_mixed_capture(
    path: str | Path, packets: int = 1_000_000, seed: int = 1, hosts: int = 200
) -> dict[str, Any]:
    """Write `packets` frames of the mixed workload to a pcap at path; return a summary of what it wrote."""
    if packets < 0:
        raise ValueError("packets must be >= 0")
    rng = Random(seed)
    site = Site(hosts, Random(rng.getrandbits(64)))
    makers: dict[str, Callable[[Site, Random, deque[bytes]], _Traffic]] = {
        "modbus": ModbusTraffic,
        "bacnet": BacnetTraffic,
        "mqtt": MqttTraffic,
        "dns": DnsTraffic,
        "tls": TlsTraffic,
        "noise": NoiseTraffic,
    }
    names = [name for name, _share in MIX]
    queues: list[deque[bytes]] = [deque() for _ in names]
    sources: list[_Traffic] = [
        makers[name](site, Random(rng.getrandbits(64)), queue)
        for name, queue in zip(names, queues, strict=True)
    ]
    total_share = sum(share for _name, share in MIX)
    bounds: list[float] = []
    acc = 0.0
    for _name, share in MIX:
        acc += share / total_share
        bounds.append(acc)
    bounds[-1] = 2.0  # float rounding must never leave a draw unassigned

    counts = [0] * len(names)
    seen: set[bytes] = set()
    rnd = rng.random
    rec = _RECORD.pack
    ts_us = 0
    gap = 2 * MEAN_GAP_US
    nbytes = 24
    started = time.perf_counter()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb", buffering=1 << 20) as f:
        f.write(pcap_global_header())
        chunk: list[bytes] = []
        for _ in range(packets):
            r = rnd()
            k = 0
            while r >= bounds[k]:
                k += 1
            queue = queues[k]
            if not queue:
                sources[k].step()
            frame = queue.popleft()
            counts[k] += 1
            ts_us += 1 + int(rnd() * gap)
            n = len(frame)
            chunk.append(rec(START_TS + ts_us // 1_000_000, ts_us % 1_000_000, n, n))
            chunk.append(frame)
            nbytes += 16 + n
            seen.add(frame[26:34])  # the (src, dst) address pair
            if len(chunk) >= _FLUSH_EVERY:
                f.write(b"".join(chunk))
                chunk.clear()
        f.write(b"".join(chunk))
    elapsed = time.perf_counter() - started
    return {
        "path": str(path),
        "packets": packets,
        "bytes": nbytes,
        "seed": seed,
        "hosts": len(site.all),
        "hosts_seen": len(_addresses(seen) - {b.ip4 for b in site.broadcasts.values()}),
        "by_protocol": dict(zip(names, counts, strict=True)),
        "first_ts": float(START_TS),
        "duration_s": ts_us / 1e6,
        "generator_version": GENERATOR_VERSION,
        "generation_s": round(elapsed, 3),
    }


def _addresses(pairs: set[bytes]) -> set[bytes]:
    out: set[bytes] = set()
    for pair in pairs:
        out.add(pair[:4])
        out.add(pair[4:])
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: write a mixed capture and print its summary."""
    parser = argparse.ArgumentParser(
        prog="python -m simulators.mixed_capture", description=__doc__.split("\n")[0]
    )
    parser.add_argument("out", help="pcap file to write")
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hosts", type=int, default=200)
    args = parser.parse_args(argv)
    try:
        summary = write_mixed_capture(args.out, args.packets, args.seed, args.hosts)
    except ValueError as exc:
        parser.error(str(exc))
    shares = ", ".join(f"{k} {v / max(1, summary['packets']):.1%}" for k, v in summary["by_protocol"].items())
    print(
        f"{summary['path']}: {summary['packets']} packets, {summary['bytes']} bytes, "
        f"{summary['hosts']} hosts, {summary['duration_s']:.1f} s of traffic, "
        f"written in {summary['generation_s']} s"
    )
    print(f"  {shares}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
