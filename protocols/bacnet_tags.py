"""BACnet application-layer tag codec (ASHRAE 135 clause 20.2): a bounds-checked tokenizer and value renderers.

`tokenize(buf, p, end)` splits service parameters into a flat list of tokens `(kind, number, start, length)`:
kind APP (application tag; `number` is the datatype), CTX (context-specific primitive), OPEN / CLOSE (the
opening/closing tags of a constructed value, whose nesting it checks; their start and length are 0).
`start, length` locate a primitive's content in `buf`; an application Boolean has no content and carries its
value in `length` (0 or 1). It never reads past `end`: on a malformed or truncated tag it stops and returns
the tokens so far with one problem.

`render(buf, tok, probs)` turns one primitive token into `(value, text)`: `value` a plain JSON value (None, bool,
int, float, str, or {"object_type", "instance_number"} for an object identifier), `text` ICSNPP's rendering
(bacnet-analyzer.pac `parse_tag`): unsigned/signed/enumerated in decimal, reals and doubles with `%f`
(`21.500000`), octet strings in lower-case hex, character strings as text, bit strings as one `T`/`F` per bit
of every content octet (ICSNPP prints the unused trailing bits too; `value` keeps only the used bits), dates
`m/d/yyyy`, times `h:m:s.hh`, object identifiers `binary-input: 20001`. Where ICSNPP prints nothing or garbage
we render the true value instead: character sets other than UTF-8 (decoded), doubles and 3-byte signed integers
(ICSNPP misreads them), context-tagged primitives inside a value (lower-case hex of their content).
"""

from __future__ import annotations

import codecs
from struct import Struct
from typing import Any

from protocols.bacnet_enums import object_type_name

APP, CTX, OPEN, CLOSE = 0, 1, 2, 3
Token = tuple[int, int, int, int]
Problems = list[tuple[str, str]]
Fields = dict[str, Any]

MISSING = "bacnet_missing_parameter"
TRUNCATED = "bacnet_truncated_parameters"
INVALID_TAG = "bacnet_invalid_tag"
INVALID_VALUE = "bacnet_invalid_value"
CHARSET = "bacnet_unknown_character_set"
NESTING = "bacnet_nesting_too_deep"

MAX_DEPTH = 32
MAX_OCTETS = 1024  # ICSNPP's limits for rendering long values
MAX_STRING = 4096
MAX_BITS = 512

U16 = Struct(">H")
U32 = Struct(">I")
REAL = Struct(">f")
DOUBLE = Struct(">d")
_TF = ["".join("T" if (b >> i) & 1 else "F" for i in range(7, -1, -1)) for b in range(256)]
# header octets of the common short forms (tag number < 15): a primitive of length < 5 other than a Boolean
# (kind, number, content length), or an opening/closing tag (its very token, start 0); None: the general path


def _short(b: int) -> tuple[int, int, int] | tuple[int, int, int, int] | None:
    num, lvt = b >> 4, b & 7
    if num == 15:
        return None
    if b & 8:
        return (CTX, num, lvt) if lvt < 5 else (OPEN if lvt == 6 else CLOSE, num, 0, 0) if lvt > 5 else None
    return (APP, num, lvt) if lvt < 5 and num != 1 else None


_SHORT = [_short(b) for b in range(256)]
_APP_NAMES = ("null", "boolean", "unsigned", "signed", "real", "double", "octet-string", "character-string",
              "bit-string", "enumerated", "date", "time", "object-identifier")


def tokenize(buf: bytes, p: int, end: int) -> tuple[list[Token], tuple[str, str] | None]:
    """Split buf[p:end] into tag tokens; stop at the first malformed tag and return it as the problem."""
    toks: list[Token] = []
    append = toks.append
    opened: list[int] = []
    short = _SHORT
    while p < end:
        b = buf[p]
        h = short[b]
        if h is not None:  # fast path
            if len(h) == 3:
                n = h[2]
                p += 1
                if p + n > end:
                    return toks, (TRUNCATED, f"tag at offset {p - 1} needs {n} content bytes, {end - p} left")
                append((h[0], h[1], p, n))
                p += n
                continue
            if h[0] == OPEN:
                if len(opened) >= MAX_DEPTH:
                    return toks, (NESTING, f"more than {MAX_DEPTH} nested constructed values")
                opened.append(h[1])
            elif not opened or opened.pop() != h[1]:
                return toks, (INVALID_TAG, f"closing tag [{h[1]}] without its opening tag at offset {p}")
            append(h)
            p += 1
            continue
        at = p
        p += 1
        num = b >> 4
        if num == 15:
            if p >= end:
                return toks, (TRUNCATED, f"tag header at offset {at}")
            num = buf[p]
            p += 1
        lvt = b & 7
        if b & 8:
            if lvt == 6:
                if len(opened) >= MAX_DEPTH:
                    return toks, (NESTING, f"more than {MAX_DEPTH} nested constructed values")
                opened.append(num)
                append((OPEN, num, 0, 0))
                continue
            if lvt == 7:
                if not opened or opened[-1] != num:
                    return toks, (INVALID_TAG, f"closing tag [{num}] without its opening tag at offset {at}")
                opened.pop()
                append((CLOSE, num, 0, 0))
                continue
            kind = CTX
        else:
            if lvt > 5:
                return toks, (INVALID_TAG, f"application tag {num} with length code {lvt} at offset {at}")
            if num == 1:
                if lvt > 1:
                    return toks, (INVALID_TAG, f"application boolean with value {lvt} at offset {at}")
                append((APP, 1, p, lvt))
                continue
            kind = APP
        if lvt == 5:
            if p >= end:
                return toks, (TRUNCATED, f"tag length at offset {at}")
            n = buf[p]
            p += 1
            if n == 254:
                if p + 2 > end:
                    return toks, (TRUNCATED, f"tag length at offset {at}")
                n = U16.unpack_from(buf, p)[0]
                p += 2
            elif n == 255:
                if p + 4 > end:
                    return toks, (TRUNCATED, f"tag length at offset {at}")
                n = U32.unpack_from(buf, p)[0]
                p += 4
        else:
            n = lvt
        if p + n > end:
            return toks, (TRUNCATED, f"tag at offset {at} needs {n} content bytes, {end - p} left")
        append((kind, num, p, n))
        p += n
    if opened:
        return toks, (TRUNCATED, f"constructed value [{opened[-1]}] not closed")
    return toks, None


def uint(buf: bytes, tok: Token) -> int | None:
    """The unsigned (or enumerated) value of a primitive token of 1-8 content bytes, else None."""
    n = tok[3]
    if n == 1:
        return buf[tok[2]]
    if 0 < n <= 8:
        s = tok[2]
        return int.from_bytes(buf[s:s + n], "big")
    return None


def sint(buf: bytes, tok: Token) -> int | None:
    """The signed value of a primitive token of 1-8 content bytes, else None."""
    n = tok[3]
    if 0 < n <= 8:
        s = tok[2]
        return int.from_bytes(buf[s:s + n], "big", signed=True)
    return None


def objid(buf: bytes, tok: Token) -> tuple[int, int] | None:
    """The (object type, instance) of a 4-byte object identifier token, else None."""
    if tok[3] != 4:
        return None
    v = U32.unpack_from(buf, tok[2])[0]
    return v >> 22, v & 0x3FFFFF


def char_string(buf: bytes, start: int, n: int, probs: Problems) -> str:
    """Decode a CharacterString's content (its first octet names the character set) to text."""
    if n == 0:
        probs.append((INVALID_VALUE, "character string without its character-set octet"))
        return ""
    cs = buf[start]
    raw = buf[start + 1:start + n]
    if cs == 0:
        return raw.decode("utf-8", "replace")
    if cs == 4:
        return raw.decode("utf-16-be", "replace")
    if cs == 5:
        return raw.decode("latin-1")
    if cs == 3:
        return raw.decode("utf-32-be", "replace")
    if cs == 1 and len(raw) >= 2:  # IBM/Microsoft DBCS: a 2-byte code page, then the text
        try:
            return raw[2:].decode(codecs.lookup(f"cp{U16.unpack_from(raw, 0)[0]}").name, "replace")
        except LookupError:
            return raw[2:].decode("latin-1")
    if cs == 2:  # JIS X 0208 in 7-bit form: the same characters as EUC-JP with the high bits set
        return bytes(c | 0x80 for c in raw).decode("euc_jp", "replace")
    probs.append((CHARSET, f"character set {cs}"))
    return raw.decode("latin-1")


def _date(b: bytes, s: int) -> tuple[str, str]:
    y, m, d = b[s], b[s + 1], b[s + 2]
    value = "-".join("*" if x == 255 else f"{x:02d}" for x in (m, d))
    value = ("*" if y == 255 else str(1900 + y)) + "-" + value
    return value, f"{m}/{d}/{y + 1900}"


def _time(b: bytes, s: int) -> tuple[str, str]:
    h, m, sec, hs = b[s], b[s + 1], b[s + 2], b[s + 3]
    value = ":".join("*" if x == 255 else f"{x:02d}" for x in (h, m, sec))
    return value + "." + ("*" if hs == 255 else f"{hs:02d}"), f"{h}:{m}:{sec}.{hs}"


def date_time_text(buf: bytes, date_tok: Token, time_tok: Token) -> str | None:
    """ISO-like `YYYY-MM-DDTHH:MM:SS.hh` of a Date and a Time token (`*` for unspecified parts), else None."""
    if date_tok[3] != 4 or time_tok[3] != 4:
        return None
    return _date(buf, date_tok[2])[0] + "T" + _time(buf, time_tok[2])[0]


def render(buf: bytes, tok: Token, probs: Problems) -> tuple[Any, str]:
    """One primitive token as (plain JSON value, ICSNPP text); see the module docstring."""
    kind, num, s, n = tok
    if kind != APP:  # a context-tagged primitive inside a value: no type to decode it with
        h = buf[s:s + n].hex() if n <= MAX_OCTETS else f"<octets len={n}>"
        return h, h
    if num == 2 or num == 9:
        v = uint(buf, tok)
        if v is not None:
            return v, str(v)
    elif num == 4:
        if n == 4:
            f = REAL.unpack_from(buf, s)[0]
            return f, f"{f:f}"
    elif num == 12:
        if n == 4:
            v = U32.unpack_from(buf, s)[0]
            t = object_type_name(v >> 22)
            return {"object_type": t, "instance_number": v & 0x3FFFFF}, f"{t}: {v & 0x3FFFFF}"
    elif num == 7:
        if n - 1 > MAX_STRING:
            txt = f"<string len={n - 1}>"
            return txt, txt
        txt = char_string(buf, s, n, probs)
        cut = txt.find("\x00")
        return txt.rstrip("\x00"), txt if cut < 0 else txt[:cut]
    elif num == 1:
        return n == 1, "true" if n == 1 else "false"
    elif num == 0:
        if n == 0:
            return None, ""
    elif num == 3:
        v = sint(buf, tok)
        if v is not None:
            return v, str(v)
    elif num == 6:
        if n > MAX_OCTETS:
            txt = f"<octets len={n}>"
            return txt, txt
        h = buf[s:s + n].hex()
        return h, h
    elif num == 8:
        if n > MAX_BITS:
            txt = f"<bits len={n}>"
            return txt, txt
        if n >= 1 and buf[s] < 8 and not (n == 1 and buf[s]):
            tf = "".join([_TF[x] for x in buf[s + 1:s + n]])
            return tf[:len(tf) - buf[s]], tf
    elif num == 5:
        if n == 8:
            f = DOUBLE.unpack_from(buf, s)[0]
            return f, f"{f:f}"
    elif num == 10:
        if n == 4:
            return _date(buf, s)
    elif num == 11:
        if n == 4:
            return _time(buf, s)
    else:  # application tags 13-15 are reserved
        h = buf[s:s + min(n, MAX_OCTETS)].hex()
        probs.append((INVALID_TAG, f"reserved application tag {num}"))
        return h, h
    probs.append((INVALID_VALUE, f"{_APP_NAMES[num]} with {n} content bytes"))
    return None, ""


def constructed(
    buf: bytes, toks: list[Token], i: int, probs: Problems, names: dict[int, str] | None = None
) -> tuple[list[Any], list[str], int]:
    """The primitive values inside the constructed value whose opening tag is toks[i], flattened in order.

    Returns (values, texts, index after the matching closing tag); nested opening/closing tags are skipped,
    as ICSNPP does when it logs one row per primitive. With `names`, the text of an unsigned or enumerated
    value is its name in that table (ICSNPP does so for a few properties, e.g. units and event-state).
    """
    ntok = len(toks)
    if i + 2 < ntok and toks[i + 2][0] == CLOSE and toks[i + 1][0] < OPEN:  # fast path: a single primitive
        tok = toks[i + 1]
        v, t = render(buf, tok, probs)
        if names is not None and tok[0] == APP and type(v) is int and tok[1] in (2, 9):
            t = names.get(v) or f"unknown-{v}"
        return [v], [t], i + 3
    values: list[Any] = []
    texts: list[str] = []
    depth = 0
    i += 1
    while i < ntok:
        tok = toks[i]
        k = tok[0]
        i += 1
        if k == OPEN:
            depth += 1
        elif k == CLOSE:
            if depth == 0:
                return values, texts, i
            depth -= 1
        else:
            v, t = render(buf, tok, probs)
            if names is not None and k == APP and type(v) is int and tok[1] in (2, 9):
                t = names.get(v) or f"unknown-{v}"
            values.append(v)
            texts.append(t)
    return values, texts, i


def tok_at(toks: list[Token], i: int, kind: int, num: int) -> Token | None:
    """toks[i] if it is a token of that kind and number, else None."""
    if i < len(toks):
        t = toks[i]
        if t[0] == kind and t[1] == num:
            return t
    return None


def uint_at(b: bytes, toks: list[Token], i: int, kind: int, num: int) -> int | None:
    """The unsigned value of toks[i] if it is a valid token of that kind and number, else None."""
    if i < len(toks):
        t = toks[i]
        if t[0] == kind and t[1] == num:
            return uint(b, t)
    return None


def objid_at(b: bytes, toks: list[Token], i: int, kind: int, num: int) -> tuple[int, int] | None:
    """The (object type, instance) of toks[i] if it is a valid object identifier of that tag, else None."""
    if i < len(toks):
        t = toks[i]
        if t[0] == kind and t[1] == num:
            return objid(b, t)
    return None


def missing(toks: list[Token], probs: Problems, what: str) -> int:
    """Report a missing (or unreadable) mandatory parameter; returns the end index (stop decoding)."""
    probs.append((MISSING, what))
    return len(toks)


def char_text(b: bytes, t: Token, probs: Problems) -> str:
    """A character-string token's text, cut at its first NUL as ICSNPP does."""
    return char_string(b, t[2], t[3], probs).split("\x00", 1)[0]
