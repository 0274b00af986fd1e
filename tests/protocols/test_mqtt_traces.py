"""The MQTT decoder on real captures through the FlowTable: frame by frame against tshark, sessions against
Arkime's session documents, flows against nDPI's results."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from appliance.capture.dissect import Dissector
from appliance.capture.pcapfile import PcapReader
from appliance.flows import FlowTable
from appliance.model import Flow
from protocols.base import DecoderFactory, ProtocolEvent
from protocols.mqtt import MqttDecoder

TRACES = Path(__file__).resolve().parents[1] / "traces"
TSHARK = TRACES / "peers" / "tshark"
SURICATA = TRACES / "suricata" / "mqtt"


class Replay:
    """A capture replayed through a FlowTable that has only the given decoder: events by frame, conn records."""

    def __init__(self, path: Path, decoder: DecoderFactory = MqttDecoder) -> None:
        self.frames: dict[int, list[ProtocolEvent]] = defaultdict(list)
        self.flows: list[Flow] = []
        self.events: list[ProtocolEvent] = []
        frame = 0

        def on_event(ev: ProtocolEvent) -> None:
            self.frames[frame].append(ev)
            self.events.append(ev)

        table = FlowTable([decoder], on_event, self.flows.append)
        dissector = Dissector()
        with PcapReader(path) as reader:
            for frame, (linktype, ts, data, wire_len) in enumerate(reader, 1):  # noqa: B007 (on_event reads it)
                pkt = dissector.dissect(linktype, ts, data, wire_len)
                if pkt is not None:
                    table.process(pkt)
        frame = 0
        table.flush()
        assert table.decoder_errors == 0

    def messages(self) -> list[ProtocolEvent]:
        """The events of MQTT control packets (no weirds, no close-time notices)."""
        return [e for e in self.events if e.kind not in ("weird", "notice")]

    def weirds(self) -> list[str]:
        """The weird names, in order."""
        return [e.op for e in self.events if e.kind == "weird"]


def tshark_rows(dump: Path) -> dict[int, dict[str, str]]:
    """tshark's MQTT rows of a dump, by frame number."""
    with open(dump, newline="") as f:
        return {int(r["frame.number"]): r for r in csv.DictReader(f, delimiter="\t") if r["mqtt.msgtype"]}


CAPTURES = sorted(p.relative_to(TRACES).as_posix() for p in [
    *SURICATA.glob("*/*.pcap"), *TRACES.glob("arkime/mqtt_*.pcap"), TRACES / "ndpi" / "mqtt.pcap",
    TRACES / "ndpi" / "coap_mqtt.pcap"])
SOURCE = {"suricata/mqtt": "suricata-verify/tests", "arkime": "arkime/tests/pcap",
          "ndpi": "nDPI/tests/cfgs/default/pcap"}
# TCP/17501 flows of coap_mqtt.pcap picked up after their CONNECT: probe() names them MQTT at their first PUBLISH
# (frames 44-46); the PINGREQ/PINGRESP probed before it (frames 20, 21, 23, 24) are not decoded
PROBED_BEFORE = {("ndpi/coap_mqtt.pcap", frame) for frame in (20, 21, 23, 24)}
MIDSTREAM = {53522, 53523, 53524}


def dump_of(trace: str) -> Path:
    """The tshark dump made for a trace of the corpus."""
    folder, _, name = trace.rpartition("/")
    prefix = next(src for key, src in SOURCE.items() if folder.startswith(key))
    if folder.startswith("suricata/mqtt"):
        prefix += folder.removeprefix("suricata/mqtt")
    return TSHARK / prefix / f"{name}.tsv"


def _ids(ev: ProtocolEvent) -> list[str]:
    pid = ev.fields.get("packet_id")
    return [str(pid)] if pid is not None and ev.op != "subscribe" and ev.op != "unsubscribe" else []


@pytest.mark.parametrize("trace", CAPTURES)
def test_frames_agree_with_tshark(trace: str) -> None:
    replay = Replay(TRACES / trace)
    compared = 0
    for frame, row in tshark_rows(dump_of(trace)).items():
        ours = [e for e in replay.frames.get(frame, []) if e.kind not in ("weird", "notice")]
        if (trace, frame) in PROBED_BEFORE:
            assert ours == []
            continue
        types = [int(t) for t in row["mqtt.msgtype"].split(",")]
        assert [e.op for e in ours] == [_OPS[t] for t in types if t], frame
        if 0 in types:  # not a control packet: only its weird
            assert "mqtt_unassigned_msg_type" in [e.op for e in replay.frames[frame]]
        topics = [t for e in ours for t in ([e.fields["topic"]] if "topic" in e.fields and e.op == "publish"
                                            else e.fields.get("topics", []) if e.op.endswith("subscribe") else [])]
        assert ",".join(topics) == row["mqtt.topic"], frame
        if row["mqtt.clientid"]:
            assert [e.fields["client_id"] for e in ours if e.op == "connect"] == [row["mqtt.clientid"]], frame
        if row["mqtt.username"]:
            assert [e.fields["username"] for e in ours if e.op == "connect"] == [row["mqtt.username"]], frame
        if row["mqtt.ver"]:
            assert [e.fields["proto_level"] for e in ours if e.op == "connect"] == [int(row["mqtt.ver"])], frame
        if row["mqtt.conack.val"]:
            assert [e.fields["return_code"] for e in ours if e.op == "connack"] == [int(row["mqtt.conack.val"])]
        ids = [i for e in ours for i in _ids(e)] + [str(e.fields["packet_id"]) for e in ours
                                                     if e.op in ("subscribe", "unsubscribe")]
        assert sorted(ids) == sorted(x for x in row["mqtt.msgid"].split(",") if x), frame
        qos = [str(e.fields["qos"]) for e in ours if e.op == "publish"]
        assert qos == [q for q in row["mqtt.qos"].split(",") if q][: len(qos)], frame
        compared += 1
    assert compared >= 1


_OPS = {t: op for t, op in enumerate(
    ["", "connect", "connack", "publish", "puback", "pubrec", "pubrel", "pubcomp", "subscribe", "suback",
     "unsubscribe", "unsuback", "pingreq", "pingresp", "disconnect", "auth"])}  # fmt: skip


def arkime_sessions(name: str) -> dict[int, dict]:
    """Arkime's mqtt documents by client port."""
    doc = json.loads((TRACES / "arkime" / f"{name}.test").read_text())
    return {s["body"]["source"]["port"]: s["body"] for s in doc["sessions3"]}


ARKIME_TOPIC_LIMIT = 4096  # Arkime keeps no topic this long (the 8190-byte one of mqtt_synthetic)


@pytest.mark.parametrize("name", ["mqtt_synthetic", "mqtt_big"])
def test_sessions_agree_with_arkime(name: str) -> None:
    replay = Replay(TRACES / "arkime" / f"{name}.pcap")
    sessions = arkime_sessions(name)
    by_port: dict[int, list[ProtocolEvent]] = defaultdict(list)
    for e in replay.messages():
        assert e.flow is not None
        by_port[e.flow.orig_p].append(e)
    assert set(by_port) == set(sessions)
    for port, body in sessions.items():
        mine = by_port[port]
        want = body["mqtt"]
        connects = [e.fields for e in mine if e.op == "connect"]
        assert [c["client_id"] for c in connects] == want["clientId"], port
        assert [c["proto_version"] for c in connects] == want["version"], port
        assert sorted({e.op.upper() for e in mine}) == want["type"], port
        topics = {e.fields["topic"] for e in mine if e.op == "publish"}
        topics |= {t for e in mine if e.op in ("subscribe", "unsubscribe") for t in e.fields["topics"]}
        assert sorted(t for t in topics if len(t) < ARKIME_TOPIC_LIMIT) == want.get("topic", []), port
        qos = {e.fields["qos"] for e in mine if e.op == "publish" and len(e.fields["topic"]) < ARKIME_TOPIC_LIMIT}
        qos |= {c["will_qos"] for c in connects if "will_qos" in c}
        assert sorted(map(str, qos)) == sorted(map(str, want.get("qos", []))), port
        flags = {"cleanSession"} if connects[0]["clean_session"] else set()
        flags |= {"hasPassword"} if connects[0]["password_sent"] else set()
        flags |= {"hasWill"} if "will_topic" in connects[0] else set()
        assert sorted(flags) == want["flags"], port
        assert [c["will_topic"] for c in connects if "will_topic" in c] == want.get("willTopic", []), port
        assert [c["username"] for c in connects if "username" in c] == (body.get("user") or []), port
        codes = [e.fields["return_code"] for e in mine if e.op == "connack"]
        assert codes == want.get("connackCode", []), port


def ndpi_mqtt_flows(name: str) -> set[tuple[str, int, str, int]]:
    """The TCP flows nDPI's result names MQTT, as sorted endpoint pairs."""
    text = (TRACES / "ndpi" / f"{name}.out").read_text()
    flows = set()
    for a, ap, b, bp in re.findall(r"TCP ([\d.]+):(\d+) <?-> ([\d.]+):(\d+) .*\[proto: [\d.]*222/MQTT\]", text):
        flows.add(tuple(sorted([(a, int(ap)), (b, int(bp))])))
    return flows  # type: ignore[return-value]


@pytest.mark.parametrize("name", ["mqtt.pcap", "coap_mqtt.pcap"])
def test_flows_agree_with_ndpi(name: str) -> None:
    replay = Replay(TRACES / "ndpi" / name)
    ours = {tuple(sorted([(f.id.orig_h, f.id.orig_p), (f.id.resp_h, f.id.resp_p)])) for f in replay.flows
            if f.service == "mqtt"}
    assert ours == ndpi_mqtt_flows(name)
    if name == "coap_mqtt.pcap":  # one flow with its CONNECT, three picked up midstream, all found by probing
        with_connect = [e for e in replay.messages() if e.flow is not None and e.flow.orig_p == 53528]
        assert with_connect[0].op == "connect" and len(with_connect) == 44
        for port in MIDSTREAM:
            mine = [e for e in replay.events if e.flow is not None and port in (e.flow.orig_p, e.flow.resp_p)]
            assert mine[0].op == "mqtt_unintroduced_message" and mine[1].op == "publish"
            assert {e.op for e in mine if e.kind == "weird"} == {"mqtt_unintroduced_message"}
            # the broker (TCP/17501) is told apart by its port even where it sent the first packet seen (53524)
            assert {e.src for e in mine if e.op == "publish" and e.fields["from_client"]} == {"192.168.56.1"}
            assert {e.src for e in mine if e.op == "publish" and not e.fields["from_client"]} == {"192.168.56.101"}
