"""`make bench`: otwatch against tshark and the raw readers on the seeded mixed capture, on one core.

Generates (or reuses) bench-data/mixed-<N>-<seed>.pcap, then runs every measurement in its own child process
(tests/bench/children.py), pinned with `taskset -c CPU` when available, `--repeat` times: median packets/s,
and the highest peak RSS from os.wait4's rusage. Besides the whole appliance, `otwatch replay` runs decode only
(detectors and baseline switched off in its configuration) with Modbus, Modbus and BACnet, and every decoder: the
state the 3x target was first set in, and what each decoder adds to it. Prints a table and the checks:
otwatch/tshark >= 3x for the whole appliance and for the Modbus + BACnet decode-only replay, otwatch peak RSS
<= 300 MiB, and otwatch/raw read for information; then where the replay's time goes, per protocol and
stage, on the first --shares-packets packets (tests/bench/shares.py, also pinned). Exits 1 if a check fails,
0 otherwise (a missing or failing otwatch is reported, not failed). Not collected by pytest: run it as a script.

    python tests/bench/run_bench.py [--packets N] [--seed S] [--repeat R] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
for _path in (str(REPO), str(Path(__file__).resolve().parent)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from children import (  # noqa: E402
    Measure,
    measure_command,
    measure_otwatch,
    measure_raw_python,
    pin_prefix,
    run_child,
    warm_cache,
)
from shares import render as render_shares  # noqa: E402

from simulators.mixed_capture import GENERATOR_VERSION, write_mixed_capture  # noqa: E402

TSHARK_SPEEDUP_TARGET = 3.0
# `otwatch replay` with parts switched off by its configuration: decoding, logs and inventory only (the state the
# 3x target was first measured in), with the named decoders; key -> (row name, protocols)
DECODE_ONLY = {
    "decode-modbus": ("otwatch replay, decode only: Modbus", ["modbus"]),
    "decode-modbus-bacnet": ("otwatch replay, decode only: Modbus + BACnet", ["modbus", "bacnet"]),
    "decode-all": ("otwatch replay, decode only: all decoders", None),
}
BACNET_KEY = "decode-modbus-bacnet"  # the configuration that shows what the BACnet decoder costs against the target
RSS_TARGET_MIB = 300.0
MODBUS_FIELDS = (
    "frame.number",
    "ip.src",
    "ip.dst",
    "mbtcp.trans_id",
    "mbtcp.unit_id",
    "modbus.func_code",
    "modbus.reference_num",
    "modbus.word_cnt",
    "modbus.exception_code",
)


def ensure_capture(data_dir: Path, packets: int, seed: int) -> tuple[Path, dict[str, Any], bool]:
    """The bench capture for (packets, seed), generated unless an up-to-date one is there; True if reused."""
    data_dir.mkdir(parents=True, exist_ok=True)
    pcap = data_dir / f"mixed-{packets}-{seed}.pcap"
    meta = pcap.with_suffix(".json")
    if pcap.exists() and meta.exists():
        try:
            summary = json.loads(meta.read_text())
        except ValueError:
            summary = {}
        if (
            summary.get("generator_version") == GENERATOR_VERSION
            and summary.get("bytes") == pcap.stat().st_size
        ):
            return pcap, summary, True
    summary = write_mixed_capture(pcap, packets=packets, seed=seed)
    meta.write_text(json.dumps(summary, indent=2) + "\n")
    return pcap, summary, False


def decode_only_config(protocols: list[str] | None) -> str:
    """The YAML of a decode-only replay: no detectors, no baseline, the named decoders (None: all)."""
    text = "detectors: {enabled: false}\nbaseline: {enabled: false}\n"
    return text if protocols is None else f"protocols: [{', '.join(protocols)}]\n" + text


def checks(
    raw: Measure, tshark: Measure, otwatch: Measure, with_bacnet: Measure | None = None
) -> list[dict[str, Any]]:
    """The PASS/FAIL lines: speed-up over tshark (the whole appliance, and decode only with Modbus and BACnet when
    measured), memory, and the share of the raw read rate (information)."""
    ot, ts, rr, mem = otwatch.pps(), tshark.pps(), raw.pps(), otwatch.peak_mib()
    why = f"n/a (otwatch {otwatch.status})" if ot is None else ""
    rows: list[dict[str, Any]] = []
    if ot is None or ts is None:
        rows.append(
            {
                "check": "otwatch / tshark fields",
                "value": None,
                "target": f">= {TSHARK_SPEEDUP_TARGET}x",
                "result": why or f"n/a (tshark {tshark.status})",
            }
        )
    else:
        ratio = ot / ts
        rows.append(
            {
                "check": "otwatch / tshark fields",
                "value": ratio,
                "target": f">= {TSHARK_SPEEDUP_TARGET}x",
                "result": "PASS" if ratio >= TSHARK_SPEEDUP_TARGET else "FAIL",
            }
        )
    if with_bacnet is not None and with_bacnet.status != "skipped":
        wb = with_bacnet.pps()
        rows.append(
            {
                "check": "Modbus+BACnet decode / tshark",
                "value": wb / ts if wb and ts else None,
                "target": f">= {TSHARK_SPEEDUP_TARGET}x",
                "result": (("PASS" if wb / ts >= TSHARK_SPEEDUP_TARGET else "FAIL") if wb and ts
                           else f"n/a ({with_bacnet.status if not wb else tshark.status})"),
            }
        )  # fmt: skip
    rows.append(
        {
            "check": "otwatch / raw read",
            "value": (ot / rr) if ot and rr else None,
            "target": "-",
            "result": "info" if ot and rr else (why or f"n/a (raw read {raw.status})"),
        }
    )
    rows.append(
        {
            "check": "otwatch peak RSS (MiB)",
            "value": mem,
            "target": f"<= {RSS_TARGET_MIB:.0f}",
            "result": why or ("PASS" if mem is not None and mem <= RSS_TARGET_MIB else "FAIL"),
        }
    )
    return rows


def measure_shares(pcap: Path, packets: int, prefix: list[str], env: dict[str, str]) -> dict[str, Any] | str:
    """The per-protocol, per-stage table of tests/bench/shares.py, run pinned in a child; or why it failed."""
    script = Path(__file__).resolve().parent / "shares.py"
    child = run_child([sys.executable, str(script), str(pcap), "--packets", str(packets), "--json"], prefix, env)
    if child.returncode != 0:
        last = child.stderr.strip().splitlines()[-1:]
        return f"rc={child.returncode}: {last[0] if last else 'no message'}"
    try:
        report: dict[str, Any] = json.loads(child.stdout)
    except ValueError as exc:
        return f"unreadable output: {exc}"
    return report


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render(
    capture: dict[str, Any], measures: list[Measure], rows: list[dict[str, Any]], pin: str, repeat: int
) -> str:
    """The human-readable report."""
    lines = [
        f"capture  {capture['path']}: {capture['packets']:,} packets, {capture['bytes'] / 1e6:.1f} MB, "
        f"{capture['hosts']} hosts ({capture['origin']})",
        f"runs     one core: {pin}; median of {repeat} run(s); peak RSS = max over runs",
        "",
        f"{'measurement':<48} {'packets/s':>12} {'x tshark':>9} {'median s':>9} {'peak RSS MiB':>13}  note",
    ]
    tshark = next((m.pps() for m in measures if m.key == "tshark"), None)
    for m in measures:
        pps = m.pps()
        ours = m.key == "otwatch" or m.key in DECODE_ONLY
        ratio = pps / tshark if pps and tshark and ours else None
        med = statistics.median(m.runs) if m.runs and m.status == "ok" else None
        status = "" if m.status == "ok" else f"[{m.status.upper()}] "
        lines.append(
            f"{m.name:<48} {_fmt(pps, ',.0f'):>12} {_fmt(ratio, '.2f'):>9} {_fmt(med, '.3f'):>9} "
            f"{_fmt(m.peak_mib(), '.1f'):>13}  {status}{m.note}"
        )
    lines += ["", f"{'check':<30} {'value':>8} {'target':>10}  result"]
    for row in rows:
        lines.append(
            f"{row['check']:<30} {_fmt(row['value'], '.2f'):>8} {row['target']:>10}  {row['result']}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line of the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median); default 3")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also save the figures as JSON")
    parser.add_argument("--cpu", type=int, default=0, help="core to pin children to; -1: do not pin")
    parser.add_argument("--data-dir", type=Path, default=REPO / "bench-data", help="where captures are kept")
    parser.add_argument(
        "--shares-packets", type=int, default=200_000, help="packets of the capture the shares table uses"
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=("raw", "tcpdump", "tshark", "otwatch", "decode", "shares"),
        help="leave a measurement out (repeatable; decode: the decode-only replays)",
    )
    args = parser.parse_args(argv)
    if args.packets <= 0 or args.repeat <= 0:
        parser.error("--packets and --repeat must be positive")

    started = time.perf_counter()
    pcap, capture, reused = ensure_capture(args.data_dir, args.packets, args.seed)
    capture = dict(
        capture,
        path=str(pcap),
        origin="reused" if reused else f"generated in {time.perf_counter() - started:.1f} s",
    )
    n = args.packets
    warm_cache(pcap)
    prefix, pin = pin_prefix(None if args.cpu < 0 else args.cpu)
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    )

    def skipped(name: str, key: str) -> Measure:
        return Measure(key, name, n, status="skipped", note="--skip " + ("decode" if key in DECODE_ONLY else key))

    tshark_argv = ["tshark", "-r", str(pcap), "-T", "fields"]
    for name in MODBUS_FIELDS:
        tshark_argv += ["-e", name]
    plan: list[tuple[str, str, Callable[[], Measure]]] = [
        ("raw", "raw read: Python", lambda: measure_raw_python(pcap, n, 1, prefix, env)),
        (
            "tcpdump",
            "raw read: tcpdump -r F -w /dev/null",
            lambda: measure_command(
                "tcpdump", "raw read: tcpdump -r F -w /dev/null", ["tcpdump", "-r", str(pcap), "-w", "/dev/null"],
                n, 1, prefix,
            ),
        ),
        (
            "tshark",
            "tshark -T fields (Modbus fields)",
            lambda: measure_command("tshark", "tshark -T fields (Modbus fields)", tshark_argv, n, 1, prefix),
        ),
        ("otwatch", "otwatch replay", lambda: measure_otwatch(pcap, n, 1, prefix, env)),
    ]  # fmt: skip
    for key, (name, protocols) in DECODE_ONLY.items():
        config = decode_only_config(protocols)
        plan.append((key, name, partial(measure_otwatch, pcap, n, 1, prefix, env, key=key, name=name, config=config)))
    # Rounds, not blocks: each round runs every measurement once, so a slow spell of this shared machine
    # weighs on all of them alike and the ratios (medians over rounds) stay fair.
    results: dict[str, Measure] = {}
    for _ in range(args.repeat):
        for key, name, measure in plan:
            if key in args.skip or (key in DECODE_ONLY and "decode" in args.skip):
                results[key] = skipped(name, key)
                continue
            got = measure()
            kept = results.get(key)
            if kept is None or kept.status != "ok":
                results[key] = got
            elif got.status == "ok":
                kept.runs.extend(got.runs)
                kept.rss_kib.extend(got.rss_kib)
            else:
                results[key] = got
    raw, tshark, otwatch = (results[key] for key in ("raw", "tshark", "otwatch"))
    measures = [results[key] for key, _, _ in plan]
    rows = checks(raw, tshark, otwatch, results[BACNET_KEY])
    print(render(capture, measures, rows, pin, args.repeat))
    shares = None if "shares" in args.skip else measure_shares(pcap, args.shares_packets, prefix, env)
    if isinstance(shares, dict):
        print("\n" + render_shares(shares, tshark.pps()))
    elif shares is not None:
        print(f"\nwhere the time goes: n/a ({shares})")
    if args.json is not None:
        report = {
            "capture": capture,
            "pinning": pin,
            "repeat": args.repeat,
            "measurements": {m.key: dict(m.as_dict(), name=m.name) for m in measures},
            "checks": rows,
            "shares": shares,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if any(row["result"] == "FAIL" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
