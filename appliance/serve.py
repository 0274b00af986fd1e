"""`otwatch replay --serve ADDRESS`: after a replay, serve its metrics until SIGTERM/SIGINT.

For looking at a capture in Prometheus and Grafana (and for the test that runs every dashboard query against a real
Prometheus): the final snapshots of the replay are exported exactly as `otwatch run` exports live ones.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from appliance.config import Config
from appliance.export.activity import ActivityFamilies, note_techniques
from appliance.export.judge_metrics import JudgeSnapshot
from appliance.export.prometheus import OtwatchCollector
from appliance.export.web import start_web
from appliance.model import Asset
from appliance.pipeline import op_class, zone_map
from appliance.stats import StatsSnapshot


def replay_registry(
    config: Config, stats: StatsSnapshot, assets: Sequence[Asset], version: str, judge: JudgeSnapshot
) -> CollectorRegistry:
    """A registry exporting a finished replay's snapshots with the same families as `otwatch run`."""
    registry = CollectorRegistry()
    registry.register(
        OtwatchCollector(
            lambda: stats,
            lambda: assets,
            op_class,
            {"version": version},
            max_asset_series=config.metrics.max_asset_series,
            activity=ActivityFamilies(zone_map(config).lookup, op_class, note_techniques()),
            judge_fn=lambda: judge,
        )
    )
    return registry


def serve_until_stopped(listen: str, registry: CollectorRegistry) -> int:
    """Serve /metrics on `listen` until SIGTERM or SIGINT; 0 then, 1 if the address cannot be used."""
    from appliance.cli import StopFlag

    try:
        server = start_web(listen, registry)
    except (OSError, ValueError) as exc:
        print(f"otwatch: cannot listen on {listen}: {exc}", file=sys.stderr)
        return 1
    stop = StopFlag()
    stop.install()
    print(f"serving the replay's metrics at {server.url}/metrics until SIGTERM/SIGINT", file=sys.stderr, flush=True)
    try:
        stop.event.wait()
    finally:
        server.stop()
    return 0
