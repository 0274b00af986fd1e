"""BACnet golden tests against Arkime and nDPI: what each peer recorded for the same capture.

- Arkime (arkime/bacnet-stack-services.test, its expected session documents for bacnet-stack-services.pcap): per
  session, the sets `bacnet.function` (BVLC function), `bacnet.apduType`, `bacnet.service` (request services) and
  `bacnet.objectName`, and the session's packet count.
- nDPI (ndpi/bacnet.pcap.out): per flow, whether it is BACnet, and its packet counts.

Agreement (sessions or flows matched / the peer's / ours), asserted by `test_agreement_table`:

| capture | matched | peer | ours |
|---|---|---|---|
| arkime/bacnet-stack-services.pcap | 10 | 12 | 12 |
| ndpi/bacnet.pcap | 10 | 10 | 10 |

Arkime's "ours" counts our records (events and weirds) grouped by Arkime's sessions; nDPI's counts our
conn.jsonl connections with service "bacnet". Known disagreements, asserted: two I-Have sessions where Arkime's
object-name scan stops on a byte of the object identifier (`ARKIME_KNOWN`); and Arkime parses BACnet/IP only, so
the 26 BACnet/Ethernet (802.2 LLC) frames of the capture are 7 "corrupt-ether" sessions without a bacnet object
there, and 26 events of ours.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from tests.golden.conftest import TRACES, Replay

ReplayFn = Callable[[str], Replay]
Row = dict[str, Any]


def _agreement_table(doc: str) -> dict[str, tuple[int, int, int]]:
    """The capture -> (matched, peer, ours) rows of the table in this module's docstring."""
    table: dict[str, tuple[int, int, int]] = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1].isdigit():
            table[cells[0]] = (int(cells[1]), int(cells[2]), int(cells[3]))
    return table


AGREEMENT = _agreement_table(__doc__ or "")

# ---- Arkime -------------------------------------------------------------------------------------------------
# Arkime's parser (capture/parsers/bacnet.c) reads every datagram of a UDP session that its classifier accepted
# (BVLC type 0x81/0x82, a length within the datagram, function <= 0x0C). For each datagram it adds the BVLC
# function's name, then, unless the NPDU version is not 1 or the NPDU carries a network message or nothing after
# its header, the APDU type; the service name only for confirmed and unconfirmed requests (Arkime's tables name
# confirmed services 0-29 and unconfirmed 0-9); and for I-Am, I-Have, Who-Has and the ReadProperty(Multiple)
# complex ACK the first character string it finds scanning the service bytes. Its sessions are its own (packet
# time, its idle timeouts): each of ours is matched to the session with the same address pair whose first and last
# packet times (ms) enclose it.
ARKIME_CAPTURE = "arkime/bacnet-stack-services.pcap"
_ARKIME_FUNCTION = {
    "BVLC_Result": "result", "Write_Broadcast_Table": "write-bdt", "Read_Broadcast_Table": "read-bdt",
    "Read_Broadcast_Table_ACK": "read-bdt-ack", "Forwarded_NPDU": "forwarded-npdu",
    "Register_Foreign_Device": "register-foreign-device", "Read_Foreign_Device_Table": "read-fdt",
    "Read_Foreign_Device_Table_ACK": "read-fdt-ack", "Delete_Foreign_Device_Table_Entry": "delete-fdt-entry",
    "Distribute_Broadcast_to_Network": "distribute-broadcast", "Original_Unicast_NPDU": "original-unicast",
    "Original_Broadcast_NPDU": "original-broadcast", "Secure_BVLL": "secured-bvll",
}  # fmt: skip
_ARKIME_APDU = {
    "CONFIRMED_REQUEST": "confirmed-request", "UNCONFIRMED_REQUEST": "unconfirmed-request",
    "SIMPLE_ACK": "simple-ack", "COMPLEX_ACK": "complex-ack", "SEGMENT_ACK": "segment-ack", "ERROR_PDU": "error",
    "REJECT_PDU": "reject", "ABORT_PDU": "abort",
}  # fmt: skip
_ARKIME_SERVICE_MAX = {"CONFIRMED_REQUEST": 29, "UNCONFIRMED_REQUEST": 9}
_NAMED = frozenset({"i_am", "i_have", "who_has"})


# (session source, firstPacket ms) -> {field: (Arkime's, ours)}.
# Frames 4 and 7, 192.168.0.5 -> 192.168.0.13, I-Have device,61 / device,61 / "SYNERGY": the service bytes are
# `c4 02 00 00 3d c4 02 00 00 3d 75 08 00 53 59 4e 45 52 47 59` (tshark -x). Arkime's bacnet_parse_object_name scans
# byte by byte for a character-string tag and takes 0x3D, the low byte of instance 61, for context tag 7 with an
# extended length; the next byte (0xC4 = 196) exceeds what is left, so it returns without a name. tshark -V:
# "Object Name: SYNERGY" (application tag 7, 8 bytes, charset 0). The I-Have of device 123 (0x7B) in the first
# session does not trip the scan, and Arkime records its "SimpleServer".
ARKIME_KNOWN: dict[tuple[str, int], dict[str, tuple[Any, Any]]] = {
    ("192.168.0.5", 1159067138233): {"objectName": (set(), {"SYNERGY"})},
    ("192.168.0.5", 1159067316152): {"objectName": (set(), {"SYNERGY"})},
}


def _arkime_sessions() -> list[dict[str, Any]]:
    """The session bodies of Arkime's expected output for the capture."""
    text = (TRACES / "arkime" / "bacnet-stack-services.test").read_text()
    return [s["body"] for s in json.loads(text)["sessions3"]]


def _arkime_bacnet(body: dict[str, Any]) -> dict[str, Any]:
    """Arkime's bacnet object as sets, checking its *Cnt fields on the way, with the session's packet count."""
    b = body["bacnet"]
    out: dict[str, Any] = {"packets": body["network"]["packets"]}
    for name in ("function", "apduType", "service", "objectName"):
        values = set(b.get(name, []))
        assert b.get(f"{name}Cnt", 0) == len(values), name
        out[name] = values
    return out


def _first_string(row: Row) -> str | None:
    """The first character string of a ReadProperty(Multiple) ACK's values, as Arkime's scan would find it."""
    values = list(row.get("values") or [])
    for p in row.get("properties") or []:
        values += p.get("values") or []
    return next((v for v in values if isinstance(v, str)), None)


def _our_bacnet(rows: list[Row], weirds: list[Row]) -> dict[str, Any]:
    """What Arkime would record for one of its sessions, from our events and weirds in it."""
    names: set[str] = set()
    for r in rows:
        if r["op"] in _NAMED and r.get("object_name"):
            names.add(r["object_name"])
        if r["op"] in ("read_property", "read_property_multiple") and r.get("pdu_type") == "COMPLEX_ACK":
            first = _first_string(r)
            if first:
                names.add(first)
    return {
        "packets": len(rows) + len(weirds),  # one message per datagram in this capture (nothing segmented)
        # the weird datagrams (frames 1, 77, 79, 81, 83) are Original-Unicast-NPDU too (tshark), like their sessions
        "function": {_ARKIME_FUNCTION[r["bvlc_function"]] for r in rows},
        "apduType": {_ARKIME_APDU[r["pdu_type"]] for r in rows if r.get("pdu_type") in _ARKIME_APDU},
        "service": {
            r["op"].replace("_", "-")
            for r in rows
            if r.get("pdu_type") in _ARKIME_SERVICE_MAX and r["service_choice"] <= _ARKIME_SERVICE_MAX[r["pdu_type"]]
        },
        "objectName": names,
    }


def _in_session(body: dict[str, Any], r: Row) -> bool:
    pair = {(body["source"]["ip"], body["source"]["port"]), (body["destination"]["ip"], body["destination"]["port"])}
    ends = {(r["id.orig_h"], r["id.orig_p"]), (r["id.resp_h"], r["id.resp_p"])}
    return ends == pair and body["firstPacket"] <= int(r["ts"] * 1000) <= body["lastPacket"]


Pair = tuple[tuple[str, int], dict[str, Any], dict[str, Any]]


def _arkime_compare(replay: ReplayFn) -> list[Pair]:
    """(session, Arkime's, ours) for every Arkime session with a bacnet object; every IP record of ours is in one."""
    result = replay(ARKIME_CAPTURE)
    rows = [r for r in result.rows("bacnet") if r["proto"] == "udp"]
    weirds = [w for w in result.rows("weird") if w.get("source") == "bacnet"]
    pairs: list[Pair] = []
    placed = 0
    for body in _arkime_sessions():
        if "bacnet" not in body:
            continue
        mine = [r for r in rows if _in_session(body, r)]
        flagged = [w for w in weirds if _in_session(body, w)]
        placed += len(mine) + len(flagged)
        session = (body["source"]["ip"], body["firstPacket"])
        pairs.append((session, _arkime_bacnet(body), _our_bacnet(mine, flagged)))
    assert placed == len(rows) + len(weirds)
    return pairs


def test_arkime_bacnet_sessions_match(replay: ReplayFn) -> None:
    """Every Arkime session with a bacnet object has the same functions, APDU types, services, names and packets."""
    pairs = _arkime_compare(replay)
    assert len(pairs) == 12
    differ = {
        session: {k: (theirs[k], ours[k]) for k in theirs if theirs[k] != ours[k]}
        for session, theirs, ours in pairs
        if theirs != ours
    }
    assert differ == ARKIME_KNOWN


def test_arkime_sees_no_bacnet_ethernet(replay: ReplayFn) -> None:
    """Arkime's sessions without an IP address are "corrupt-ether": the 26 LLC frames we decode as BACnet."""
    sessions = [b for b in _arkime_sessions() if "bacnet" not in b]
    assert {tuple(b["protocol"]) for b in sessions} == {("corrupt-ether",)}
    assert {b["source"]["mac"][0] for b in sessions} == {"00:60:2d:00:15:d5"}
    llc = [r for r in replay(ARKIME_CAPTURE).rows("bacnet") if r["proto"] == "llc"]
    assert (len(sessions), sum(b["network"]["packets"] for b in sessions)) == (7, 26)
    assert len(llc) == 26 and {r["src"] for r in llc} == {"00:60:2d:00:15:d5"}


def test_arkime_names_come_from_who_has_and_i_have(replay: ReplayFn) -> None:
    """Arkime's names are our Who-Has and I-Have object names (a ReadProperty ACK here names nothing)."""
    rows = replay(ARKIME_CAPTURE).rows("bacnet")
    named = {(r["op"], r["object_name"]) for r in rows if r["proto"] == "udp" and r.get("object_name")}
    assert named == {("who_has", "SYNERGY"), ("i_have", "SYNERGY"), ("i_have", "SimpleServer")}
    acks = [r for r in rows if r.get("pdu_type") == "COMPLEX_ACK" and r["op"].startswith("read_property")]
    assert [_first_string(r) for r in acks] == [None]


# ---- nDPI ---------------------------------------------------------------------------------------------------
_NDPI_FLOW = re.compile(
    r"^\s*\d+\s+(TCP|UDP)\s+([\d.]+):(\d+)\s+(?:<->|->)\s+([\d.]+):(\d+)\s+\[proto: [\d.]+/([^\]]+)\]"
    r".*?\[(\d+) pkts/\d+ bytes (?:<->|->) (\d+) pkts/\d+ bytes\]"
)


def _ndpi_compare(replay: ReplayFn) -> tuple[int, int, int]:
    """(flows that agree, nDPI's flows, our connections) for ndpi/bacnet.pcap, asserting each flow agrees."""
    flows = [m.groups() for line in (TRACES / "ndpi" / "bacnet.pcap.out").read_text().splitlines()
             if (m := _NDPI_FLOW.match(line))]  # fmt: skip
    conns = {(c["id.orig_h"], c["id.orig_p"], c["id.resp_h"], c["id.resp_p"]): c
             for c in replay("ndpi/bacnet.pcap").rows("conn")}  # fmt: skip
    agree = 0
    for proto, a, ap, b, bp, name, a_pkts, b_pkts in flows:
        conn = conns.get((a, int(ap), b, int(bp)))
        if conn is None:  # nDPI names the client first; a flipped connection of ours has it as responder
            conn = conns[(b, int(bp), a, int(ap))]
            a_pkts, b_pkts = b_pkts, a_pkts
        assert conn["proto"] == proto.lower()
        assert (conn.get("service") == "bacnet") == ("BACnet" in name.split(".")), name
        assert (conn["orig_pkts"], conn["resp_pkts"]) == (int(a_pkts), int(b_pkts))
        agree += 1
    return agree, len(flows), sum(c.get("service") == "bacnet" for c in conns.values())


def test_ndpi_bacnet_flows_are_our_bacnet_connections(replay: ReplayFn) -> None:
    """A flow is BACnet for nDPI exactly when our conn.jsonl says service "bacnet"; packet counts agree."""
    agree, flows, ours = _ndpi_compare(replay)
    assert agree == flows == ours == 10
    assert len(replay("ndpi/bacnet.pcap").rows("conn")) == 10


def test_agreement_table(replay: ReplayFn) -> None:
    """The module docstring's figures are the measured ones."""
    pairs = _arkime_compare(replay)
    arkime = (sum(a == b for _, a, b in pairs), len(pairs), len(pairs))
    assert {ARKIME_CAPTURE: arkime, "ndpi/bacnet.pcap": _ndpi_compare(replay)} == AGREEMENT
