"""Sliding windows of distinct items per key, in packet time, bounded in keys and items."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any


class DistinctWindow:
    """For each key, the distinct items seen in the last `window` seconds, with when each was last seen and one
    piece of evidence (a uid) per item. Bounded: at most `max_keys` keys (least recently touched dropped first) and
    `max_items` items per key (new items ignored once full)."""

    def __init__(self, window: float, max_keys: int, max_items: int) -> None:
        self.window = window
        self.max_keys = max_keys
        self.max_items = max_items
        self._keys: dict[Hashable, dict[Hashable, tuple[float, str]]] = {}

    def add(self, key: Hashable, item: Hashable, ts: float, evidence: str = "") -> int:
        """Record `item` for `key` at `ts`; returns how many distinct items the key holds in its window."""
        items = self._keys.pop(key, None)  # re-inserted last: dict order is least-recently-touched first
        if items is None:
            if len(self._keys) >= self.max_keys:
                del self._keys[next(iter(self._keys))]
            items = {}
        self._keys[key] = items
        horizon = ts - self.window
        if items and next(iter(items.values()))[0] < horizon:  # oldest first: drop what left the window
            for old in [i for i, (seen, _) in items.items() if seen < horizon]:
                del items[old]
        if item in items:
            del items[item]
            items[item] = (ts, evidence)
        elif len(items) < self.max_items:
            items[item] = (ts, evidence)
        return len(items)

    def items(self, key: Hashable) -> list[Any]:
        """The key's items in the order they were last seen."""
        return list(self._keys.get(key, {}))

    def evidence(self, key: Hashable, limit: int = 20) -> tuple[str, ...]:
        """Up to `limit` distinct non-empty pieces of evidence of the key's items, oldest first."""
        out = dict.fromkeys(e for _, e in self._keys.get(key, {}).values() if e)
        return tuple(out)[:limit]

    def expire(self, now: float) -> None:
        """Forget keys whose every item left the window: the least recently touched first, stopping at the first
        key still in it (keys are kept in the order they were last touched, items in the order last seen)."""
        horizon = now - self.window
        keys = self._keys
        while keys:
            key = next(iter(keys))
            items = keys[key]
            if items and next(reversed(items.values()))[0] >= horizon:
                return
            del keys[key]

    def clear(self, key: Hashable) -> None:
        """Forget one key."""
        self._keys.pop(key, None)

    def __len__(self) -> int:
        return len(self._keys)
