"""docs/detectors.md lists every detector and note with its severity, score, techniques and the default thresholds."""

from __future__ import annotations

from pathlib import Path

from appliance.detectors import DETECTORS
from appliance.detectors.settings import DetectorSettings

DOC = Path(__file__).resolve().parents[2] / "docs" / "detectors.md"


def test_every_note_is_documented_with_its_severity_score_and_techniques() -> None:
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0] not in ("detector", "---"):
            rows[(cells[0], cells[1])] = cells
    for detector in DETECTORS:
        for note in detector.notes.values():
            row = rows.get((detector.name, note.name))
            assert row is not None, f"{detector.name}/{note.name} missing from {DOC.name}"
            assert row[2] == f"{note.severity} ({note.score:g})", row
            for technique in note.techniques:
                assert technique in row[3], (technique, row)


def test_the_documented_defaults_are_the_code_defaults() -> None:
    text = DOC.read_text(encoding="utf-8")
    s = DetectorSettings()
    facts = [
        f"{s.scan.address_scan_hosts} hosts on one port, failed, in {s.scan.window:g} s",
        f"{s.scan.port_scan_ports} ports of one host, failed, in {s.scan.window:g} s",
        f"{s.scan.udp_targets} unanswered UDP host/port targets in {s.scan.window:g} s",
        f"PTR queries for {s.dns_sweep.distinct_addresses} distinct addresses of one /24 in {s.dns_sweep.window:g} s, "
        f"or {s.dns_sweep.distinct_total} anywhere",
        f"after {s.new_device.settle:g} s of settling",
        f"{s.alert_burst.distinct_alerts} different alerts from one source in {s.alert_burst.window:g} s",
        f"(default {s.suppress:g})",
        f"{s.auth_bruteforce.failures} failed authentications from one source in {s.auth_bruteforce.window:g} s",
        f"failures for {s.auth_bruteforce.accounts} different accounts from one source",
        f"default account names on {s.auth_bruteforce.default_hosts} hosts",
        f"searches for {s.ldap_recon.categories} broad kinds of object in {s.ldap_recon.window:g} s",
        f"{s.ldap_recon.entries} entries returned in {s.ldap_recon.window:g} s",
    ]
    for fact in facts:
        assert fact in text, fact
