"""LDAP search filters (RFC 4511 section 4.5.1) rendered as RFC 4515 text: `(&(objectClass=user)(adminCount=1))`.

Every filter choice is rendered: and, or, not, equalityMatch, substrings, greaterOrEqual, lessOrEqual, present,
approxMatch, extensibleMatch (`attr:dn:rule:=value`). Values are escaped as RFC 4515 says (`*` `(` `)` `\\` and
NUL as `\\2a` `\\28` `\\29` `\\5c` `\\00`, other control bytes likewise); values that are not UTF-8 (SIDs, GUIDs)
are written byte by byte as `\\xx`. Nesting is bounded by protocols.ber.MAX_DEPTH and the text by MAX_FILTER.
"""

from __future__ import annotations

from protocols.ber import MAX_DEPTH, BerError, tlv

__all__ = ["MAX_FILTER", "escape_value", "render_filter"]

MAX_FILTER = 4096  # characters of filter text kept (longer texts end with "...")
_OPS = {0xA3: "=", 0xA5: ">=", 0xA6: "<=", 0xA8: "~="}
_ESCAPE = {c: f"\\{c:02x}" for c in (*range(0x20), 0x2A, 0x28, 0x29, 0x5C, 0x7F)}
_TABLE = str.maketrans({chr(c): v for c, v in _ESCAPE.items()})


def escape_value(raw: bytes) -> str:
    """An assertion value as RFC 4515 text."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(f"\\{b:02x}" for b in raw)
    return text.translate(_TABLE)


def _attr(buf: bytes, pos: int, end: int) -> tuple[str, int]:
    tag, s, e = tlv(buf, pos, end)
    if tag != 0x04:
        raise BerError("attribute description is not an OCTET STRING")
    return buf[s:e].decode("utf-8", "replace"), e


def _render(buf: bytes, pos: int, end: int, depth: int, out: list[str]) -> int:
    if depth > MAX_DEPTH:
        raise BerError("filter nested too deep")
    tag, s, e = tlv(buf, pos, end)
    if tag in (0xA0, 0xA1):
        out.append("(&" if tag == 0xA0 else "(|")
        p = s
        while p < e:
            p = _render(buf, p, e, depth + 1, out)
        out.append(")")
    elif tag == 0xA2:
        out.append("(!")
        _render(buf, s, e, depth + 1, out)
        out.append(")")
    elif tag in _OPS:
        attr, p = _attr(buf, s, e)
        _vtag, vs, ve = tlv(buf, p, e)
        out.append(f"({attr}{_OPS[tag]}{escape_value(bytes(buf[vs:ve]))})")
    elif tag == 0x87:
        out.append(f"({buf[s:e].decode('utf-8', 'replace')}=*)")
    elif tag == 0xA4:
        attr, p = _attr(buf, s, e)
        _, ss, se = tlv(buf, p, e)
        parts = ["", ""]
        middle: list[str] = []
        while ss < se:
            stag, vs, ve = tlv(buf, ss, se)
            value = escape_value(bytes(buf[vs:ve]))
            if stag == 0x80:
                parts[0] = value
            elif stag == 0x82:
                parts[1] = value
            else:
                middle.append(value)
            ss = ve
        out.append(f"({attr}={'*'.join([parts[0], *middle, parts[1]])})")
    elif tag == 0xA9:
        rule = attr = value = ""
        dn = False
        p = s
        while p < e:
            ctag, cs, ce = tlv(buf, p, e)
            text = bytes(buf[cs:ce])
            if ctag == 0x81:
                rule = text.decode("utf-8", "replace")
            elif ctag == 0x82:
                attr = text.decode("utf-8", "replace")
            elif ctag == 0x83:
                value = escape_value(text)
            elif ctag == 0x84:
                dn = any(text)
            p = ce
        out.append(f"({attr}{':dn' if dn else ''}{':' + rule if rule else ''}:={value})")
    else:
        raise BerError(f"unknown filter choice 0x{tag:02x}")
    return e


def render_filter(buf: bytes, pos: int, end: int) -> tuple[str, int]:
    """The RFC 4515 text of the filter element at buf[pos] (within end) and the offset after it."""
    out: list[str] = []
    stop = _render(buf, pos, end, 0, out)
    text = "".join(out)
    if len(text) > MAX_FILTER:
        text = text[: MAX_FILTER - 3] + "..."
    return text, stop
