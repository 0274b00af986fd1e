"""What the detectors of learned behaviour share: raising an alert about a broken baseline fact.

Every such alert names the fact in its details (`fact`: kind and key, `fact_id`: what `otwatch learn` takes, the
alert's key works too), says `novel: true` (something never seen), and the baseline remembers the fact so that an
operator can accept it as normal.
"""

from __future__ import annotations

from typing import Any

from appliance.alert import Alert
from appliance.baseline import Baseline
from appliance.baseline.channels import op_text
from appliance.baseline.facts import Key, fact_id
from appliance.detectors.base import AlertContext, Detector


def raise_fact(
    detector: Detector,
    ctx: AlertContext,
    baseline: Baseline,
    note: str,
    fact: tuple[str, Key],
    ts: float,
    src: str,
    *,
    key: str,
    explanation: str,
    assets: tuple[str, ...] = (),
    uids: tuple[str, ...] = (),
    details: dict[str, Any] | None = None,
    remember: dict[str, Any] | None = None,
) -> Alert | None:
    """Raise `note` about a broken fact unless suppressed; the baseline keeps the fact for `otwatch learn`."""
    if not ctx.fresh(detector, note, key, ts):
        return None
    kind, fkey = fact
    out: dict[str, Any] = {
        **(details or {}),
        "fact": {"kind": kind, "key": list(fkey)},
        "fact_id": fact_id(kind, fkey),
        "novel": True,
        "baseline": baseline.learned_for(),
    }
    alert = ctx.alert(detector, note, ts, src, assets=assets, uids=uids, key=key, explanation=explanation,
                      details=out)  # fmt: skip
    if alert is not None:
        baseline.remember(kind, fkey, alert.key, ts, remember)
    return alert


def listing(items: list[str], none: str = "none") -> str:
    """Addresses or names as `a, b, c` (`none` when empty)."""
    return ", ".join(items) if items else none


def ops_listing(protocol: str, ops: list[tuple[str, ...]]) -> str:
    """Operations in words, separated by semicolons."""
    return "; ".join(op_text(protocol, op) for op in ops) or "none"


def uids_of(uid: str | None) -> tuple[str, ...]:
    """An event's uid as alert evidence."""
    return (uid,) if uid else ()
