"""Learned facts: bounded tables of what was seen, by kind, each fact a tuple key with a small JSON-able value.

Kinds and keys (addresses first, so that a peer may stand in for a device at positions 0 and 1):
  asset      (ip,)                                  -> [first seen, learning until (0: not learning on its own)]
  edge       (src, dst, protocol, server port)      -> first seen
  role       (ip, protocol, role)                   -> first seen  (modbus master/slave, bacnet client/server,
                                                                    mqtt publisher/subscriber)
  op         (src, dst, protocol, *operation)       -> first seen  (modbus: op, unit; bacnet: service, object
                                                                    types, properties[, priority]; mqtt: packet
                                                                    type[, topic])
  commander  (src, dst, protocol)                   -> first seen  (a Modbus master of that device, a BACnet
                                                                    writer or commander of it)
  point      (dst, protocol, space, address)        -> [lowest, highest, writes] of the values written (None
                                                                    when not numeric)
  discovery  (src, what)                            -> first seen  (fc43, who_is, device_walk, unit_sweep)
  internet   (ip, peer, protocol, port)             -> first seen  (an OT device and a public address)
A fact's id (`fact_id`) is a short stable hash of its kind and key: alerts carry it, `otwatch learn ID` names it.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

Key = tuple[Any, ...]
Fact = tuple[str, Key]  # (kind, key)

KINDS = ("asset", "edge", "role", "op", "commander", "point", "discovery", "internet")
CAP_OF = {
    "asset": "assets",
    "edge": "edges",
    "role": "roles",
    "op": "operations",
    "commander": "writers",
    "point": "points",
    "discovery": "discovery",
    "internet": "edges",
}


def fact_id(kind: str, key: Key) -> str:
    """A short stable id of a fact (10 hex digits of a SHA-1 of its kind and key)."""
    text = json.dumps([kind, list(key)], separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:10]


def key_text(key: Key) -> str:
    """The JSON text of a key (the `key` column of the baselines table)."""
    return json.dumps(list(key), separators=(",", ":"))


def key_from_text(text: str) -> Key:
    """A key back from `key_text`."""
    value = json.loads(text)
    if not isinstance(value, list):
        raise ValueError(f"fact key {text!r} is not a list")
    return tuple(value)


class FactTable:
    """Every learned fact by kind, bounded per kind by `caps` (kind -> limit); remembers which keys changed."""

    def __init__(self, caps: dict[str, int]) -> None:
        self.caps = caps
        self.tables: dict[str, dict[Key, Any]] = {k: {} for k in KINDS}
        self.cap_hits: Counter[str] = Counter()  # kind -> facts not learned because the table was full
        self.dirty: dict[str, set[Key]] = {k: set() for k in KINDS}
        self.removed: dict[str, set[Key]] = {k: set() for k in KINDS}

    def has(self, kind: str, key: Key) -> bool:
        """True when the fact is known."""
        return key in self.tables[kind]

    def get(self, kind: str, key: Key, default: Any = None) -> Any:
        """The fact's value (`default` when unknown)."""
        return self.tables[kind].get(key, default)

    def add(self, kind: str, key: Key, value: Any) -> bool:
        """Learn a fact (or replace its value); False, counted, when its kind is full."""
        table = self.tables[kind]
        if key not in table and len(table) >= self.caps.get(kind, 1 << 62):
            self.cap_hits[kind] += 1
            return False
        table[key] = value
        self.dirty[kind].add(key)
        self.removed[kind].discard(key)
        return True

    def remove(self, kind: str, key: Key) -> None:
        """Forget a fact."""
        if self.tables[kind].pop(key, None) is not None or key in self.dirty[kind]:
            self.removed[kind].add(key)
        self.dirty[kind].discard(key)

    def keys(self, kind: str) -> Iterator[Key]:
        """The keys of one kind, in the order learned."""
        return iter(self.tables[kind])

    def count(self, kind: str) -> int:
        """How many facts of one kind are known."""
        return len(self.tables[kind])

    def counts(self) -> dict[str, int]:
        """Facts known per kind."""
        return {k: len(v) for k, v in self.tables.items()}

    def take_changes(self) -> tuple[dict[str, list[tuple[Key, Any]]], dict[str, list[Key]]]:
        """The facts added or changed and the facts removed since the last call (for saving)."""
        changed = {k: [(key, self.tables[k][key]) for key in sorted(keys, key=key_text)]
                   for k, keys in self.dirty.items() if keys}  # fmt: skip
        removed = {k: sorted(keys, key=key_text) for k, keys in self.removed.items() if keys}
        for keys in self.dirty.values():
            keys.clear()
        for keys in self.removed.values():
            keys.clear()
        return changed, removed

    def load(self, kind: str, key: Key, value: Any) -> None:
        """Put back a stored fact (not marked changed; caps apply)."""
        table = self.tables[kind]
        if key in table or len(table) < self.caps.get(kind, 1 << 62):
            table[key] = value
        else:
            self.cap_hits[kind] += 1


def caps_by_kind(caps: Any) -> dict[str, int]:
    """Fact kind -> limit from the `baseline.caps` settings."""
    return {kind: int(getattr(caps, name)) for kind, name in CAP_OF.items()}


def ranges(numbers: list[int], limit: int = 12) -> str:
    """Integers as compact ranges: `4, 12-15` (at most `limit` ranges, then `...`)."""
    out: list[str] = []
    values = sorted(set(numbers))
    i = 0
    while i < len(values) and len(out) < limit:
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        out.append(str(values[i]) if i == j else f"{values[i]}-{values[j]}")
        i = j + 1
    if i < len(values):
        out.append("...")
    return ", ".join(out)
