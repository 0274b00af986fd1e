"""`make demo`: a small live site on loopback, otwatch watching it live, and an intruder's chain played against it.

    python -m simulators.demo [--learn SECONDS] [--out DIR] [--web 127.0.0.1:9847] [--keep-running]

1. The site starts on 127.x addresses (simulators/live: pymodbus PLCs, bacpypes3 BMS controllers, mosquitto with
   cameras and a sensor, an HMI and a BMS front end; simulators/live_it: DNS, HTTP, SMB and LDAP servers).
2. `otwatch run --interface lo` starts with the site's zones, a read-only session with the site's broker, and a
   short settle time for the new-device detector (the demo has no days to learn).
3. The employee's ordinary traffic from the VPN address (logons as LAPTOP-JSMITH, name lookups, intranet pages) runs
   while the sensor learns, then the intruder plays the chain from the same address (logon from another machine,
   LDAP reconnaissance, Nmap probe, scans, UDP enumeration, reverse-DNS sweep, SMB brute force) and ends in OT with a
   Modbus write to a cooling PLC and a forged MQTT command to a camera.
4. Alerts are printed as they arrive; at the end the inventory by zone and category, and how to read /metrics.
Everything it started is stopped (by PID) when it ends, unless --keep-running (then on Ctrl-C). Needs root or
CAP_NET_RAW (live capture on `lo`); every packet stays on loopback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from simulators.live import LiveSite, small_plan
from simulators.live.procs import wait_until
from simulators.live_it.attacker import Attacker
from simulators.live_it.plan import ItPlan
from simulators.live_it.servers import ItServers, describe

ROOT = Path(__file__).resolve().parents[1]
VPN_ZONE = "127.8.0.0/24"
IT_ZONE = "127.20.0.0/16"


def demo_config(site: LiveSite, it: ItPlan, settle: float, learn: float) -> dict[str, Any]:
    """The sensor's config for the demo: the IT servers' zones and the live site's OT, BMS and IoT zones (as its
    zones.yml maps them onto loopback), its broker, a short settle time, and a baseline that learns for the
    demo's `learn` seconds instead of 14 days, then protects."""
    plan = site.plan
    ot = [z for z in plan.zones if z.domain in ("OT", "BMS", "IoT")]
    return {
        "zones": [
            {"name": "vpn-pool", "cidrs": [VPN_ZONE], "domain": "VPN", "purdue_level": 5},
            {"name": "corp-it", "cidrs": [IT_ZONE], "domain": "IT", "purdue_level": 4},
            *({"name": z.name, "cidrs": [z.cidr], "domain": z.domain, "purdue_level": z.purdue_level} for z in ot),
        ],
        "broker": {"host": plan.broker, "port": plan.broker_port, "client_id": "otwatch-demo"},
        "detectors": {"new_device": {"settle": settle}},
        "baseline": {"learning_days": learn / 86400.0},
    }


def http_get(url: str) -> str | None:
    """The body of a GET, or None while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return str(response.read().decode())
    except OSError:
        return None


class AlertTail(threading.Thread):
    """Prints each new row of alerts.jsonl as it arrives."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.rows: list[dict[str, Any]] = []
        self._done = threading.Event()

    def run(self) -> None:
        """Follow the file until stopped."""
        offset = 0
        while not self._done.wait(0.2):
            offset = self.poll(offset)
        self.poll(offset)

    def poll(self, offset: int) -> int:
        """Print the rows written since `offset`; the new offset."""
        if not self.path.exists():
            return offset
        with self.path.open("rb") as f:
            f.seek(offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        for line in data[:end].splitlines():
            row = json.loads(line)
            self.rows.append(row)
            stamp = time.strftime("%H:%M:%S", time.localtime(row["ts"]))
            print(f"  ALERT {stamp} {row['severity'].upper():8} {row['detector']}/{row['note']} "
                  f"[{', '.join(row['techniques'])}]\n        {row['explanation']}", flush=True)  # fmt: skip
        return offset + end

    def stop(self) -> None:
        """Stop following (after a last read)."""
        self._done.set()
        self.join(timeout=5)


def ot_steps(site: LiveSite, vpn: str) -> str:
    """The chain's end in OT: a Modbus write to a cooling PLC and a forged MQTT command to a camera, from `vpn`."""
    from paho.mqtt.client import CallbackAPIVersion, Client
    from pymodbus.client import ModbusTcpClient

    plc = site.plan.plcs[0]
    client = ModbusTcpClient(plc.address, port=plc.port, source_address=(vpn, 0))
    wrote = client.connect() and not client.write_register(4, 260, device_id=plc.units[0]).isError()
    client.close()
    camera = next(c for c in site.plan.mqtt if c.kind == "camera")
    mqtt = Client(CallbackAPIVersion.VERSION2, client_id="maint-tool")
    mqtt.connect(site.plan.broker, site.plan.broker_port, bind_address=vpn)
    mqtt.loop_start()
    mqtt.publish(f"{camera.base}/cmd", json.dumps({"cmd": "disable_stream"}), qos=1).wait_for_publish(5)
    mqtt.loop_stop()
    mqtt.disconnect()
    done = "done" if wrote else "refused"
    return (f"Modbus FC6 write of 26.0 degC to the chilled-water setpoint of {plc.name} ({plc.address}) {done}; "
            f"a forged MQTT command to {camera.client_id}")


def print_inventory(state: Path) -> None:
    """The inventory the sensor built, by zone and category, with vendors and models."""
    done = subprocess.run([sys.executable, "-m", "appliance", "inventory", "--state", str(state), "--json"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assets = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    by_zone: dict[str, Counter[str]] = {}
    for a in assets:
        by_zone.setdefault(a.get("zone") or "(no zone)", Counter())[a["category"]] += 1
    print("\n== inventory: assets by zone and category")
    for zone, counts in sorted(by_zone.items()):
        print(f"  {zone:12} " + ", ".join(f"{c} {n}" for c, n in sorted(counts.items())))
    print("\n== identified devices")
    for a in sorted(assets, key=lambda a: (a.get("zone") or "", a["ip"])):
        vendor = (a.get("vendor") or {}).get("value")
        if vendor or a.get("mqtt_client_ids") or a["category"] in ("MQTT broker",):
            model = (a.get("model") or a.get("product_name") or {}).get("value") or "-"
            firmware = (a.get("firmware") or {}).get("value") or "-"
            names = ",".join(a.get("mqtt_client_ids") or []) or "-"
            print(f"  {a['ip']:15} {a['category']:17} {vendor or '-':22} {model:22} {firmware:12} {names}")


def main(argv: list[str] | None = None) -> int:
    """Run the demo."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--learn", type=float, default=20.0, help="seconds of ordinary traffic before the chain")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "demo-live", help="state, logs and config")
    parser.add_argument("--web", default="127.0.0.1:9847", help="the sensor's /metrics address")
    parser.add_argument("--pause", type=float, default=3.0, help="seconds between the chain's steps")
    parser.add_argument("--keep-running", action="store_true", help="leave the site and sensor up until Ctrl-C")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("otwatch demo: live capture on lo needs root or CAP_NET_RAW: run `sudo make demo`", file=sys.stderr)
        return 2
    out: Path = args.out
    for sub in ("state", "logs"):  # a fresh run: the inventory and logs of an earlier demo are not this one's
        shutil.rmtree(out / sub, ignore_errors=True)
        (out / sub).mkdir(parents=True, exist_ok=True)
    it_plan = ItPlan()
    site, it = LiveSite(small_plan()), ItServers(it_plan)
    sensor: subprocess.Popen[str] | None = None
    tail = AlertTail(out / "logs" / "alerts.jsonl")
    try:
        print("== starting the site on loopback (PLCs, BMS controllers, broker and cameras, IT servers)")
        site.start()
        it.start()
        for line in [*site.describe(), *describe(it_plan)]:
            print("  " + line)
        config = out / "otwatch.yml"
        sensor_config = demo_config(site, it_plan, settle=args.learn / 2, learn=args.learn)
        config.write_text(yaml.safe_dump(sensor_config, sort_keys=False))
        print(f"== starting the sensor: otwatch run --interface lo --config {config}")
        sensor = subprocess.Popen(
            [sys.executable, "-m", "appliance", "run", "--interface", "lo", "--config", str(config), "--state",
             str(out / "state"), "--log-dir", str(out / "logs"), "--web.listen-address", args.web],
            cwd=ROOT, text=True,
        )  # fmt: skip
        wait_until(lambda: http_get(f"http://{args.web}/-/ready") is not None, "the sensor's /-/ready", 30.0)
        tail.start()
        print(f"== the sensor learns the site for {args.learn:g} s (the employee works from the VPN as usual)")
        attacker = Attacker(it_plan, say=lambda text: print("  " + text, flush=True))
        attacker.learn(seconds=args.learn)
        print("== the intruder, on the employee's VPN address from another machine:")
        attacker.play(pause=args.pause, ot_step=lambda: ot_steps(site, it_plan.vpn))
        time.sleep(8)  # the last unanswered probes are judged 5 s after they were sent
        print(f"\n== metrics: curl http://{args.web}/metrics | grep -E 'otwatch_(alerts|assets|asset_info)'")
        if args.keep_running:
            print("== running: the site and the sensor stay up (Ctrl-C to stop)")
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
        return 0
    finally:
        if sensor is not None and sensor.poll() is None:
            sensor.send_signal(signal.SIGTERM)
            sensor.wait(timeout=30)
        if tail.is_alive():
            tail.stop()
        it.stop()
        site.stop()
        if sensor is not None:
            print_inventory(out / "state")
            print(f"\n== {len(tail.rows)} alerts; logs in {out / 'logs'}; everything started was stopped")


if __name__ == "__main__":
    raise SystemExit(main())
