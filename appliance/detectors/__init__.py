"""Detectors (the judge layer): DETECTORS is the ordered registry; `build_detectors` makes them from the settings."""

from __future__ import annotations

from appliance.detectors.alert_burst import AlertBurstDetector
from appliance.detectors.auth_bruteforce import AuthBruteforceDetector
from appliance.detectors.base import Detector
from appliance.detectors.dns_sweep import DnsSweepDetector
from appliance.detectors.ldap_recon import LdapReconDetector
from appliance.detectors.new_device import NewDeviceDetector
from appliance.detectors.ot_pivot import OtPivotDetector
from appliance.detectors.recon_tools import ReconToolDetector
from appliance.detectors.scan import ScanDetector
from appliance.detectors.settings import DetectorSettings

DETECTORS = (
    ScanDetector,
    DnsSweepDetector,
    ReconToolDetector,
    NewDeviceDetector,
    AuthBruteforceDetector,
    LdapReconDetector,
    OtPivotDetector,
    AlertBurstDetector,
)


def build_detectors(settings: DetectorSettings) -> list[Detector]:
    """One instance of every registered detector, each with its section of the settings."""
    if not settings.enabled:
        return []
    return [
        ScanDetector(settings.scan),
        DnsSweepDetector(settings.dns_sweep),
        ReconToolDetector(),
        NewDeviceDetector(settings.new_device),
        AuthBruteforceDetector(settings.auth_bruteforce),
        LdapReconDetector(settings.ldap_recon),
        OtPivotDetector(),
        AlertBurstDetector(settings.alert_burst),
    ]
