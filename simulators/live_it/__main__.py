"""`python -m simulators.live_it [--learn-seconds N] [--pause S]`: start the IT servers on loopback, play the
employee's benign history for N seconds, then the VPN intrusion chain step by step, print what the servers answered,
and stop everything (also on SIGTERM or Ctrl-C)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType

from simulators.live_it.attacker import Attacker
from simulators.live_it.plan import ItPlan
from simulators.live_it.servers import ItServers, describe


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m simulators.live_it", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--learn-seconds", type=float, default=10.0, help="benign history first (default 10)")
    parser.add_argument("--pause", type=float, default=3.0, help="seconds between the chain's steps (default 3)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    plan = ItPlan()
    servers = ItServers(plan, args.seed)
    started = time.monotonic()
    servers.start()
    try:
        print(f"IT servers up in {time.monotonic() - started:.2f} s:")
        for line in describe(plan):
            print(f"  {line}")
        attacker = Attacker(plan, args.seed, say=lambda text: print(text, flush=True))
        print(f"learning: LAPTOP-JSMITH's ordinary traffic from {plan.vpn} for {args.learn_seconds:.0f} s", flush=True)
        rounds = attacker.learn(args.learn_seconds)
        print(f"learned: {rounds} rounds of logons, PTR lookups and browsing; the intrusion starts", flush=True)
        attacker.play(args.pause)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        servers.stop()
    print("what the servers answered:")
    for what, n in sorted(servers.tally.items()):
        print(f"  {what:<28} {n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
