"""Where the replay's time goes, per protocol and per stage: a child program of `make bench` (or run alone).

    python tests/bench/shares.py PCAP [--packets N] [--json]

On the first N packets of the capture (default 200,000), read into memory first, after one warm-up replay of a
few thousand packets (lazy imports and tables load there, not in the first measured run):
1. The pipeline (flows, conn log, flow detectors, inventory, all event consumers) is run in-process with no
   decoder, with each protocol's decoder alone, and with all of them; a protocol's cost per packet is what its
   decoder's run adds to the no-decoder run, divided by its packets (from the all-decoders run's conn.jsonl).
2. The events of the all-decoders run are recorded, and fed in their order to a fresh pipeline's consumers, each
   call timed: the JSONL writer, the detectors, the baseline and the inventory, in the pipeline's order. What
   remains of a protocol's cost per event is decoding and handing events over ("decode").
CPU time of this process for the replays (time.process_time), the clock around each stage call (its own cost taken
off), garbage collection tuned as in `otwatch replay`, each run once: figures for comparing shares, not a timed test.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from appliance.capture.pcapfile import PcapReader  # noqa: E402
from appliance.commands import tune_gc  # noqa: E402
from appliance.config import Config  # noqa: E402
from appliance.model import ProtocolEvent  # noqa: E402
from appliance.pipeline import Frame, Pipeline  # noqa: E402
from protocols import DECODERS  # noqa: E402

PROTOCOLS = ("modbus", "bacnet", "mqtt", "dns")  # the bench mix's decoded protocols (the others see no traffic)
WARM_UP = 5_000  # packets replayed once before measuring
STAGES = ("log", "detect", "learn", "inventory")  # the event consumers, in the pipeline's order


class RecordingPipeline(Pipeline):
    """The pipeline, keeping every event it handles (for the per-stage timings)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.recorded: list[ProtocolEvent] = []
        super().__init__(*args, **kwargs)

    def _on_event(self, ev: ProtocolEvent) -> None:
        self.recorded.append(ev)
        super()._on_event(ev)


def _replay(
    frames: list[Frame], names: Iterable[str] | None, out: Path, record: bool = False
) -> tuple[float, Pipeline]:
    """CPU seconds of one in-process replay with the named decoders (None: all registered ones)."""
    wanted = None if names is None else set(names)
    decoders = [d for d in DECODERS if wanted is None or d.name in wanted]
    cls = RecordingPipeline if record else Pipeline
    pipeline = cls(Config(), out, decoders=decoders)
    tune_gc()  # as `otwatch replay` does
    start = time.process_time()
    pipeline.run(frames)
    pipeline.finish()
    return time.process_time() - start, pipeline


def _packets_by_service(conn_log: Path) -> Counter[str]:
    """Packets per connection service in a conn.jsonl (both directions; "-" for no service)."""
    counts: Counter[str] = Counter()
    with conn_log.open("rb") as f:
        for line in f:
            row = json.loads(line)
            counts[row.get("service") or "-"] += row.get("orig_pkts", 0) + row.get("resp_pkts", 0)
    return counts


def _stage_costs(events: list[ProtocolEvent], out: Path) -> dict[str, list[float]]:
    """Microseconds per event of each stage, per protocol: the events fed in their order to one fresh pipeline's
    consumers, each stage timed around its call, in the pipeline's order (a stage relies on the one before: the
    baseline learns a channel after the detectors judged it, and then judges its repeats on a fast path)."""
    fresh = Pipeline(Config(), out)
    assert fresh.logs is not None
    log, judge, learn, inventory = (
        fresh.logs.write_event, fresh.detectors.on_event, fresh.baseline.observe, fresh.inventory.on_event
    )
    clock = time.perf_counter_ns
    reads = 100_000
    start = clock()
    for _ in range(reads):
        clock()
    overhead = (clock() - start) / reads  # one clock read, taken off each stage
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    counts: Counter[str] = Counter()
    tune_gc()
    for ev in events:
        t0 = clock()
        log(ev)
        t1 = clock()
        judge(ev)
        t2 = clock()
        learn(ev)
        t3 = clock()
        inventory(ev)
        t4 = clock()
        acc = sums[ev.protocol]
        acc[0] += t1 - t0
        acc[1] += t2 - t1
        acc[2] += t3 - t2
        acc[3] += t4 - t3
        counts[ev.protocol] += 1
    return {p: [max(0.0, ns / counts[p] - overhead) / 1000 for ns in acc] for p, acc in sums.items()}


def measure(pcap: Path, packets: int) -> dict[str, Any]:
    """The shares of one capture's first `packets` packets."""
    frames: list[Frame] = []
    for frame in PcapReader(pcap):
        frames.append(frame)
        if len(frames) >= packets:
            break
    n = len(frames)
    shm = "/dev/shm" if Path("/dev/shm").is_dir() else None  # logs on tmpfs, as in the replay measurement
    with tempfile.TemporaryDirectory(prefix="otwatch-shares-", dir=shm) as tmp:
        _replay(frames[:WARM_UP], None, Path(tmp, "warm-up"))  # lazy imports and tables (the OUI index) load here
        base, _ = _replay(frames, (), Path(tmp, "none"))
        alone = {name: _replay(frames, (name,), Path(tmp, name))[0] for name in PROTOCOLS}
        every, full = _replay(frames, None, Path(tmp, "all"), record=True)  # last: its events stay alive
        by_service = _packets_by_service(Path(tmp, "all", "conn.jsonl"))
        assert isinstance(full, RecordingPipeline)
        events: Counter[str] = Counter(ev.protocol for ev in full.recorded)
        costs = _stage_costs(full.recorded, Path(tmp, "stages"))
        rows: list[dict[str, Any]] = []
        for name in PROTOCOLS:
            n_events = events.get(name, 0)
            pkts = by_service.get(name, 0)
            added = alone[name] - base
            row: dict[str, Any] = {"protocol": name, "packets": pkts, "events": n_events, "seconds_added": added}
            if pkts and n_events:
                stages = dict(zip(STAGES, costs[name], strict=True))
                per_event = added * 1e6 / n_events
                row.update(
                    us_per_packet=added * 1e6 / pkts,
                    us_per_event=per_event,
                    decode=per_event - sum(stages.values()),
                    **stages,
                )
            rows.append(row)
    return {
        "capture": str(pcap),
        "packets": n,
        "no_decoder_s": base,
        "all_decoders_s": every,
        "protocols": rows,
        "events": dict(sorted(events.items())),
    }


def render(report: dict[str, Any], tshark_pps: float | None = None) -> str:
    """The table of shares, and what the replay would reach if every protocol cost as little as the cheapest."""
    n = report["packets"]
    every = report["all_decoders_s"]
    base = report["no_decoder_s"]
    lines = [
        f"where the time goes: first {n:,} packets, in-process, CPU time, one run each",
        f"  no decoder (flows, conn log, flow detectors, inventory): {base * 1e6 / n:.2f} us/packet; "
        f"all decoders: {every * 1e6 / n:.2f} us/packet ({n / every:,.0f} packets/s)",
        f"  {'protocol':<9}{'packets':>9}{'events':>9}{'share':>7}{'us/pkt':>8}{'us/ev':>7}  "
        f"{'decode':>7}{'log':>6}{'detect':>7}{'learn':>6}{'invent':>7}   (us per event)",
    ]
    rows = [r for r in report["protocols"] if "us_per_event" in r and r["seconds_added"] > 0]
    for r in report["protocols"]:
        if "us_per_event" not in r:
            lines.append(f"  {r['protocol']:<9}{r['packets']:>9,}{r['events']:>9,}   (no traffic)")
            continue
        if r["seconds_added"] <= 0:
            lines.append(f"  {r['protocol']:<9}{r['packets']:>9,}{r['events']:>9,}   (below the noise: more packets)")
            continue
        share = r["seconds_added"] / every if every > 0 else 0.0
        lines.append(
            f"  {r['protocol']:<9}{r['packets']:>9,}{r['events']:>9,}{share:>7.0%}{r['us_per_packet']:>8.2f}"
            f"{r['us_per_event']:>7.2f}  {r['decode']:>7.2f}{r['log']:>6.2f}{r['detect']:>7.2f}{r['learn']:>6.2f}"
            f"{r['inventory']:>7.2f}"
        )
    if rows:
        cheapest = min(rows, key=lambda r: r["us_per_event"])
        floor_s = base + sum(r["events"] for r in rows) * cheapest["us_per_event"] / 1e6
        line = (
            f"  every event at the cheapest protocol's cost ({cheapest['protocol']}, "
            f"{cheapest['us_per_event']:.2f} us): {n / floor_s:,.0f} packets/s"
        )
        if tshark_pps:
            line += f", {n / floor_s / tshark_pps:.2f}x tshark"
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: measure and print the table, or the JSON report with --json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pcap", type=Path)
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    report = measure(args.pcap, args.packets)
    print(json.dumps(report) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
