"""Detector thresholds and windows, with where each default comes from (the `detectors:` config section)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScanSettings(_Strict):
    """Network scans from failed or unanswered connections of one source.

    Defaults from Zeek's scan policy (policy/misc/scan.zeek): 25 hosts on one port (address scan) or 15 ports on one
    host (port scan) with failed attempts within 5 minutes."""

    window: float = Field(300.0, gt=0)
    address_scan_hosts: int = Field(25, ge=2)
    port_scan_ports: int = Field(15, ge=2)
    udp_targets: int = Field(25, ge=2)  # distinct unanswered (host, port) UDP targets: UDP enumeration
    max_sources: int = Field(10_000, ge=16)  # sources tracked at once; the least recent is dropped first


class DnsSweepSettings(_Strict):
    """Reverse DNS sweeps: PTR queries for distinct addresses from one source.

    Defaults: 25 distinct addresses of one /24 in 5 minutes, Zeek's address-scan threshold applied to names (a sweep
    is an address scan done through the resolver), or 100 anywhere (a sweep in random order); a workstation
    resolving a handful of peers, or a server resolving its scattered clients, stays below both."""

    window: float = Field(300.0, gt=0)
    distinct_addresses: int = Field(25, ge=2)
    distinct_total: int = Field(100, ge=2)
    max_sources: int = Field(10_000, ge=16)


class AlertBurstSettings(_Strict):
    """Several different alerts from one source: 3 distinct kinds within an hour (one kind alone is its own alert;
    three different steps of an intrusion from one address are the pattern this product exists for)."""

    window: float = Field(3600.0, gt=0)
    distinct_alerts: int = Field(3, ge=2)
    max_sources: int = Field(10_000, ge=16)


class NewDeviceSettings(_Strict):
    """New devices and changed ones. `settle`: seconds of packet time a fresh sensor (empty inventory) learns before
    judging (a day: every host of an office network shows up in a working day; the site-wide learning mode of the
    behaviour issue replaces it)."""

    settle: float = Field(86400.0, ge=0)


class AuthBruteforceSettings(_Strict):
    """Failed authentications from one source. Defaults: 10 failures in 10 minutes (the SMB brute-force figure
    Microsoft Defender for IoT documents); 5 distinct accounts for spraying; default account names on 3 hosts."""

    window: float = Field(600.0, gt=0)
    failures: int = Field(10, ge=2)
    accounts: int = Field(5, ge=2)
    default_hosts: int = Field(3, ge=2)
    max_sources: int = Field(10_000, ge=16)


class LdapReconSettings(_Strict):
    """Directory reconnaissance over LDAP. Defaults: 2 broad kinds of object (users and privileged accounts, say)
    within 10 minutes, or 1000 entries returned (the page size of Active Directory's MaxPageSize: a tool that
    pages past it is reading the directory, not looking one thing up)."""

    window: float = Field(600.0, gt=0)
    categories: int = Field(2, ge=1)
    entries: int = Field(1000, ge=1)
    max_sources: int = Field(10_000, ge=16)


class DetectorSettings(_Strict):
    """All detectors' settings; `suppress`: seconds of packet time in which a repeat alert is counted, not raised."""

    enabled: bool = True
    suppress: float = Field(3600.0, ge=0)
    scan: ScanSettings = ScanSettings()
    dns_sweep: DnsSweepSettings = DnsSweepSettings()
    alert_burst: AlertBurstSettings = AlertBurstSettings()
    new_device: NewDeviceSettings = NewDeviceSettings()
    auth_bruteforce: AuthBruteforceSettings = AuthBruteforceSettings()
    ldap_recon: LdapReconSettings = LdapReconSettings()
