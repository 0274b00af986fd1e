"""SMB2/SMB3 message bodies (MS-SMB2 section 2.2): pure parsers from a message's bytes to event fields.

Each parser takes (buf, h, end, f): the message header starts at buf[h] (body at h + 64), the message ends at
`end` (the NextCommand boundary of a compound, or the NetBIOS message end), and fields are added to `f`. Offsets
inside a body are relative to the header, as the specification defines them. A parser returns the 16-byte file
id the message names (or None) so the decoder can name the file; it raises `Short` when a field points outside
the message. What each parser gives is listed in protocols/smb.py's docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from struct import Struct
from typing import Any

from protocols.ntlm_gss import parse_security_blob
from protocols.smb_names import FSCTL_NAMES, SHARE_TYPES, dialect_name

__all__ = ["REQUESTS", "RESPONSES", "Short", "filetime", "guid_text", "utf16"]

HEADER = Struct("<HHIHHIIQIIQ")  # from offset 4: size, credit charge, status, command, credits, flags, next, msg id,
# process id (async id low), tree id (async id high), session id
_H = Struct("<H")
_I = Struct("<I")
_Q = Struct("<Q")
_HH = Struct("<HH")
_IH = Struct("<IH")
MAX_NAME = 1024  # characters kept of a path or file name
MAX_DIALECTS = 64
_DISPOSITIONS = ("SUPERSEDE", "OPEN", "CREATE", "OPEN_IF", "OVERWRITE", "OVERWRITE_IF")
_ACTIONS = ("SUPERSEDED", "OPENED", "CREATED", "OVERWRITTEN")
_INFO_TYPES = {1: "FILE", 2: "FILESYSTEM", 3: "SECURITY", 4: "QUOTA"}
_EPOCH_DIFF = 11644473600  # seconds from 1601-01-01 to 1970-01-01

Parser = Callable[[bytes, int, int, dict[str, Any]], "bytes | None"]


class Short(ValueError):
    """A body field points outside its message."""


def utf16(buf: bytes, start: int, length: int, end: int) -> str:
    """UTF-16LE text of buf[start:start+length], which must lie before `end` (cut to MAX_NAME characters)."""
    if start + length > end or start < 0:
        raise Short("name outside the message")
    stop = start + (min(length, 2 * MAX_NAME) & ~1)
    return buf[start:stop].decode("utf-16-le", "replace")


def filetime(value: int) -> float | None:
    """A Windows FILETIME (100 ns since 1601) as Unix time; None for 0 (unset)."""
    if not value:
        return None
    return round(value / 10_000_000 - _EPOCH_DIFF, 6)


def guid_text(raw: bytes) -> str:
    """A GUID in its registry text form (the first three groups little-endian)."""
    h = raw.hex()
    a = raw[3::-1].hex()
    b = raw[5:3:-1].hex()
    c = raw[7:5:-1].hex()
    return f"{a}-{b}-{c}-{h[16:20]}-{h[20:32]}"


def _need(b: int, size: int, end: int) -> None:
    if b + size > end:
        raise Short("truncated body")


def _blob(buf: bytes, h: int, off: int, ln: int, end: int, f: dict[str, Any]) -> None:
    if not ln:
        return
    start = h + off
    if off < 64 or start + ln > end:
        raise Short("security buffer outside the message")
    f.update(parse_security_blob(buf, start, start + ln))


def negotiate_req(buf: bytes, h: int, end: int, f: dict[str, Any]) -> bytes | None:
    """Dialects offered, signing required, client GUID."""
    b = h + 64
    _need(b, 36, end)
    count, mode = _HH.unpack_from(buf, b + 2)
    count = min(count, MAX_DIALECTS, (end - b - 36) // 2)
    f["dialects"] = [dialect_name(_H.unpack_from(buf, b + 36 + 2 * i)[0]) for i in range(count)]
    f["signing_required"] = bool(mode & 2)
    f["client_guid"] = guid_text(buf[b + 12 : b + 28])
    return None


def negotiate_resp(buf: bytes, h: int, end: int, f: dict[str, Any]) -> bytes | None:
    """Dialect chosen, signing required, server GUID, the mechanisms of the server's NegTokenInit2."""
    b = h + 64
    _need(b, 64, end)
    mode, dialect = _HH.unpack_from(buf, b + 2)
    f["dialect"] = dialect_name(dialect)
    f["signing_required"] = bool(mode & 2)
    f["server_guid"] = guid_text(buf[b + 8 : b + 24])
    off, ln = _HH.unpack_from(buf, b + 56)
    _blob(buf, h, off, ln, end, f)
    return None


def session_setup_req(buf: bytes, h: int, end: int, f: dict[str, Any]) -> bytes | None:
    """The security blob (mechanism, NTLMSSP fields), session binding and previous session."""
    b = h + 64
    _need(b, 24, end)
    if buf[b + 2] & 1:
        f["session_binding"] = True
    off, ln = _HH.unpack_from(buf, b + 12)
    prev = _Q.unpack_from(buf, b + 16)[0]
    if prev:
        f["previous_session_id"] = prev
    _blob(buf, h, off, ln, end, f)
    return None


def session_setup_resp(buf: bytes, h: int, end: int, f: dict[str, Any]) -> bytes | None:
    """Guest/null/encrypt session flags and the security blob."""
    b = h + 64
    _need(b, 8, end)
    flags, off, ln = Struct("<HHH").unpack_from(buf, b + 2)
    f["is_guest"] = bool(flags & 1)
    f["is_null"] = bool(flags & 2)
    if flags & 4:
        f["encrypt_data"] = True
    _blob(buf, h, off, ln, end, f)
    return None


def tree_connect_req(buf: bytes, h: int, end: int, f: dict[str, Any]) -> bytes | None:
    """The share path (`\\\\server\\share`)."""
    b = h + 64
    _need(b, 8, end)
    off, ln = _HH.unpack_from(buf, b + 4)
    f["path"] = utf16(buf, h + off, ln, end)
    return None


def tree_connect_resp(buf: bytes, h: int, end: int, f: dict[str, Any]) -> bytes | None:
    """The share type (DISK, PIPE, PRINT) and share flags."""
    b = h + 64
    _need(b, 16, end)
    st = buf[b + 2]
    f["share_type"] = SHARE_TYPES.get(st, f"unknown-{st}")
    f["share_flags"] = _I.unpack_from(buf, b + 4)[0]
    return None


def create_req(buf: bytes, h: int, end: int, f: dict[str, Any]) -> bytes | None:
    """File name, create disposition, desired access, directory and delete-on-close options."""
    b = h + 64
    _need(b, 56, end)
    access = _I.unpack_from(buf, b + 24)[0]
    disp, opts = Struct("<II").unpack_from(buf, b + 36)
    off, ln = _HH.unpack_from(buf, b + 44)
    f["name"] = utf16(buf, h + off, ln, end) if ln else ""
    f["create_disposition"] = _DISPOSITIONS[disp] if disp < 6 else f"unknown-{disp}"
    f["desired_access"] = access
    if opts & 1:
        f["directory"] = True
    if opts & 0x1000:
        f["delete_on_close"] = True
    return None


def create_resp(buf: bytes, h: int, end: int, f: dict[str, Any]) -> bytes | None:
    """Create action, size (end of file), the four times, and the file id."""
    b = h + 64
    _need(b, 88, end)
    action = _I.unpack_from(buf, b + 4)[0]
    f["create_action"] = _ACTIONS[action] if action < 4 else f"unknown-{action}"
    created, accessed, modified, changed = Struct("<QQQQ").unpack_from(buf, b + 8)
    f["size"] = _Q.unpack_from(buf, b + 48)[0]
    f["times"] = {"modified": filetime(modified), "accessed": filetime(accessed), "created": filetime(created),
                  "changed": filetime(changed)}  # fmt: skip
    f["is_directory"] = bool(_I.unpack_from(buf, b + 56)[0] & 0x10)
    return bytes(buf[b + 64 : b + 80])


def _fid_at(pos: int) -> Parser:
    def parse(buf: bytes, h: int, end: int, f: dict[str, Any]) -> bytes | None:
        b = h + 64
        _need(b, pos + 16, end)
        return bytes(buf[b + pos : b + pos + 16])

    return parse


def read_req(buf: bytes, h: int, end: int, f: dict[str, Any]) -> bytes | None:
    """Length and offset asked for, and the file id."""
    b = h + 64
    _need(b, 32, end)
    f["length"], f["offset"] = _I.unpack_from(buf, b + 4)[0], _Q.unpack_from(buf, b + 8)[0]
    return bytes(buf[b + 16 : b + 32])


def read_resp(buf: bytes, h: int, end: int, f: dict[str, Any]) -> bytes | None:
    """Length of the data returned."""
    b = h + 64
    _need(b, 8, end)
    f["length"] = _I.unpack_from(buf, b + 4)[0]
    return None


def write_req(buf: bytes, h: int, end: int, f: dict[str, Any]) -> bytes | None:
    """Length and offset written, and the file id."""
    b = h + 64
    _need(b, 32, end)
    f["length"], f["offset"] = _I.unpack_from(buf, b + 4)[0], _Q.unpack_from(buf, b + 8)[0]
    return bytes(buf[b + 16 : b + 32])


def write_resp(buf: bytes, h: int, end: int, f: dict[str, Any]) -> bytes | None:
    """Count of bytes written."""
    b = h + 64
    _need(b, 8, end)
    f["length"] = _I.unpack_from(buf, b + 4)[0]
    return None


def ioctl_req(buf: bytes, h: int, end: int, f: dict[str, Any]) -> bytes | None:
    """The FSCTL/IOCTL code (named) and the file id."""
    b = h + 64
    _need(b, 24, end)
    code = _I.unpack_from(buf, b + 4)[0]
    f["ctl_code"] = FSCTL_NAMES.get(code) or f"0x{code:08x}"
    fid = bytes(buf[b + 8 : b + 24])
    return None if fid == b"\xff" * 16 else fid


def ioctl_resp(buf: bytes, h: int, end: int, f: dict[str, Any]) -> bytes | None:
    """The FSCTL/IOCTL code answered."""
    b = h + 64
    _need(b, 8, end)
    code = _I.unpack_from(buf, b + 4)[0]
    f["ctl_code"] = FSCTL_NAMES.get(code) or f"0x{code:08x}"
    return None


def query_directory_req(buf: bytes, h: int, end: int, f: dict[str, Any]) -> bytes | None:
    """Information class, search pattern, and the directory's file id."""
    b = h + 64
    _need(b, 32, end)
    f["info_class"] = buf[b + 2]
    off, ln = _HH.unpack_from(buf, b + 24)
    f["pattern"] = utf16(buf, h + off, ln, end) if ln else ""
    return bytes(buf[b + 8 : b + 24])


def query_info_req(buf: bytes, h: int, end: int, f: dict[str, Any]) -> bytes | None:
    """Information type and class, and the file id."""
    b = h + 64
    _need(b, 40, end)
    f["info_type"] = _INFO_TYPES.get(buf[b + 2], f"unknown-{buf[b + 2]}")
    f["info_class"] = buf[b + 3]
    return bytes(buf[b + 24 : b + 40])


def set_info_req(buf: bytes, h: int, end: int, f: dict[str, Any]) -> bytes | None:
    """Information type and class (FILE class 10 is a rename, 13 a delete), and the file id."""
    b = h + 64
    _need(b, 32, end)
    f["info_type"] = _INFO_TYPES.get(buf[b + 2], f"unknown-{buf[b + 2]}")
    f["info_class"] = buf[b + 3]
    return bytes(buf[b + 16 : b + 32])


REQUESTS: dict[int, Parser] = {
    0x00: negotiate_req, 0x01: session_setup_req, 0x03: tree_connect_req, 0x05: create_req, 0x06: _fid_at(8),
    0x07: _fid_at(8), 0x08: read_req, 0x09: write_req, 0x0A: _fid_at(8), 0x0B: ioctl_req,
    0x0E: query_directory_req, 0x0F: _fid_at(8), 0x10: query_info_req, 0x11: set_info_req, 0x12: _fid_at(8),
}  # fmt: skip
RESPONSES: dict[int, Parser] = {
    0x00: negotiate_resp, 0x01: session_setup_resp, 0x03: tree_connect_resp, 0x05: create_resp,
    0x08: read_resp, 0x09: write_resp, 0x0B: ioctl_resp,
}  # fmt: skip
