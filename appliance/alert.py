"""The Alert: one detector finding, with its ATT&CK techniques, evidence, explanation and dedupe key.

Kept beside `appliance.model` (which re-exports it) rather than in it, to keep that module short.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("low", "medium", "high", "critical")  # ascending; a note's severity is one of these


@dataclass(frozen=True, slots=True)
class Alert:
    """A detector's finding at packet time `ts`: what (note), how bad, which techniques, who, why, on what evidence.

    `src` is the actor (the address whose behaviour raised it), `assets` every address involved (actor first),
    `uids` the flow and event uids the finding rests on (bounded by the detector), `explanation` one sentence that
    names the observed fact and the threshold or baseline it broke. `key` identifies the finding for suppression:
    a second alert with the same key inside the suppression interval is counted, not raised (Zeek's notice
    suppression)."""

    ts: float
    detector: str
    note: str
    severity: str
    score: float  # 0-100
    techniques: tuple[str, ...]
    src: str
    assets: tuple[str, ...]
    uids: tuple[str, ...]
    explanation: str
    key: str
    details: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """The alerts.jsonl row (fixed key order)."""
        return {
            "ts": self.ts,
            "detector": self.detector,
            "note": self.note,
            "severity": self.severity,
            "score": self.score,
            "techniques": list(self.techniques),
            "src": self.src,
            "assets": list(self.assets),
            "uids": list(self.uids),
            "explanation": self.explanation,
            "key": self.key,
            "details": self.details,
        }
