"""The detectors of learned behaviour on hand-made events: an hour of a normal site is learned, then each rule raises
on what broke its learned fact, with the fact named, and stays quiet on what was learned."""

from __future__ import annotations

from appliance.baseline import BaselineSettings
from appliance.baseline.settings import CapSettings
from appliance.detectors import DETECTORS
from appliance.detectors.techniques import unknown_techniques
from appliance.model import Asset, Attribute, Role
from tests.baseline.kit import (
    BROKER,
    CAM1,
    CAM2,
    CHILLER,
    CRAH1,
    CRAH2,
    FE,
    HIST,
    PLC,
    PLC2,
    SCADA,
    T0,
    VMS,
    VPN,
    Site,
    bacnet_write,
    event,
    flow,
    learn_normal_site,
    modbus,
    publish,
    rpm_poll,
    subscribe,
    write_register,
)  # fmt: skip


def test_nothing_is_judged_while_learning_and_the_normal_hour_stays_quiet_after() -> None:
    site = Site()
    end = learn_normal_site(site)
    assert site.mine() == []
    assert site.baseline.progress().mode == "protect"
    later = learn_normal_site_again(site, end)
    assert site.mine(later) == []


def learn_normal_site_again(site: Site, start: float) -> list:  # type: ignore[type-arg]
    """Ten more minutes of the normal traffic, now protected."""
    out = []
    ts = start
    for n in range(120):
        out += site.feed(modbus(SCADA, PLC, "read_holding_registers", ts, address=0, quantity=20),
                         modbus(SCADA, PLC2, "read_holding_registers", ts + 0.01, address=0, quantity=20))  # fmt: skip
        if n % 6 == 0:
            out += site.feed(rpm_poll(FE, CRAH1, ts), rpm_poll(FE, CRAH2, ts), rpm_poll(FE, CHILLER, ts),
                             publish(CAM1, "site/dc1/cam/01/telemetry", ts))
        ts += 5.0
    out += site.tick(ts)
    return out


def test_a_rogue_modbus_master_names_the_masters_it_learned() -> None:
    site = Site()
    end = learn_normal_site(site)
    alerts = site.feed(modbus(VPN, PLC, "read_holding_registers", end + 1, address=0, quantity=10))
    assert ("ot_baseline", "rogue_modbus_master", VPN) in site.mine(alerts)
    alert = next(a for a in alerts if a.note == "rogue_modbus_master")
    assert alert.explanation == (
        "10.8.0.23 sent modbus read_holding_registers unit 1 to 10.50.1.10: it was never a Modbus master of "
        "10.50.1.10; its masters in 1 hour of learning: 10.50.1.100"
    )
    assert alert.details["fact"] == {"kind": "commander", "key": [VPN, PLC, "modbus"]}
    assert alert.details["novel"] is True and len(alert.details["fact_id"]) == 10
    assert alert.techniques == ("T0848", "T0855") and alert.assets == (VPN, PLC)
    # the same source again inside the suppression interval: counted, not raised
    assert site.mine(site.feed(modbus(VPN, PLC, "read_holding_registers", end + 2))) == []


def test_writes_a_rogue_writer_a_new_point_a_value_far_outside_and_a_new_command() -> None:
    site = Site()
    end = learn_normal_site(site)
    assert site.mine(site.feed(bacnet_write(FE, CRAH1, end + 1, 18.4))) == []  # learned writer, point, range
    alerts = site.feed(bacnet_write(VPN, CRAH1, end + 2, 18.0, priority=1))
    assert ("ot_baseline", "rogue_bacnet_writer", VPN) in site.mine(alerts)
    alerts = site.feed(bacnet_write(FE, CRAH1, end + 3, 45.0))
    assert site.mine(alerts) == [("ot_baseline", "write_out_of_range", FE)]
    assert alerts[0].explanation == ("10.60.1.16 wrote 45 to analog-value:1 present-value of 10.60.1.10: far outside "
                                     "the 18.125 to 18.375 written in 1 hour of learning (6 writes)")
    alerts = site.feed(bacnet_write(FE, CRAH1, end + 4, 21.0, instance=2))
    assert site.mine(alerts) == [("ot_baseline", "new_write_point", FE)]
    alerts = site.feed(write_register(SCADA, PLC, end + 5, 4, 260))  # learned 180-185: margin 46
    assert site.mine(alerts) == [("ot_baseline", "write_out_of_range", SCADA)]
    alerts = site.feed(modbus(SCADA, PLC, "write_multiple_registers", end + 6, address=12, quantity=2,
                              request_values=[1, 2]))  # fmt: skip
    # a new command carries the never-written points of the same write: one alert, not two
    assert site.mine(alerts) == [("ot_baseline", "new_command", SCADA)]
    assert "write_multiple_registers unit 1 to 10.50.1.10, writing register 12" in alerts[0].explanation
    assert alerts[0].details["addresses"] == ["12", "13"]
    # another write function on the same edge inside the suppression interval: counted, not raised again
    alerts = site.feed(modbus(SCADA, PLC, "write_single_coil", end + 6.5, address=3, request_values=[1]))
    assert site.mine(alerts) == []
    alerts = site.feed(modbus(SCADA, PLC, "read_input_registers", end + 7, address=0, quantity=8))
    assert site.mine(alerts) == [("ot_baseline", "new_operation", SCADA)]
    assert "learned: read_device_identification unit 1; read_holding_registers unit 1; write_single_register" \
        in alerts[0].explanation  # fmt: skip


def controller(ip: str, model: str) -> Asset:
    """A BACnet controller as the inventory describes it."""
    return Asset(f"a-{ip}", ip, None, T0, T0, category="BMS controller", zone="bms", domain="BMS",
                 vendor=Attribute("Johnson Controls Inc", "bacnet/rpm", 0.9), model=Attribute(model, "bacnet/rpm", 0.9),
                 roles=(Role("bacnet", "server"),))  # fmt: skip


def test_an_established_writer_may_write_the_same_point_on_a_device_of_the_same_category() -> None:
    assets = [controller(CRAH1, "FX-PCG2611"), controller(CRAH2, "FX-PCG2611"), controller(CHILLER, "UC800")]
    site = Site(snapshot=assets)
    end = learn_normal_site(site)
    site.tick(end + 3600)  # the peer groups are looked at hourly
    assert site.baseline.peers.category_peers(CHILLER) == [CRAH1, CRAH2]
    # the front end never wrote the chiller; it writes the same kind of point on two controllers of the zone
    assert site.mine(site.feed(bacnet_write(FE, CHILLER, end + 3601, 7.0))) == []
    assert site.mine(site.feed(bacnet_write(VPN, CHILLER, end + 3602, 7.0))) == [
        ("ot_baseline", "rogue_bacnet_writer", VPN)]


def test_the_fast_path_once_everything_of_a_channel_is_known() -> None:
    site = Site()
    end = learn_normal_site(site)
    b = site.baseline
    ch = b.channels[(SCADA, PLC, "modbus", "read_holding_registers", "1")]
    assert ch.known and ch.period == 5.0 and ch.fixed
    ev = modbus(SCADA, PLC, "read_holding_registers", end + 5)
    assert b.assess(ev) == ()
    count = ch.count
    site.feed(ev)
    assert ch.count == count + 1 and ch.last == end + 5
    assert not b.channels[(FE, CRAH1, "bacnet", "write_property", "analog-value", "present-value", "8")].known


def test_a_new_device_learns_on_its_own_then_is_judged() -> None:
    site = Site()
    end = learn_normal_site(site)
    cam3 = "10.70.1.30"
    # a device first seen while protecting: its novelty is learned for device_learning_days (an hour here)
    assert site.mine(site.feed(publish(cam3, "site/dc1/cam/03/status", end + 10),
                               subscribe(cam3, ["site/dc1/cam/03/cmd"], end + 11))) == []  # fmt: skip
    assert site.baseline.device_learning(cam3, end + 12)
    assert [a for a in site.mine(site.feed(publish(cam3, "site/dc1/cam/03/telemetry", end + 3000)))
            if a[0] != "ot_timing"] == []  # (the site's polls stopped in this test: the timing detector says so)
    alerts = site.feed(publish(cam3, "site/dc1/cam/01/telemetry", end + 3700))
    assert [a for a in site.mine(alerts) if a[0] != "ot_timing"] == [("mqtt_baseline", "mqtt_new_publisher", cam3)]
    # the site's own devices were judged all along
    assert site.mine(site.feed(subscribe(CAM1, ["#"], end + 20))) == [
        ("mqtt_baseline", "mqtt_wildcard_subscription", CAM1)]


def test_mqtt_wildcards_and_publishers() -> None:
    site = Site()
    end = learn_normal_site(site)
    assert site.mine(site.feed(subscribe(HIST, ["site/dc1/+/+/telemetry"], end + 1))) == []  # learned filter
    alerts = site.feed(event("mqtt", VPN, BROKER, "connect", end + 2, client_id="mqtt-explorer"),
                       subscribe(VPN, ["#"], end + 3))
    assert site.mine(alerts) == [("ot_baseline", "new_ot_edge", VPN), ("mqtt_baseline", "mqtt_wildcard_subscription",
                                                                        VPN)]  # fmt: skip
    assert alerts[-1].techniques == ("T0801", "T0861")
    # the video server commands camera 2 as it commanded camera 1: a topic of its own shape nobody else publishes
    assert site.mine(site.feed(publish(VMS, "site/dc1/cam/02/cmd", end + 4))) == []
    # camera 2 publishing camera 1's telemetry: that topic has its own publisher
    alerts = site.feed(publish(CAM2, "site/dc1/cam/01/telemetry", end + 5))
    assert site.mine(alerts) == [("mqtt_baseline", "mqtt_new_publisher", CAM2)]
    assert "the topic's publishers then: 10.70.1.11" in alerts[0].explanation


def test_ot_discovery_from_new_sources() -> None:
    site = Site()
    end = learn_normal_site(site)
    assert site.mine(site.feed(modbus(SCADA, PLC, "read_device_identification", end + 1))) == []  # learned
    sweep = [modbus(VPN, PLC2, "read_device_identification", end + 10 + u * 0.04, unit=u) for u in range(1, 8)]
    notes = [n for _, n, _ in site.mine(site.feed(*sweep))]
    assert notes == ["rogue_modbus_master", "modbus_device_identification", "modbus_unit_sweep"]
    unit_sweep = next(a for a in site.alerts if a.note == "modbus_unit_sweep")
    assert unit_sweep.ts == end + 10 + 5 * 0.04 and "tried 5 unit ids (1, 2, 3, 4, 5...)" in unit_sweep.explanation
    who_is = event("bacnet", VPN, "10.60.1.1", "who_is", end + 20, pdu_type="UNCONFIRMED_REQUEST")
    assert ("ot_discovery", "bacnet_who_is_sweep", VPN) in site.mine(site.feed(who_is))
    walk = event("bacnet", VPN, CHILLER, "read_property", end + 30, pdu_type="CONFIRMED_REQUEST",
                 object_type="device", instance_number=2319, property="object-list")  # fmt: skip
    assert ("ot_discovery", "bacnet_device_walk", VPN) in site.mine(site.feed(walk))
    # the I-Am answers of the swept controllers are answers: not judged
    i_am = event("bacnet", CRAH1, VPN, "i_am", end + 21, pdu_type="UNCONFIRMED_REQUEST", object_type="device")
    assert site.mine(site.feed(i_am)) == []


def test_ot_devices_and_the_internet_and_edges_of_undecoded_protocols() -> None:
    site = Site()
    end = learn_normal_site(site)
    site.feed_flow(flow(CRAH1, "52.94.1.10", 443, T0 + 10, "ssl"))  # learned: the vendor's cloud
    site.feed_flow(flow("10.20.4.10", "10.20.0.10", 53, T0 + 20, "dns", proto="udp"))  # an office PC, known
    site.feed_flow(flow("10.20.4.10", "93.184.216.34", 443, end + 1, "ssl"))  # an IT host: not judged
    assert site.mine() == []
    assert site.mine(site.feed_flow(flow(CRAH1, "52.94.1.10", 443, end + 2, "ssl"))) == []
    alerts = site.feed_flow(flow(PLC, "45.33.32.156", 8080, end + 3, "http"))
    assert site.mine(alerts) == [("ot_internet", "ot_internet", PLC)]
    assert alerts[0].explanation == ("10.50.1.10 (ot-control, OT) connected to the public address 45.33.32.156 (http, "
                                     "port 8080): never seen in 1 hour of learning")
    assert site.mine(site.feed_flow(flow("45.33.32.156", CAM1, 554, end + 4, "rtsp"))) == [
        ("ot_internet", "ot_internet", "45.33.32.156")]
    alerts = site.feed_flow(flow("10.20.4.10", PLC, 22, end + 5, "ssh"))
    assert site.mine(alerts) == [("ot_baseline", "new_ot_edge", "10.20.4.10")]


def test_polling_silence_and_a_changed_period() -> None:
    site = Site()
    end = learn_normal_site(site)
    ts = end
    for n in range(60):  # PLC 1 is polled every second, PLC 2 every 5 s; the front end keeps its 30 s
        site.feed(modbus(SCADA, PLC, "read_holding_registers", ts))
        if n % 5 == 0:
            site.feed(modbus(SCADA, PLC2, "read_holding_registers", ts))
        if n % 30 == 0:
            site.feed(rpm_poll(FE, CRAH1, ts), rpm_poll(FE, CRAH2, ts), rpm_poll(FE, CHILLER, ts))
        ts += 1.0
    site.tick(ts + 30)
    changed = [a for a in site.alerts if a.note == "polling_period_change"]
    assert [(a.src, a.assets) for a in changed] == [(SCADA, (SCADA, PLC))]
    assert "read_holding_registers unit 1 (every 5 s, now every 1 s)" in changed[0].explanation
    assert changed[0].ts <= end + 30 + 8  # judged every 30 s, once 8 intervals show the new period
    silent = [a for a in site.tick(ts + 400) if a.note == "polling_silence"]
    assert {a.assets for a in silent} == {(SCADA, PLC), (SCADA, PLC2), (FE, CRAH2), (FE, CHILLER), (FE, CRAH1)}
    assert all(a.techniques == ("T0814", "T0804") for a in silent)


def test_caps_bound_what_is_learned_and_count_the_rest() -> None:
    caps = CapSettings(edges=16, operations=16)
    site = Site(BaselineSettings(learning_days=1, caps=caps))
    for i in range(40):
        site.feed(modbus(f"10.50.1.{100 + i}", PLC, "read_coils", T0 + i))
    assert site.baseline.facts.count("edge") == 16 and site.baseline.facts.cap_hits["edge"] == 24
    assert site.baseline.facts.cap_hits["op"] == 24


def test_every_learned_note_has_known_techniques() -> None:
    learned = [d for d in DETECTORS if d.name in {"ot_baseline", "ot_discovery", "ot_internet", "mqtt_baseline",
                                                   "ot_timing", "ot_anomaly"}]  # fmt: skip
    assert len(learned) == 6
    for detector in learned:
        for note in detector.notes.values():
            assert note.techniques and unknown_techniques(note.techniques) == [], (detector.name, note.name)
