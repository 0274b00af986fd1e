"""MQTT in the inventory: broker, clients with ids/usernames/topics, cameras/sensors/gateways, the broker session."""

from __future__ import annotations

from typing import Any

from appliance.inventory import AssetInventory
from appliance.model import Asset, FlowId, ProtocolEvent
from appliance.mqtt_assets import broker_version
from appliance.mqtt_rules import tokens
from appliance.store import Store

BROKER, CAM, SENSOR, GW, PLC = "10.30.0.2", "10.30.1.10", "10.30.1.20", "10.30.1.30", "10.10.1.5"
T0 = 1_700_000_000.0


def flow(client: str, port: int = 40000, uid: str = "C1") -> FlowId:
    return FlowId(uid, client, port, BROKER, 1883, "tcp")


def wire(f: FlowId, from_client: bool, op: str, ts: float = T0, **fields: Any) -> ProtocolEvent:
    src, _, dst, _ = f.endpoints(from_client)
    kind = "request" if from_client else "response"
    return ProtocolEvent(ts, f, "mqtt", op, kind, from_client, src, dst, fields)


def broker_event(op: str, src: str = "", ts: float = T0, **fields: Any) -> ProtocolEvent:
    return ProtocolEvent(ts, None, "mqtt_broker", op, "notice", True, src, BROKER, fields)


def by_ip(inv: AssetInventory) -> dict[str, Asset]:
    return {a.ip: a for a in inv.snapshot()}


def session(inv: AssetInventory, client: str, client_id: str, *publishes: tuple[str, str], username: str = "") -> None:
    """A client connects, is accepted, publishes (topic, payload type) pairs; the broker relays one back."""
    f = flow(client)
    extra = {"username": username} if username else {}
    inv.on_event(wire(f, True, "connect", client_id=client_id, password_sent=bool(username), **extra))
    inv.on_event(wire(f, False, "connack", client_id=client_id, return_code=0))
    for n, (topic, kind) in enumerate(publishes):
        inv.on_event(wire(f, True, "publish", T0 + n, topic=topic, qos=0, payload_type=kind))
        inv.on_event(wire(f, False, "publish", T0 + n, topic=f"relayed/{topic}", qos=0, payload_type="jpeg"))


def test_wire_clients_get_ids_usernames_topics_and_the_broker_its_role() -> None:
    inv = AssetInventory()
    session(inv, SENSOR, "env-rack7", ("dc1/hall2/rack7/temperature", "json"), username="telemetry")
    f = flow(SENSOR)
    inv.on_event(wire(f, True, "subscribe", topics=["dc1/hall2/rack7/cmd/#", ""], qos_levels=[1, 0]))
    assets = by_ip(inv)
    client, broker = assets[SENSOR], assets[BROKER]
    assert client.mqtt_client_ids == ("env-rack7",)
    assert client.mqtt_usernames == ("telemetry",)
    assert client.mqtt_topics_published == ("dc1/hall2/rack7/temperature",)
    assert client.mqtt_topics_subscribed == ("dc1/hall2/rack7/cmd/#",)  # the empty filter is not kept
    assert client.mqtt_payload_types == (("json", 1),)
    assert client.has_role("mqtt", "client") and broker.has_role("mqtt", "server")
    # what the broker relays to subscribers is not the broker's own publishing
    assert broker.mqtt_topics_published == () and broker.mqtt_payload_types == ()
    assert broker.category == "MQTT broker"


def test_categories_from_images_words_and_protocol_gateways() -> None:
    inv = AssetInventory()
    session(inv, CAM, "node-17", ("site/door-3/snapshot.bin", "jpeg"), ("site/door-3/snapshot.bin", "jpeg"))
    session(inv, SENSOR, "env-rack7", ("dc1/hall2/rack7/humidity", "json"))
    session(inv, GW, "edge-gw-1", ("plant/values", "json"))
    assets = by_ip(inv)
    cam = assets[CAM]
    assert (cam.category, cam.category_rule, cam.category_confidence) == ("IP camera", "mqtt-camera-images", 0.8)
    assert cam.category_evidence == "publishes images over MQTT (2 JPEG payloads)"
    sensor = assets[SENSOR]
    assert (sensor.category, sensor.category_rule) == ("sensor", "mqtt-sensor-words")
    assert "dc1/hall2/rack7/humidity" in sensor.category_evidence
    gw = assets[GW]
    assert (gw.category, gw.category_rule) == ("IoT gateway", "mqtt-gateway-words")
    assert gw.category_evidence == "client id edge-gw-1 (gateway words)"


def test_a_host_polling_modbus_and_publishing_mqtt_is_a_protocol_gateway() -> None:
    inv = AssetInventory()
    poll = FlowId("C9", GW, 41000, PLC, 502, "tcp")

    def reads(n: int) -> None:
        for i in range(n):
            inv.on_event(ProtocolEvent(T0 + i, poll, "modbus", "read_holding_registers", "request", True, GW, PLC,
                                       {"unit": 1}))  # fmt: skip
            inv.on_event(ProtocolEvent(T0 + i, poll, "modbus", "read_holding_registers", "response", False, PLC, GW,
                                       {"unit": 1}))  # fmt: skip

    reads(1)
    inv.on_event(ProtocolEvent(T0, poll, "modbus", "write_single_register", "request", True, GW, PLC, {"unit": 1}))
    session(inv, GW, "x1", ("plant/cooling/supply", "json"))
    assert by_ip(inv)[GW].category == "unknown"  # one read, one write and a publish: an intruder's, not a gateway's
    reads(19)
    gw = by_ip(inv)[GW]
    assert (gw.category, gw.category_rule) == ("IoT gateway", "mqtt-protocol-gateway")
    assert gw.category_evidence == "polls 1 modbus device(s) and publishes on 1 MQTT topic(s)"


def test_a_client_without_evidence_stays_unknown() -> None:
    inv = AssetInventory()
    session(inv, SENSOR, "a81f", ("x/y", "binary"))
    assert by_ip(inv)[SENSOR].category == "unknown"


def test_broker_session_events_make_the_broker_and_its_clients() -> None:
    inv = AssetInventory()
    inv.on_event(broker_event("session_up", broker="broker:1883"))
    inv.on_event(broker_event("broker_info", version="mosquitto version 2.0.11", clients_connected=2))
    inv.on_event(broker_event("client_connected", CAM, T0 + 1, client_id="cam-lobby", username="cams"))
    inv.on_event(broker_event("publish", CAM, T0 + 2, topic="cams/lobby/jpeg", payload_type="jpeg", client_id="x"))
    inv.on_event(broker_event("publish", "", T0 + 3, topic="orphan/topic", payload_type="json"))
    inv.on_event(broker_event("client_disconnected", CAM, T0 + 4, client_id="cam-lobby"))
    assets = by_ip(inv)
    assert set(assets) == {BROKER, CAM}  # a publish nobody can be credited with makes no asset
    broker, cam = assets[BROKER], assets[CAM]
    assert broker.category == "MQTT broker"
    assert broker.product_name is not None and broker.product_name.value == "mosquitto"
    assert broker.firmware is not None and (broker.firmware.value, broker.firmware.source) == ("2.0.11", "mqtt/$SYS")
    assert cam.mqtt_client_ids == ("cam-lobby",) and cam.mqtt_usernames == ("cams",)
    assert cam.mqtt_topics_published == ("cams/lobby/jpeg",)
    assert cam.category == "IP camera"
    assert (cam.first_seen, cam.last_seen) == (T0 + 1, T0 + 4)
    assert [r.peers for r in broker.roles if r.role == "server"] == [(CAM,)]


def test_mqtt_fields_survive_the_store(tmp_path: Any) -> None:
    inv = AssetInventory()
    session(inv, CAM, "cam-1", ("cams/1/snapshot", "jpeg"), username="u")
    before = by_ip(inv)[CAM]
    with Store(tmp_path) as store:
        store.save_assets(inv.snapshot())
    with Store(tmp_path) as store:
        again = AssetInventory()
        again.load(store.load_assets())
    after = by_ip(again)[CAM]
    assert after == before
    assert after.mqtt_payload_types == (("jpeg", 1),)


def test_tokens_and_version_text() -> None:
    assert {"cam", "cam03", "node-red", "node", "red"} <= tokens("Node-RED/cam03")
    assert broker_version("mosquitto version 2.0.11") == ("mosquitto", "2.0.11")
    assert broker_version("EMQX 5.1") == ("EMQX 5.1", "")


def test_the_session_does_not_double_count_what_the_wire_saw_and_adds_subscriptions() -> None:
    inv = AssetInventory()
    session(inv, CAM, "cam-1", ("cams/1/snapshot", "jpeg"), ("cams/1/snapshot", "jpeg"))
    inv.on_event(broker_event("client_connected", CAM, T0 + 5, client_id="cam-1"))
    inv.on_event(broker_event("publish", CAM, T0 + 6, topic="cams/1/snapshot", payload_type="jpeg"))
    inv.on_event(broker_event("publish", CAM, T0 + 7, topic="cams/1/status", payload_type="json"))
    inv.on_event(broker_event("client_subscribed", CAM, T0 + 8, client_id="cam-1", topic="cams/1/cmd/#", qos=1))
    cam = by_ip(inv)[CAM]
    assert cam.mqtt_payload_types == (("jpeg", 2), ("json", 1))
    assert cam.mqtt_topics_subscribed == ("cams/1/cmd/#",)


def test_publishing_commands_to_a_camera_does_not_make_a_camera() -> None:
    inv = AssetInventory()
    session(inv, SENSOR, "maint-tool", ("cams/cam-01/cmd", "json"), ("site/cam-02/set/zoom", "json"))
    session(inv, CAM, "node-9", ("cams/cam-01/status", "json"))
    assets = by_ip(inv)
    assert assets[SENSOR].category == "unknown" and assets[CAM].category == "IP camera"
