"""The inventory's repeat memo changes nothing: the same assets as the full path on every event."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.capture.pcapfile import PcapReader
from appliance.config import Config
from appliance.inventory import AssetInventory
from appliance.model import Flow, ProtocolEvent
from appliance.pipeline import Pipeline, op_class, zone_map
from protocols.base import EXCEPTION, REQUEST, RESPONSE, FlowId
from simulators.mixed_capture import write_mixed_capture

TRACES = Path(__file__).parent / "traces"


def _inputs(pcap: Path) -> list[ProtocolEvent | Flow]:
    """Every event and conn record of a capture, in the order the pipeline hands them on."""
    seen: list[ProtocolEvent | Flow] = []
    pipe = Pipeline(Config(), None)
    pipe.flows._on_event = seen.append
    pipe.flows._on_flow = seen.append
    pipe.run(iter(PcapReader(pcap)))
    pipe.finish()
    return seen


def _inventories() -> tuple[AssetInventory, AssetInventory, list[int]]:
    """An inventory with its memo, one without, and a counter of memo hits."""
    memo = AssetInventory(zone_map(Config()), op_class=op_class)
    full = AssetInventory(zone_map(Config()), op_class=op_class)
    full._repeats.hit = lambda ev: False  # type: ignore[method-assign]
    hits = [0]
    hit = memo._repeats.hit

    def counting(ev: ProtocolEvent) -> bool:
        done = hit(ev)
        hits[0] += done
        return done

    memo._repeats.hit = counting  # type: ignore[method-assign]
    return memo, full, hits


def _feed(inv: AssetInventory, inputs: list[ProtocolEvent | Flow]) -> None:
    for item in inputs:
        if isinstance(item, Flow):
            inv.on_flow(item)
        else:
            inv.on_event(item)


@pytest.mark.parametrize(
    "trace", ["hilti/read-properties.pcap", "hilti/rpm.pcap", "hilti/who-is-i-am.pcap",
              "icsnpp/bacnet_segmented_data.pcap", "zeek/modbusBig.pcap", "icsst/modbus_test.pcap",
              "arkime/mqtt_big.pcap", "arkime/mqtt_synthetic.pcap", "ndpi/coap_mqtt.pcap"],
)
def test_memo_gives_the_assets_of_the_full_path(trace: str) -> None:
    inputs = _inputs(TRACES / trace)
    memo, full, _hits = _inventories()
    _feed(memo, inputs)
    _feed(full, inputs)
    assert memo.snapshot() == full.snapshot()
    assert memo.snapshot()


def test_memo_on_a_mixed_capture(tmp_path: Path) -> None:
    pcap = tmp_path / "mixed.pcap"
    write_mixed_capture(pcap, packets=6000, seed=9, hosts=40)
    inputs = _inputs(pcap)
    memo, full, hits = _inventories()
    _feed(memo, inputs)
    _feed(full, inputs)
    assert hits[0] > 1000  # the polls repeat
    assert memo.snapshot() == full.snapshot()


def _bacnet(ts: float, kind: str, **fields: object) -> ProtocolEvent:
    flow = FlowId("C1", "10.0.0.1", 47808, "10.0.0.2", 47808, "udp")
    src, dst = ("10.0.0.1", "10.0.0.2") if kind == REQUEST else ("10.0.0.2", "10.0.0.1")
    base = {"bvlc_function": "Original_Unicast_NPDU", "pdu_type": "ERROR_PDU", "invoke_id": 1}
    return ProtocolEvent(ts, flow, "bacnet", "read_property", kind, kind == REQUEST, src, dst, {**base, **fields})


def test_a_routed_event_is_not_a_repeat_of_a_plain_one() -> None:
    # the same sender, receiver, op and kind, but the second answer comes from a device behind the router
    inputs: list[ProtocolEvent | Flow] = [
        _bacnet(1.0, REQUEST, object_type="analog-input", instance_number=1),
        _bacnet(1.1, EXCEPTION),
        _bacnet(1.2, EXCEPTION),
        _bacnet(1.3, EXCEPTION, snet=5, sadr="0a"),
        _bacnet(1.35, EXCEPTION),
        _bacnet(1.4, REQUEST, object_type="device", instance_number=0),
        _bacnet(1.5, REQUEST, object_type="device", instance_number=0),
        _bacnet(1.6, REQUEST, object_type="analog-input", instance_number=0),
    ]
    memo, full, hits = _inventories()
    _feed(memo, inputs)
    _feed(full, inputs)
    # remembered: the second plain exception and the first read of device 0 (the senders were assets by then);
    # repeats: the plain exception after the routed one, and the second read of device 0 (not the read of
    # analog-input 0, whose key differs)
    assert hits[0] == 2
    assert memo.snapshot() == full.snapshot()
    routed = [a for a in memo.snapshot() if a.bacnet_network == 5]
    assert routed and routed[0].events_sent == (("bacnet", "read", 1),)


def test_a_multiple_read_ack_with_device_properties_is_never_a_repeat() -> None:
    # ReadPropertyMultiple ACKs of analog inputs repeat (memo hits); one that carries the device's own
    # properties goes the full path and its identity is learnt
    def ack(ts: float, *entries: dict[str, object]) -> ProtocolEvent:
        flow = FlowId("C1", "10.0.0.1", 47808, "10.0.0.2", 47808, "udp")
        fields = {"bvlc_function": "Original_Unicast_NPDU", "pdu_type": "COMPLEX_ACK", "invoke_id": 1,
                  "properties": list(entries)}  # fmt: skip
        return ProtocolEvent(ts, flow, "bacnet", "read_property_multiple", RESPONSE, False, "10.0.0.2", "10.0.0.1",
                             fields)  # fmt: skip

    analog = {"object_type": "analog-input", "instance_number": 1, "property": "present-value", "value": "21.5"}
    vendor = {"object_type": "device", "instance_number": 77, "property": "vendor-name", "value": '"Acme Controls"'}
    inputs: list[ProtocolEvent | Flow] = [ack(1.0, analog), ack(1.1, analog), ack(1.2, analog)]
    inputs.append(ack(1.3, analog, vendor))
    memo, full, hits = _inventories()
    _feed(memo, inputs)
    _feed(full, inputs)
    assert hits[0] == 1  # the third analog ACK (the second was remembered, the sender being an asset by then)
    assert memo.snapshot() == full.snapshot()
    device = next(a for a in memo.snapshot() if a.ip == "10.0.0.2")
    assert device.vendor is not None and device.vendor.value == "Acme Controls"
