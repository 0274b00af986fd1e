"""TCP sequence arithmetic and the out-of-order buffer of one direction (`conn_state.Half`).

Offsets are relative to the direction's initial sequence number (the SYN is offset 0, the first data byte 1) and
unbounded Python ints, so 32-bit wraparound is handled once, in `unwrap`. The buffer holds segments that start
beyond the next byte to deliver (`Half.nxt`), sorted by start; overlaps are kept and trimmed when delivered, so
a byte is never delivered twice. The FlowTable decides when a hole is given up (`Half.nxt` moved past it).
"""

from __future__ import annotations

from bisect import bisect_right

from appliance.conn_state import Half

__all__ = ["buffer_segment", "pop_ready", "unwrap"]

MASK = 0xFFFFFFFF
HALF_SPACE = 0x80000000


def unwrap(seq: int, base: int, ref: int) -> int:
    """The relative offset of 32-bit `seq` (offset 0 at `base`), taken within 2**31 of the offset `ref`."""
    rel = (seq - base) & MASK
    return ref + ((rel - ref + HALF_SPACE) & MASK) - HALF_SPACE


def buffer_segment(half: Half, rel: int, data: bytes) -> int:
    """Keep a segment that starts beyond `half.nxt`; the number of bytes added (0 when already held)."""
    starts = half.ostarts
    odata = half.odata
    if starts is None or odata is None:
        starts = half.ostarts = []
        odata = half.odata = []
    i = bisect_right(starts, rel)
    n = len(data)
    if i and starts[i - 1] + len(odata[i - 1]) >= rel + n:
        return 0  # entirely inside a segment already held
    starts.insert(i, rel)
    odata.insert(i, data)
    half.obytes += n
    return n


def pop_ready(half: Half) -> list[bytes]:
    """Remove the held bytes that continue the stream at `half.nxt` (trimmed of overlaps) and advance it."""
    out: list[bytes] = []
    starts = half.ostarts
    odata = half.odata
    nxt = half.nxt
    if starts and odata:
        i = 0
        count = len(starts)
        freed = 0
        while i < count and starts[i] <= nxt:
            start = starts[i]
            data = odata[i]
            freed += len(data)
            end = start + len(data)
            if end > nxt:
                out.append(data[nxt - start:] if start < nxt else data)
                nxt = end
            i += 1
        if i:
            del starts[:i]
            del odata[:i]
            half.obytes -= freed
    if nxt == half.fin:
        nxt += 1  # the FIN takes one sequence number
    half.nxt = nxt
    return out
