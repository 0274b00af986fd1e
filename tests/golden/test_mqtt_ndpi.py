"""MQTT golden tests against nDPI: its flow results (ndpi/mqtt.pcap.out, ndpi/coap_mqtt.pcap.out) compared, flow by
flow, with our conn.jsonl of the same captures.

nDPI names a flow's protocol (`[proto: 222/MQTT]`) and counts its packets and bytes each way
(`[4 pkts/370 bytes <-> 4 pkts/756 bytes]`, the side it names first on the left). A flow is MQTT for nDPI exactly when
our conn.jsonl says service "mqtt"; the packet counts are equal; nDPI's bytes are captured frame bytes, ours IP
bytes: they differ by the link header of each frame (14 bytes of Ethernet, 18 with an 802.1Q tag: our conn row
carries `vlan`) and the Ethernet padding of frames shorter than 60 bytes (PADDING, from tshark). One CoAP flow is two
connections of ours (SPLIT: Zeek's 60 s UDP idle timeout, a 70 s gap): their counts are added up.

coap_mqtt.pcap holds MQTT on TCP/17501 (no port names it): one connection from its CONNECT, three picked up after it
(their first packets a PINGREQ/PINGRESP exchange or a PUBLISH from the broker), found by the decoder's probe at
their first PUBLISH (protocols/mqtt_sync.py `midstream`), as nDPI finds them; beside them CoAP and Dropbox on UDP.

Agreement (flows: nDPI's; items: protocol, packets and bytes each way, 5 per flow), asserted by
`test_agreement_table`:

| capture | flows | items | matched |
|---|---|---|---|
| ndpi/mqtt.pcap | 2 | 10 | 10 |
| ndpi/coap_mqtt.pcap | 16 | 80 | 80 |
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.golden.conftest import TRACES, Replay

ReplayFn = Callable[[str], Replay]
CAPTURES = ("ndpi/mqtt.pcap", "ndpi/coap_mqtt.pcap")
_FLOW = re.compile(
    r"^\s*\d+\s+(TCP|UDP)\s+\[?([\da-f.:]+?)\]?:(\d+)\s+(?:<->|->)\s+\[?([\da-f.:]+?)\]?:(\d+)\s+.*?"
    r"\[proto: [\d.]+/([^\]]+)\].*?\[(\d+) pkts/(\d+) bytes (?:<->|->) (\d+) pkts/(\d+) bytes\]"
)
# Ethernet padding (bytes) of each direction's short frames, by (capture, sender, sender port): the sum over the
# direction of tshark's frame.len - ip.len - 14. The frames from 192.168.56.1 carrying 40-46 IP bytes are padded to 60.
PADDING = {("ndpi/coap_mqtt.pcap", "192.168.56.1", port): pad
           for port, pad in ((53522, 76), (53523, 76), (53524, 66), (53528, 84))}  # fmt: skip

# nDPI keeps one flow where our FlowTable, with Zeek's 60 s UDP idle timeout, starts a second connection: CoAP between
# [bbbb::1]:46819 and [bbbb::3]:5683 (nDPI: 3 packets each way over 87.03 s, a 70 s gap, "IAT ... max 70376/70379"
# ms). Our two conn.jsonl rows of those endpoints are added up.
SPLIT = {("ndpi/coap_mqtt.pcap", ("bbbb::1", 46819, "bbbb::3", 5683))}
_COUNTS = ("orig_pkts", "resp_pkts", "orig_ip_bytes", "resp_ip_bytes")


def ndpi_flows(capture: str) -> list[tuple[str, ...]]:
    """nDPI's flow lines: (proto, a, a port, b, b port, protocol name, a pkts, a bytes, b pkts, b bytes)."""
    text = (TRACES / f"{capture}.out").read_text()
    return [m.groups() for line in text.splitlines() if (m := _FLOW.match(line))]


def compare(replay: ReplayFn, capture: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(nDPI's, ours) for every nDPI flow: protocol, packets and bytes each way; no connection of ours left over."""
    conns: dict[tuple[str, int, str, int], dict[str, Any]] = {}
    for c in replay(capture).rows("conn"):  # connections of the same endpoints merged (see SPLIT)
        key = (c["id.orig_h"], c["id.orig_p"], c["id.resp_h"], c["id.resp_p"])
        if key in conns:
            assert (capture, key) in SPLIT
            conns[key] = {**c, **{k: conns[key][k] + c[k] for k in _COUNTS}}
        else:
            conns[key] = c
    out = []
    for proto, a, ap, b, bp, name, a_pkts, a_bytes, b_pkts, b_bytes in ndpi_flows(capture):
        key = (a, int(ap), b, int(bp))
        conn = conns.pop(key, None)
        sides = ("orig", "resp")
        if conn is None:  # nDPI names the side it saw first; our originator may be the other
            conn = conns.pop((b, int(bp), a, int(ap)))
            sides = ("resp", "orig")
        assert conn["proto"] == proto.lower()
        l2 = 18 if "vlan" in conn else 14
        ours: dict[str, Any] = {"mqtt": conn.get("service") == "mqtt"}
        for side, (host, port) in zip(sides, ((a, int(ap)), (b, int(bp))), strict=True):
            pkts = conn[f"{side}_pkts"]
            ours[f"{host}:{port} pkts"] = pkts
            ours[f"{host}:{port} bytes"] = conn[f"{side}_ip_bytes"] + l2 * pkts + PADDING.get((capture, host, port), 0)
        theirs = {"mqtt": "MQTT" in name.split("."), f"{a}:{ap} pkts": int(a_pkts), f"{a}:{ap} bytes": int(a_bytes),
                  f"{b}:{bp} pkts": int(b_pkts), f"{b}:{bp} bytes": int(b_bytes)}  # fmt: skip
        out.append((theirs, ours))
    assert conns == {}, conns  # every connection of ours is one of nDPI's flows
    return out


def test_ndpi_flows_are_our_connections(replay: ReplayFn) -> None:
    """Each nDPI flow: MQTT exactly when our service is mqtt, and the same packets and bytes each way."""
    for capture in CAPTURES:
        for theirs, ours in compare(replay, capture):
            assert ours == theirs, capture


def test_midstream_flows_of_coap_mqtt_are_found_by_probing(replay: ReplayFn) -> None:
    """The three TCP/17501 flows picked up after their CONNECT are MQTT from their first PUBLISH on; the broker is
    the TCP/17501 side even where it sent the first packet seen (53524)."""
    result = replay("ndpi/coap_mqtt.pcap")
    mqtt = [c for c in result.rows("conn") if c.get("service") == "mqtt"]
    assert sorted(min(c["id.orig_p"], c["id.resp_p"]) for c in mqtt) == [17501] * 4
    rows = result.rows("mqtt")
    for port in (53522, 53523, 53524):
        first = next(r for r in rows if port in (r["id.orig_p"], r["id.resp_p"]))
        assert (first["op"], first["topic"], first["from_client"], first["src"]) == ("publish", "Bus17Cmd", False,
                                                                                     "192.168.56.101")  # fmt: skip
    weirds = sorted((w["id.resp_p"] if w["id.orig_p"] == 17501 else w["id.orig_p"], w["name"])
                    for w in result.rows("weird"))  # fmt: skip
    assert weirds == [(port, "mqtt_unintroduced_message") for port in (53522, 53523, 53524)]
    types = {r["topic"]: r["payload_type"] for r in rows if r["op"] == "publish"}
    assert types == {"Bus17Cmd": "json", "Bus17Info": "text"}


def test_agreement_table(replay: ReplayFn) -> None:
    """The module docstring's table is the measured one."""
    measured = {}
    for capture in CAPTURES:
        pairs = compare(replay, capture)
        items = sum(len(theirs) for theirs, _ in pairs)
        matched = sum(ours.get(k) == v for theirs, ours in pairs for k, v in theirs.items())
        measured[capture] = (len(pairs), items, matched)
    table = {}
    for line in (__doc__ or "").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1].isdigit():
            table[cells[0]] = tuple(int(c) for c in cells[1:])
    assert measured == table
