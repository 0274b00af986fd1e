"""A small, bounded BER reader shared by the LDAP decoder and the SPNEGO/GSS-API unwrapping of SMB and LDAP.

Coverage: single-byte identifiers (tag numbers 0..30, every class, primitive or constructed), definite lengths in
short form or long form of up to 4 length bytes; INTEGER/ENUMERATED values of up to 8 bytes; OBJECT IDENTIFIER
rendering. Not decoded (each raises `BerError`, which callers catch and report as a weird): indefinite lengths
(0x80), multi-byte tag numbers (low bits 0x1F), lengths running past the enclosing element. Callers bound the
nesting depth themselves with `MAX_DEPTH`.
"""

from __future__ import annotations

__all__ = ["MAX_DEPTH", "BerError", "ber_int", "children", "oid_text", "tlv"]

MAX_DEPTH = 32  # nesting limit callers apply (LDAP filters, SPNEGO tokens)


class BerError(ValueError):
    """Malformed or unsupported BER (truncated, indefinite length, multi-byte tag, over-long integer)."""


def tlv(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """The element starting at buf[pos] and ending by `end`: (identifier byte, content start, content end)."""
    if pos + 2 > end:
        raise BerError("truncated element header")
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise BerError(f"multi-byte tag at {pos}")
    ln = buf[pos + 1]
    start = pos + 2
    if ln & 0x80:
        count = ln & 0x7F
        if count == 0:
            raise BerError("indefinite length")
        if count > 4:
            raise BerError(f"{count}-byte length")
        if start + count > end:
            raise BerError("truncated length")
        ln = int.from_bytes(buf[start : start + count], "big")
        start += count
    stop = start + ln
    if stop > end:
        raise BerError(f"element of {ln} bytes runs past its container")
    return tag, start, stop


def ber_int(buf: bytes, start: int, stop: int) -> int:
    """A signed INTEGER/ENUMERATED content of at most 8 bytes (empty content is an error)."""
    if not 0 < stop - start <= 8:
        raise BerError(f"integer of {stop - start} bytes")
    return int.from_bytes(buf[start:stop], "big", signed=True)


def children(buf: bytes, start: int, stop: int) -> list[tuple[int, int, int]]:
    """The elements directly inside buf[start:stop], as (tag, content start, content end)."""
    out: list[tuple[int, int, int]] = []
    pos = start
    while pos < stop:
        tag, s, e = tlv(buf, pos, stop)
        out.append((tag, s, e))
        pos = e
    return out


def oid_text(raw: bytes) -> str:
    """The dotted text of an OBJECT IDENTIFIER's content bytes."""
    if not raw:
        raise BerError("empty OID")
    arcs: list[int] = []
    value = 0
    for b in raw:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(value)
            value = 0
    if raw[-1] & 0x80:
        raise BerError("truncated OID")
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])
