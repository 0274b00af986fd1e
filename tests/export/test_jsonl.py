"""JSONL logs: Zeek's field names, one file per concern, exact and deterministic rows."""

from __future__ import annotations

import json
from pathlib import Path

import orjson

from appliance.export.jsonl import JsonlLogs, _dumps, json_default
from appliance.model import Asset, Attribute, Flow, FlowId, ProtocolEvent, Role
from protocols.base import weird

TRACES = Path(__file__).resolve().parent.parent / "traces"
F = FlowId("CHhAvVGS1DHFjwGM9", "192.168.2.42", 54297, "192.168.88.100", 502, "tcp")


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_modbus_request_and_response_rows(tmp_path: Path) -> None:
    logs = JsonlLogs(tmp_path)
    logs.write_event(
        ProtocolEvent(1.5, F, "modbus", "read_holding_registers", "request", True, F.orig_h, F.resp_h,
                      {"tid": 7, "unit": 1, "func": 3, "pdu_type": "request", "address": 100, "quantity": 2})
    )
    logs.write_event(
        ProtocolEvent(1.75, F, "modbus", "read_holding_registers", "response", False, F.resp_h, F.orig_h,
                      {"tid": 7, "unit": 1, "func": 3, "registers": [1, 65535], "raw": b"\x00\x01\xff"})
    )
    logs.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["modbus.jsonl"]
    assert _lines(tmp_path / "modbus.jsonl") == [
        '{"ts":1.5,"uid":"CHhAvVGS1DHFjwGM9","id.orig_h":"192.168.2.42","id.orig_p":54297,'
        '"id.resp_h":"192.168.88.100","id.resp_p":502,"src":"192.168.2.42","dst":"192.168.88.100","is_orig":true,'
        '"proto":"tcp","op":"read_holding_registers","kind":"request","tid":7,"unit":1,"func":3,"pdu_type":"request",'
        '"address":100,"quantity":2}',
        '{"ts":1.75,"uid":"CHhAvVGS1DHFjwGM9","id.orig_h":"192.168.2.42","id.orig_p":54297,'
        '"id.resp_h":"192.168.88.100","id.resp_p":502,"src":"192.168.88.100","dst":"192.168.2.42","is_orig":false,'
        '"proto":"tcp","op":"read_holding_registers","kind":"response","tid":7,"unit":1,"func":3,"registers":[1,65535],'
        '"raw":"0001ff"}',
    ]


def test_fields_are_flattened_without_overwriting_base_names(tmp_path: Path) -> None:
    logs = JsonlLogs(tmp_path)
    objects = {"vendor_name": "Schneider Electric", "product_code": "BMX P34 2020", "revision": "v2.7"}
    fields = {"unit": 1, "objects": objects, "src": "spoofed", "kind": "x", "units": {3, 1, 2},
              "blob": bytearray(b"\xde\xad")}
    op = "read_device_identification"
    ev = ProtocolEvent(2.0, F, "modbus", op, "response", False, F.resp_h, F.orig_h, fields)
    _, row = logs.event_row(ev)
    assert row["src"] == "192.168.88.100" and row["kind"] == "response"
    assert row["modbus.src"] == "spoofed" and row["modbus.kind"] == "x"
    assert row["objects.vendor_name"] == "Schneider Electric"
    assert row["objects.revision"] == "v2.7"
    assert "objects" not in row
    logs.write_event(ev)
    logs.close()
    written = json.loads(_lines(tmp_path / "modbus.jsonl")[0])
    assert written["units"] == [1, 2, 3] and written["blob"] == "dead"


def test_weird_rows_use_weird_log_names(tmp_path: Path) -> None:
    logs = JsonlLogs(tmp_path)
    logs.write_event(weird(F, "modbus", "modbus_bad_length", 3.0, False, addl="len=2", tid=9))
    logs.write_event(weird(None, "modbus", "modbus_no_flow", 4.0, True))
    logs.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weird.jsonl"]
    assert _lines(tmp_path / "weird.jsonl") == [
        '{"ts":3.0,"uid":"CHhAvVGS1DHFjwGM9","id.orig_h":"192.168.2.42","id.orig_p":54297,'
        '"id.resp_h":"192.168.88.100","id.resp_p":502,"name":"modbus_bad_length","addl":"len=2","notice":false,'
        '"source":"modbus","src":"192.168.88.100","dst":"192.168.2.42","proto":"tcp","tid":9}',
        '{"ts":4.0,"name":"modbus_no_flow","addl":"","notice":false,"source":"modbus","src":"","dst":""}',
    ]


def _flow(**kw: object) -> Flow:
    base: dict[str, object] = dict(
        id=F, ts=1.25, duration=0.022532, service="modbus", orig_bytes=11, resp_bytes=18, conn_state="OTH",
        missed_bytes=0, history="Dd", orig_pkts=1, orig_ip_bytes=51, resp_pkts=1, resp_ip_bytes=58,
    )
    base.update(kw)
    return Flow(**base)  # type: ignore[arg-type]


def test_conn_rows_have_zeeks_names_and_order(tmp_path: Path) -> None:
    logs = JsonlLogs(tmp_path)
    logs.write_flow(_flow(orig_mac="00:1d:9c:00:00:05", resp_mac="00:80:f4:00:00:01", vlans=(100, 7)))
    logs.write_flow(
        _flow(duration=0.0, service=None, conn_state="S0", history="S", resp_pkts=0, resp_ip_bytes=0)
    )
    logs.close()
    rows = [json.loads(line) for line in _lines(tmp_path / "conn.jsonl")]
    assert list(rows[0]) == [
        "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service", "duration",
        "orig_bytes", "resp_bytes", "conn_state", "missed_bytes", "history", "orig_pkts", "orig_ip_bytes",
        "resp_pkts", "resp_ip_bytes", "orig_l2_addr", "resp_l2_addr", "vlan", "inner_vlan",
    ]
    assert rows[0]["vlan"] == 100 and rows[0]["inner_vlan"] == 7 and rows[0]["duration"] == 0.022532
    # Zeek leaves service, duration and byte counts unset for a zero-length connection; JSON omits them
    assert "service" not in rows[1] and "duration" not in rows[1] and "orig_bytes" not in rows[1]
    assert rows[1]["conn_state"] == "S0" and rows[1]["resp_pkts"] == 0


def test_conn_names_match_zeeks_conn_log_header() -> None:
    header = next(
        line for line in _lines(TRACES / "peers/zeek/scripts.base.protocols.modbus.events/conn-second.log")
        if line.startswith("#fields")
    )
    zeek_fields = header.split("\t")[1:]
    ours = list(JsonlLogs.flow_row(_flow()))
    assert ours == [name for name in zeek_fields if name in ours]
    assert set(ours) <= set(zeek_fields)


def test_assets_rows_round_trip(tmp_path: Path) -> None:
    asset = Asset(
        "a1b2c3d4e5f6", "10.1.2.10", "00:80:f4:00:00:01", 1.0, 2.0, category="PLC",
        category_rule="modbus-server", zone="cell-1", domain="OT", purdue_level=1.0,
        vendor=Attribute("Schneider Electric", "modbus/fc43", 0.9),
        protocols=("modbus",), roles=(Role("modbus", "server", (1,), ("10.1.3.5",)),),
        events_sent=(("modbus", "read", 4),),
    )
    with JsonlLogs(tmp_path) as logs:
        logs.write_assets([asset])
    rows = _lines(tmp_path / "assets.jsonl")
    assert len(rows) == 1
    assert Asset.from_dict(json.loads(rows[0])) == asset


def test_rows_are_deterministic_and_appended(tmp_path: Path) -> None:
    def run(out: Path) -> bytes:
        with JsonlLogs(out) as logs:
            for i in range(100):
                logs.write_event(
                    ProtocolEvent(float(i), F, "modbus", "read_coils", "request", True, F.orig_h, F.resp_h,
                                  {"tid": i, "unit": 1, "coils": {i, i + 1}})
                )
                logs.write_flow(_flow(ts=float(i)))
        return (out / "modbus.jsonl").read_bytes() + (out / "conn.jsonl").read_bytes()

    assert run(tmp_path / "a") == run(tmp_path / "b")
    logs = JsonlLogs(tmp_path / "a")
    logs.write_flow(_flow())
    logs.close()
    assert len(_lines(tmp_path / "a" / "conn.jsonl")) == 101
    logs = JsonlLogs(tmp_path / "a", truncate=True)
    logs.write_flow(_flow())
    logs.close()
    assert len(_lines(tmp_path / "a" / "conn.jsonl")) == 1
    assert logs.rows == {"conn": 1}


def test_rows_are_buffered_until_flush(tmp_path: Path) -> None:
    logs = JsonlLogs(tmp_path)
    logs.write_flow(_flow())
    assert (tmp_path / "conn.jsonl").read_text() == ""
    logs.flush()
    assert len(_lines(tmp_path / "conn.jsonl")) == 1
    logs.close()


def _plain_json(value: object) -> object:
    return value.hex() if isinstance(value, bytes) else sorted(value)  # type: ignore[call-overload]


def test_event_line_is_the_dict_row_encoded() -> None:
    logs = JsonlLogs(Path("/nonexistent"))  # nothing is written: no file is opened
    other = FlowId("Cother", "fe80::1", 1, "fe80::2", 502, "tcp")
    o, r = F.orig_h, F.resp_h
    events = [
        ProtocolEvent(1.0, F, "modbus", "read_coils", "request", True, o, r, {"tid": 1, "unit": 255}),
        ProtocolEvent(2.5, F, "modbus", "read_coils", "response", False, r, o, {}),
        ProtocolEvent(3.0, other, "modbus", "unknown-90", "request", True, other.orig_h, other.resp_h,
                      {"data": b"\x01\x02", "name": "Zähler \"1\"", "bits": frozenset({4, 2})}),
        ProtocolEvent(4.0, None, "mqtt", "publish", "request", True, "10.0.0.1", "10.0.0.2", {"t": "a/b"}),
        ProtocolEvent(5.0, F, "modbus", "x", "request", True, o, r, {"ts": 9, "objects": {"a": 1}}),
        ProtocolEvent(6.0, F, "modbus", "x", "request", True, o, r, {"big": 2**70, "f": 0.1}),
        ProtocolEvent(float("nan"), F, "modbus", "x", "request", True, o, r, {}),
        weird(F, "modbus", "modbus_bad_length", 7.0, True, addl="x"),
    ]
    for ev in events:
        name, row = logs.event_row(ev)
        expected = json.loads(json.dumps(row, default=_plain_json))
        if row["ts"] != row["ts"]:  # NaN is not JSON: written as null
            expected["ts"] = None
        line_name, line = logs.event_line(ev)
        assert line_name == name
        assert b"\n" not in line
        assert json.loads(line) == expected
    assert not Path("/nonexistent").exists()


def test_detail_logs_get_the_rows_a_protocol_splits_off(tmp_path: Path) -> None:
    def split(row: dict) -> list[tuple[str, dict]]:
        return [("toy_detail", {"uid": row["uid"], "n": n}) for n in row["items"]]

    logs = JsonlLogs(tmp_path, detail_logs={"toy": split})
    logs.write_event(ProtocolEvent(1.0, F, "toy", "op", "request", True, F.orig_h, F.resp_h, {"items": [1, 2]}))
    logs.write_event(ProtocolEvent(2.0, F, "modbus", "x", "request", True, F.orig_h, F.resp_h, {"items": [3]}))
    logs.close()
    assert len(_lines(tmp_path / "toy.jsonl")) == 1
    assert [json.loads(line) for line in _lines(tmp_path / "toy_detail.jsonl")] == [
        {"uid": F.uid, "n": 1},
        {"uid": F.uid, "n": 2},
    ]
    assert len(_lines(tmp_path / "modbus.jsonl")) == 1


def _general_line(ev: ProtocolEvent) -> bytes:
    """The reference encoding of an event's row: the dict row, encoded whole."""
    logs = JsonlLogs(Path("/nonexistent"))
    return _dumps(logs.event_row(ev)[1]) + b"\n"


def test_written_rows_are_the_encoded_dict_rows(tmp_path: Path) -> None:
    other = FlowId("Cother", "fe80::1", 1, "fe80::2", 502, "tcp")
    o, r = F.orig_h, F.resp_h
    events = [  # plain fields (the encoded-fields path), then every kind the general path must take
        ProtocolEvent(1.0, F, "modbus", "read_coils", "request", True, o, r, {"tid": 1, "unit": 255}),
        ProtocolEvent(1.5, F, "modbus", "read_coils", "request", True, o, r, {"tid": 2, "unit": 255}),
        ProtocolEvent(2.0, F, "modbus", "read_coils", "response", False, r, o, {}),
        ProtocolEvent(2.5, F, "modbus", "read_coils", "response", False, r, o, {"bits": [True, False], "f": 0.1}),
        ProtocolEvent(3.0, other, "modbus", "x", "request", True, other.orig_h, other.resp_h,
                      {"data": b"\x01\x02", "name": 'Zähler "1" :null :{', "set": frozenset({4, 2})}),
        ProtocolEvent(4.0, F, "modbus", "x", "request", True, o, r, {"unset": None, "after": 1}),
        ProtocolEvent(5.0, F, "modbus", "x", "request", True, o, r, {"objects": {"a": 1}, "z": [{"k": None}]}),
        ProtocolEvent(6.0, F, "modbus", "x", "request", True, o, r, {"src": "spoofed", "kind": "x"}),
        ProtocolEvent(7.0, F, "modbus", "x", "request", True, o, r, {"big": 2**70}),
        ProtocolEvent(8.0, F, "modbus", "x", "request", True, o, r, {"map": {1: "one"}, "rows": [{2: "two"}]}),
        ProtocolEvent(float("nan"), F, "modbus", "x", "request", True, o, r, {"a": 1}),
        ProtocolEvent(9.0, None, "modbus", "x", "request", True, "10.0.0.1", "10.0.0.2", {"a": 1}),
        ProtocolEvent(10.0, F, "modbus", "x", "request", True, o, r, {"a": 1}),  # the cached base again
        weird(F, "modbus", "modbus_bad_length", 11.0, True, addl="x"),
    ]
    logs = JsonlLogs(tmp_path)
    for ev in events:
        logs.write_event(ev)
    logs.close()
    expected = b"".join(_general_line(ev) for ev in events if ev.kind != "weird")
    assert (tmp_path / "modbus.jsonl").read_bytes() == expected
    assert (tmp_path / "weird.jsonl").read_bytes() == _general_line(events[-1])
    assert logs.rows == {"modbus": len(events) - 1, "weird": 1}


def test_dumps_is_the_same_with_and_without_string_keys_only() -> None:
    for obj in ({"a": 1, "b": [1.5, "x", None, {"c": True}]}, {"n": {1: "a"}}, [{"k": {2, 1}}], {"u": "é\u2028"}):
        assert _dumps(obj) == orjson.dumps(obj, default=json_default, option=orjson.OPT_NON_STR_KEYS)
    assert _dumps({"big": 2**70}) == b'{"big":1180591620717411303424}'


def test_detail_lines_are_preferred_to_rows_and_fall_back_to_them(tmp_path: Path) -> None:
    def split(row: dict) -> list[tuple[str, dict]]:
        return [("toy_detail", {"uid": row["uid"], "n": n}) for n in row["items"]]

    def lines(ev: ProtocolEvent) -> list[tuple[str, bytes, int]] | None:
        if ev.fields["items"] == [9]:
            return None  # leave it to the rows
        text = b"".join(_dumps({"uid": ev.flow.uid, "n": n}) + b"\n" for n in ev.fields["items"])  # type: ignore
        return [("toy_detail", text, len(ev.fields["items"]))]

    logs = JsonlLogs(tmp_path, detail_logs={"toy": split}, detail_lines={"toy": lines, "other": lines})
    assert set(logs.detail_lines) == {"toy"}  # encoded lines only for a protocol that has its rows too
    for ts, items in ((1.0, [1, 2]), (2.0, [9]), (3.0, [])):
        logs.write_event(ProtocolEvent(ts, F, "toy", "op", "request", True, F.orig_h, F.resp_h, {"items": items}))
    logs.write_event(ProtocolEvent(4.0, F, "toy", "op", "request", True, F.orig_h, F.resp_h,
                                   {"items": [3], "unset": None}))  # not plain: its row goes to the rows splitter
    logs.close()
    assert [json.loads(line)["n"] for line in _lines(tmp_path / "toy_detail.jsonl")] == [1, 2, 9, 3]
    assert logs.rows == {"toy": 4, "toy_detail": 4}


def test_odd_base_values_take_the_general_path(tmp_path: Path) -> None:
    o, r = F.orig_h, F.resp_h
    events = [
        ProtocolEvent(1.0, F, "modbus", "x", "request", True, o, r, {"a": 1}),
        ProtocolEvent(2.0, F, "modbus", "x", "request", 1, o, r, {"a": 2}),  # type: ignore[arg-type]
        ProtocolEvent(3.0, F, "modbus", "x", "request", True, o, ["not", "hashable"], {"a": 3}),  # type: ignore
        ProtocolEvent(4.0, F, "modbus", "x", "request", True, o, r, {"a": 4}),
    ]
    logs = JsonlLogs(tmp_path)
    for ev in events:
        logs.write_event(ev)
    logs.close()
    assert (tmp_path / "modbus.jsonl").read_bytes() == b"".join(_general_line(ev) for ev in events)
    assert b'"is_orig":1,' in (tmp_path / "modbus.jsonl").read_bytes()
