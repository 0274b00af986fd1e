"""HTTP/1.x head parsing by hand: request line, status line, header lines into Zeek-named fields, body framing.

`parse_head(block, is_request)` takes one message head (the start line and header lines, without the blank line
that ends it) and returns a `Head`: the event fields, the framing facts the decoder needs (content length,
chunked, connection close, upgrade) and the problems found. Header values are cut at MAX_VALUE characters; bytes
are read as Latin-1 (every byte one character), as Zeek's logs show them.
"""

from __future__ import annotations

import binascii
import re
from typing import Any
from urllib.parse import unquote

__all__ = ["MAX_VALUE", "Head", "looks_like_request", "looks_like_response", "parse_head"]

MAX_VALUE = 1024
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}\Z")
_REQUEST_START = re.compile(rb"[A-Z][A-Z_-]{1,15} [^\s]")
_REQUEST_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32} [^\r\n]{1,8190}? HTTP/\d\.\d\r?\n")
_STATUS_START = re.compile(rb"HTTP/\d\.\d \d\d\d")
METHODS = frozenset(b"GET POST HEAD PUT DELETE OPTIONS CONNECT TRACE PATCH PROPFIND PROPPATCH MKCOL COPY MOVE "
                    b"LOCK UNLOCK SEARCH REPORT SUBSCRIBE UNSUBSCRIBE NOTIFY M-SEARCH".split())
# request header -> field (Zeek's http.log names where it has the concept)
_REQUEST_HEADERS = {"host": "host", "user-agent": "user_agent", "referer": "referrer", "origin": "origin",
                    "content-type": "content_type", "x-forwarded-for": "x_forwarded_for"}
_RESPONSE_HEADERS = {"server": "server", "location": "location", "content-type": "content_type"}


class Head:
    """A parsed message head: fields for the event, framing facts, problems."""

    __slots__ = ("chunked", "close", "content_length", "fields", "problems", "upgrade")

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}
        self.content_length: int | None = None
        self.chunked = False
        self.close = False
        self.upgrade = False
        self.problems: list[tuple[str, str]] = []


def looks_like_request(data: bytes) -> bool:
    """True when data starts with an HTTP request line (or its start, a known method, if no line end yet)."""
    if _REQUEST_LINE.match(data) is not None:
        return True
    if _REQUEST_START.match(data) is None:
        return False
    return data.split(b" ", 1)[0] in METHODS


def looks_like_response(data: bytes) -> bool:
    """True when data starts with an HTTP status line."""
    return _STATUS_START.match(data) is not None


def _cut(value: str) -> str:
    return value if len(value) <= MAX_VALUE else value[:MAX_VALUE]


def _start_line(line: str, is_request: bool, head: Head) -> bool:
    """Decode the request or status line into head.fields; False when it is not one."""
    f = head.fields
    if is_request:
        method, sp, rest = line.partition(" ")
        if not sp or _TOKEN.match(method) is None:
            return False
        uri, sp, version = rest.rpartition(" ")
        if not sp or not version.startswith("HTTP/"):
            uri, version = rest, ""  # HTTP/0.9: no version
        uri = uri.strip()
        if not uri:
            return False
        f["method"] = method
        f["uri"] = _cut(uri)
        if "%" in uri:
            f["uri_unescaped"] = _cut(unquote(uri, "latin-1"))
        f["version"] = version[5:] if version else "0.9"
        return True
    if not line.startswith("HTTP/"):
        return False
    version, _, rest = line.partition(" ")
    code, _, msg = rest.lstrip(" ").partition(" ")
    if len(code) != 3 or not code.isdigit():
        return False
    f["version"] = version[5:]
    f["status_code"] = int(code)
    f["status_msg"] = _cut(msg.strip())
    return True


def parse_head(block: bytes, is_request: bool) -> Head | None:
    """The head of one message (start line + header lines); None when the start line is not HTTP."""
    head = Head()
    lines = block.decode("latin-1").split("\n")
    if not _start_line(lines[0].rstrip("\r"), is_request, head):
        return None
    f = head.fields
    wanted = _REQUEST_HEADERS if is_request else _RESPONSE_HEADERS
    last: str | None = None
    bad = 0
    lengths: set[str] = set()
    for raw in lines[1:]:
        line = raw.rstrip("\r")
        if not line:
            continue
        if line[0] in " \t":  # obsolete line folding: continues the previous value
            if last is not None and last in f:
                f[last] = _cut(f"{f[last]} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name[-1] in " \t":
            bad += 1
            last = None
            continue
        key = name.lower()
        value = value.strip()
        last = wanted.get(key)
        if last is not None:
            f[last] = _cut(value)
        elif key == "content-length":
            lengths.add(value)
        elif key == "transfer-encoding":
            f["transfer_encoding"] = _cut(value)
            if "chunked" in value.lower():
                head.chunked = True
        elif key == "connection":
            if "close" in value.lower():
                head.close = True
        elif key == "upgrade":
            head.upgrade = True
            f["upgrade"] = _cut(value)
        elif key == "authorization" and is_request:
            scheme, _, cred = value.partition(" ")
            if scheme.lower() == "basic":
                try:
                    user = binascii.a2b_base64(cred.strip()).decode("latin-1").partition(":")[0]
                except (binascii.Error, ValueError):
                    head.problems.append(("http_bad_authorization", "Basic credentials are not base64"))
                else:
                    f["username"] = _cut(user)  # the user name only: the password is never read
            else:
                f["auth_scheme"] = _cut(scheme)
    if bad:
        head.problems.append(("http_bad_header_line", f"{bad} header lines without a name and colon"))
    if lengths:
        value = lengths.pop() if len(lengths) == 1 else ""
        if value.isdigit() and len(value) <= 15:
            head.content_length = int(value)
            f["content_length"] = head.content_length
        else:
            what = "differing Content-Length headers" if len(lengths) else f"Content-Length {value[:40]!r}"
            head.problems.append(("http_bad_content_length", what))
    return head
