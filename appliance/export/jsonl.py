"""JSON-lines logs, one file per concern, with Zeek's field names: conn, <protocol>, weird, assets.

Row layout of a protocol event (`modbus.jsonl`): `ts uid id.orig_h id.orig_p id.resp_h id.resp_p src dst proto
op kind`, then the event's fields at top level. A nested dict becomes dotted names (`objects.vendor_name`), as
Zeek names record fields; bytes are hex; sets are sorted lists. A field that would overwrite a base name is
written as `<protocol>.<name>`. Absent values (no flow, no service) are left out, as Zeek's JSON writer does.
Weird events go to `weird.jsonl` with weird.log's names (`name addl notice source`), plus src/dst.
Rows depend only on the input (insertion order of fields is kept), so a replay gives the same bytes.

Speed: the stdlib C encoder is built once (JSONEncoder.encode builds one per call), and the flow part of an
event row (`uid` ... `proto`) is encoded once per (uid, src, dst) and cached; only `ts`, `op`, `kind` and the
fields are encoded per row. `event_row` builds the same row as a dict; a test holds the two to the same bytes.
"""

from __future__ import annotations

import json
import json.encoder
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from appliance.model import WEIRD, Asset, Flow, ProtocolEvent

BUFFER_SIZE = 1 << 20
_PREFIX_CACHE_MAX = 1 << 16

_BASE = frozenset(
    ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "src", "dst", "is_orig", "proto", "op", "kind")
)
_WEIRD_BASE = _BASE | {"name", "addl", "notice", "source"}


def _default(value: Any) -> Any:
    """JSON rendering of the non-JSON types fields may hold."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, set | frozenset):
        try:
            return sorted(value)
        except TypeError:
            return sorted(value, key=repr)
    return str(value)


def _make_dumps() -> Callable[[Any], str]:
    """One compact, non-ASCII-escaping JSON encoder, built once (the C one when available)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython has it
        return json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_default).encode
    # (markers, default, encoder, indent, key_separator, item_separator, sort_keys, skipkeys, allow_nan)
    encode = make(None, _default, json.encoder.encode_basestring, None, ":", ",", False, False, True)

    def dumps(obj: Any) -> str:
        """Compact JSON text of `obj`."""
        return "".join(encode(obj, 0))

    return dumps


_dumps = _make_dumps()


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

    def __init__(self, out_dir: Path, *, truncate: bool = False) -> None:
        self.out_dir = Path(out_dir)
        self._mode = "w" if truncate else "a"
        self._files: dict[str, IO[str]] = {}
        self._prefixes: dict[tuple[str | None, str, str, bool], str] = {}
        self._names: dict[str, str] = {}
        self.rows: dict[str, int] = {}  # rows written per log since this object was made

    def _file(self, name: str) -> IO[str]:
        f = self._files.get(name)
        if f is None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            path = self.out_dir / f"{name}.jsonl"
            f = open(path, self._mode, encoding="utf-8", buffering=BUFFER_SIZE)  # noqa: SIM115
            self._files[name] = f
            self.rows.setdefault(name, 0)
        return f

    def _write(self, name: str, row: dict[str, Any]) -> None:
        self._file(name).write(_dumps(row) + "\n")
        self.rows[name] += 1

    def event_row(self, ev: ProtocolEvent) -> tuple[str, dict[str, Any]]:
        """The log name and the row for one protocol event."""
        row: dict[str, Any] = {"ts": ev.ts}
        flow = ev.flow
        if flow is not None:
            row["uid"] = flow.uid
            row["id.orig_h"] = flow.orig_h
            row["id.orig_p"] = flow.orig_p
            row["id.resp_h"] = flow.resp_h
            row["id.resp_p"] = flow.resp_p
        fields = ev.fields
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
        for key, value in fields.items():
            if key in row or key in _BASE or type(value) is dict:
                _put(row, key, value, _BASE, protocol)
            else:
                row[key] = value
        return protocol, row

    def event_line(self, ev: ProtocolEvent) -> tuple[str, str]:
        """The log name and the JSON text (no newline) of one event: `event_row` encoded, but faster."""
        fields = ev.fields
        if ev.kind == WEIRD or type(ev.ts) is not float or not math.isfinite(ev.ts):
            name, row = self.event_row(ev)
            return name, _dumps(row)
        for key, value in fields.items():
            if key in _BASE or type(value) is dict:
                name, row = self.event_row(ev)
                return name, _dumps(row)
        flow = ev.flow
        key3 = (flow.uid if flow is not None else None, ev.src, ev.dst, ev.is_orig)
        prefix = self._prefixes.get(key3)
        if prefix is None:
            base: dict[str, Any] = {}
            if flow is not None:
                base = {"uid": flow.uid, "id.orig_h": flow.orig_h, "id.orig_p": flow.orig_p,
                        "id.resp_h": flow.resp_h, "id.resp_p": flow.resp_p}
            base["src"] = ev.src
            base["dst"] = ev.dst
            base["is_orig"] = ev.is_orig
            if flow is not None:
                base["proto"] = flow.proto
            if len(self._prefixes) >= _PREFIX_CACHE_MAX:
                self._prefixes.clear()
            prefix = self._prefixes[key3] = _dumps(base)[1:-1]
        names = self._names
        op = names.get(ev.op)
        if op is None:
            op = names[ev.op] = _dumps(ev.op)
        kind = names.get(ev.kind)
        if kind is None:
            kind = names[ev.kind] = _dumps(ev.kind)
        tail = _dumps(fields)
        sep = "," if len(tail) > 2 else ""
        return ev.protocol, f'{{"ts":{ev.ts!r},{prefix},"op":{op},"kind":{kind}{sep}{tail[1:]}'

    def write_event(self, ev: ProtocolEvent) -> None:
        """Log a protocol event to `<protocol>.jsonl`, or to `weird.jsonl` when it is a weird."""
        name, line = self.event_line(ev)
        f = self._files.get(name) or self._file(name)
        f.write(line + "\n")
        self.rows[name] += 1

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
