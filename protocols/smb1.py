"""SMB1 (CIFS) messages as scanners and old clients send them: header, NEGOTIATE, SESSION_SETUP_ANDX,
TREE_CONNECT_ANDX. Pure parsers from a message's bytes to event fields (the decoder is protocols/smb.py).

Each body parser takes (buf, h, end, unicode, f): the 32-byte header starts at buf[h], the message ends at `end`,
`unicode` is the FLAGS2 UNICODE bit; it raises `Short` when the message is shorter than its word or byte counts.
Only the first command of an AndX chain is decoded.
"""

from __future__ import annotations

from collections.abc import Callable
from struct import Struct
from typing import Any

from protocols.ntlm_gss import parse_security_blob
from protocols.smb2 import Short, guid_text

__all__ = ["HEADER", "REQUESTS", "RESPONSES", "cstrings"]

HEADER = Struct("<BIBHH8sHHHHH")  # from offset 4: command, status, flags, flags2, pid high, security features,
# reserved, tid, pid low, uid, mid
_H = Struct("<H")
_I = Struct("<I")
MAX_DIALECTS = 64
MAX_TEXT = 256
_SERVICES = {"A:": "DISK", "IPC": "PIPE", "LPT1:": "PRINT", "COMM": "COMM", "?????": "ANY"}

Parser = Callable[[bytes, int, int, bool, dict[str, Any]], None]


def _words(buf: bytes, h: int, end: int) -> tuple[int, int, int, int]:
    """(word count, words start, bytes start, bytes end) of the message at buf[h]."""
    if h + 35 > end:
        raise Short("no word count")
    wc = buf[h + 32]
    w = h + 33
    bc_at = w + 2 * wc
    if bc_at + 2 > end:
        raise Short("word block runs past the message")
    bc = _H.unpack_from(buf, bc_at)[0]
    b = bc_at + 2
    return wc, w, b, min(b + bc, end)


def cstrings(buf: bytes, pos: int, end: int, unicode: bool, h: int, count: int) -> tuple[list[str], int]:
    """Up to `count` NUL-terminated strings from buf[pos:end] (UTF-16LE aligned to the header when unicode)."""
    out: list[str] = []
    for _ in range(count):
        if pos >= end:
            break
        if unicode:
            if (pos - h) & 1:
                pos += 1
            stop = pos
            while stop + 1 < end and (buf[stop] or buf[stop + 1]):
                stop += 2
            out.append(buf[pos : min(stop, pos + 2 * MAX_TEXT)].decode("utf-16-le", "replace"))
            pos = stop + 2
        else:
            stop = buf.find(b"\x00", pos, end)
            if stop < 0:
                stop = end
            out.append(buf[pos : min(stop, pos + MAX_TEXT)].decode("latin-1"))
            pos = stop + 1
    return out, pos


def negotiate_req(buf: bytes, h: int, end: int, unicode: bool, f: dict[str, Any]) -> None:
    """The dialect strings offered (`NT LM 0.12`, `SMB 2.002`, `SMB 2.???`)."""
    _, _, b, e = _words(buf, h, end)
    dialects: list[str] = []
    while b < e and len(dialects) < MAX_DIALECTS:
        if buf[b] != 2:
            raise Short("dialect without its buffer format byte")
        stop = buf.find(b"\x00", b + 1, e)
        if stop < 0:
            stop = e
        dialects.append(buf[b + 1 : min(stop, b + 1 + MAX_TEXT)].decode("latin-1"))
        b = stop + 1
    f["dialects"] = dialects


def negotiate_resp(buf: bytes, h: int, end: int, unicode: bool, f: dict[str, Any]) -> None:
    """The chosen dialect index; for NT LM 0.12 signing, extended security (server GUID, mechanisms) or the
    server's domain and name."""
    wc, w, b, e = _words(buf, h, end)
    if wc < 1:
        raise Short("NEGOTIATE response without a dialect index")
    index = _H.unpack_from(buf, w)[0]
    f["dialect_index"] = -1 if index == 0xFFFF else index
    if wc != 17:
        return
    mode = buf[w + 2]
    caps = _I.unpack_from(buf, w + 19)[0]
    f["signing_required"] = bool(mode & 8)
    if caps & 0x80000000:
        if e - b >= 16:
            f["server_guid"] = guid_text(buf[b : b + 16])
            f.update(parse_security_blob(buf, b + 16, e))
    else:
        start = b + buf[w + 33]  # after the challenge; no alignment pad before the names
        names, _ = cstrings(buf, start, e, unicode, start, 2)
        if names:
            f["server_domain"] = names[0]
        if len(names) > 1:
            f["server_name"] = names[1]


def session_setup_req(buf: bytes, h: int, end: int, unicode: bool, f: dict[str, Any]) -> None:
    """Extended security: the blob (NTLMSSP fields); else the account name, primary domain and whether a
    password was sent (never its bytes); native OS and LAN manager in both forms."""
    wc, w, b, e = _words(buf, h, end)
    if wc == 12:
        ln = _H.unpack_from(buf, w + 14)[0]
        if b + ln > e:
            raise Short("security blob runs past the message")
        f.update(parse_security_blob(buf, b, b + ln))
        texts, _ = cstrings(buf, b + ln, e, unicode, h, 2)
    elif wc == 13:
        oem, uni = _H.unpack_from(buf, w + 14)[0], _H.unpack_from(buf, w + 16)[0]
        pos = b + oem + uni
        if pos > e:
            raise Short("passwords run past the message")
        names, pos = cstrings(buf, pos, e, unicode, h, 2)
        f["auth"] = "ntlm"
        f["smb1_basic"] = True
        f["username"] = names[0] if names else ""
        f["domainname"] = names[1] if len(names) > 1 else ""
        f["password_present"] = oem + uni > 0 and not (oem + uni == 1 and buf[b] == 0)
        f["anonymous"] = not f["username"] and not f["password_present"]
        texts, _ = cstrings(buf, pos, e, unicode, h, 2)
    else:
        f["word_count"] = wc
        return
    if texts:
        f["native_os"] = texts[0]
    if len(texts) > 1:
        f["native_lanman"] = texts[1]


def session_setup_resp(buf: bytes, h: int, end: int, unicode: bool, f: dict[str, Any]) -> None:
    """Guest flag, the security blob (extended security), native OS/LAN manager and (basic) primary domain."""
    wc, w, b, e = _words(buf, h, end)
    if wc < 3:
        return
    f["is_guest"] = bool(_H.unpack_from(buf, w + 4)[0] & 1)
    if wc == 4:
        ln = _H.unpack_from(buf, w + 6)[0]
        if b + ln > e:
            raise Short("security blob runs past the message")
        f.update(parse_security_blob(buf, b, b + ln))
        b += ln
    texts, _ = cstrings(buf, b, e, unicode, h, 3)
    if texts:
        f["native_os"] = texts[0]
    if len(texts) > 1:
        f["native_lanman"] = texts[1]
    if len(texts) > 2 and wc == 3:
        f["server_domain"] = texts[2]


def tree_connect_req(buf: bytes, h: int, end: int, unicode: bool, f: dict[str, Any]) -> None:
    """The share path and the service asked for (`?????`, `IPC`, `A:`)."""
    wc, w, b, e = _words(buf, h, end)
    if wc != 4:
        return
    pw = _H.unpack_from(buf, w + 6)[0]
    path, pos = cstrings(buf, b + pw, e, unicode, h, 1)
    service, _ = cstrings(buf, pos, e, False, h, 1)
    f["path"] = path[0] if path else ""
    if service:
        f["service"] = service[0]


def tree_connect_resp(buf: bytes, h: int, end: int, unicode: bool, f: dict[str, Any]) -> None:
    """The service (`A:`, `IPC`) with its share type, and the native file system."""
    wc, _w, b, e = _words(buf, h, end)
    if wc < 2:
        return
    service, pos = cstrings(buf, b, e, False, h, 1)
    if service:
        f["service"] = service[0]
        f["share_type"] = _SERVICES.get(service[0], service[0])
    nfs, _ = cstrings(buf, pos, e, unicode, h, 1)
    if nfs:
        f["native_file_system"] = nfs[0]


REQUESTS: dict[int, Parser] = {0x72: negotiate_req, 0x73: session_setup_req, 0x75: tree_connect_req}
RESPONSES: dict[int, Parser] = {0x72: negotiate_resp, 0x73: session_setup_resp, 0x75: tree_connect_resp}
