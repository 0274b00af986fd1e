"""The FlowTable's frame fast path gives exactly what the Dissector and `FlowTable.process` give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appliance.capture.pcapfile import PcapReader
from appliance.config import Config
from appliance.flow_frames import raw_key
from appliance.flows import FlowTable
from appliance.model import Flow, ProtocolEvent
from appliance.pipeline import Pipeline
from simulators.mixed_capture import write_mixed_capture

TRACES = Path(__file__).parent / "traces"


class _Recorder(Pipeline):
    """A pipeline without logs that keeps every event and conn record it hands on, in order."""

    def __init__(self, fast: bool) -> None:
        super().__init__(Config(), None)
        self.seen: list[ProtocolEvent | Flow] = []
        if not fast:  # every frame through the Dissector and FlowTable.process
            self.flows.frame = lambda ts, data: False  # type: ignore[method-assign]

    def _on_event(self, ev: ProtocolEvent) -> None:
        self.seen.append(ev)
        super()._on_event(ev)

    def _on_flow(self, flow: Flow) -> None:
        self.seen.append(flow)
        super()._on_flow(flow)


def _replay(frames: list[Any], fast: bool) -> tuple[list[str], Any, Any]:
    pipe = _Recorder(fast)
    pipe.flows._on_event = pipe._on_event
    pipe.flows._on_flow = pipe._on_flow
    pipe.run(iter(frames))
    pipe.finish()
    return [repr(x) for x in pipe.seen], pipe.inventory.snapshot(), pipe.stats.snapshot()


@pytest.mark.parametrize(
    "trace", ["zeek/modbusBig.pcap", "hilti/rpm.pcap", "suricata/mqtt/mqtt-midstream-split/mqtt-midstream-split.pcap",
              "ndpi/coap_mqtt.pcap", "icsst/mb2.pcap"],
)
def test_fast_path_matches_the_dissector_path_on_traces(trace: str) -> None:
    frames = list(PcapReader(TRACES / trace))
    fast = _replay(frames, True)
    slow = _replay(frames, False)
    assert fast[0] and fast[0] == slow[0]
    assert fast[1] == slow[1]
    assert fast[2] == slow[2]


def test_fast_path_matches_the_dissector_path_on_a_mixed_capture(tmp_path: Path) -> None:
    pcap = tmp_path / "mixed.pcap"
    write_mixed_capture(pcap, packets=6000, seed=5, hosts=40)
    frames = list(PcapReader(pcap))
    fast = _replay(frames, True)
    slow = _replay(frames, False)
    assert len(fast[0]) > 1000
    assert fast == slow


def test_fast_path_takes_the_known_flows_and_leaves_the_rest(tmp_path: Path) -> None:
    pcap = tmp_path / "mixed.pcap"
    write_mixed_capture(pcap, packets=3000, seed=2, hosts=40)
    pipe = Pipeline(Config(), None)
    table: FlowTable = pipe.flows
    taken = 0
    for _linktype, ts, data, wire_len in PcapReader(pcap):
        if table.frame(ts, data):
            taken += 1
        else:
            pkt = pipe.dissector.dissect(1, ts, data, wire_len)
            if pkt is not None:
                table.process(pkt)
    assert 2000 < taken < 3000  # most frames, but never a connection's first one
    assert len(table._fast_tcp) + len(table._fast_udp) == 2 * table.live
    table.flush()
    assert not table._fast_tcp and not table._fast_udp


def test_raw_key_is_the_frame_bytes_of_an_ipv4_tuple() -> None:
    assert raw_key("10.0.0.1", 502, "10.0.0.2", 40000) == bytes([10, 0, 0, 1, 10, 0, 0, 2, 1, 246, 156, 64])
    assert raw_key("fe80::1", 502, "fe80::2", 40000) is None
    assert raw_key("02:00:00:00:00:01", 130, "02:00:00:00:00:02", 130) is None
