"""The DHCP decoder through the FlowTable against tshark 4.0.17, message by message, on the seeded scenario."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from appliance.capture.dissect import Dissector
from appliance.capture.pcapfile import PcapReader
from appliance.flows import FlowTable
from protocols.base import ProtocolEvent
from protocols.dhcp import DhcpDecoder
from simulators.itgen.dns_http import write_pcap

FIELDS = ("frame.number", "dhcp.type", "dhcp.id", "dhcp.hw.mac_addr", "dhcp.option.dhcp", "dhcp.option.hostname",
          "dhcp.option.vendor_class_id", "dhcp.option.requested_ip_address", "dhcp.option.ip_address_lease_time",
          "dhcp.option.dhcp_server_id", "dhcp.ip.your", "dhcp.ip.client", "dhcp.option.request_list_item",
          "dhcp.fqdn.name", "dhcp.option.router", "dhcp.option.domain_name_server", "dhcp.option.domain_name")


def test_scenario_matches_tshark(tmp_path: Path) -> None:
    assert shutil.which("tshark"), "tshark is missing: `make test` installs it (Debian package tshark)"
    pcap = tmp_path / "dns_http.pcap"
    write_pcap(pcap, seed=7)
    by_frame: dict[int, list[ProtocolEvent]] = {}
    frame = 0
    table = FlowTable([DhcpDecoder], lambda ev: by_frame.setdefault(frame, []).append(ev), lambda flow: None)
    dissector = Dissector()
    with PcapReader(pcap) as reader:
        for frame, (linktype, ts, data, wire_len) in enumerate(reader, 1):  # noqa: B007 (the lambda reads it)
            pkt = dissector.dissect(linktype, ts, data, wire_len)
            if pkt is not None:
                table.process(pkt)
    table.flush()
    cmd = ["tshark", "-r", str(pcap), "-Y", "dhcp", "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a",
           "-E", "aggregator=,"]
    for name in FIELDS:
        cmd += ["-e", name]
    lines = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()
    compared = matched = 0
    diffs = []
    for line in lines:
        row = dict(zip(FIELDS, line.split("\t"), strict=True))
        (ev,) = by_frame[int(row["frame.number"])]
        f = ev.fields
        opt = {k: v or None for k, v in row.items()}
        lease = opt["dhcp.option.ip_address_lease_time"]
        theirs = (int(row["dhcp.type"]), int(row["dhcp.id"], 16), row["dhcp.hw.mac_addr"].split(",")[0],
                  int(row["dhcp.option.dhcp"]), opt["dhcp.option.hostname"], opt["dhcp.option.vendor_class_id"],
                  opt["dhcp.option.requested_ip_address"], float(lease) if lease else None,
                  opt["dhcp.option.dhcp_server_id"], row["dhcp.ip.your"], row["dhcp.ip.client"],
                  opt["dhcp.option.request_list_item"], opt["dhcp.fqdn.name"], opt["dhcp.option.router"],
                  opt["dhcp.option.domain_name_server"], opt["dhcp.option.domain_name"])
        plist = f.get("param_list")
        mine = (1 if ev.kind == "request" else 2, f["trans_id"], f["mac"], f["msg_type"], f.get("host_name"),
                f.get("vendor_class"), f.get("requested_addr"), f.get("lease_time"), f.get("server_id"), f["yiaddr"],
                f["client_addr"], ",".join(map(str, plist)) if plist else None, f.get("client_fqdn"),
                ",".join(f["routers"]) if "routers" in f else None,
                ",".join(f["dns_servers"]) if "dns_servers" in f else None, f.get("domain"))
        compared += 1
        if mine == theirs:
            matched += 1
        else:
            diffs.append((mine, theirs))
    assert diffs == []
    assert (compared, matched) == (6, 6)
