"""MQTT golden tests against Arkime: its expected session documents (arkime/mqtt_big.test, arkime/mqtt_synthetic.test)
compared, session by session and field by field, with what our logs of the same captures say.

Arkime's parser (capture/parsers/mqtt.c) reads each direction of a session classified by a first CONNECT and adds:
`mqtt.type` for every whole packet, from a CONNECT `mqtt.version` (3.1, 3.1.1, 5.0), `mqtt.clientId` (when not
empty), `mqtt.flags` (hasWill, willRetain, cleanSession, hasPassword), the will QoS to `mqtt.qos`, `mqtt.willTopic`
and the user name, lower-cased, to `user`; from a PUBLISH its topic and QoS; from a SUBSCRIBE or UNSUBSCRIBE its topic
filters; from a CONNACK its return code (`mqtt.connackCode`). The session's `source`/`destination` packet counts, its
`client`/`server` payload bytes and its `source`/`destination` bytes (frames: IP bytes and the 14-byte Ethernet
header of each packet, none on raw-IP captures) come from the same traffic as our conn.jsonl.

Each Arkime session is matched with our conn.jsonl row of the same endpoints; the fields above are computed from
our mqtt.jsonl rows of that connection. Agreement (fields compared, over all sessions of the capture), asserted by
`test_agreement_table`:

| capture | sessions | fields | matched | differ |
|---|---|---|---|---|
| arkime/mqtt_big.pcap | 1 | 15 | 15 | 0 |
| arkime/mqtt_synthetic.pcap | 7 | 105 | 103 | 2 |

The two differing fields (ARKIME_DISAGREES) are one PUBLISH with an 8190-byte topic.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from tests.golden.conftest import TRACES, Replay

ReplayFn = Callable[[str], Replay]
Row = dict[str, Any]
CAPTURES = ("arkime/mqtt_big.pcap", "arkime/mqtt_synthetic.pcap")
FIELDS = ("clientId", "version", "type", "topic", "qos", "flags", "willTopic", "user", "connackCode",
          "source.packets", "destination.packets", "client.bytes", "server.bytes", "source.bytes",
          "destination.bytes")  # fmt: skip

# (capture, client port) -> {field: (Arkime's, ours)}. Frames 60 and 62 of mqtt_synthetic.pcap (192.168.1.61:55557)
# are one PUBLISH of 8195 bytes, QoS 0, whose topic is `oversize/` and 8181 `t` (tshark: "Publish Message
# [oversize/ttt...]", 8190-byte topic, empty payload). Arkime records the PUBLISH type but neither its topic nor its
# QoS (its parser gives up on it); we decode both.
ARKIME_DISAGREES: dict[tuple[str, int], dict[str, tuple[Any, Any]]] = {
    ("arkime/mqtt_synthetic.pcap", 55557): {
        "topic": ([], ["oversize/" + "t" * 8181]),
        "qos": ([], [0]),
    },
}


def _arkime(body: dict[str, Any]) -> dict[str, Any]:
    """Arkime's session as comparable values (sorted lists), checking its *Cnt fields on the way."""
    m = body.get("mqtt", {})
    out: dict[str, Any] = {}
    for name in FIELDS:
        head, _, tail = name.partition(".")
        if tail:
            out[name] = body[head][tail]
            continue
        values = body.get("user", []) if name == "user" else m.get(name, [])
        assert m.get(f"{name}Cnt", len(values)) == len(values), name
        out[name] = sorted(int(v) for v in values) if name in ("qos", "connackCode") else sorted(values)
    return out


def _ours(rows: list[Row], conn: Row) -> dict[str, Any]:
    """What Arkime would record for one connection, from our mqtt.jsonl rows and conn.jsonl row."""
    messages = [r for r in rows if r["kind"] not in ("weird", "notice")]
    connects = [r for r in messages if r["op"] == "connect"]
    flags: set[str] = set()
    qos: set[int] = set()
    for c in connects:
        if "will_topic" in c:
            flags.add("hasWill")
            qos.add(c["will_qos"])
            if c["will_retain"]:
                flags.add("willRetain")
        flags |= {"cleanSession"} if c["clean_session"] else set()
        flags |= {"hasPassword"} if c["password_sent"] else set()
    topics = {r["topic"] for r in messages if r["op"] == "publish"}
    topics |= {t for r in messages if r["op"] in ("subscribe", "unsubscribe") for t in r["topics"]}
    qos |= {r["qos"] for r in messages if r["op"] == "publish"}
    l2 = 14 if "orig_l2_addr" in conn or "resp_l2_addr" in conn else 0  # Ethernet frames (our conn names MACs)
    return {
        "clientId": sorted(c["client_id"] for c in connects if c.get("client_id")),
        "version": sorted({c["proto_version"] for c in connects}),
        "type": sorted({r["op"].upper() for r in messages}),
        "topic": sorted(t for t in topics if t),
        "qos": sorted(qos),
        "flags": sorted(flags),
        "willTopic": sorted(c["will_topic"] for c in connects if c.get("will_topic")),
        "user": sorted({c["username"].lower() for c in connects if c.get("username")}),
        "connackCode": sorted({r["return_code"] for r in messages if r["op"] == "connack"}),
        "source.packets": conn["orig_pkts"],
        "destination.packets": conn["resp_pkts"],
        "client.bytes": conn["orig_bytes"],
        "server.bytes": conn["resp_bytes"],
        "source.bytes": conn["orig_ip_bytes"] + l2 * conn["orig_pkts"],
        "destination.bytes": conn["resp_ip_bytes"] + l2 * conn["resp_pkts"],
    }


Compared = list[tuple[int, dict[str, Any], dict[str, Any]]]


def compare(replay: ReplayFn, capture: str) -> Compared:
    """(client port, Arkime's, ours) for every session of a capture; every connection of ours is one of them."""
    result = replay(capture)
    name = capture.rpartition("/")[2].removesuffix(".pcap")
    sessions = [s["body"] for s in json.loads((TRACES / "arkime" / f"{name}.test").read_text())["sessions3"]]
    conns = {(c["id.orig_h"], c["id.orig_p"], c["id.resp_h"], c["id.resp_p"]): c for c in result.rows("conn")}
    rows: dict[str, list[Row]] = defaultdict(list)
    for r in result.rows("mqtt"):
        rows[r["uid"]].append(r)
    out: Compared = []
    for body in sessions:
        src, dst = body["source"], body["destination"]
        conn = conns.pop((src["ip"], src["port"], dst["ip"], dst["port"]))
        assert conn["service"] == "mqtt" and body["protocol"] == ["mqtt", "tcp"]
        out.append((src["port"], _arkime(body), _ours(rows[conn["uid"]], conn)))
    assert conns == {}  # no connection of ours that Arkime has no session for
    return out


def _differ(capture: str, compared: Compared) -> dict[tuple[str, int], dict[str, tuple[Any, Any]]]:
    found = {}
    for port, theirs, ours in compared:
        diff = {k: (theirs[k], ours[k]) for k in FIELDS if theirs[k] != ours[k]}
        if diff:
            found[(capture, port)] = diff
    return found


def test_arkime_sessions_match_field_by_field(replay: ReplayFn) -> None:
    """Every field of every Arkime session equals ours, but for the documented disagreements."""
    found = {}
    for capture in CAPTURES:
        found.update(_differ(capture, compare(replay, capture)))
    assert found == ARKIME_DISAGREES


def test_big_session_covers_every_packet_type_but_auth(replay: ReplayFn) -> None:
    """mqtt_big holds 14 packet types and PUBLISH payloads of up to 15000 bytes, split over many segments."""
    rows = replay("arkime/mqtt_big.pcap").rows("mqtt")
    assert len({r["op"] for r in rows if r["kind"] != "weird"}) == 14
    assert max(r["payload_len"] for r in rows if r["op"] == "publish") == 15000
    assert {r["payload_type"] for r in rows if r["op"] == "publish"} == {"text"}
    assert replay("arkime/mqtt_big.pcap").rows("weird") == []


def test_synthetic_sessions_without_broker_answers(replay: ReplayFn) -> None:
    """mqtt_synthetic's broker never answers: each client's first packet after its CONNECT is reported, once."""
    result = replay("arkime/mqtt_synthetic.pcap")
    weirds = [(w["id.orig_p"], w["name"]) for w in result.rows("weird")]
    assert weirds == [(p, "mqtt_unintroduced_message") for p in (54321, 44444, 33333, 22222, 11111, 55556, 55557)]
    types = {r["topic"]: r["payload_type"] for r in result.rows("mqtt") if r["op"] == "publish"}
    assert types["data/readings"] == "json" and types["sensors/temperature"] == "text"
    assert types["oversize/" + "t" * 8181] == "empty"


def test_agreement_table(replay: ReplayFn) -> None:
    """The module docstring's table is the measured one."""
    measured = {}
    for capture in CAPTURES:
        compared = compare(replay, capture)
        differ = sum(len(d) for d in _differ(capture, compared).values())
        fields = len(compared) * len(FIELDS)
        measured[capture] = (len(compared), fields, fields - differ, differ)
    table = {}
    for line in (__doc__ or "").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[1].isdigit():
            table[cells[0]] = tuple(int(c) for c in cells[1:])
    assert measured == table
