"""`python -m simulators.live [--profile P] [--seed S] [--max-per-kind N] [--seconds N] [--zones FILE] [--netns]`:
run the live site of a profile for N seconds (loopback, or network namespaces), print what runs where, then the
writes and commands the devices received (by sender) and how long start and stop took."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import threading
from collections import Counter
from pathlib import Path

from simulators.live.plan import DEFAULT_PROFILE
from simulators.live.procs import SiteError
from simulators.live.profile_plan import PlanError, plan_from_profile
from simulators.live.site import LiveSite
from simulators.site.profile import ProfileError, load_profile

COUNTS = ("plcs", "bms", "cameras", "sensors", "gateways", "pollers")
KIND_OF = {"plcs": "plc", "bms": "bacnet", "cameras": "camera", "sensors": "sensor", "gateways": "gateway",
           "pollers": "scada"}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m simulators.live", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--profile", type=Path, default=DEFAULT_PROFILE, help="site profile (default site-small)")
    parser.add_argument("--seed", type=int, default=1, help="the seed: the devices of `otwatch simulate --seed S`")
    parser.add_argument("--max-per-kind", type=int, default=None, help="at most N devices of each kind")
    for name in COUNTS:
        parser.add_argument(f"--{name}", type=int, default=None, help=f"exactly N {name}")
    parser.add_argument("--poll-seconds", type=float, default=None, help="the pollers' period (default: profile's)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to run (default 30)")
    parser.add_argument("--zones", type=Path, default=None, help="also write the site's zones (otwatch config) here")
    parser.add_argument("--netns", action="store_true", help="in network namespaces, with the profile's addresses")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (status files, logs)")
    args = parser.parse_args(argv)
    counts = {KIND_OF[name]: getattr(args, name) for name in COUNTS if getattr(args, name) is not None}
    try:
        plan = plan_from_profile(load_profile(args.profile), args.seed, max_per_kind=args.max_per_kind,
                                 counts=counts, netns=args.netns, poll_seconds=args.poll_seconds)  # fmt: skip
    except (ProfileError, PlanError) as exc:
        print(f"simulators.live: {exc}", file=sys.stderr)
        return 2
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_a: done.set())
    site = LiveSite(plan, keep=args.keep)
    try:
        with site:
            print(f"live site up in {site.start_seconds:.1f} s (work folder {site.workdir}):")
            for line in site.describe():
                print(f"  {line}")
            if args.zones is not None:
                shutil.copyfile(site.zones_file, args.zones)
                print(f"  zones for `otwatch run --config`: {args.zones}")
            sys.stdout.flush()
            done.wait(args.seconds)
    except SiteError as exc:
        print(f"simulators.live: {exc}", file=sys.stderr)
        return 1
    by_sender = Counter((w.protocol, w.sender) for w in site.writes())
    print(f"live site down in {site.stop_seconds:.1f} s; writes and commands received, by sender:")
    for (protocol, sender), count in sorted(by_sender.items()):
        who = plan.clients.get(sender, "NOT A SITE CLIENT")
        print(f"  {protocol:<7} {sender:<15} {who:<22} {count}")
    if site.left_behind:
        print(f"left behind: {site.left_behind}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
