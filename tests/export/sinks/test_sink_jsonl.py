"""The JSON-lines file sink: rotation by size and by age across several files, every line intact, `keep` honoured."""

from __future__ import annotations

import json
import time
from pathlib import Path

from sinkkit import make_alert

from appliance.export.sinks.fanout import SinkSet
from appliance.export.sinks.jsonl_file import JsonlFileSink, RotatingLines
from appliance.export.sinks.settings import JsonlSinkSettings


def _files(path: Path) -> list[Path]:
    """The current file and its rotated ones, oldest first."""
    rotated = sorted(path.parent.glob(f"{path.name}.*"), key=lambda p: -int(p.suffix[1:]))
    return [*rotated, path] if path.exists() else rotated


def _sink(path: Path, clock: list[float] | None = None, **settings: object) -> tuple[SinkSet, JsonlFileSink]:
    cfg = JsonlSinkSettings.model_validate({"type": "jsonl", "path": str(path), "sensor": "edge-1", **settings})
    now = clock if clock is not None else [0.0]
    sink = JsonlFileSink("jsonl-0", cfg, version="0", log=print, clock=lambda: now[0])
    return SinkSet([(cfg, sink)]), sink


def test_rotation_by_size_keeps_every_line_whole(tmp_path: Path) -> None:
    path = tmp_path / "fwd" / "alerts.jsonl"
    sinks, sink = _sink(path, max_bytes=4096, keep=50)
    alerts = [make_alert(i) for i in range(60)]
    for a in alerts:
        sinks.publish_alert(a)
    sinks.close(time.monotonic())
    files = _files(path)
    assert len(files) >= 5 and sink.lines.rotations == len(files) - 1
    rows = []
    for f in files:
        data = f.read_bytes()
        assert len(data) <= 4096 and data.endswith(b"\n")  # never past the bound, never a split line
        rows += [json.loads(line) for line in data.splitlines()]
    assert [r["alert"] for r in rows] == [json.loads(json.dumps(a.to_dict(), default=sorted)) for a in alerts]
    assert sinks.health()[0].sent == 60 and sinks.health()[0].failed == 0


def test_keep_bounds_the_rotated_files_dropping_the_oldest(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    lines = RotatingLines(path, max_bytes=10, max_age=0, keep=3)
    for i in range(8):
        lines.write(b"line %d...\n" % i)  # 10 bytes: one per file
    lines.close()
    assert [p.name for p in _files(path)] == ["a.jsonl.3", "a.jsonl.2", "a.jsonl.1", "a.jsonl"]
    assert [p.read_bytes() for p in _files(path)] == [b"line %d...\n" % i for i in range(4, 8)]


def test_a_line_longer_than_max_bytes_gets_a_file_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    lines = RotatingLines(path, max_bytes=8, max_age=0, keep=5)
    for line in (b"abc\n", b"0123456789abcdef\n", b"xyz\n"):
        lines.write(line)
    lines.close()
    assert [p.read_bytes() for p in _files(path)] == [b"abc\n", b"0123456789abcdef\n", b"xyz\n"]


def test_rotation_by_age(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    clock = [1000.0]
    sinks, _ = _sink(path, clock, max_bytes=0, max_age=60, keep=5)
    for i in range(6):  # two records a minute: 3 files of 2 lines
        clock[0] = 1000.0 + i * 30
        sinks.publish_alert(make_alert(i))
    sinks.close(time.monotonic())
    assert [len(p.read_text().splitlines()) for p in _files(path)] == [2, 2, 2]


def test_appends_to_an_existing_file_and_counts_write_errors(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"old":1}\n')
    sinks, sink = _sink(path, max_bytes=0)
    sinks.publish_alert(make_alert(1))
    assert path.read_text().splitlines()[0] == '{"old":1}' and len(path.read_text().splitlines()) == 2
    sink.lines.close()
    path.unlink()
    path.mkdir()  # the path is now a directory: the next write fails and is counted
    sinks.publish_alert(make_alert(2))
    assert (sinks.health()[0].sent, sinks.health()[0].failed, sinks.health()[0].connected) == (1, 1, False)
    sinks.close(time.monotonic())


def test_ecs_lines(tmp_path: Path) -> None:
    path = tmp_path / "ecs.jsonl"
    sinks, _ = _sink(path, format="ecs")
    sinks.publish_alert(make_alert(1))
    sinks.close(time.monotonic())
    doc = json.loads(path.read_text())
    assert doc["event"]["kind"] == "alert" and doc["observer"]["name"] == "edge-1"
