"""Peer groups: a new controller of the same make, model and roles as established ones inherits their baseline
instead of learning on its own (the front end's polls and writes are normal at once; an intruder's write is not),
while a device of another model learns on its own."""

from __future__ import annotations

from appliance.baseline import BaselineSettings
from appliance.baseline.peers import Peers, describe, signature
from appliance.model import Asset, Attribute, Role
from tests.baseline.kit import FE, T0, VPN, Site, answer, bacnet_write, event, rpm_poll

CRAH1, CRAH2, CRAH3, OTHER = "10.60.1.10", "10.60.1.11", "10.60.1.17", "10.60.1.18"


def controller(ip: str, model: str = "FX-PCG2611", category: str = "BMS controller") -> Asset:
    """A BACnet controller as the inventory describes it."""
    return Asset(f"a-{ip}", ip, None, T0, T0, category=category, zone="bms", domain="BMS",
                 vendor=Attribute("Johnson Controls Inc", "bacnet/rpm", 0.9), model=Attribute(model, "bacnet/rpm", 0.9),
                 roles=(Role("bacnet", "server"),))  # fmt: skip


def i_am(ip: str, ts: float) -> object:
    """A controller's I-Am broadcast."""
    return event("bacnet", ip, "10.60.1.255", "i_am", ts, pdu_type="UNCONFIRMED_REQUEST", object_type="device")


def learned_site() -> tuple[Site, float]:
    assets = [controller(CRAH1), controller(CRAH2)]
    site = Site(BaselineSettings(learning_days=1 / 24, device_learning_days=7), snapshot=assets)
    ts = T0
    site.feed(i_am(CRAH1, ts), i_am(CRAH2, ts))  # type: ignore[arg-type]
    while ts < T0 + 3600:
        polls = [rpm_poll(FE, CRAH1, ts), rpm_poll(FE, CRAH2, ts)]
        site.feed(*polls, *map(answer, polls))
        if int(ts - T0) % 900 == 0:
            site.feed(bacnet_write(FE, CRAH1, ts + 1, 18.0), bacnet_write(FE, CRAH2, ts + 1, 18.5))
        ts += 30.0
    site.tick(ts)
    return site, ts


def test_signatures_group_identical_devices_only() -> None:
    a, b = controller(CRAH1), controller(CRAH2)
    assert signature(a) == signature(b) == ("BMS controller", "Johnson Controls Inc", "FX-PCG2611", "bacnet:server")
    assert describe(signature(a)) == "Johnson Controls Inc FX-PCG2611 (BMS controller; bacnet:server)"  # type: ignore[arg-type]
    assert signature(controller(OTHER, category="unknown")) is None
    peers = Peers()
    peers.refresh([a, b, controller(OTHER, model="eBCON")])
    assert peers.group_peers(CRAH1) == [CRAH2] and peers.group_peers(OTHER) == []
    assert peers.category_peers(OTHER) == [CRAH1, CRAH2]


def test_a_new_identical_controller_inherits_the_group_baseline() -> None:
    site, end = learned_site()
    b = site.baseline
    site.assets = [controller(CRAH1), controller(CRAH2), controller(CRAH3), controller(OTHER, model="eBCON")]
    site.feed(i_am(CRAH3, end + 10), i_am(OTHER, end + 10))  # type: ignore[arg-type]
    assert b.device_learning(CRAH3, end + 11) and b.device_learning(OTHER, end + 11)
    site.tick(end + 200)  # peer groups are looked at again two minutes after a new device
    assert b.inherited == {CRAH3: [CRAH1, CRAH2]}
    assert not b.device_learning(CRAH3, end + 201) and b.device_learning(OTHER, end + 201)
    assert b.facts.get("asset", (CRAH3,))[2] == "Johnson Controls Inc FX-PCG2611 (BMS controller; bacnet:server)"
    # judged at once, by the group's baseline: the front end's polls and usual writes are normal
    polls = [rpm_poll(FE, ip, end + 30 * k) for k in range(7, 12) for ip in (CRAH1, CRAH2, CRAH3)]
    assert site.mine(site.feed(*polls, *map(answer, polls))) == []
    assert site.mine(site.feed(bacnet_write(FE, CRAH3, end + 400, 18.2))) == []
    assert site.mine(site.feed(bacnet_write(FE, CRAH3, end + 401, 45.0))) == [
        ("ot_baseline", "write_out_of_range", FE)]  # the group's range holds for the new member
    assert site.mine(site.feed(bacnet_write(VPN, CRAH3, end + 402, 18.0))) == [
        ("ot_baseline", "rogue_bacnet_writer", VPN)]
    # the controller of another model learns on its own: nothing about it is judged for its window
    assert site.mine(site.feed(rpm_poll(FE, OTHER, end + 403), bacnet_write(FE, OTHER, end + 404, 45.0))) == []


def test_a_group_needs_enough_established_members() -> None:
    site, end = learned_site()
    site.baseline.settings = site.baseline.settings.model_copy(update={"min_group": 3})
    site.assets = [controller(CRAH1), controller(CRAH2), controller(CRAH3)]
    site.feed(i_am(CRAH3, end + 10))  # type: ignore[arg-type]
    site.tick(end + 200)
    assert site.baseline.inherited == {} and site.baseline.device_learning(CRAH3, end + 201)
