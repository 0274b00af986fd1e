"""Modbus golden tests against Arkime, Suricata and nDPI: what each peer recorded for the same capture.

- Arkime (arkime/modbus.test, its expected session documents for arkime/modbus.pcap): per session, the sets of
  function codes, exception codes and transaction ids, the unit id and the protocol id.
- Suricata (suricata/modbus.test.yaml and .rules over suricata/modbus.pcap): the eve `modbus` event checks and
  the alert checks, whose rules are predicates over one decoded transaction.
- nDPI (ndpi/modbus.pcap.out): per flow, whether it is Modbus, and its packet counts.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import yaml

from tests.golden.conftest import TRACES, Replay
from tests.golden.tshark_rows import func_code

ReplayFn = Callable[[str], Replay]
Endpoint = tuple[str, int]
ConnKey = frozenset[Endpoint]


def _key(a: str, ap: int, b: str, bp: int) -> ConnKey:
    return frozenset({(a, int(ap)), (b, int(bp))})


def _rows_by_conn(replay: Replay) -> dict[ConnKey, list[dict]]:
    """Our modbus.jsonl message rows per address/port pair (several connections on one pair are merged)."""
    out: dict[ConnKey, list[dict]] = defaultdict(list)
    for r in replay.rows("modbus"):
        if r["kind"] != "weird":
            out[_key(r["id.orig_h"], r["id.orig_p"], r["id.resp_h"], r["id.resp_p"])].append(r)
    return out


# ---- Arkime -------------------------------------------------------------------------------------------------
# Arkime's parser (capture/parsers/modbus.c) reads every ADU of a session once a classifier saw a first packet
# holding exactly one ADU on port 502, and stops at the first bad header (protocol id != 0, length outside
# 2..255). From the client's direction it adds the function code and the transaction id to sets, from the
# server's direction the exception code of a 0x80 function; unit id and protocol id come from the first
# segment of each direction (all ADUs of these sessions share one unit). Sets are written sorted as text when
# they hold several values, as a number when one.


def _arkime_sessions() -> list[dict[str, Any]]:
    """The session bodies of Arkime's expected output for arkime/modbus.pcap."""
    return [s["body"] for s in json.loads((TRACES / "arkime" / "modbus.test").read_text())["sessions3"]]


def _arkime_modbus(body: dict[str, Any]) -> dict[str, Any]:
    """Arkime's modbus object in a comparable shape (sets of ints), checking its *Cnt fields on the way."""
    m = body["modbus"]
    out: dict[str, Any] = {"unitid": m["unitid"], "protocolid": m["protocolid"]}
    for name in ("funccode", "exccode", "transactionid"):
        values = {int(v) for v in m.get(name, [])}
        assert m.get(f"{name}Cnt", 0) == len(values), name
        out[name] = values
    return out


def _our_modbus(rows: list[dict]) -> dict[str, Any]:
    """What Arkime would record for one connection, from our rows."""
    requests = [r for r in rows if r["kind"] == "request"]
    units = {r["unit"] for r in rows}
    pids = {r["pid"] for r in rows}
    assert len(units) == 1 and len(pids) == 1, (units, pids)
    return {
        "unitid": units.pop(),
        "protocolid": pids.pop(),
        "funccode": {func_code(r["func"]) for r in requests},
        "exccode": {r["exception_code"] for r in rows if r["kind"] == "exception"},
        "transactionid": {r["tid"] for r in requests},
    }


def test_arkime_modbus_sessions_match(replay: ReplayFn) -> None:
    """Every Arkime session with a modbus object has the same sets from our rows; the others have no rows."""
    ours = _rows_by_conn(replay("arkime/modbus.pcap"))
    sessions = _arkime_sessions()
    with_modbus = 0
    for body in sessions:
        key = _key(body["source"]["ip"], body["source"]["port"], body["destination"]["ip"], body["destination"]["port"])
        if "modbus" not in body:
            assert key not in ours, key
            continue
        with_modbus += 1
        # includes the connection 10.0.0.8 opens FROM port 502 (frames 88-113): Arkime reads 10.0.0.8 as the
        # server, records its exception codes {5, 6} and, as for any server message, no function code or tid
        assert _our_modbus(ours[key]) == _arkime_modbus(body), key
    assert (len(sessions), with_modbus) == (8, 6)
    assert len(ours) == with_modbus


def test_arkime_fuzz_session_keeps_all_256_transaction_ids(replay: ReplayFn) -> None:
    """Arkime's largest set (256 transaction ids, 1-256, on 10.1.1.234:51411) is complete, not capped, on both sides."""
    rows = _rows_by_conn(replay("arkime/modbus.pcap"))[_key("10.1.1.234", 51411, "10.10.5.85", 502)]
    assert {r["tid"] for r in rows if r["kind"] == "request"} == set(range(1, 257))


# ---- Suricata -----------------------------------------------------------------------------------------------
# Suricata logs one eve `modbus` event per transaction: a request with its response, or a response nobody asked
# for; `modbus.id` numbers them per flow from 1. Of the ten checks of modbus.test.yaml, two are about these
# events (`modbus.id: 10` once, `function_code: RdCoils` twice) and map onto our rows directly. The other eight
# are rule-alert checks (counts per `alert.signature_id`). None had to be left out: each rule of
# modbus.test.rules is a predicate over one transaction's decoded request (rust/src/modbus/detect.rs:
# rs_modbus_inspect reads only the request and returns 0 without one), so we count the transactions whose
# request satisfies the rule's `modbus:` option, re-expressed in RULES (the test checks the rule texts are the
# ones re-expressed). What stays Suricata's own and is assumed, not tested: that its engine alerts once per
# matching transaction, and sawp's names, access types and categories, tabled here only for the function codes
# this capture holds (asserted). `modbus.response.category` is set when a normal (non-exception) response
# answered the request.
SAWP_NAMES = {1: "RdCoils", 3: "RdHoldRegs", 5: "WrSingleCoil", 6: "WrSingleReg", 8: "Diagnostic",
              17: "ReportServerID", 43: "MEI"}  # fmt: skip
ACCESS = {1: "READ | COILS", 3: "READ | HOLDING", 5: "WRITE | COILS", 6: "WRITE | HOLDING"}
PUBLIC_ASSIGNED = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 15, 16, 17, 20, 21, 22, 23, 24, 43})


def _address_below(tx: dict[str, Any], end: int) -> bool:
    """Suricata's `address 0<>N` for a read: the requested range starts below N."""
    return tx["address"] is not None and tx["address"] < end


RULES = {  # sid: (the rule's modbus option, the same predicate over a transaction)
    1: ("function 1", lambda tx: tx["fc"] == 1),
    2: ("function assigned", lambda tx: tx["fc"] in PUBLIC_ASSIGNED),
    3: ("access read", lambda tx: ACCESS.get(tx["fc"], "").startswith("READ")),
    4: ("unit 10", lambda tx: tx["unit"] == 10),
    5: ("unit >9, access read coils, address 0<>2",
        lambda tx: tx["unit"] > 9 and ACCESS.get(tx["fc"]) == "READ | COILS" and _address_below(tx, 2)),
    6: ("access write", lambda tx: ACCESS.get(tx["fc"], "").startswith("WRITE")),
    7: ("function 8", lambda tx: tx["fc"] == 8),
}  # fmt: skip


def _suricata_transactions(rows: list[dict]) -> list[dict[str, Any]]:
    """Our rows as Suricata transactions: each request with its response, each unanswered response alone."""
    answers = {(r["uid"], r["tid"], r["request_ts"]): r for r in rows if r["kind"] != "request" and r["matched"]}
    seq: dict[str, int] = defaultdict(int)
    out: list[dict[str, Any]] = []
    for r in rows:
        if r["kind"] != "request" and r["matched"]:
            continue
        seq[r["uid"]] += 1
        fc = func_code(r["func"])
        tx: dict[str, Any] = {"modbus.id": seq[r["uid"]], "fc": fc, "unit": r["unit"], "request": False}
        if r["kind"] == "request":
            answer = answers.get((r["uid"], r["tid"], r["ts"]))
            tx.update(request=True, address=r.get("address"))
            tx["modbus.request.function_code"] = SAWP_NAMES[fc]
            if fc in ACCESS:
                tx["modbus.request.access_type"] = ACCESS[fc]
            if answer is not None and answer["kind"] == "response" and fc in PUBLIC_ASSIGNED:
                tx["modbus.response.category"] = "PUBLIC_ASSIGNED"
        out.append(tx)
    return out


def _suricata_eve(rows: list[dict], rules_text: str) -> list[dict[str, Any]]:
    """The eve records Suricata would write: one `modbus` event per transaction, one alert per matching rule."""
    found = {int(sid): opt.strip() for opt, sid in re.findall(r"modbus:\s*([^;]+);\s*sid:(\d+);", rules_text)}
    assert found == {sid: rule[0] for sid, rule in RULES.items()}  # the rules we re-expressed are the rules
    eve: list[dict[str, Any]] = []
    for tx in _suricata_transactions(rows):
        eve.append({**tx, "event_type": "modbus"})
        if tx["request"]:
            eve.extend(
                {**tx, "event_type": "alert", "alert.signature_id": sid}
                for sid, (_, match) in RULES.items()
                if match(tx)
            )
    return eve


def test_suricata_checks_hold_on_our_events(replay: ReplayFn) -> None:
    """Each check of Suricata's modbus test (count of eve records matching its fields) holds on our events."""
    rows = replay("suricata/modbus.pcap").rows("modbus")
    assert {func_code(r["func"]) for r in rows} == set(SAWP_NAMES)  # the name tables cover this capture
    rules = (TRACES / "suricata" / "modbus.test.rules").read_text()
    eve = _suricata_eve(rows, rules)
    checks = yaml.safe_load((TRACES / "suricata" / "modbus.test.yaml").read_text())["checks"]
    assert len(checks) == 10
    for check in checks:
        want, match = check["filter"]["count"], check["filter"]["match"]
        got = sum(all(rec.get(k) == v for k, v in match.items()) for rec in eve)
        assert got == want, match


# ---- nDPI ---------------------------------------------------------------------------------------------------
_NDPI_FLOW = re.compile(
    r"^\s*\d+\s+(TCP|UDP)\s+([\d.]+):(\d+)\s+<->\s+([\d.]+):(\d+)\s+\[proto: [\d.]+/([^\]]+)\]"
    r".*?\[(\d+) pkts/\d+ bytes (?:<->|->) (\d+) pkts/\d+ bytes\]"
)


def test_ndpi_modbus_flows_are_our_modbus_connections(replay: ReplayFn) -> None:
    """A flow is Modbus for nDPI exactly when our conn.jsonl says service "modbus"; packet counts agree."""
    flows = [m.groups() for line in (TRACES / "ndpi" / "modbus.pcap.out").read_text().splitlines()
             if (m := _NDPI_FLOW.match(line))]  # fmt: skip
    conns = {(c["id.orig_h"], c["id.orig_p"], c["id.resp_h"], c["id.resp_p"]): c
             for c in replay("ndpi/modbus.pcap").rows("conn")}  # fmt: skip
    assert len(flows) == len(conns) == 1
    for proto, a, ap, b, bp, name, a_pkts, b_pkts in flows:
        conn = conns.get((a, int(ap), b, int(bp)))
        if conn is None:  # nDPI names the client first; a flipped connection of ours has it as responder
            conn = conns[(b, int(bp), a, int(ap))]
            a_pkts, b_pkts = b_pkts, a_pkts
        assert conn["proto"] == proto.lower()
        assert (conn.get("service") == "modbus") == ("Modbus" in name.split(".")), name
        assert (conn["orig_pkts"], conn["resp_pkts"]) == (int(a_pkts), int(b_pkts))
