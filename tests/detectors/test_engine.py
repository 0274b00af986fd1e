"""The detector engine (suppression, crash isolation, ticks) and the ATT&CK tables every detector's notes use."""

from __future__ import annotations

from importlib import resources
from typing import ClassVar

import pytest

from appliance.alert import Alert
from appliance.detectors import DETECTORS, build_detectors
from appliance.detectors.base import AlertContext, Note, notes_of
from appliance.detectors.engine import DetectorEngine
from appliance.detectors.settings import DetectorSettings
from appliance.detectors.techniques import techniques, unknown_techniques
from appliance.model import Flow, ProtocolEvent


class Echo:
    """A test detector: alerts on every modbus write, fails on a `boom` op, records ticks."""

    name: ClassVar[str] = "echo"
    notes: ClassVar[dict[str, Note]] = notes_of(Note("write", "low", 10, ("T0855",), "a write"))
    event_protocols: ClassVar[frozenset[str]] = frozenset({"modbus"})
    wants_flows: ClassVar[bool] = False

    def __init__(self) -> None:
        self.ticks: list[float] = []

    def on_event(self, ev: ProtocolEvent, ctx: AlertContext) -> None:
        if ev.op == "boom":
            raise RuntimeError("detector bug")
        ctx.alert(self, "write", ev.ts, ev.src, explanation=f"{ev.src} wrote", key=ev.dst)

    def on_flow(self, flow: Flow, ctx: AlertContext) -> None:
        raise AssertionError("not asked for flows")

    def on_tick(self, now: float, ctx: AlertContext) -> None:
        self.ticks.append(now)


def ev(ts: float, op: str = "write_single_register", protocol: str = "modbus", dst: str = "10.0.0.2") -> ProtocolEvent:
    return ProtocolEvent(ts, None, protocol, op, "request", True, "10.0.0.1", dst, {})


def test_suppression_by_key_and_interval() -> None:
    alerts: list[Alert] = []
    engine = DetectorEngine([Echo()], alerts.append, suppress=60.0)
    for ts, dst in ((0.0, "a"), (30.0, "a"), (31.0, "b"), (61.0, "a"), (70.0, "a")):
        engine.on_event(ev(1000.0 + ts, dst=dst))
    assert [(a.ts - 1000.0, a.key) for a in alerts] == [(0.0, "echo/write/a"), (31.0, "echo/write/b"),
                                                         (61.0, "echo/write/a")]  # fmt: skip
    assert engine.suppressed[("echo", "write")] == 2
    assert engine.raised[("echo", "write", "low")] == 3
    assert alerts[0].to_dict()["techniques"] == ["T0855"]


def test_a_failing_detector_is_counted_and_the_rest_goes_on(capsys: pytest.CaptureFixture[str]) -> None:
    alerts: list[Alert] = []
    engine = DetectorEngine([Echo()], alerts.append)
    engine.on_event(ev(1.0, op="boom"))
    engine.on_event(ev(2.0, op="boom"))
    engine.on_event(ev(3.0))
    assert engine.errors["echo"] == 2 and len(alerts) == 1
    assert capsys.readouterr().err.count("detector echo failed: RuntimeError: detector bug") == 1


def test_only_wanted_protocols_reach_a_detector_and_ticks_follow_packet_time() -> None:
    echo = Echo()
    alerts: list[Alert] = []
    engine = DetectorEngine([echo], alerts.append)
    for t in (10.0, 10.5, 11.2, 11.3, 15.0):
        engine.on_event(ev(t, protocol="bacnet"))
    assert alerts == [] and echo.ticks == [10.0, 11.2, 15.0]


def test_note_values_are_checked() -> None:
    with pytest.raises(ValueError, match="severity 'urgent'"):
        Note("x", "urgent", 10, (), "")
    with pytest.raises(ValueError, match="score 101"):
        Note("x", "low", 101, (), "")


def test_every_technique_a_detector_can_emit_is_in_the_attack_tables() -> None:
    table = techniques()
    assert table["T0846"].matrix == "ics" and table["T1046"].name == "Network Service Discovery"
    for detector in DETECTORS:
        for note in detector.notes.values():
            assert note.techniques, f"{detector.name}/{note.name} has no technique"
            assert unknown_techniques(note.techniques) == [], f"{detector.name}/{note.name}"
    assert unknown_techniques(["T0846", "T9999"]) == ["T9999"]


def test_the_attack_tables_ship_with_mitre_licence() -> None:
    data = resources.files("appliance.detectors") / "data"
    assert "The MITRE Corporation" in (data / "LICENSE.txt").read_text(encoding="utf-8")
    assert "mitre/cti" in (data / "SOURCE.md").read_text(encoding="utf-8")


def test_build_detectors_follows_the_settings() -> None:
    # every registered detector, in order; the zone policy's only when the config has a policy
    wanted = [d.name for d in DETECTORS if d.name != "zone_policy"]
    assert [d.name for d in build_detectors(DetectorSettings())] == wanted
    assert build_detectors(DetectorSettings(enabled=False)) == []
