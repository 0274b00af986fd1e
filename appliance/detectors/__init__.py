"""Detectors (the judge layer): DETECTORS is the ordered registry; `build_detectors` makes them from the settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from appliance.detectors.alert_burst import AlertBurstDetector
from appliance.detectors.auth_bruteforce import AuthBruteforceDetector
from appliance.detectors.base import Detector
from appliance.detectors.dns_sweep import DnsSweepDetector
from appliance.detectors.ldap_recon import LdapReconDetector
from appliance.detectors.mqtt_baseline import MqttBaselineDetector
from appliance.detectors.new_device import NewDeviceDetector
from appliance.detectors.ot_anomaly import OtAnomalyDetector
from appliance.detectors.ot_baseline import OtBaselineDetector
from appliance.detectors.ot_discovery import OtDiscoveryDetector
from appliance.detectors.ot_internet import OtInternetDetector
from appliance.detectors.ot_pivot import OtPivotDetector
from appliance.detectors.ot_timing import OtTimingDetector
from appliance.detectors.recon_tools import ReconToolDetector
from appliance.detectors.scan import ScanDetector
from appliance.detectors.settings import DetectorSettings
from appliance.detectors.zone_policy import ZonePolicyDetector

if TYPE_CHECKING:
    from appliance.baseline import Baseline
    from appliance.config import ZonePolicyRule

DETECTORS = (
    ScanDetector,
    DnsSweepDetector,
    ReconToolDetector,
    NewDeviceDetector,
    AuthBruteforceDetector,
    LdapReconDetector,
    OtPivotDetector,
    ZonePolicyDetector,
    OtBaselineDetector,
    OtDiscoveryDetector,
    OtInternetDetector,
    MqttBaselineDetector,
    OtTimingDetector,
    OtAnomalyDetector,
    AlertBurstDetector,
)


def build_detectors(
    settings: DetectorSettings, baseline: Baseline | None = None, policy: Sequence[ZonePolicyRule] = ()
) -> list[Detector]:
    """One instance of every registered detector, each with its section of the settings; the detectors of learned
    behaviour read `baseline` (the pipeline's; without one, a baseline of their own that learns from nothing but
    what they are asked about, and so judges nothing; none when the baseline is disabled); the zone-policy detector
    only when the config has a policy."""
    if not settings.enabled:
        return []
    if baseline is None:
        from appliance.baseline import Baseline

        baseline = Baseline()
    discovery = OtDiscoveryDetector(baseline, baseline.settings.discovery)
    mqtt = MqttBaselineDetector(baseline)
    learned: list[Detector] = [
        OtBaselineDetector(baseline, (discovery, mqtt)),  # the one the engine calls with OT events
        discovery,
        OtInternetDetector(baseline),
        mqtt,
        OtTimingDetector(baseline),
        OtAnomalyDetector(baseline),
    ]
    return [
        ScanDetector(settings.scan),
        DnsSweepDetector(settings.dns_sweep),
        ReconToolDetector(),
        NewDeviceDetector(settings.new_device),
        AuthBruteforceDetector(settings.auth_bruteforce),
        LdapReconDetector(settings.ldap_recon),
        OtPivotDetector(),
        *([ZonePolicyDetector(policy)] if policy else []),
        *(learned if baseline.settings.enabled else []),
        AlertBurstDetector(settings.alert_burst),
    ]
