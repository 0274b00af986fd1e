"""Per-scrape cost of /metrics at 1,000 and 10,000 assets: the exposition of `otwatch run`'s collector, timed.

A synthetic site of N assets spread over the zones of site-small (PLCs, BMS controllers, cameras, IT hosts), each with
identity attributes, protocols, a poller's requests, alerts and a risk score with its factors, is exported through the
same OtwatchCollector and activity/judge families `otwatch run` registers; each round times one whole scrape
(`generate_latest`, as the web endpoint calls it). Printed: series and bytes per scrape, median and worst time, with
the default per-asset cap (metrics.max_asset_series, 5,000) and with the cap raised above N.
Run: `.venv/bin/python tests/bench/scrape_bench.py [--assets 1000 10000] [--rounds 20]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from types import MappingProxyType

from prometheus_client import CollectorRegistry, generate_latest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from appliance.config import Config  # noqa: E402
from appliance.export.activity import ActivityFamilies, note_techniques  # noqa: E402
from appliance.export.judge_metrics import AssetRisk, IncidentGauge, JudgeSnapshot  # noqa: E402
from appliance.export.prometheus import OtwatchCollector  # noqa: E402
from appliance.model import Asset, Attribute, Role  # noqa: E402
from appliance.pipeline import op_class, zone_map  # noqa: E402
from appliance.stats import StatsSnapshot  # noqa: E402

ZONES = (  # (name, /16 prefix, domain, category, protocol, vendor)
    ("ot-control", "10.50", "OT", "PLC", "modbus", "Schneider Electric"),
    ("bms", "10.60", "BMS", "BMS controller", "bacnet", "Johnson Controls Inc"),
    ("iot-cameras", "10.70", "IoT", "IP camera", "mqtt", "Axis Communications"),
    ("corp-it", "10.20", "IT", "IT host", "smb", "Dell"),
)


def config() -> Config:
    """A config with the zones the synthetic assets live in."""
    zones = [{"name": n, "cidrs": [f"{p}.0.0/16"], "domain": d, "purdue_level": 1.0} for n, p, d, *_ in ZONES]
    return Config.model_validate({"zones": zones})


def site(n: int) -> tuple[list[Asset], StatsSnapshot, JudgeSnapshot]:
    """N assets, the requests a poller sends each, alerts and risk for one in ten."""
    assets, requests, asset_alerts, risk = [], {}, {}, {}
    for i in range(n):
        zone, prefix, domain, category, protocol, vendor = ZONES[i % len(ZONES)]
        ip = f"{prefix}.{i // 250 % 256}.{i % 250 + 1}"
        attr = Attribute(vendor, "bench", 0.9)
        assets.append(Asset(
            f"asset-{i:05d}", ip, f"02:00:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}", 1.0, 2.0,
            category=category, zone=zone, domain=domain, vendor=attr, model=Attribute(f"model-{i % 7}", "bench", 0.9),
            firmware=Attribute(f"{i % 5}.{i % 3}", "bench", 0.9), protocols=(protocol,),
            roles=(Role(protocol, "server"),), peers=(f"{prefix}.255.1",),
        ))  # fmt: skip
        requests[(f"{prefix}.255.1", ip, protocol, "read")] = 1000 + i
        if i % 10 == 0:
            asset_alerts[(ip, "high")] = 1
            risk[ip] = AssetRisk(42.0, MappingProxyType({"zone_crossing": 20.0, "novelty": 12.0, "operation": 10.0}))
    stats = StatsSnapshot(
        packets=10**8, bytes=10**10, skipped=MappingProxyType({}), events=MappingProxyType({}),
        weird=MappingProxyType({}), alerts=MappingProxyType({("ot_pivot", "it_to_ot_write", "critical"): 3}),
        flows_total=10**6, flows_live=5000, flows_evicted=10, capture_drops=0, first_packet_ts=1.0,
        last_packet_ts=2.0, truncated=None, requests=MappingProxyType(requests),
        asset_alerts=MappingProxyType(asset_alerts),
    )  # fmt: skip
    incidents = tuple(IncidentGauge(f"INC-{i}", "high", "impair", 80.0) for i in range(5))
    return assets, stats, JudgeSnapshot(MappingProxyType(risk), incidents, "protect", 1.0)


def measure(n: int, cap: int, rounds: int) -> tuple[int, int, float, float]:
    """(series, bytes, median ms, worst ms) of a scrape of N assets with the per-asset cap `cap`."""
    cfg = config()
    assets, stats, judge = site(n)
    registry = CollectorRegistry()
    registry.register(OtwatchCollector(
        lambda: stats, lambda: assets, op_class, {"version": "bench"}, max_asset_series=cap,
        activity=ActivityFamilies(zone_map(cfg).lookup, op_class, note_techniques()), judge_fn=lambda: judge,
    ))  # fmt: skip
    times = []
    body = b""
    for _ in range(rounds):
        t0 = time.perf_counter()
        body = generate_latest(registry)
        times.append((time.perf_counter() - t0) * 1000)
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    return series, len(body), statistics.median(times), max(times)


def main() -> int:
    """Print the per-scrape figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    default_cap = Config().metrics.max_asset_series
    print(f"{'assets':>7} {'cap':>7} {'series':>8} {'bytes':>11} {'median ms':>10} {'worst ms':>9}")
    for n in args.assets:
        for cap in sorted({default_cap, max(default_cap, n + 1)}):
            series, size, median, worst = measure(n, cap, args.rounds)
            print(f"{n:>7,} {cap:>7,} {series:>8,} {size:>11,} {median:>10.1f} {worst:>9.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
