"""The MQTT detail-log fast path (`mqtt_logs.log_lines`) gives exactly the bytes the general path gives
(`log_rows` of the event's row, encoded as the JSONL writer does), on every MQTT event of the test traces and of a
seeded mixed capture."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.capture.pcapfile import PcapReader
from appliance.config import Config
from appliance.export.jsonl import JsonlLogs, _dumps
from appliance.pipeline import Pipeline
from protocols.base import ProtocolEvent
from protocols.mqtt import MqttDecoder
from protocols.mqtt_logs import log_lines, log_rows
from simulators.mixed_capture import write_mixed_capture

TRACES = Path(__file__).resolve().parents[1] / "traces"
MQTT_TRACES = sorted(
    [*TRACES.glob("suricata/mqtt/*/input.pcap"), *TRACES.glob("arkime/mqtt*.pcap"), *TRACES.glob("ndpi/*mqtt*.pcap")]
)


def mqtt_events(pcap: Path, tmp: Path) -> list[ProtocolEvent]:
    """Every MQTT event the real pipeline decodes from a capture."""
    pipeline = Pipeline(Config(), None, decoders=[MqttDecoder])
    events: list[ProtocolEvent] = []
    handle = pipeline._on_event

    def keep(ev: ProtocolEvent) -> None:
        events.append(ev)
        handle(ev)

    pipeline.flows._on_event = keep
    with PcapReader(pcap) as reader:
        pipeline.run(reader)
    pipeline.finish()
    return [e for e in events if e.protocol == "mqtt"]


def check(events: list[ProtocolEvent], writer: JsonlLogs) -> int:
    """Compare fast and general paths on each event; the number of events the fast path took."""
    taken = 0
    for ev in events:
        lines = log_lines(ev)
        if lines is None:
            continue
        taken += 1
        expected = [(log, _dumps(row) + b"\n", 1) for log, row in log_rows(writer.event_row(ev)[1])]
        assert lines == expected, (ev.op, ev.kind, ev.fields)
    return taken


@pytest.mark.parametrize("pcap", MQTT_TRACES, ids=lambda p: str(p.relative_to(TRACES)))
def test_fast_lines_equal_general_rows_on_the_traces(pcap: Path, tmp_path: Path) -> None:
    check(mqtt_events(pcap, tmp_path), JsonlLogs(tmp_path))


def test_fast_lines_on_a_mixed_capture_take_most_events(tmp_path: Path) -> None:
    write_mixed_capture(tmp_path / "mix.pcap", packets=20_000, seed=3)
    events = mqtt_events(tmp_path / "mix.pcap", tmp_path)
    taken = check(events, JsonlLogs(tmp_path))
    assert len(events) > 1000 and taken > 0.95 * len(events)
    assert len(MQTT_TRACES) >= 35
