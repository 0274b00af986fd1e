"""MQTT golden tests against Suricata's verification suite: every check of the 49 suricata-verify MQTT tests
(tests/traces/suricata/mqtt/<test>/test.yaml, 37 captures) evaluated on the eve records our logs imply.

Each capture is replayed once through the real `otwatch replay` (default settings). From its mqtt.jsonl,
weird.jsonl and conn.jsonl we write the eve records Suricata would log, then count, as suricata-verify does, the
records that hold every `match` key of a check:
- `mqtt`: one record per Suricata transaction (rust/src/mqtt/mqtt.rs): a CONNECT with its CONNACK, a PUBLISH with
  its acknowledgements, a SUBSCRIBE or UNSUBSCRIBE with its answer (paired by our rows' request_ts and packet_id),
  every other packet alone. `mqtt.<type>.<field>` keys come from our fields (qos/retain/dup of packets other than
  PUBLISH are the header flags the specification fixes: 1/0/0 for PUBREL, SUBSCRIBE, UNSUBSCRIBE, else 0/0/0; no
  mqtt_invalid_flags weird is allowed, so they hold). `dest_port` is the flow's responder port, on the mqtt records
  and the alerts made from them: Suricata's expected dest_port counts are those of its transactions (its flow records
  are not in them, and no test with a dest_port check has rules), so anomaly and flow records carry none.
- The test's suricata.yaml applied to what Suricata logs: `max-msg-length` M makes a PUBLISH longer than M a
  `truncated` record whose `skipped_length` is the packet's length (computed from topic, QoS and payload_len);
  `string-log-limit` L cuts a message to L bytes and `[truncated N additional bytes]` and is a budget for the topics
  of a SUBSCRIBE. Our replay runs with our defaults (1 MiB, 100-byte preview): only the logs are reinterpreted.
- `anomaly`: one per weird named `mqtt_<event>`; `flow`: one per conn.jsonl row, app_proto = its service.
- `alert`: one per transaction and rule whose options hold on the transaction, with the transaction's mqtt keys
  (Suricata's alert metadata); the keywords are evaluated as rust/src/mqtt/detect.rs does (RULE_KEYWORDS); an
  `app-layer-event:mqtt.<event>` rule alerts once per weird of that name.

Compared less strictly than Suricata logs (the check counts as "partly"): the CONNECT password, never read by our
decoder (`password_sent` stands for it, and `mqtt.connect.password; content:` rules hold when one was sent); v5
authentication data, logged as "<redacted>"; a message longer than our 100-byte preview (its first 100 bytes and
its length must agree). Not comparable ("n/a"): rules on Suricata frames (raw bytes of a PDU, header or data, which
no log of ours holds) and a Suricata start-up failure on a bad setting (mqtt-limit-log-fail).

Agreement per test (checks: the test's checks; matched: equal on every key; partly: see above; differ: a documented
disagreement, SURICATA_DISAGREES; n/a: not comparable), asserted by `test_agreement_table`:

| test | checks | matched | partly | differ | n/a |
|---|---|---|---|---|---|
| mqtt-binary-message | 5 | 4 | 1 | 0 | 0 |
| mqtt-connect-rules | 8 | 7 | 1 | 0 | 0 |
| mqtt-connect-rules-2 | 2 | 2 | 0 | 0 | 0 |
| mqtt-connect-rules-3 | 1 | 1 | 0 | 0 | 0 |
| mqtt-events-invalid-qos | 2 | 2 | 0 | 0 | 0 |
| mqtt-events-missing-connect | 2 | 2 | 0 | 0 | 0 |
| mqtt-events-unassigned-msgtype | 2 | 2 | 0 | 0 | 0 |
| mqtt-events-unintroduced | 2 | 2 | 0 | 0 | 0 |
| mqtt-frames | 8 | 0 | 0 | 0 | 8 |
| mqtt-frames-truncated | 9 | 0 | 0 | 0 | 9 |
| mqtt-frames-xpdu | 10 | 0 | 0 | 0 | 10 |
| mqtt-limit-1 | 12 | 11 | 1 | 0 | 0 |
| mqtt-limit-2 | 12 | 12 | 0 | 0 | 0 |
| mqtt-limit-3 | 12 | 12 | 0 | 0 | 0 |
| mqtt-limit-log-1 | 3 | 3 | 0 | 0 | 0 |
| mqtt-limit-log-2 | 1 | 1 | 0 | 0 | 0 |
| mqtt-limit-log-3 | 1 | 1 | 0 | 0 | 0 |
| mqtt-limit-log-fail | 1 | 0 | 0 | 0 | 1 |
| mqtt-midstream-split | 4 | 4 | 0 | 0 | 0 |
| mqtt-pub-rules | 13 | 11 | 2 | 0 | 0 |
| mqtt-sub-rules | 15 | 12 | 2 | 1 | 0 |
| mqtt-unsub-rules | 13 | 10 | 2 | 1 | 0 |
| mqtt31-pub-qos1 | 6 | 5 | 1 | 0 | 0 |
| mqtt31-pub-qos2 | 8 | 7 | 1 | 0 | 0 |
| mqtt31-pub-userpass | 5 | 4 | 1 | 0 | 0 |
| mqtt31-pub-userpass-auto-clientid | 5 | 4 | 1 | 0 | 0 |
| mqtt31-sub-userpass | 6 | 5 | 1 | 0 | 0 |
| mqtt31-unsub-qos1 | 10 | 9 | 1 | 0 | 0 |
| mqtt31-unsub-qos2 | 10 | 9 | 1 | 0 | 0 |
| mqtt31-unsub-userpass | 10 | 9 | 1 | 0 | 0 |
| mqtt311-pub-qos1 | 6 | 5 | 1 | 0 | 0 |
| mqtt311-pub-qos2 | 8 | 7 | 1 | 0 | 0 |
| mqtt311-pub-userpass | 5 | 4 | 1 | 0 | 0 |
| mqtt311-pub-userpass-auto-clientid | 5 | 4 | 1 | 0 | 0 |
| mqtt311-sub-userpass | 6 | 5 | 1 | 0 | 0 |
| mqtt311-unsub-qos1 | 10 | 9 | 1 | 0 | 0 |
| mqtt311-unsub-qos2 | 10 | 9 | 1 | 0 | 0 |
| mqtt311-unsub-userpass | 10 | 9 | 1 | 0 | 0 |
| mqtt5-excessiveproplen | 2 | 2 | 0 | 0 | 0 |
| mqtt5-pub-qos1 | 6 | 5 | 1 | 0 | 0 |
| mqtt5-pub-qos2 | 8 | 7 | 1 | 0 | 0 |
| mqtt5-pub-userpass | 5 | 4 | 1 | 0 | 0 |
| mqtt5-pub-userpass-auto-clientid | 5 | 4 | 1 | 0 | 0 |
| mqtt5-sub-customauth | 3 | 2 | 1 | 0 | 0 |
| mqtt5-sub-mosquittoprops | 6 | 5 | 1 | 0 | 0 |
| mqtt5-sub-userpass | 6 | 4 | 1 | 1 | 0 |
| mqtt5-unsub-qos1 | 10 | 8 | 1 | 1 | 0 |
| mqtt5-unsub-qos2 | 10 | 8 | 1 | 1 | 0 |
| mqtt5-unsub-userpass | 10 | 8 | 1 | 1 | 0 |
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.golden.conftest import TRACES, Replay
from tests.golden.test_mqtt_suricata_rules import (
    ACKS,
    HEADER_QOS,
    SURICATA,
    TESTS,
    Row,
    Tx,
    event_of,
    is_frame_rule,
    raw,
    rule_holds,
    rules,
)

Record = dict[str, Any]
Status = str  # matched, partly, differ, n/a
PREVIEW = 100  # our decoder's default payload preview (bytes)
_UNITS = {"": 0, "kb": 10, "mb": 20, "gb": 30}

# Where Suricata's expected value is wrong, with tshark's reading of the same bytes: a 5.0 DISCONNECT of remaining
# length 1 carries its reason code in that byte. Frame 11 of mqtt5-sub-userpass/input.pcap is `e0 01 04`;
# `tshark -V`: "Msg Len: 1", "Reason Code: Disconnect with Will Message (4)". Suricata's test expects 0 (its
# parser did not read the byte); ours is 4. The same DISCONNECT ends the mqtt5-unsub-* captures.
SURICATA_DISAGREES: dict[tuple[str, str], tuple[Any, Any]] = {
    (test, "mqtt.disconnect.reason_code"): (0, 4)
    for test in ("mqtt-sub-rules", "mqtt-unsub-rules", "mqtt5-sub-userpass", "mqtt5-unsub-qos1", "mqtt5-unsub-qos2",
                 "mqtt5-unsub-userpass")
}  # fmt: skip


# ---- replaying every capture once --------------------------------------------------------------------------
def _spec(test: str) -> dict[str, Any]:
    return yaml.safe_load((SURICATA / test / "test.yaml").read_text()) or {}


def capture_of(test: str) -> str:
    """The trace (relative to tests/traces) a suricata-verify test reads."""
    spec = _spec(test)
    if "pcap" in spec:
        path = (SURICATA / test / spec["pcap"]).resolve()
    else:
        (path,) = (SURICATA / test).glob("*.pcap")
    return path.relative_to(TRACES).as_posix()


def _replay(trace: str, base: Path) -> Replay:
    out = base / "logs"
    cmd = [sys.executable, "-m", "appliance", "replay", str(TRACES / trace), "--out", str(out), "--state",
           str(base / "state"), "--json", "--no-progress"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, f"otwatch replay {trace} failed:\n{done.stderr}"
    return Replay(out, json.loads(done.stdout))


@pytest.fixture(scope="module")
def replays(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Replay]:
    """Every capture of the suite replayed once through `otwatch replay` (several at a time: they are small)."""
    traces = sorted({capture_of(t) for t in TESTS})
    bases = [tmp_path_factory.mktemp(t.replace("/", "_")) for t in traces]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        done = list(pool.map(_replay, traces, bases))
    return dict(zip(traces, done, strict=True))


# ---- what Suricata logs, from our rows ---------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    """The MQTT settings of a test's suricata.yaml."""

    max_msg: int | None = None
    log_limit: int | None = None
    bad: bool = False  # a value Suricata refuses at start-up


def settings(test: str) -> Settings:
    """max-msg-length and string-log-limit of a test's suricata.yaml, when it sets them."""
    path = SURICATA / test / "suricata.yaml"
    text = path.read_text() if path.exists() else ""
    values: list[int | None] = []
    bad = False
    for key in ("max-msg-length", "string-log-limit"):
        m = re.search(rf"{key}:\s*(\S+)", text)
        size = re.fullmatch(r"(\d+)\s*(kb|mb|gb)?", m.group(1), re.I) if m else None
        bad = bad or (m is not None and size is None)
        values.append(int(size.group(1)) << _UNITS[(size.group(2) or "").lower()] if size else None)
    return Settings(values[0], values[1], bad)


@dataclass(frozen=True)
class Loose:
    """A logged value we can only compare in part: `agrees(want)` says whether Suricata's value is consistent."""

    agrees: Callable[[Any], bool]


def _message(row: Row, limit: int | None) -> Any:
    """Suricata's `message` of a PUBLISH: exact when our preview holds what it shows, else a Loose prefix check."""
    preview, size = row.get("payload", ""), row["payload_len"]
    if limit is not None and size > limit and limit <= len(preview):
        return f"{preview[:limit]}[truncated {size - limit} additional bytes]"
    if size <= PREVIEW:
        return preview

    def agrees(want: Any) -> bool:
        shown = re.sub(r"\[truncated \d+ additional bytes\]$", "", want)
        return len(shown.encode()) == min(size, limit or size) and shown.startswith(preview)

    return Loose(agrees)


def publish_length(row: Row, level: int) -> int:
    """The whole length of a PUBLISH (fixed header and body) from our fields (a 5.0 one without properties)."""
    assert not any(k.startswith("properties.") for k in row), "properties of unknown encoded length"
    rl = 2 + len(row["topic"].encode()) + (2 if row["qos"] else 0) + (1 if level == 5 else 0) + row["payload_len"]
    return 1 + (1 if rl < 128 else 2 if rl < 16384 else 3 if rl < 2097152 else 4) + rl


def _props(row: Row, prefix: str, out: Record, key: str) -> None:
    """v5 properties as Suricata's eve writes them: a user property under its own name."""
    head = f"{prefix}."
    for name, value in row.items():
        if name.startswith(head):
            prop = name[len(head) :]
            if prop == "user_property":
                out.update({f"{key}.{k}": v for k, v in value})
            elif prop == "authentication_data":
                out[f"{key}.{prop}"] = Loose(lambda want: bool(want))  # "<redacted>" in our log
            else:
                out[f"{key}.{prop}"] = value


def part(row: Row, s: Settings, level: int) -> Record:
    """The `mqtt.<type>.` keys of one packet of a transaction."""
    op = row["op"]
    k = f"mqtt.{op}"
    publish = op == "publish"
    r: Record = {f"{k}.qos": row["qos"] if publish else HEADER_QOS.get(op, 0),
                 f"{k}.retain": row["retain"] if publish else False, f"{k}.dup": row["dup"] if publish else False}
    _props(row, "properties", r, f"{k}.properties")
    if "packet_id" in row:
        r[f"{k}.message_id"] = row["packet_id"]
    if op in ACKS or op in ("disconnect", "auth"):
        r[f"{k}.reason_code"] = row.get("reason_code", 0)
    if op == "connect":
        flags = {"username": "username" in row, "password": row["password_sent"], "will": "will_topic" in row,
                 "will_retain": row.get("will_retain", False), "clean_session": row["clean_session"]}
        r.update({f"{k}.flags.{name}": value for name, value in flags.items()})
        r.update({f"{k}.protocol_string": row["proto_name"], f"{k}.protocol_version": row["proto_level"],
                  f"{k}.client_id": row.get("client_id")})
        if "username" in row:
            r[f"{k}.username"] = row["username"]
        if row["password_sent"]:
            r[f"{k}.password"] = Loose(lambda want: bool(want))  # skipped by its length, never read
        if "will_topic" in row:
            r.update({f"{k}.will.topic": row["will_topic"], f"{k}.will.message": row["will_payload"]})
            _props(row, "will_properties", r, f"{k}.will.properties")
    elif op == "connack":
        r.update({f"{k}.session_present": row["session_present"], f"{k}.return_code": row["return_code"]})
    elif publish:
        r[f"{k}.topic"] = row["topic"]
        size = publish_length(row, level)
        if s.max_msg is not None and size > s.max_msg:
            r.update({f"{k}.truncated": True, f"{k}.skipped_length": size})
        else:
            r[f"{k}.message"] = _message(row, s.log_limit)
    elif op == "subscribe":  # string-log-limit is a budget for all the topics of the message
        topics = []
        budget = s.log_limit if s.log_limit is not None else 1 << 62
        for topic, qos in zip(row["topics"], row["qos_levels"], strict=True):
            over = len(topic) - budget
            topics.append({"topic": topic if over <= 0 else f"{topic[:budget]}[truncated {over} additional bytes]",
                           "qos": qos})
            budget -= len(topic)
            if budget < 0:
                break
        r[f"{k}.topics"] = topics
    elif op == "suback":
        r[f"{k}.qos_granted"] = row["granted_qos"]
    elif op == "unsubscribe":
        r[f"{k}.topics"] = row["topics"]
    elif op == "unsuback" and "reason_codes" in row:
        r[f"{k}.reason_codes"] = row["reason_codes"]
    return r


def transactions(rows: list[Row]) -> list[Tx]:
    """Our message rows grouped as Suricata's transactions (see the module docstring)."""
    levels = {r["uid"]: r["proto_level"] for r in rows if r["op"] == "connect"}
    for r in rows:  # a connection picked up midstream: the level its packets showed
        if r["uid"] not in levels and "reason" in r:
            levels[r["uid"]] = 5
    txs: list[Tx] = []
    open_: dict[tuple[Any, ...], Tx] = {}
    for r in rows:
        if r["kind"] in ("weird", "notice"):
            continue
        op, uid = r["op"], r["uid"]
        key: tuple[Any, ...] | None = None
        if r.get("matched"):
            want = {"connack": "connect", "suback": "subscribe", "unsuback": "unsubscribe"}.get(op, "publish")
            key = (uid, want, r["request_ts"], r.get("packet_id"))
        tx = open_.get(key) if key else None
        if tx is None:
            tx = Tx([], levels.get(uid, 4), r["id.resp_p"])
            txs.append(tx)
            if op in ("connect", "subscribe", "unsubscribe") or (op == "publish" and r["qos"]):
                open_[(uid, op, r["ts"], r.get("packet_id"))] = tx
        tx.rows.append(r)
        tx.ops.append(op)
    return txs


def tx_record(tx: Tx, s: Settings) -> Record:
    """The eve `mqtt` record of a transaction."""
    record: Record = {"event_type": "mqtt", "dest_port": tx.resp_p}
    for row in tx.rows:
        record.update(part(row, s, tx.level))
    return record


# ---- the eve records and the checks ------------------------------------------------------------------------
def eve(test: str, replay: Replay) -> list[Record]:
    """Every eve record Suricata would write for a test, from our logs (see the module docstring)."""
    s = settings(test)
    txs = transactions(replay.rows("mqtt"))
    mqtt = [tx_record(tx, s) for tx in txs]
    records = list(mqtt)
    weirds = [w["name"].removeprefix("mqtt_") for w in replay.rows("weird") if w.get("source") == "mqtt"]
    for sid, options in rules(test).items():
        head = {"event_type": "alert", "alert.signature_id": sid, "alert.signature": dict(options)["msg"]}
        event = event_of(options)
        if event is not None:
            records += [dict(head) for w in weirds if w == event]
        elif not is_frame_rule(options):
            records += [{**rec, **head} for tx, rec in zip(txs, mqtt, strict=True) if rule_holds(options, tx)]
    records += [{"event_type": "anomaly", "anomaly.event": w, "anomaly.app_proto": "mqtt", "anomaly.type": "applayer",
                 "anomaly.layer": "proto_parser"} for w in weirds]  # fmt: skip
    records += [{"event_type": "flow", "app_proto": c.get("service", "failed")} for c in replay.rows("conn")]
    return records


def _agrees(have: Any, want: Any) -> bool:
    return have.agrees(want) if isinstance(have, Loose) else have == want


_PARTLY_KEYS = re.compile(r"mqtt\.connect\.password$|authentication_data$")


def check_status(test: str, check: dict[str, Any], records: list[Record]) -> Status:
    """Evaluate one test.yaml check on our records (asserting its count); how closely it could be compared."""
    if "filter" not in check:
        return "n/a"  # a shell check of Suricata's start-up
    match, want = dict(check["filter"]["match"]), check["filter"]["count"]
    options = rules(test)
    sid = match.get("alert.signature_id")
    named = [o for s, o in options.items() if s == sid or dict(o)["msg"] == match.get("alert.signature")]
    if "frame.type" in match or any(is_frame_rule(o) for o in named) or (
            match.get("event_type") == "alert" and not named and all(is_frame_rule(o) for o in options.values())):
        return "n/a"
    status = "matched"
    for key, theirs in list(match.items()):
        if (test, key) in SURICATA_DISAGREES:
            expected, ours = SURICATA_DISAGREES[test, key]
            assert theirs == expected, (test, key)
            match[key] = ours
            status = "differ"
    hits = [r for r in records if all(k in r and _agrees(r[k], v) for k, v in match.items())]
    assert len(hits) == want, (test, match, len(hits))
    if status == "matched" and (any(_PARTLY_KEYS.search(k) for k in match)
                                or any(isinstance(r.get(k), Loose) for r in hits for k in match)
                                or any(n == "mqtt.connect.password" for o in named for n, _ in o)):
        status = "partly"
    return status


def evaluate(test: str, replays: dict[str, Replay]) -> Counter[Status]:
    """Every check of a test evaluated on our records: how many matched, partly, differ, n/a."""
    records = eve(test, replays[capture_of(test)])
    return Counter(check_status(test, c, records) for c in _spec(test).get("checks", []))


def _agreement_table(doc: str) -> dict[str, tuple[int, ...]]:
    """The test -> (checks, matched, partly, differ, n/a) rows of the table in this module's docstring."""
    table: dict[str, tuple[int, ...]] = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[1].isdigit():
            table[cells[0]] = tuple(int(c) for c in cells[1:])
    return table


AGREEMENT = _agreement_table(__doc__ or "")

# every weird our replay reports per capture: the anomalies Suricata's tests check, and only those, except the
# CONNACK of mqtt-midstream-split, whose CONNECT precedes the capture (Suricata's test does not log anomalies)
WEIRDS = {
    "suricata/mqtt/mqtt-events-invalid-qos/input.pcap": ["mqtt_invalid_qos_level"],
    "suricata/mqtt/mqtt-events-missing-connect/input.pcap": ["mqtt_missing_connect"],
    "suricata/mqtt/mqtt-events-unassigned-msgtype/input.pcap": ["mqtt_unassigned_msg_type"],
    "suricata/mqtt/mqtt-events-unintroduced/input.pcap": ["mqtt_unintroduced_message"],
    "suricata/mqtt/mqtt-midstream-split/mqtt-midstream-split.pcap": ["mqtt_missing_connect"],
    "suricata/mqtt/mqtt5-excessiveproplen/input.pcap": ["mqtt_malformed_traffic"],
}


@pytest.mark.parametrize("test", TESTS)
def test_suricata_checks_hold_on_our_logs(test: str, replays: dict[str, Replay]) -> None:
    """Each check of the test counts as many of our eve records as Suricata's (documented disagreements aside)."""
    found = evaluate(test, replays)
    assert sum(found.values()) == len(_spec(test).get("checks", []))
    assert found["matched"] + found["partly"] + found["differ"] >= 1 or test in NOT_COMPARABLE


NOT_COMPARABLE = {"mqtt-frames", "mqtt-frames-truncated", "mqtt-frames-xpdu", "mqtt-limit-log-fail"}


def test_agreement_table(replays: dict[str, Replay]) -> None:
    """The module docstring's table is the measured one."""
    measured = {}
    for test in TESTS:
        found = evaluate(test, replays)
        measured[test] = (sum(found.values()), found["matched"], found["partly"], found["differ"], found["n/a"])
    assert measured == AGREEMENT
    assert {t for t, row in measured.items() if row[0] == row[4]} == NOT_COMPARABLE
    assert [t for t in TESTS if settings(t).bad] == ["mqtt-limit-log-fail"]  # `string-log-limit: XXX`
    assert {t: (settings(t).max_msg, settings(t).log_limit) for t in TESTS if settings(t) != Settings()} == {
        "mqtt-frames-truncated": (60, None), "mqtt-limit-1": (50000, None), "mqtt-limit-2": (500, None),
        "mqtt-limit-3": (50, None), "mqtt-limit-log-1": (None, 10), "mqtt-limit-log-2": (None, 1 << 20),
        "mqtt-limit-log-3": (None, 10), "mqtt-limit-log-fail": (None, None)}  # fmt: skip
    assert sum(1 for t, _ in SURICATA_DISAGREES) == sum(row[3] for row in measured.values())


def test_captures_decode_cleanly_and_report_suricatas_anomalies(replays: dict[str, Replay]) -> None:
    """No decoder error anywhere (malformed and limit cases included); the weirds are the anomalies Suricata sees."""
    for trace, replay in replays.items():
        names = sorted(w["name"] for w in replay.rows("weird"))
        assert names == WEIRDS.get(trace, []), trace
        assert "decoder_error" not in names and "mqtt_invalid_flags" not in names
        assert replay.summary["events_by_protocol"].get("mqtt", 0) >= 1, trace
        for c in replay.rows("conn"):  # the TLS and other TCP flows beside MQTT (missing-connect) are not MQTT
            assert (c.get("service") == "mqtt") == (1883 in (c["id.orig_p"], c["id.resp_p"])), (trace, c["uid"])


def test_jpeg_rule_is_our_payload_type(replays: dict[str, Replay]) -> None:
    """`mqtt.publish.message; content:"|FF D8 FF E0|"; startswith` alerts exactly on our payload_type jpeg PUBLISH."""
    for test in ("mqtt-binary-message", "mqtt-pub-rules"):
        rows = replays[capture_of(test)].rows("mqtt")
        (pub,) = [r for r in rows if r["op"] == "publish"]
        assert pub["payload_type"] == "jpeg" and raw(pub["payload"]).startswith(b"\xff\xd8\xff\xe0")
        assert pub["payload_len"] == 35758 and len(raw(pub["payload"])) == PREVIEW
        publishes = replays[capture_of(test)].rows("mqtt_publish")
        assert publishes and all("payload_type" not in r for r in publishes)  # not a column of Zeek's log


def test_limit_lengths_are_suricatas_skipped_lengths(replays: dict[str, Replay]) -> None:
    """The packet lengths computed from our fields are those Suricata reports as skipped_length (mqtt-limit-*)."""
    rows = [r for r in replays["suricata/mqtt/mqtt-limit-2/input.pcap"].rows("mqtt") if r["op"] == "publish"]
    assert [(r["topic"], publish_length(r, 4)) for r in rows] == [("foo", 100011), ("foo", 100009), ("bar", 1010),
                                                                  ("baz", 109)]  # fmt: skip
    assert [r["payload_type"] for r in rows] == ["text"] * 4
