"""HTTP/1.x decoder on TCP (80 8080 8000 8008 8888 by port; `probe()` recognises a request line on any port).

Coverage. Requests: the request line (method, uri, version; `uri_unescaped` when the URI has %-escapes, e.g.
Nmap's `/nice%20ports%2C/Tri%6Eity.txt%2ebak` probe is `/nice ports,/Trinity.txt.bak`), Host (`host`),
User-Agent (`user_agent`), Referer (`referrer`), Origin, Content-Type, X-Forwarded-For, Content-Length
(`content_length`), Transfer-Encoding, Upgrade, the user name of Basic authorization (`username`; the password
is never read; other schemes give `auth_scheme`). Responses: the status line (version, status_code,
status_msg), Server, Location, Content-Type, Content-Length, Transfer-Encoding. Bodies are skipped and counted
(`request_body_len`, `response_body_len`: Content-Length, chunked transfer coding with trailers, or until the
connection closes for a response without either), never kept. Pipelined requests, several messages per segment
and messages split across segments are handled; HEAD, 1xx, 204 and 304 responses have no body; after a 2xx to
CONNECT or a 101 (Upgrade) the connection is a tunnel and is not decoded further. Not decoded: HTTP/2, body
contents (MIME types, files), cookies, multipart, compression.

Event shape. protocol "http"; op "request" (kind request) when a request is complete with its body, op
"response" when a response is complete (kind response, or exception for status >= 400); a 1xx response is
reported at once with `informational` True and does not end its request. Fields use Zeek's http.log names:
trans_depth (the request's 1-based position in the connection), method, host, uri, referrer, version,
user_agent, origin, request_body_len, response_body_len, status_code, status_msg, username. A response is paired
with the oldest request still unanswered (HTTP/1.1 ordering); it carries that request's trans_depth, method,
host, uri, user_agent, referrer, request_body_len and its time (`request_ts`), and `matched` True, i.e. the row
Zeek's http.log writes for the pair; a response with no request has `matched` False. Requests never answered
are reported at close as notices (op "request", kind notice, `matched` False; at most 64 per flow): Zeek's
close-time rows. The client is the originator, unless the originator uses an HTTP port and the responder does not.

Weirds (kind "weird", op = name): http_protocol_violation (the first bytes of a direction are not an HTTP
request or status line: a non-HTTP stream on an HTTP port; `failed` is set), http_bad_request_line and
http_bad_status_line (mid-stream: the direction resynchronises on the next start line), http_header_too_long
(a head over MAX_HEAD bytes: the lines read so far are reported with `headers_truncated` True and the rest of
the head is skipped), http_bad_header_line, http_bad_content_length, http_bad_authorization,
http_bad_chunk_size, http_unmatched_reply (a response with no request pending), http_resync (bytes skipped
after a gap or a bad start line), http_truncated_message (a partial head or body at close or at a gap),
http_unanswered_requests (the count of unanswered requests beyond the 64 reported).
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any, ClassVar

from protocols.base import EXCEPTION, NOTICE, REQUEST, RESPONSE, FlowId, ProtocolEvent, weird
from protocols.http_parse import looks_like_request, looks_like_response, parse_head

__all__ = ["HttpDecoder"]

PROTO = "http"
MAX_HEAD = 16384  # bytes of a message head (start line + headers) before http_header_too_long
MAX_LINE = 1024  # bytes of a chunk-size or trailer line
MAX_PENDING = 256
MAX_UNMATCHED_REPORTS = 64
HTTP_PORTS = frozenset({80, 8080, 8000, 8008, 8888})
OP_CLASSES: dict[str, str] = {"request": "read", "response": "read"}
_HEAD, _SKIPHEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER, _EOF, _LOST, _TUNNEL = range(10)
_RESYNC_REQ = re.compile(rb"(?:^|\n)[A-Z][A-Z_-]{1,15} \S+ HTTP/\d\.\d\r?\n")
_RESYNC_RESP = re.compile(rb"(?:^|\n)HTTP/\d\.\d \d\d\d")
_PARTIAL_REQ = re.compile(rb"[A-Z][A-Z_-]{0,15}(?: [^\r\n]*)?\Z")
_PARTIAL_RESP = re.compile(rb"(?:H|HT|HTT|HTTP|HTTP/\d?|HTTP/\d\.\d?|HTTP/\d\.\d \d{0,2})\Z")
_PAIR_KEYS = ("trans_depth", "method", "host", "uri", "uri_unescaped", "user_agent", "referrer", "request_body_len")


class _Half:
    """Parser state of one direction."""

    __slots__ = ("body", "buf", "client", "fields", "first", "remaining", "skipped", "state")

    def __init__(self, client: bool) -> None:
        self.client = client
        self.buf = b""
        self.state = _HEAD
        self.first = True  # no message seen yet in this direction
        self.fields: dict[str, Any] | None = None  # the message being read (head done, body not)
        self.remaining = 0
        self.body = 0
        self.skipped = 0


class HttpDecoder:
    """Decodes one HTTP/1.x connection: requests and responses, paired in order."""

    name: ClassVar[str] = PROTO
    transport: ClassVar[str] = "tcp"
    ports: ClassVar[frozenset[int]] = HTTP_PORTS
    op_classes: ClassVar[dict[str, str]] = OP_CLASSES

    def __init__(self, flow: FlowId) -> None:
        self.flow = flow
        self.failed = False
        self._client_is_orig = not (flow.orig_p in HTTP_PORTS and flow.resp_p not in HTTP_PORTS)
        self._ends = {True: (flow.orig_h, flow.resp_h), False: (flow.resp_h, flow.orig_h)}
        self._halves = {True: _Half(self._client_is_orig), False: _Half(not self._client_is_orig)}
        self._depth = 0
        self._pending: deque[tuple[float, dict[str, Any]]] = deque()  # requests whose head was read
        self._lost: list[tuple[float, dict[str, Any]]] = []
        self._lost_more = 0
        self._tunnel = False

    @classmethod
    def probe(cls, payload: bytes, is_orig: bool) -> bool:
        """True when the originator's first bytes are an HTTP request line (or a known method and a URI)."""
        return is_orig and looks_like_request(payload)

    def feed(self, data: bytes, is_orig: bool, ts: float) -> list[ProtocolEvent]:
        """Decode the next in-order bytes of one direction into one event per complete message (plus weirds)."""
        if self.failed or self._tunnel or not data:
            return []
        h = self._halves[is_orig]
        buf = h.buf + data if h.buf else bytes(data)
        out: list[ProtocolEvent] = []
        pos = 0
        n = len(buf)
        while pos < n and not self.failed and not self._tunnel:
            state = h.state
            if state == _HEAD:
                new = self._head(h, buf, pos, is_orig, ts, out)
            elif state == _BODY:
                take = min(h.remaining, n - pos)
                h.remaining -= take
                h.body += take
                new = pos + take
                if not h.remaining:
                    self._done(h, is_orig, ts, out)
            elif state == _EOF:
                h.body += n - pos
                new = n
            else:
                new = self._other(h, buf, pos, is_orig, ts, out)
            if new < 0:  # wants more bytes
                break
            pos = new
        h.buf = buf[pos:] if 0 <= pos < n and not self.failed else b""
        return out

    def gap(self, is_orig: bool, ts: float, length: int) -> list[ProtocolEvent]:
        """A hole in one direction: inside a body of known length it is counted; else resynchronise."""
        h = self._halves[is_orig]
        out: list[ProtocolEvent] = []
        if self.failed or self._tunnel:
            return out
        if h.state == _BODY and length < h.remaining and not h.buf:
            h.remaining -= length
            h.body += length
            return out
        if h.state == _EOF:
            h.body += length
            return out
        if h.fields is not None or h.buf:
            out.append(weird(self.flow, PROTO, "http_truncated_message", ts, is_orig,
                             f"{length} bytes missing inside a message"))
        h.buf = b""
        h.fields = None
        h.state = _LOST
        return out

    def close(self, ts: float) -> list[ProtocolEvent]:
        """Finish bodies that run until the close, report partial messages and unanswered requests."""
        out: list[ProtocolEvent] = []
        if self.failed:
            return out
        for is_orig in (True, False):
            h = self._halves[is_orig]
            if self._tunnel:
                continue
            if h.fields is not None:
                if h.state != _EOF:
                    out.append(weird(self.flow, PROTO, "http_truncated_message", ts, is_orig,
                                     "an incomplete message body at close"))
                self._done(h, is_orig, ts, out)
            elif h.state == _LOST and h.skipped + len(h.buf):
                out.append(weird(self.flow, PROTO, "http_resync", ts, is_orig,
                                 f"skipped {h.skipped + len(h.buf)} bytes, no start line found before close"))
            elif h.buf and h.state in (_HEAD, _SKIPHEAD):
                out.append(weird(self.flow, PROTO, "http_truncated_message", ts, is_orig,
                                 f"{len(h.buf)} bytes of an incomplete message head at close"))
        lost = self._lost + list(self._pending)
        more = self._lost_more + max(0, len(lost) - MAX_UNMATCHED_REPORTS)
        src, dst = self._ends[self._client_is_orig]
        for rts, f in lost[:MAX_UNMATCHED_REPORTS]:
            nf = {k: v for k, v in f.items() if k[0] != "_"}
            nf["request_ts"] = rts
            nf["matched"] = False
            out.append(ProtocolEvent(ts, self.flow, PROTO, "request", NOTICE, self._client_is_orig, src, dst, nf))
        if more:
            out.append(weird(self.flow, PROTO, "http_unanswered_requests", ts, self._client_is_orig,
                             f"{more} more requests never answered", count=more))
        self._pending.clear()
        self._lost.clear()
        return out

    # ---- internals -------------------------------------------------------------------------------------

    def _head(self, h: _Half, buf: bytes, pos: int, is_orig: bool, ts: float, out: list[ProtocolEvent]) -> int:
        """Read a message head at buf[pos:]; the offset after it, or -1 when more bytes are needed."""
        n = len(buf)
        while pos < n and buf[pos] in (13, 10):  # stray line ends between messages
            pos += 1
        if pos >= n:
            return n
        if h.first and not (looks_like_request(buf[pos:]) if h.client else looks_like_response(buf[pos:])):
            partial = _PARTIAL_REQ if h.client else _PARTIAL_RESP
            if n - pos > 64 or partial.match(buf, pos) is None:
                return self._violation(buf[pos : pos + 32], is_orig, ts, out)
            return -1
        end = buf.find(b"\n\r\n", pos)
        end2 = buf.find(b"\n\n", pos)
        if end < 0 or (0 <= end2 < end):
            end, stop = end2, end2 + 2
        else:
            stop = end + 3
        if end < 0 and h.client:  # HTTP/0.9: a request line without version ends the request
            nl = buf.find(b"\n", pos)
            if nl >= 0 and b" HTTP/" not in buf[pos:nl]:
                end, stop = nl, nl + 1
        truncated = False
        if end < 0:
            if n - pos <= MAX_HEAD:
                return -1
            stop = n
            truncated = True
        elif end - pos > MAX_HEAD:
            truncated = True
        if truncated:
            cut = buf.rfind(b"\n", pos, pos + MAX_HEAD)
            end = cut if cut > pos else pos + MAX_HEAD
        head = parse_head(buf[pos:end], h.client)
        if head is None:
            if h.first:
                return self._violation(buf[pos:pos + 32], is_orig, ts, out)
            wname = "http_bad_request_line" if h.client else "http_bad_status_line"
            line = buf[pos : min(end, pos + 64)]
            out.append(weird(self.flow, PROTO, wname, ts, is_orig, repr(line)[2:-1]))
            h.state = _LOST
            return pos + 1
        h.first = False
        f = head.fields
        for wname, addl in head.problems:
            out.append(weird(self.flow, PROTO, wname, ts, is_orig, addl))
        if truncated:
            f["headers_truncated"] = True
            out.append(weird(self.flow, PROTO, "http_header_too_long", ts, is_orig,
                             f"message head over {MAX_HEAD} bytes; the rest of it is skipped"))
            if stop == n:
                h.state = _SKIPHEAD
                h.skipped = 0
        h.fields = f
        h.body = 0
        if h.client:
            self._depth += 1
            f["trans_depth"] = self._depth
            f["_ts"] = ts
            if len(self._pending) >= MAX_PENDING:
                self._lose(self._pending.popleft())
            self._pending.append((ts, f))
            f["_queued"] = True
            method = f["method"]
            if head.chunked:
                body = _CHUNK_SIZE
            elif head.content_length:
                body = _BODY
            else:
                body = -1
            if method == "CONNECT":
                f["_connect"] = True
        else:
            code = f["status_code"]
            req = self._pending[0][1] if self._pending else None
            if 100 <= code < 200 and code != 101:
                f["informational"] = True
                body = -1
            elif (req is not None and req.get("method") == "HEAD") or code in (204, 304):
                body = -1
            elif code == 101 or (req is not None and req.get("_connect") and 200 <= code < 300):
                body = -2
            elif head.chunked:
                body = _CHUNK_SIZE
            elif head.content_length is not None:
                body = _BODY if head.content_length else -1
            else:
                body = _EOF
        h.remaining = head.content_length or 0
        if h.state == _SKIPHEAD:
            h.remaining = 0
            h.fields["_after_skip"] = body
            return stop
        self._body_start(h, body, is_orig, ts, out)
        return stop

    def _body_start(self, h: _Half, body: int, is_orig: bool, ts: float, out: list[ProtocolEvent]) -> None:
        """Enter the body state chosen for the message just read (-1: no body, -2: tunnel from here)."""
        if body == -1 or body == -2:
            self._done(h, is_orig, ts, out)
            if body == -2:
                self._tunnel = True
            return
        h.state = body

    def _other(self, h: _Half, buf: bytes, pos: int, is_orig: bool, ts: float, out: list[ProtocolEvent]) -> int:
        """Chunked bodies, skipped heads and resynchronisation; the new offset or -1 for more bytes."""
        n = len(buf)
        state = h.state
        if state == _CHUNK_DATA:
            take = min(h.remaining, n - pos)
            h.remaining -= take
            h.body += take
            if not h.remaining:
                h.state = _CHUNK_END
            return pos + take
        if state == _CHUNK_END:
            if buf[pos] == 13:
                if pos + 1 >= n:
                    return -1
                pos += 1
            if buf[pos] == 10:
                pos += 1
            h.state = _CHUNK_SIZE
            return pos
        if state == _SKIPHEAD:
            end = buf.find(b"\n\r\n", pos)
            end2 = buf.find(b"\n\n", pos)
            stops = [e + k for e, k in ((end, 3), (end2, 2)) if e >= 0]
            if not stops:
                h.skipped += max(0, n - 3 - pos)
                return max(pos, n - 3) if n - pos > 3 else -1
            fields = h.fields
            body = fields.pop("_after_skip", -1) if fields is not None else -1
            self._body_start(h, body, is_orig, ts, out)
            return min(stops)
        if state == _LOST:
            pattern = _RESYNC_REQ if h.client else _RESYNC_RESP
            m = pattern.search(buf, pos)
            if m is None:
                keep = max(pos, n - 64)
                h.skipped += keep - pos
                return keep if keep > pos else -1
            start = m.start() + (1 if buf[m.start()] == 10 else 0)
            skipped = h.skipped + start - pos
            h.skipped = 0
            if skipped:
                out.append(weird(self.flow, PROTO, "http_resync", ts, is_orig, f"skipped {skipped} bytes"))
            h.state = _HEAD
            return start
        # chunk-size line or trailer line
        nl = buf.find(b"\n", pos, pos + MAX_LINE)
        if nl < 0:
            if n - pos < MAX_LINE:
                return -1
            out.append(weird(self.flow, PROTO, "http_bad_chunk_size", ts, is_orig, "chunk line too long"))
            self._give_up_message(h, is_orig, ts, out)
            return pos
        line = buf[pos:nl].strip()
        if state == _TRAILER:
            if not line:
                self._done(h, is_orig, ts, out)
            return nl + 1
        size = line.split(b";", 1)[0].strip()
        try:
            value = int(size, 16)
        except ValueError:
            value = -1
        if value < 0 or len(size) > 15:
            out.append(weird(self.flow, PROTO, "http_bad_chunk_size", ts, is_orig, repr(line[:40])[2:-1]))
            self._give_up_message(h, is_orig, ts, out)
            return nl + 1
        if value == 0:
            h.state = _TRAILER
        else:
            h.remaining = value
            h.state = _CHUNK_DATA
        return nl + 1

    def _give_up_message(self, h: _Half, is_orig: bool, ts: float, out: list[ProtocolEvent]) -> None:
        """Report the message read so far and look for the next start line."""
        self._done(h, is_orig, ts, out)
        h.state = _LOST

    def _done(self, h: _Half, is_orig: bool, ts: float, out: list[ProtocolEvent]) -> None:
        """The current message is complete: emit its event."""
        f = h.fields
        h.fields = None
        h.state = _HEAD
        if f is None:
            return
        src, dst = self._ends[is_orig]
        if h.client:
            f["request_body_len"] = h.body
            ev = {k: v for k, v in f.items() if k[0] != "_"}
            out.append(ProtocolEvent(ts, self.flow, PROTO, "request", REQUEST, is_orig, src, dst, ev))
            return
        f["response_body_len"] = h.body
        if f.get("informational"):
            ev = {k: v for k, v in f.items() if k[0] != "_"}
            out.append(ProtocolEvent(ts, self.flow, PROTO, "response", RESPONSE, is_orig, src, dst, ev))
            return
        if self._pending:
            rts, req = self._pending.popleft()
            for key in _PAIR_KEYS:
                if key in req and (key not in f or key == "trans_depth"):
                    f[key] = req[key]
            f["request_ts"] = rts
            f["matched"] = True
        else:
            f["matched"] = False
            out.append(weird(self.flow, PROTO, "http_unmatched_reply", ts, is_orig,
                             f"status {f.get('status_code')} with no request pending"))
        kind = EXCEPTION if f["status_code"] >= 400 else RESPONSE
        ev = {k: v for k, v in f.items() if k[0] != "_"}
        out.append(ProtocolEvent(ts, self.flow, PROTO, "response", kind, is_orig, src, dst, ev))

    def _lose(self, req: tuple[float, dict[str, Any]]) -> None:
        if len(self._lost) < MAX_UNMATCHED_REPORTS:
            self._lost.append(req)
        else:
            self._lost_more += 1

    def _violation(self, first: bytes, is_orig: bool, ts: float, out: list[ProtocolEvent]) -> int:
        """Not HTTP: report it and stop decoding the connection."""
        self.failed = True
        self._pending.clear()
        what = "request" if self._halves[is_orig].client else "status"
        out.append(weird(self.flow, PROTO, "http_protocol_violation", ts, is_orig,
                         f"not an HTTP {what} line: {repr(first)[2:-1]}"))
        return -1
