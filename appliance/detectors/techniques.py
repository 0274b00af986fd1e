"""MITRE ATT&CK technique tables (ICS and Enterprise) shipped with otwatch, for checking and naming technique ids.

The tables are appliance/detectors/data/{ics,enterprise}-techniques.csv (see SOURCE.md there; MITRE's licence in
LICENSE.txt): technique id, name, tactics.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True, slots=True)
class Technique:
    """One ATT&CK technique: id (T0846, T1046.001), name, tactics, and which matrix (ics or enterprise)."""

    technique_id: str
    name: str
    tactics: tuple[str, ...]
    matrix: str


@cache
def techniques() -> dict[str, Technique]:
    """Every technique id of both matrices, read once from the shipped tables."""
    out: dict[str, Technique] = {}
    data = resources.files("appliance.detectors") / "data"
    for matrix in ("ics", "enterprise"):
        with (data / f"{matrix}-techniques.csv").open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                tid = row["technique_id"].strip()
                out[tid] = Technique(tid, row["name"].strip(), tuple(row["tactics"].split(";")), matrix)
    return out


def unknown_techniques(ids: tuple[str, ...] | list[str]) -> list[str]:
    """The ids among `ids` that are in neither table."""
    table = techniques()
    return [t for t in ids if t not in table]
