"""The HTTP/1.x decoder on hand-built streams: requests, responses, bodies, pipelining, pairing, weirds."""

from __future__ import annotations

from random import Random

from protocols.base import FlowId, ProtocolEvent
from protocols.http import MAX_HEAD, HttpDecoder

FLOW = FlowId("CH", "10.30.0.77", 40000, "10.20.0.80", 80, "tcp")
UA = b"Mozilla/5.0 (X11; Linux x86_64)"


def run(client: bytes, server: bytes, step: int = 0, flow: FlowId = FLOW) -> list[ProtocolEvent]:
    """Feed the client bytes, then the server bytes (in `step`-byte pieces when step > 0), then close."""
    dec = HttpDecoder(flow)
    out: list[ProtocolEvent] = []
    for is_orig, data, t0 in ((True, client, 1.0), (False, server, 2.0)):
        size = step or max(1, len(data))
        for i in range(0, len(data), size):
            out += dec.feed(data[i : i + size], is_orig, t0 + i / 1e6)
    return out + dec.close(9.0)


def rows(out: list[ProtocolEvent]) -> list[tuple[object, ...]]:
    """(op, kind, trans_depth, method, uri, status_code) per event; weirds as (op,)."""
    return [(e.op,) if e.kind == "weird" else (e.op, e.kind, e.fields.get("trans_depth"), e.fields.get("method"),
                                              e.fields.get("uri"), e.fields.get("status_code")) for e in out]


def test_request_and_response_fields() -> None:
    client = (b"GET /index.html?a=1 HTTP/1.1\r\nHost: intranet.corp.example\r\nUser-Agent: " + UA
              + b"\r\nReferer: http://intranet/\r\nAuthorization: Basic Ym9iOnNlY3JldA==\r\n\r\n")
    server = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello"
    req, resp = run(client, server)
    assert (req.op, req.kind, req.src, req.dst) == ("request", "request", "10.30.0.77", "10.20.0.80")
    assert req.fields == {"method": "GET", "uri": "/index.html?a=1", "version": "1.1", "host": "intranet.corp.example",
                          "user_agent": UA.decode(), "referrer": "http://intranet/", "username": "bob",
                          "trans_depth": 1, "request_body_len": 0}
    assert (resp.op, resp.kind, resp.src) == ("response", "response", "10.20.0.80")
    f = resp.fields
    assert (f["status_code"], f["status_msg"], f["server"], f["content_type"], f["response_body_len"]) == (
        200, "OK", "nginx", "text/html", 5)
    assert (f["trans_depth"], f["method"], f["host"], f["uri"], f["matched"], f["request_ts"]) == (
        1, "GET", "intranet.corp.example", "/index.html?a=1", True, 1.0)
    assert "secret" not in repr(req.fields)


def test_nmap_probe_uri_is_unescaped_and_400_is_an_exception() -> None:
    out = run(b"GET /nice%20ports%2C/Tri%6Eity.txt%2ebak HTTP/1.0\r\n\r\n",
              b"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbad")
    assert out[0].fields["uri_unescaped"] == "/nice ports,/Trinity.txt.bak"
    assert (out[1].kind, out[1].fields["status_code"], out[1].fields["status_msg"]) == ("exception", 400,
                                                                                         "Bad Request")


def test_pipelined_requests_chunked_head_304_and_eof_bodies_byte_by_byte() -> None:
    client = (b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nHEAD /b HTTP/1.1\r\nHost: h\r\n\r\n"
              b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
              b"GET /d HTTP/1.1\r\nHost: h\r\n\r\nGET /e HTTP/1.1\r\nHost: h\r\n\r\n")
    server = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n2;x=y\r\nhi\r\n0\r\n"
              b"Trailer: t\r\n\r\n"
              b"HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n"  # HEAD: no body
              b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
              b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n"
              b"HTTP/1.0 200 OK\r\n\r\nuntil the close")
    for step in (0, 1, 7):
        out = run(client, server, step)
        assert rows(out) == [
            ("request", "request", 1, "GET", "/a", None), ("request", "request", 2, "HEAD", "/b", None),
            ("request", "request", 3, "POST", "/c", None), ("request", "request", 4, "GET", "/d", None),
            ("request", "request", 5, "GET", "/e", None),
            ("response", "response", 1, "GET", "/a", 200), ("response", "response", 2, "HEAD", "/b", 200),
            ("response", "response", None, None, None, 100), ("response", "response", 3, "POST", "/c", 201),
            ("response", "response", 4, "GET", "/d", 304), ("response", "response", 5, "GET", "/e", 200)], step
        assert [e.fields.get("response_body_len") for e in out[5:]] == [18, 0, 0, 0, 0, 15]
        assert out[2].fields["request_body_len"] == 3 and out[2].fields["transfer_encoding"] == "chunked"
        assert out[7].fields["informational"] is True


def test_unanswered_requests_and_unmatched_replies() -> None:
    out = run(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n",
              b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    assert rows(out) == [("request", "request", 1, "GET", "/1", None), ("request", "request", 2, "GET", "/2", None),
                         ("response", "exception", 1, "GET", "/1", 404), ("request", "notice", 2, "GET", "/2", None)]
    assert out[-1].fields["matched"] is False and out[-1].ts == 9.0
    out = run(b"", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert [e.op for e in out] == ["http_unmatched_reply", "response"] and out[1].fields["matched"] is False


def test_connect_tunnel_and_upgrade_stop_decoding() -> None:
    out = run(b"CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n\x16\x03\x01garbage",
              b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03more")
    assert rows(out) == [("request", "request", 1, "CONNECT", "db:5432", None),
                         ("response", "response", 1, "CONNECT", "db:5432", 200)]
    out = run(b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
              b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello")
    assert [e.op for e in out] == ["request", "response"] and out[0].fields["upgrade"] == "websocket"


def test_non_http_stream_on_an_http_port() -> None:
    out = run(b"SSH-2.0-OpenSSH_9.6\r\n", b"")
    assert [e.op for e in out] == ["http_protocol_violation"]
    dec = HttpDecoder(FLOW)
    assert dec.feed(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", True, 1.0)[0].op == "http_protocol_violation"
    assert dec.failed and dec.feed(b"GET / HTTP/1.1\r\n\r\n", True, 2.0) == []
    dec = HttpDecoder(FLOW)  # a request that starts in tiny pieces is not mistaken for garbage
    assert dec.feed(b"GE", True, 1.0) == [] and dec.feed(b"T / HTTP/1.1\r\n\r\n", True, 1.1)[0].op == "request"
    out = run(b"GET / HTTP/1.1\r\n\r\n", b"<html>no status line</html>")
    assert [e.op for e in out] == ["request", "http_protocol_violation"]


def test_over_long_headers_are_bounded() -> None:
    big = b"GET /x HTTP/1.1\r\nHost: h\r\n" + b"X-Pad: " + b"a" * 100 + b"\r\n"
    big += b"".join(b"X-%d: %s\r\n" % (i, b"b" * 200) for i in range(200)) + b"\r\nGET /y HTTP/1.1\r\nHost: h\r\n\r\n"
    for step in (0, 1000):
        out = run(big, b"", step)
        assert [e.op for e in out if e.kind == "weird"] == ["http_header_too_long"]
        reqs = [e for e in out if e.kind == "request"]
        assert [e.fields["uri"] for e in reqs] == ["/x", "/y"] and reqs[0].fields["headers_truncated"] is True
        assert reqs[0].fields["host"] == "h"
    dec = HttpDecoder(FLOW)
    dec.feed(b"GET / HTTP/1.1\r\n" + b"a" * (MAX_HEAD // 2), True, 1.0)
    assert len(dec._halves[True].buf) <= MAX_HEAD + 64


def test_bad_framing_values() -> None:
    out = run(b"POST / HTTP/1.1\r\nContent-Length: 12abc\r\nbroken line\r\n\r\nGET /n HTTP/1.1\r\n\r\n", b"")
    assert [e.op for e in out if e.kind == "weird"] == ["http_bad_header_line", "http_bad_content_length"]
    assert [e.fields["uri"] for e in out if e.kind == "request"] == ["/", "/n"]
    out = run(b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n"
              b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n")
    assert [(e.op, e.kind) for e in out] == [
        ("request", "request"), ("http_bad_chunk_size", "weird"), ("response", "response"), ("http_resync", "weird"),
        ("http_unmatched_reply", "weird"), ("response", "exception")]
    assert out[-1].fields["status_code"] == 500 and out[3].fields["addl"] == "skipped 4 bytes"
    dec = HttpDecoder(FLOW)
    out = dec.feed(b"GET / HTTP/1.1\r\n\r\n", True, 1.0) + dec.gap(True, 1.1, 5) + dec.feed(b"junk", True, 1.2)
    assert [e.op for e in out + dec.close(2.0)] == ["request", "http_resync", "request"]


def test_gaps_inside_bodies_and_between_messages() -> None:
    dec = HttpDecoder(FLOW)
    out = dec.feed(b"GET / HTTP/1.1\r\n\r\n", True, 1.0)
    out += dec.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabc", False, 2.0)
    out += dec.gap(False, 2.1, 500) + dec.feed(b"x" * 497, False, 2.2)
    assert [e.op for e in out] == ["request", "response"] and out[1].fields["response_body_len"] == 1000
    out = dec.gap(True, 3.0, 10) + dec.feed(b"rest of something\r\nGET /again HTTP/1.1\r\n\r\n", True, 3.1)
    assert [e.op for e in out] == ["http_resync", "request"] and out[1].fields["uri"] == "/again"


def test_probe_recognises_request_lines_only() -> None:
    assert HttpDecoder.probe(b"GET / HTTP/1.0\r\n\r\n", True)
    assert HttpDecoder.probe(b"OPTIONS * HTTP/1.1\r\n", True)
    assert HttpDecoder.probe(b"GET /very/long/uri/without/line/end/yet", True)
    assert not HttpDecoder.probe(b"GET / HTTP/1.0\r\n\r\n", False)
    assert not HttpDecoder.probe(b"HELLO world\r\n", True)
    assert not HttpDecoder.probe(b"\x16\x03\x01\x00\xa5\x01", True)
    assert not HttpDecoder.probe(b"SSH-2.0-OpenSSH\r\n", True)


def test_random_mutations_never_raise() -> None:
    rng = Random(11)
    client = (b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
              b"GET / HTTP/1.1\r\n\r\n")
    server = (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
              b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n")
    for _ in range(1500):
        c, s = bytearray(client), bytearray(server)
        for buf in (c, s):
            for _ in range(rng.randrange(1, 4)):
                buf[rng.randrange(len(buf))] = rng.randrange(256)
        for ev in run(bytes(c), bytes(s), rng.randrange(0, 20)):
            assert ev.protocol == "http"
