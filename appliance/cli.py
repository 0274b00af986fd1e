"""The `otwatch` command: replay a capture, run on a live interface, show the inventory."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections import Counter
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import FrameType

from appliance.baseline.command import add_parser as add_baseline_parser
from appliance.config import Config, ConfigError, load_config
from appliance.incidents.command import add_parser as add_incidents_parser

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def otwatch_version() -> str:
    """The installed distribution's version."""
    try:
        return version("otwatch")
    except PackageNotFoundError:
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="otwatch", description="Passive OT/IoT network monitoring for data centers.")
    parser.add_argument("--version", action="version", version=f"otwatch {otwatch_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="YAML config file (validated before anything starts)")
    common.add_argument(
        "--state",
        type=Path,
        metavar="DIR",
        help="state directory (default: state_dir from the config, /var/lib/otwatch)",
    )

    replay = sub.add_parser(
        "replay",
        parents=[common],
        help="decode a pcap/pcapng file into JSON-lines logs",
        description="Decode a pcap or pcapng capture, write one JSON-lines log per concern into --out, "
        "update the inventory in the state directory and print a summary.",
    )
    replay.add_argument("capture", type=Path, help="pcap or pcapng file")
    replay.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory for the JSONL logs")
    replay.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    replay.add_argument("--json", action="store_true", help="print the summary as JSON")
    replay.add_argument(
        "--serve",
        metavar="HOST:PORT",
        help="after the replay, serve its metrics at this address until SIGTERM/SIGINT (for Prometheus/Grafana)",
    )

    run = sub.add_parser(
        "run",
        parents=[common],
        help="monitor a live interface and/or an MQTT broker until SIGTERM/SIGINT",
        description="Capture on a live interface (needs CAP_NET_RAW) and/or hold a read-only session with the MQTT "
        "broker of the config's broker section, decode, log, keep the inventory and serve Prometheus metrics until "
        "SIGTERM or SIGINT. With a broker and no interface, only the broker session runs.",
    )
    run.add_argument("--interface", "-i", help="interface to capture on (default: capture.interface from the config)")
    run.add_argument(
        "--web.listen-address",
        dest="listen",
        metavar="HOST:PORT",
        help="address for /metrics (default: web.listen_address from the config, ':9847')",
    )
    run.add_argument(
        "--web.config.file",
        dest="web_config_file",
        type=Path,
        metavar="FILE",
        help="TLS and basic auth for the endpoint, in the Prometheus exporters' web-config.yml format "
        "(default: web.config_file from the config; none: plain HTTP)",
    )
    run.add_argument("--log-dir", type=Path, metavar="DIR", help="directory for the JSONL logs (default: STATE/logs)")

    inv = sub.add_parser(
        "inventory",
        parents=[common],
        help="show the assets the sensor knows",
        description="Print the asset inventory kept in the state directory.",
    )
    inv.add_argument("--json", action="store_true", help="one JSON object per asset instead of a table")
    add_incidents_parser(sub, common)
    add_baseline_parser(sub, common)

    sim = sub.add_parser(
        "simulate",
        help="write a pcap of simulated days of a site, with ground truth",
        description="Synthesize N days of a data-center site's traffic from a profile (YAML), with scenarios "
        "injected, into DIR/site.pcap, DIR/truth.json and DIR/zones.yml. Deterministic for a seed; nothing is sent.",
    )
    sim.add_argument("--profile", type=Path, required=True, help="site profile (YAML)")
    sim.add_argument("--days", type=int, default=1, help="days to simulate (default 1)")
    sim.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    sim.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")
    sim.add_argument("--scenario", type=Path, action="append", default=[], help="scenario file (YAML), repeatable")
    sim.add_argument("--at", metavar="DAY@HH:MM", help="start every scenario at this day and time instead")
    sim.add_argument("--pace", type=float, help="scenario pace instead of the files' (10: ten times slower)")

    from appliance.evaluate import add_parser as add_evaluate

    add_evaluate(sub)

    check = sub.add_parser(
        "check-config",
        help="validate a config file and exit (0: usable, 2: not)",
        description="Read and validate a YAML config file as `run` would, print 'config OK: FILE' or each bad key "
        "by its path, and exit 0 or 2. Nothing else is read or started.",
    )
    check.add_argument("--config", type=Path, required=True, help="YAML config file to validate")
    return parser


def _state_dir(args: argparse.Namespace, config: Config) -> Path:
    return Path(args.state) if args.state is not None else config.state_dir


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `otwatch` command."""
    args = build_parser().parse_args(argv)
    if args.command == "simulate":
        from appliance.commands import simulate_command

        return simulate_command(args)
    if args.command == "evaluate":
        from appliance.evaluate import evaluate_command

        return evaluate_command(args)
    if args.command == "check-config":
        from appliance.commands import check_config_command

        return check_config_command(args.config)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"otwatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from appliance.commands import inventory_command, replay_command, run_command

    try:
        if args.command == "replay":
            return replay_command(args, config, _state_dir(args, config))
        if args.command == "run":
            return run_command(args, config, _state_dir(args, config))
        if args.command == "incidents":
            from appliance.incidents.command import incidents_command

            return incidents_command(args, _state_dir(args, config))
        if args.command in ("mode", "learn"):
            from appliance.baseline.command import learn_command, mode_command

            command = mode_command if args.command == "mode" else learn_command
            return command(args, config, _state_dir(args, config))
        return inventory_command(args, config, _state_dir(args, config))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `otwatch inventory | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


class StopFlag:
    """Set by SIGTERM/SIGINT; the capture loop polls it."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: int | None = None

    def install(self) -> None:
        """Route SIGTERM and SIGINT to this flag."""
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signum
        self.event.set()

    def is_set(self) -> bool:
        """True once a stop signal arrived."""
        return self.event.is_set()


def summary_lines(summary: dict[str, object]) -> list[str]:
    """Render a replay summary as short human-readable lines."""
    events = summary["events_by_protocol"]
    assets = summary["assets_by_category"]
    alerts = summary.get("alerts_by_severity", {})
    assert isinstance(events, dict) and isinstance(assets, dict) and isinstance(alerts, dict)
    lines = [
        f"packets      {summary['packets']:,} ({summary['bytes']:,} bytes)",
        f"flows        {summary['flows']:,}",
        "events       " + (", ".join(f"{p} {n:,}" for p, n in sorted(events.items())) or "none"),
        "assets       " + (", ".join(f"{c} {n}" for c, n in sorted(assets.items())) or "none"),
        f"weird        {summary['weird']:,}",
        "alerts       " + (", ".join(f"{k} {n}" for k, n in sorted(alerts.items())) or "none"),
        f"skipped      {summary['skipped']:,} frames not decoded (unsupported link/ethertype, fragments, ...)",
        f"time         {summary['seconds']:.2f} s, {summary['packets_per_second']:,.0f} packets/s",
    ]
    incidents = summary.get("incidents")
    if isinstance(incidents, dict):  # after the alerts line
        at = next(i for i, line in enumerate(lines) if line.startswith("alerts")) + 1
        lines.insert(at, "incidents    " + (", ".join(f"{k} {n}" for k, n in incidents.items() if n) or "none"))
    if summary.get("truncated"):
        lines.append(f"TRUNCATED    {summary['truncated']}")
    return lines


def count_by(values: list[str]) -> dict[str, int]:
    """Count equal strings."""
    return dict(Counter(values))


def elapsed_since(start: float) -> float:
    """Seconds since a perf_counter reading."""
    return time.perf_counter() - start
