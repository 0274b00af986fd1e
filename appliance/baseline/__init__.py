"""The baseline (what is normal): learning and protecting modes, learned allow-lists, peer groups, polling channels
and the statistical models; persisted in SQLite. Detectors read it through `Baseline.assess` and its queries.

The names below are imported when first used, so that reading the configuration (appliance.baseline.settings)
does not load numpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appliance.baseline.anomaly import Anomaly
    from appliance.baseline.core import Baseline, Novelty, Timing
    from appliance.baseline.modes import LEARN, MODES, PROTECT, Progress
    from appliance.baseline.settings import BaselineSettings

__all__ = ["LEARN", "MODES", "PROTECT", "Anomaly", "Baseline", "BaselineSettings", "Novelty", "Progress", "Timing"]

_WHERE = {"Anomaly": "anomaly", "Baseline": "core", "Novelty": "core", "Timing": "core", "LEARN": "modes",
          "MODES": "modes", "PROTECT": "modes", "Progress": "modes", "BaselineSettings": "settings"}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"appliance.baseline.{module}"), name)
