"""JSON-lines logs, one file per concern, with Zeek's field names: conn, <protocol>, weird, assets.

Row layout of a protocol event (`modbus.jsonl`): `ts uid id.orig_h id.orig_p id.resp_h id.resp_p src dst proto
op kind`, then the event's fields at top level. A nested dict becomes dotted names (`objects.vendor_name`), as
Zeek names record fields; bytes are hex; sets are sorted lists. A field that would overwrite a base name is
written as `<protocol>.<name>`. Absent values (no flow, no service, a field that is None) are left out, as
Zeek's JSON writer does.
Weird events go to `weird.jsonl` with weird.log's names (`name addl notice source`), plus src/dst.
Rows depend only on the input (insertion order of fields is kept), so a replay gives the same bytes.

Speed: rows are encoded with orjson (about ten times faster than the stdlib encoder on these rows) straight to
binary buffered files; `event_row` builds the row dict that is encoded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import orjson

from appliance.alert import Alert
from appliance.model import WEIRD, Asset, Flow, FlowId, ProtocolEvent

BUFFER_SIZE = 1 << 20

_BASE = frozenset(
    ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "src", "dst", "is_orig", "proto", "op", "kind")
)
_ODD = frozenset({type(None), dict})  # field value types a row cannot take as they are (left out, dotted)
_WEIRD_BASE = _BASE | {"name", "addl", "notice", "source"}


def json_default(value: Any) -> Any:
    """JSON rendering of the non-JSON types fields may hold."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, set | frozenset):
        try:
            return sorted(value)
        except TypeError:
            return sorted(value, key=repr)
    return str(value)


# A protocol's detail-log splitter: one main-log row in, (log name, row) pairs out (e.g. ICSNPP's BACnet logs).
DetailRows = Callable[[dict[str, Any]], list[tuple[str, dict[str, Any]]]]
# The same rows straight from the event, already encoded, for speed: (log name, lines, number of lines), the lines
# exactly what encoding each row gives, newline ended (one or several rows of one log); None to leave the event to
# the DetailRows splitter. The writer calls it only for an event whose row is exactly its base and its fields (no
# field unset, nested or named as a base name).
DetailLines = Callable[[ProtocolEvent], list[tuple[str, bytes, int]] | None]
HEAD_CACHE = 8192  # encoded row bases kept (per flow direction); a full cache is emptied and fills again
_OPTIONS = orjson.OPT_NON_STR_KEYS


def _dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON of `obj` (bytes as hex, sets as sorted lists, other odd types as text)."""
    try:  # str keys only: the same bytes as with OPT_NON_STR_KEYS, which costs about twice as much
        return orjson.dumps(obj, default=json_default)
    except orjson.JSONEncodeError:
        pass
    try:
        return orjson.dumps(obj, default=json_default, option=_OPTIONS)
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits: the stdlib encoder takes anything
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=json_default)
        return text.encode("utf-8", "surrogatepass")


def _put(row: dict[str, Any], name: str, value: Any, base: frozenset[str], protocol: str) -> None:
    if type(value) is dict:
        for sub, subvalue in value.items():
            _put(row, f"{name}.{sub}", subvalue, base, protocol)
        return
    if name in base or name in row:
        name = f"{protocol}.{name}"
    row[name] = value


class JsonlLogs:
    """Buffered JSON-lines writers under one directory, opened on first use, flushed on close()."""

    def __init__(
        self,
        out_dir: Path,
        *,
        truncate: bool = False,
        detail_logs: Mapping[str, DetailRows] | None = None,
        detail_lines: Mapping[str, DetailLines] | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.detail_logs = dict(detail_logs or {})  # protocol -> rows for its detail logs (ICSNPP's split)
        # protocol -> the same rows encoded (tried first; only for a protocol that has DetailRows too)
        self.detail_lines = {k: v for k, v in (detail_lines or {}).items() if k in self.detail_logs}
        self._heads: dict[tuple[int, bool, str, str, str, str], tuple[FlowId, bytes]] = {}
        self._mode = "w" if truncate else "a"
        self._files: dict[str, IO[bytes]] = {}
        self.rows: dict[str, int] = {}  # rows written per log since this object was made

    def _file(self, name: str) -> IO[bytes]:
        f = self._files.get(name)
        if f is None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            path = self.out_dir / f"{name}.jsonl"
            f = open(path, self._mode + "b", buffering=BUFFER_SIZE)  # noqa: SIM115
            self._files[name] = f
            self.rows.setdefault(name, 0)
        return f

    def _write(self, name: str, row: dict[str, Any]) -> None:
        self._file(name).write(_dumps(row) + b"\n")
        self.rows[name] += 1

    def event_row(self, ev: ProtocolEvent) -> tuple[str, dict[str, Any]]:
        """The log name and the row for one protocol event."""
        flow = ev.flow
        fields = ev.fields
        if flow is not None and ev.kind != WEIRD:  # the common case: the base of the row in one literal
            row: dict[str, Any] = {
                "ts": ev.ts, "uid": flow.uid, "id.orig_h": flow.orig_h, "id.orig_p": flow.orig_p,
                "id.resp_h": flow.resp_h, "id.resp_p": flow.resp_p, "src": ev.src, "dst": ev.dst,
                "is_orig": ev.is_orig, "proto": flow.proto, "op": ev.op, "kind": ev.kind,
            }  # fmt: skip
            return self._add_fields(row, fields, ev.protocol)
        row = {"ts": ev.ts}
        if flow is not None:
            row["uid"] = flow.uid
            row["id.orig_h"] = flow.orig_h
            row["id.orig_p"] = flow.orig_p
            row["id.resp_h"] = flow.resp_h
            row["id.resp_p"] = flow.resp_p
        protocol = ev.protocol
        if ev.kind == WEIRD:
            row["name"] = fields.get("name", ev.op)
            row["addl"] = fields.get("addl", "")
            row["notice"] = False
            row["source"] = protocol
            row["src"] = ev.src
            row["dst"] = ev.dst
            if flow is not None:
                row["proto"] = flow.proto
            for key, value in fields.items():
                if key != "name" and key != "addl":
                    _put(row, key, value, _WEIRD_BASE, protocol)
            return "weird", row
        row["src"] = ev.src
        row["dst"] = ev.dst
        row["is_orig"] = ev.is_orig
        if flow is not None:
            row["proto"] = flow.proto
        row["op"] = ev.op
        row["kind"] = ev.kind
        return self._add_fields(row, fields, protocol)

    @staticmethod
    def _add_fields(row: dict[str, Any], fields: dict[str, Any], protocol: str) -> tuple[str, dict[str, Any]]:
        """Put an event's fields after the base names: unset ones left out, nested ones dotted, clashes renamed."""
        values = fields.values()
        if _BASE.isdisjoint(fields) and None not in values and dict not in map(type, values):
            row.update(fields)  # the common case, checked and copied in C
            return protocol, row
        for key, value in fields.items():
            if value is None:  # unset: left out, as Zeek's JSON writer does
                continue
            if key in row or key in _BASE or type(value) is dict:
                _put(row, key, value, _BASE, protocol)
            else:
                row[key] = value
        return protocol, row

    def event_line(self, ev: ProtocolEvent) -> tuple[str, bytes]:
        """The log name and the encoded JSON (no newline) of one event."""
        name, row = self.event_row(ev)
        return name, _dumps(row)

    def _event_head(self, ev: ProtocolEvent, flow: FlowId, key: tuple[int, bool, str, str, str, str]) -> bytes:
        """The encoded row base after `ts` (`,"uid":...,"kind":"request"`), kept per flow direction and op."""
        base = {
            "uid": flow.uid, "id.orig_h": flow.orig_h, "id.orig_p": flow.orig_p, "id.resp_h": flow.resp_h,
            "id.resp_p": flow.resp_p, "src": ev.src, "dst": ev.dst, "is_orig": ev.is_orig, "proto": flow.proto,
            "op": ev.op, "kind": ev.kind,
        }  # fmt: skip
        head = b"," + orjson.dumps(base, default=json_default)[1:-1]
        heads = self._heads
        if len(heads) >= HEAD_CACHE:
            heads.clear()
        heads[key] = (flow, head)  # (the flow is kept with it: its id is not reused meanwhile)
        return head

    def _plain_line(self, ev: ProtocolEvent, flow: FlowId) -> bytes | None:
        """The encoded row of an event whose fields are all plain (none unset, nested or named as a base name, and
        str keys only), else None. The fields are encoded on their own and joined to the cached encoding of the
        base: the same bytes as encoding the row."""
        fields = ev.fields
        is_orig = ev.is_orig
        if (not _BASE.isdisjoint(fields) or not _ODD.isdisjoint(map(type, fields.values()))
                or (is_orig is not True and is_orig is not False)):  # (1 would find the base cached for True)
            return None
        try:
            encoded = orjson.dumps(fields, default=json_default)
            ts = orjson.dumps(ev.ts, default=json_default)
            key = (id(flow), is_orig, ev.src, ev.dst, ev.op, ev.kind)
            kept = self._heads.get(key)
            head = kept[1] if kept is not None and kept[0] is flow else self._event_head(ev, flow, key)
        except TypeError:  # orjson.JSONEncodeError (no plain JSON value), or an unhashable base value
            return None
        if len(encoded) == 2:  # no fields
            return b"".join((b'{"ts":', ts, head, b"}\n"))
        return b"".join((b'{"ts":', ts, head, b",", encoded[1:], b"\n"))

    def write_event(self, ev: ProtocolEvent) -> None:
        """Log an event to `<protocol>.jsonl` (`weird.jsonl` for a weird), and to its protocol's detail logs."""
        flow = ev.flow
        line = None
        if flow is not None and ev.kind != WEIRD:
            line = self._plain_line(ev, flow)
        files = self._files
        counts = self.rows
        if line is not None:  # the row is exactly the base and the fields
            name = ev.protocol
            (files.get(name) or self._file(name)).write(line)
            counts[name] += 1
            split = self.detail_logs.get(name)
            if split is None:
                return
            encoded = self.detail_lines.get(name)
            lines = encoded(ev) if encoded is not None else None
            if lines is None:
                lines = [(log, _dumps(detail) + b"\n", 1) for log, detail in split(self.event_row(ev)[1])]
        else:
            name, row = self.event_row(ev)
            (files.get(name) or self._file(name)).write(_dumps(row) + b"\n")
            counts[name] += 1
            split = self.detail_logs.get(name)
            if split is None:
                return
            lines = [(log, _dumps(detail) + b"\n", 1) for log, detail in split(row)]
        for log, text, n in lines:
            (files.get(log) or self._file(log)).write(text)
            counts[log] += n

    @staticmethod
    def flow_row(flow: Flow) -> dict[str, Any]:
        """A conn.log row with Zeek's names (mac-logging and vlan-logging fields when known)."""
        fid = flow.id
        row: dict[str, Any] = {
            "ts": flow.ts,
            "uid": fid.uid,
            "id.orig_h": fid.orig_h,
            "id.orig_p": fid.orig_p,
            "id.resp_h": fid.resp_h,
            "id.resp_p": fid.resp_p,
            "proto": fid.proto,
        }
        if flow.service:
            row["service"] = flow.service
        if flow.duration > 0:  # as Zeek: duration and byte counts are unset for a zero-length connection
            row["duration"] = flow.duration
            row["orig_bytes"] = flow.orig_bytes
            row["resp_bytes"] = flow.resp_bytes
        row["conn_state"] = flow.conn_state
        row["missed_bytes"] = flow.missed_bytes
        row["history"] = flow.history
        row["orig_pkts"] = flow.orig_pkts
        row["orig_ip_bytes"] = flow.orig_ip_bytes
        row["resp_pkts"] = flow.resp_pkts
        row["resp_ip_bytes"] = flow.resp_ip_bytes
        if flow.orig_mac:
            row["orig_l2_addr"] = flow.orig_mac
        if flow.resp_mac:
            row["resp_l2_addr"] = flow.resp_mac
        if flow.vlans:
            row["vlan"] = flow.vlans[0]
            if len(flow.vlans) > 1:
                row["inner_vlan"] = flow.vlans[1]
        return row

    def write_flow(self, flow: Flow) -> None:
        """Log a finished connection to `conn.jsonl`."""
        self._write("conn", self.flow_row(flow))

    def write_alert(self, alert: Alert) -> None:
        """Log a detector's alert to `alerts.jsonl`, flushed at once (alerts are rare, and read as they come)."""
        self._write("alerts", alert.to_dict())
        self._files["alerts"].flush()

    def write_assets(self, assets: Iterable[Asset]) -> None:
        """Log the given assets to `assets.jsonl`, one row each (`Asset.to_dict()`)."""
        for asset in assets:
            self._write("assets", asset.to_dict())

    def flush(self) -> None:
        """Push buffered rows to the files."""
        for f in self._files.values():
            f.flush()

    def close(self) -> None:
        """Flush and close every file; a later write opens the file again (appending)."""
        files, self._files = self._files, {}
        self._mode = "a"
        for f in files.values():
            f.close()

    def __enter__(self) -> JsonlLogs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
