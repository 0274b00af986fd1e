"""Reassembly of segmented BACnet APDUs (confirmed requests and complex ACKs), bounded in count and size.

One `Reassembler` per flow. A message is keyed by its sender's side, PDU type, routing addresses and invoke id;
segments must arrive in sequence order (0, 1, 2, ... modulo 256). A segment up to 127 behind the next expected one
(a retransmission within a window) is ignored; a segment ahead of it (one was lost) drops the partial message with
one weird, and the rest of that message is ignored quietly up to its last segment. Limits: at most
MAX_MESSAGES partial messages at once, MAX_BYTES of data and MAX_SEGMENTS segments each.
"""

from __future__ import annotations

from collections.abc import Hashable

MAX_MESSAGES = 64
MAX_BYTES = 1 << 20
MAX_SEGMENTS = 4096
MAX_LEFTOVER_REPORTS = 16

Problems = list[tuple[str, str]]


class _Partial:
    """The segments of one message received so far."""

    __slots__ = ("broken", "count", "next_seq", "parts", "size")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.next_seq = 0
        self.count = 0
        self.size = 0
        self.broken = False  # a segment was lost: the rest of the message is dropped quietly


class Reassembler:
    """Partial segmented messages of one flow, keyed by (side, PDU type, route, invoke id)."""

    def __init__(self) -> None:
        self._partial: dict[Hashable, _Partial] = {}

    def add(self, key: Hashable, seq: int, more: bool, data: bytes) -> tuple[tuple[bytes, int] | None, Problems]:
        """Take one segment; returns ((whole data, segment count) or None while incomplete, problems)."""
        problems: Problems = []
        part = self._partial.get(key)
        if part is not None and part.broken:
            if seq == 0:  # a new transfer with the same key
                del self._partial[key]
                part = None
            else:
                if not more:
                    del self._partial[key]
                return None, problems
        if part is not None and seq != part.next_seq:
            if 1 <= (part.next_seq - seq) & 0xFF <= 127:  # retransmitted: already taken
                return None, problems
            problems.append(("bacnet_segment_out_of_order",
                             f"segment {seq} where {part.next_seq} was expected; {part.count} segments dropped"))
            if more:
                part.broken = True
                part.parts = []
            else:
                del self._partial[key]
            return None, problems
        if part is None:
            if seq != 0:
                problems.append(("bacnet_segment_without_start", f"segment {seq} of a message not seen from 0"))
                return None, problems
            if not more:  # a "segmented" message in one segment
                return (data, 1), problems
            if len(self._partial) >= MAX_MESSAGES:
                oldest = next(iter(self._partial))
                dropped = self._partial.pop(oldest)
                problems.append(("bacnet_segment_table_full",
                                 f"{MAX_MESSAGES} partial messages; dropped one of {dropped.count} segments"))
            part = self._partial[key] = _Partial()
        part.parts.append(data)
        part.count += 1
        part.size += len(data)
        part.next_seq = (seq + 1) & 0xFF
        if part.size > MAX_BYTES or part.count > MAX_SEGMENTS:
            del self._partial[key]
            problems.append(("bacnet_segment_overflow",
                             f"{part.count} segments, {part.size} bytes: beyond {MAX_SEGMENTS} / {MAX_BYTES}"))
            return None, problems
        if more:
            return None, problems
        del self._partial[key]
        return (b"".join(part.parts), part.count), problems

    def drop(self, invoke: int) -> None:
        """Forget the partial messages with this invoke id (an Abort ended their transaction)."""
        for key in [k for k in self._partial if isinstance(k, tuple) and k[-1] == invoke]:
            del self._partial[key]

    def leftovers(self) -> list[tuple[bool, str, str]]:
        """(sender is_orig, weird name, addl) for each message still incomplete (capped), and forget them all."""
        out = []
        pending = [(key, part) for key, part in self._partial.items() if not part.broken]
        for key, part in pending[:MAX_LEFTOVER_REPORTS]:
            is_orig = bool(key[0]) if isinstance(key, tuple) else True
            out.append((is_orig, "bacnet_incomplete_segmented_apdu",
                        f"{part.count} segments ({part.size} bytes) of a message never completed"))
        more = len(pending) - MAX_LEFTOVER_REPORTS
        if more > 0:
            out.append((True, "bacnet_incomplete_segmented_apdu", f"{more} more incomplete messages"))
        self._partial.clear()
        return out

    def clear(self) -> None:
        """Forget everything."""
        self._partial.clear()

    def __len__(self) -> int:
        return len(self._partial)
