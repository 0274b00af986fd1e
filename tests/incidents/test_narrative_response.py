"""Title, narrative and recommended response, written from the incident's facts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from appliance.alert import Alert
from appliance.incidents.model import Entry
from appliance.incidents.response import ANY, blocks, render_block, render_quarantine, table_name
from appliance.incidents.settings import IncidentSettings
from appliance.incidents.store import IncidentStore
from appliance.store import Store
from tests.incidents.kit import BMS, DC, PLC, SQL, T0, VPN, alert, chain, lookup

SENTENCE_END = re.compile(r"[.](?:\s|$)")


def row_of(*alerts: Alert, enforce: bool = False) -> dict[str, Any]:
    s = IncidentStore(IncidentSettings(enforce=enforce), lookup())
    for a in alerts:
        s.on_alert(a)
    (row,) = s.snapshot()
    return row


def test_the_title_names_the_actor_and_the_phases_in_order() -> None:
    row = row_of(*chain())
    assert row["title"] == (
        "VPN host 10.8.0.23: IT recon -> credential access -> pivot into OT -> OT write to cooling PLC"
    )
    assert row["phases"] == ["it_recon", "credential_access", "pivot_into_ot", "impair"] and row["phase"] == "impair"


def test_a_command_and_an_it_only_incident_get_their_own_titles() -> None:
    restart = alert(T0, "ot_pivot", "device_control", VPN, BMS, protocol="bacnet", op="reinitialize_device", dst=BMS)
    assert row_of(restart)["title"] == "VPN host 10.8.0.23: OT command to bms BMS controller"
    assert row_of(alert(T0, "ldap_recon", "ad_enumeration", VPN, DC))["title"] == "VPN host 10.8.0.23: IT recon"


def test_the_narrative_tells_who_what_in_order_what_it_touched_and_what_is_at_stake() -> None:
    text = row_of(*chain())["narrative"]
    sentences = SENTENCE_END.split(text.strip())
    assert 3 <= len([s for s in sentences if s]) <= 6, text
    assert text.startswith("VPN host 10.8.0.23 in zone vpn, known as LAPTOP-JSMITH and DESKTOP-7QK2M1, raised 7 alerts")
    order = [text.index(w) for w in ("DESKTOP-7QK2M1', a machine name", "enumerated the directory",
                                     "logged on to 10.20.1.40 as administrator", "wrote to cooling PLC")]  # fmt: skip
    assert order == sorted(order)
    assert "PLC 10.50.1.10 (cooling, OT)" in text and "At stake is PLC 10.50.1.10" in text
    assert "risk 100/100" in text


def test_the_narrative_of_a_short_it_incident_is_still_three_sentences() -> None:
    text = row_of(alert(T0, "scan", "rdp_scan", VPN, port=3389, hosts=35))["narrative"]
    assert len([s for s in SENTENCE_END.split(text.strip()) if s]) == 3, text
    assert "no OT or BMS device was touched" in text


def test_blocks_name_the_ports_each_alert_abused() -> None:
    got = {(b.src, b.target, b.proto): b for b in blocks(_entries(*chain()))}
    assert got[(VPN, PLC, "tcp")].ports == (502,) and got[(VPN, PLC, "tcp")].source == "protocol"
    assert got[(VPN, ANY, "tcp")].ports == (3389,) and got[(VPN, ANY, "tcp")].source == "details"
    assert got[(VPN, SQL, "tcp")].ports == (139, 389, 445, 636, 3268)  # SMB and LDAP logons
    assert set(got[(VPN, PLC, "tcp")].notes) == {"it_to_ot", "it_to_ot_write"}


def test_the_rules_are_nftables_text_per_target_and_port() -> None:
    response = row_of(*chain())["response"]
    block, quarantine = response["nftables_block"], response["nftables_quarantine"]
    assert response["applied"] is False and response["enforce"] is False
    assert "ip saddr 10.8.0.23 ip daddr 10.50.1.10 tcp dport 502 counter drop" in block
    assert "ip saddr 10.8.0.23 tcp dport 3389 counter drop" in block
    assert "ip saddr 10.8.0.23 counter drop" in quarantine and "ip daddr 10.8.0.23 counter drop" in quarantine
    for text in (block, quarantine):
        assert text.count("{") == text.count("}") and "type filter hook forward priority" in text
        assert "never applies it" in text
        name = re.search(r"^table inet (\S+) \{", text, re.M)
        assert name is not None and re.fullmatch(r"[a-z][a-z0-9_]*", name.group(1))


def test_ipv6_and_non_ip_actors() -> None:
    (entry,) = _entries(alert(T0, "ot_pivot", "it_to_ot_write", "fd00::23", "fd00:50::10", protocol="modbus",
                              op_class="write", dst="fd00:50::10"))  # fmt: skip
    text = render_block("INC-X", blocks([entry]))
    assert "ip6 saddr fd00::23 ip6 daddr fd00:50::10 tcp dport 502 counter drop" in text
    assert "ip6 saddr fd00::23 counter drop" in render_quarantine("INC-X", ["fd00::23"])
    assert "not an IP address" in render_quarantine("INC-X", ["00:80:0f:01:00:10"])
    assert table_name("INC-20240604-065000-ab12cd", "block") == "otwatch_block_inc_20240604_065000_ab12cd"


def test_enforce_only_writes_the_rules_file_to_the_state_directory(tmp_path: Path) -> None:
    for enforce, state in ((False, tmp_path / "off"), (True, tmp_path / "on")):
        s = IncidentStore(IncidentSettings(enforce=enforce), lookup())
        for a in chain():
            s.on_alert(a)
        with Store(state) as db:
            s.sync(db)
        (row,) = s.snapshot()
        rules = state / "response" / f"{row['incident_id']}.nft"
        assert rules.exists() is enforce
        if enforce:
            text = rules.read_text()
            assert row["response"]["nftables_block"] in text and row["response"]["nftables_quarantine"] in text
            s.tick(T0 + 3 * 86400)  # closed: the file goes
            with Store(state) as db:
                s.sync(db)
            assert not rules.exists()


def _entries(*alerts: Alert) -> list[Entry]:
    s = IncidentStore(IncidentSettings(), lookup())
    for a in alerts:
        s.on_alert(a)
    return [e for inc in s.correlator.live.values() for e in inc.entries]


def test_a_port_named_in_the_details_is_blocked_on_its_device() -> None:
    edge = alert(T0, "ot_baseline", "new_ot_edge", VPN, PLC, protocol="ssh", port=22, dst=PLC)
    (b,) = blocks(_entries(edge))
    assert (b.target, b.proto, b.ports, b.source) == (PLC, "tcp", (22,), "details")
