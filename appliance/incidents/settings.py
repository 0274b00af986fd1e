"""The `incidents:` config section: correlation windows, when an incident forms, and the response setting."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class IncidentSettings(BaseModel):
    """Incident correlation. `idle`: seconds of packet time without an alert after which an incident closes (a
    day: an intruder's working session and the next morning's return stay one incident). `join_window`: how long
    an address targeted by an incident's actor joins that incident when it acts itself, and how long low alerts
    wait for an incident to form. `min_severity`: the lowest alert severity that starts an incident on its own.
    `enforce`: when true, each incident's recommended nftables rules are also written to
    `<state_dir>/response/<id>.nft`; otwatch never runs nft, whatever this says."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    idle: float = Field(86400.0, gt=0)
    join_window: float = Field(3600.0, ge=0)
    min_severity: Literal["low", "medium", "high", "critical"] = "medium"
    enforce: bool = False
    max_closed_kept: int = Field(1000, ge=0)  # closed incidents kept in memory for snapshot readers
