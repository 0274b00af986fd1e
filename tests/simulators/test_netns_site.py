"""The live site in network namespaces (simulators.live.netns), where broadcast matters: every BACnet controller of
the small profile and the BMS front end, each in its own namespace with the profile's own 10.60.1.x address, joined
by a bridge in a namespace of its own. A capture on the bridge (tcpdump in the bridge's namespace) sees the front
end's broadcast Who-Is and every controller's I-Am; `otwatch replay` of it lists every controller in its inventory;
stop() leaves no namespace, no link and no process; a failure during start tears everything down too.

Needs root (`ip netns`). Traffic stays inside the namespaces the test makes. Waits poll with deadlines.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from simulators.live import LiveSite, SiteError, plan_from_profile
from simulators.live.netns import namespaces, root_links
from simulators.live.plan import SitePlan
from simulators.site import load_profile
from tests.simulators.conftest import packets
from tests.test_run_live import wait_for

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "simulators" / "profiles" / "site-small.yml"
ONLY_BMS = {"plc": 0, "scada": 0, "camera": 0, "sensor": 0, "gateway": 0, "historian": 0, "vms": 0}


def bms_plan() -> SitePlan:
    """Every BACnet controller of the profile and its front end, nothing else, with the profile's addresses."""
    return plan_from_profile(load_profile(PROFILE), netns=True, counts=ONLY_BMS, bms_poll_seconds=1.0)


def gone(site: LiveSite, links_before: list[str]) -> None:
    """Nothing of the site is left: processes, namespaces, links."""
    assert site.left_behind == [] and site.killed == []
    assert [pid for pid in site.pids.values() if Path(f"/proc/{pid}").exists()] == []
    assert site.fabric is not None and [ns for ns in namespaces() if ns.startswith(site.fabric.tag)] == []
    assert root_links() == links_before


def test_a_broadcast_who_is_reaches_every_controller_through_the_bridge(tmp_path: Path) -> None:
    plan = bms_plan()
    links_before = root_links()
    pcap = tmp_path / "bridge.pcap"
    site = LiveSite(plan)
    site.start_devices()
    try:
        ns, iface = site.bridge
        assert ns in namespaces() and all(ip.startswith("10.60.1.") for ip in plan.devices)
        capture = site.spawn_in_bridge("tcpdump", ["tcpdump", "-i", iface, "-w", str(pcap), "-U", "--immediate-mode",
                                                   "-Z", "root", "udp port 47808"])  # fmt: skip
        wait_for(lambda: "listening on br0" in capture.err_path.read_text(), "tcpdump on the bridge", 15)
        site.start_clients()  # the front end's broadcast Who-Is, then its reads
        front_end = site.statuses()[plan.frontend_name]
        assert front_end["devices"] == {str(d.instance): d.address for d in plan.bms}

        def heard() -> dict[str, int]:
            return {d.name: site.statuses()[d.name]["senders"].get(plan.frontend, {}).get("who_is", 0)
                    for d in plan.bms}  # fmt: skip

        wait_for(lambda: all(heard().values()), "every controller to count the Who-Is", 10)  # one broadcast for all
        time.sleep(0.5)  # tcpdump writes each packet (-U): let the last ones land before it stops
        capture.terminate()
        assert capture.reap(time.monotonic() + 10)
    finally:
        site.stop()
    gone(site, links_before)

    who_is, i_am = [], set()
    for _t, f in packets(pcap):
        payload = f[42:]
        if payload[:2] == b"\x81\x0b" and payload[6:8] == b"\x10\x08":
            who_is.append((f[:6], ".".join(map(str, f[30:34]))))
        elif payload[:2] == b"\x81\x0a" and payload[6:8] == b"\x10\x00":
            i_am.add(int.from_bytes(payload[9:13], "big") & 0x3FFFFF)
    assert who_is and who_is[0] == (b"\xff" * 6, "10.60.1.255")  # a true Ethernet and IP broadcast
    assert i_am == {d.instance for d in plan.bms}

    config = tmp_path / "zones.yml"
    config.write_text(yaml.safe_dump(plan.zones_config()))
    done = subprocess.run([sys.executable, "-m", "appliance", "replay", str(pcap), "--config", str(config), "--out",
                           str(tmp_path / "logs"), "--state", str(tmp_path / "state"), "--no-progress"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    inventory = subprocess.run([sys.executable, "-m", "appliance", "inventory", "--state", str(tmp_path / "state"),
                                "--json"], capture_output=True, text=True, timeout=60, cwd=ROOT,
                               check=True)  # fmt: skip
    assets = {a["ip"]: a for a in map(json.loads, inventory.stdout.splitlines())}
    for d in plan.bms:
        asset = assets[d.address]
        assert (asset["category"], asset["bacnet_device_instance"], asset["zone"]) == ("BMS controller", d.instance,
                                                                                        "bms"), asset  # fmt: skip
        assert [asset[k]["value"] for k in ("vendor", "model", "firmware")] == [d.vendor_name, d.model, d.firmware]


def test_a_failure_during_start_leaves_no_namespace_link_or_process() -> None:
    good = bms_plan()
    broken = replace(good.bms[2], kind="boiler")  # simulators.live.bms_device refuses it: argparse exits 2
    plan = replace(good, bms=(*good.bms[:2], broken))
    links_before = root_links()
    site = LiveSite(plan)
    with pytest.raises(SiteError, match=rf"{broken.name} \(pid \d+\) exited with 2"):
        site.start()
    assert site.children == []
    gone(site, links_before)
