"""Events submitted from another thread reach the logs and the inventory on the pipeline thread; tick frames
move packet time on an idle link."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from appliance.capture.live import TICK
from appliance.config import Config
from appliance.model import ProtocolEvent
from appliance.pipeline import Pipeline


def _event(n: int) -> ProtocolEvent:
    return ProtocolEvent(
        ts=1000.0 + n, protocol="mqtt_broker", op="client_connected", kind="notice", flow=None,
        src="127.0.0.5", dst="127.0.0.1", is_orig=True, fields={"client_id": f"cam-{n}"},
    )


def test_submitted_events_are_handled_at_a_tick_in_order(tmp_path: Path) -> None:
    pipeline = Pipeline(Config(), tmp_path)
    worker = threading.Thread(target=lambda: [pipeline.submit(_event(n)) for n in range(3)])
    worker.start()
    worker.join()
    assert pipeline.stats.events[("mqtt_broker", "client_connected", "notice")] == 0  # queued, not handled yet
    pipeline.run([(TICK, 2000.0, b"", 0)])
    assert pipeline.stats.events[("mqtt_broker", "client_connected", "notice")] == 3
    pipeline.finish()
    rows = [json.loads(line) for line in (tmp_path / "mqtt_broker.jsonl").read_text().splitlines()]
    assert [r["client_id"] for r in rows] == ["cam-0", "cam-1", "cam-2"]
    assert "127.0.0.5" in {a.ip for a in pipeline.inventory.snapshot()}


def test_finish_handles_what_is_still_queued(tmp_path: Path) -> None:
    pipeline = Pipeline(Config(), tmp_path)
    pipeline.submit(_event(7))
    pipeline.finish()
    assert pipeline.stats.events[("mqtt_broker", "client_connected", "notice")] == 1
    assert pipeline.drain() == 0


def test_an_idle_link_still_writes_a_held_incident_update(tmp_path: Path) -> None:
    from tests.incidents.kit import T0, VPN, alert

    def written() -> list[int]:
        return [json.loads(line)["alerts"] for line in (tmp_path / "incidents.jsonl").read_text().splitlines()]

    pipeline = Pipeline(Config(), tmp_path)
    for i in range(150):  # a sweep: the later alerts' update is held (the record is large)
        pipeline.incidents.on_alert(alert(T0 + i / 100, "scan", "port_scan", VPN, f"10.20.9.{i}", key=f"k{i}"))
    assert written()[-1] < 150
    pipeline.run([(TICK, T0 + 1000.0, b"", 0)])  # no packet, only the passing of time
    assert written()[-1] == 150
