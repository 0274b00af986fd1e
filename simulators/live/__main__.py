"""`python -m simulators.live [--seconds N]`: run the live site on loopback for N seconds, print what runs where, then
the writes and commands the devices received (by sender) and how long start and stop took."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections import Counter

from simulators.live.plan import small_plan
from simulators.live.site import LiveSite


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m simulators.live", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to run (default 30)")
    parser.add_argument("--plcs", type=int, default=3)
    parser.add_argument("--bms", type=int, default=3)
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--sensors", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the work folder (status files, logs)")
    args = parser.parse_args(argv)
    plan = small_plan(args.plcs, args.bms, args.cameras, args.sensors)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_a: done.set())
    site = LiveSite(plan, keep=args.keep)
    with site:
        print(f"live site up in {site.start_seconds:.1f} s (work folder {site.workdir}):")
        for line in site.describe():
            print(f"  {line}")
        sys.stdout.flush()
        done.wait(args.seconds)
    by_sender = Counter((w.protocol, w.sender) for w in site.writes())
    print(f"live site down in {site.stop_seconds:.1f} s; writes and commands received, by sender:")
    for (protocol, sender), count in sorted(by_sender.items()):
        who = plan.clients.get(sender, "NOT A SITE CLIENT")
        print(f"  {protocol:<7} {sender:<15} {who:<14} {count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
