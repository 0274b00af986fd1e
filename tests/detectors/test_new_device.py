"""Hostnames in the inventory (NTLM, DHCP, DNS) and the new-device detector: the VPN address used from another
machine raises; the same machine, a DNS answer, or a fresh sensor's first day do not."""

from __future__ import annotations

from typing import Any

from appliance.alert import Alert
from appliance.detectors.engine import DetectorEngine
from appliance.detectors.new_device import NewDeviceDetector
from appliance.detectors.settings import NewDeviceSettings
from appliance.hostnames import hostname_facts
from appliance.inventory import AssetInventory
from appliance.model import Flow, FlowId, ProtocolEvent

VPN, DC, RESOLVER, NEWBIE = "10.8.0.23", "10.1.0.10", "10.1.0.2", "10.8.0.99"
T0 = 1_700_000_000.0


def ntlm(src: str, ts: float, hostname: str, user: str = "jsmith") -> ProtocolEvent:
    fid = FlowId(f"S{ts}", src, 50000, DC, 445, "tcp")
    fields = {"username": user, "hostname": hostname, "domainname": "CORP", "success": True}
    return ProtocolEvent(ts, fid, "smb", "session_setup", "request", True, src, DC, fields)


def dhcp(ts: float, ip: str, name: str) -> ProtocolEvent:
    fid = FlowId(f"H{ts}", "0.0.0.0", 68, "255.255.255.255", 67, "udp")
    fields: dict[str, Any] = {"mac": "02:00:00:00:00:01", "requested_addr": ip, "host_name": name}
    return ProtocolEvent(ts, fid, "dhcp", "request", "request", True, "0.0.0.0", "255.255.255.255", fields)


def ptr_answer(ts: float, ip: str, names: list[str]) -> ProtocolEvent:
    fid = FlowId(f"D{ts}", "10.1.0.40", 53000, RESOLVER, 53, "udp")
    fields = {"query": "23.0.8.10.in-addr.arpa", "qtype_name": "PTR", "ptr_address": ip, "answers": names}
    return ProtocolEvent(ts, fid, "dns", "response", "response", False, RESOLVER, "10.1.0.40", fields)


def conn(src: str, ts: float, mac: str | None = None) -> Flow:
    return Flow(FlowId(f"C{ts}", src, 50000, DC, 389, "tcp"), ts, 53.0, "ldap", 100, 5000, "SF", 0, "ShADadFf",
                10, 600, 10, 5600, mac, None)  # fmt: skip


class Site:
    """The pipeline's order: detectors read the inventory first, then the inventory learns."""

    def __init__(self, settle: float = 0.0, inventory: AssetInventory | None = None) -> None:
        self.inventory = inventory or AssetInventory()
        self.alerts: list[Alert] = []
        detector = NewDeviceDetector(NewDeviceSettings(settle=settle))
        self.engine = DetectorEngine([detector], self.alerts.append, inventory=self.inventory)

    def event(self, ev: ProtocolEvent) -> None:
        self.engine.on_event(ev)
        self.inventory.on_event(ev)

    def flow(self, flow: Flow) -> None:
        self.engine.on_flow(flow)
        self.inventory.on_flow(flow)


def test_hostname_facts_from_ntlm_dhcp_and_dns() -> None:
    assert hostname_facts(ntlm(VPN, T0, "LAPTOP-JSMITH")) == [(VPN, "LAPTOP-JSMITH", "ntlm")]
    assert hostname_facts(dhcp(T0, "10.1.5.7", "printer-3")) == [("10.1.5.7", "printer-3", "dhcp")]
    assert hostname_facts(ptr_answer(T0, VPN, ["laptop-jsmith.corp.example."])) == [
        (VPN, "laptop-jsmith.corp.example", "dns")
    ]


def test_the_inventory_keeps_each_name_with_source_and_first_last_seen() -> None:
    site = Site()
    site.event(ntlm(VPN, T0, "LAPTOP-JSMITH"))
    site.event(ptr_answer(T0 + 5, VPN, ["laptop-jsmith.corp.example"]))
    site.event(ntlm(VPN, T0 + 60, "LAPTOP-JSMITH"))
    asset = next(a for a in site.inventory.snapshot() if a.ip == VPN)
    assert [(h.name, h.source, h.first_seen, h.last_seen) for h in asset.hostnames] == [
        ("LAPTOP-JSMITH", "ntlm", T0, T0 + 60), ("laptop-jsmith.corp.example", "dns", T0 + 5, T0 + 5),
    ]  # fmt: skip
    assert asset.to_dict()["hostnames"][0] == {"name": "LAPTOP-JSMITH", "source": "ntlm", "first_seen": T0,
                                               "last_seen": T0 + 60}  # fmt: skip


def test_the_vpn_address_used_from_another_machine_raises_once() -> None:
    site = Site()
    site.event(ptr_answer(T0, VPN, ["laptop-jsmith.corp.example"]))  # names only a known asset
    site.flow(conn(VPN, T0 + 1))
    site.event(ntlm(VPN, T0 + 2, "LAPTOP-JSMITH"))  # the employee's own machine: same first label
    assert [a.note for a in site.alerts] == ["new_device"]  # a fresh sensor with settle=0 judges the first flow
    site.alerts.clear()
    site.event(ntlm(VPN, T0 + 86400, "DESKTOP-7QK2M1", user="jsmith"))
    site.event(ntlm(VPN, T0 + 86401, "DESKTOP-7QK2M1", user="administrator"))
    assert [a.note for a in site.alerts] == ["hostname_change"]
    a = site.alerts[0]
    assert a.src == VPN and a.techniques == ("T0859", "T1078") and a.severity == "high"
    assert a.explanation == (
        "10.8.0.23 authenticated or asked for an address as 'DESKTOP-7QK2M1' (ntlm); the address was only ever seen "
        "as 'LAPTOP-JSMITH'"
    )


def test_a_dns_answer_with_another_name_is_not_a_change() -> None:
    site = Site()
    site.event(ntlm(VPN, T0, "LAPTOP-JSMITH"))
    site.event(ptr_answer(T0 + 1, VPN, ["vpn-pool-23.corp.example"]))
    assert [a.note for a in site.alerts if a.note == "hostname_change"] == []


def test_new_devices_and_new_macs_after_the_settle_period_only() -> None:
    site = Site(settle=3600.0)
    site.flow(conn("10.1.0.50", T0, mac="02:00:00:00:00:50"))  # learning: quiet
    site.flow(conn(NEWBIE, T0 + 4000))
    site.flow(conn("10.1.0.50", T0 + 4001, mac="02:00:00:00:00:51"))
    site.flow(conn("0.0.0.0", T0 + 4002))  # never an asset: no alert
    assert [(a.note, a.src) for a in site.alerts] == [("new_device", NEWBIE), ("new_mac", "10.1.0.50")]
    assert site.alerts[1].details == {"mac": "02:00:00:00:00:51", "known_mac": "02:00:00:00:00:50"}


def test_a_sensor_with_a_stored_inventory_judges_at_once() -> None:
    inventory = AssetInventory()
    inventory.on_flow(conn("10.1.0.50", T0, mac="02:00:00:00:00:50"))
    site = Site(settle=3600.0, inventory=inventory)
    site.flow(conn(NEWBIE, T0 + 10))
    assert [a.note for a in site.alerts] == ["new_device"]


def test_a_new_address_is_judged_at_its_first_request_not_at_the_end_of_its_flow() -> None:
    site = Site(settle=3600.0)
    site.flow(conn("10.1.0.50", T0, mac="02:00:00:00:00:50"))
    camera, broker = "10.70.1.22", "10.70.1.2"
    fid = FlowId("Cm", camera, 40000, broker, 1883, "tcp")
    site.event(ProtocolEvent(T0 + 4000, fid, "mqtt", "connect", "request", True, camera, broker, {"client_id": "c"}))
    site.event(ProtocolEvent(T0 + 4000.1, fid, "mqtt", "connack", "response", False, broker, camera, {}))
    site.flow(Flow(fid, T0 + 4000, 3.0, "mqtt", 10, 10, "SF", 0, "ShADadFf", 4, 200, 4, 200, None, None))
    assert [(a.note, a.src, a.ts) for a in site.alerts] == [("new_device", camera, T0 + 4000)]  # the broker answered
    assert site.alerts[0].explanation == (
        "10.70.1.22 was never seen before; first seen sending mqtt connect to 10.70.1.2"
    )


def test_an_icmp_error_from_a_silent_host_is_not_a_new_device() -> None:
    site = Site(settle=0.0)
    site.flow(conn("10.1.0.50", T0))
    unreachable = Flow(FlowId("Ci", "10.20.32.1", 3, VPN, 3, "icmp"), T0 + 10, 0.0, None, 0, 0, "OTH", 0, "",
                       1, 56, 0, 0, None, None)  # fmt: skip
    site.flow(unreachable)
    assert "10.20.32.1" not in [a.src for a in site.alerts] and len(site.alerts) == 1  # only 10.1.0.50, new
