"""Shared helpers of the sink tests (no tests here): real receivers on 127.0.0.1 and strict parsers of what they get.

- `SyslogUdp`, `SyslogTcp` (plain or TLS): syslog receivers in threads; TCP reads RFC 6587 octet-counted frames and
  fails the test on a frame that is not (a wrong length, a missing space).
- `parse_syslog`: a strict RFC 5424 parser (PRI, VERSION, TIMESTAMP, HOSTNAME, APP-NAME, PROCID, MSGID,
  STRUCTURED-DATA with its escapes, MSG), `parse_cef`: a strict CEF:0 parser (header and extension escapes).
- `Webhook`: an HTTP server that answers the first `fail_first` requests with 503 (or `fail_status`), can hold
  requests until released, and records every body and header.
- `Subscriber`: a paho client recording what a broker delivers.
- `make_alert`: an Alert with awkward text in it.
Waits poll with deadlines; nothing sleeps a fixed time.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import ssl
import threading
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from appliance.alert import Alert
from tests.test_run_live import wait_for

WAIT = 15.0
NASTY = 'a|pipe, a \\backslash, a=equals, "quotes", ]bracket[, a\nnew line\r and unicode: Zürich ✓'


def client_tls(pki: Any, key: str = "client_key") -> dict[str, str]:
    """The `tls:` settings of a sink trusting the test CA and showing the client certificate."""
    return {"ca_file": str(pki.ca), "cert_file": str(pki.client_cert), "key_file": str(getattr(pki, key))}


def make_alert(i: int, severity: str = "high", *, src: str = "10.8.0.23", dst: str = "10.20.0.11") -> Alert:
    """An alert numbered i whose text holds every character the formats must escape."""
    return Alert(
        ts=1717483800.0 + i + 0.123456, detector="scan", note="address_scan", severity=severity, score=60 + i % 40,
        techniques=("T0846", "T1046"), src=src, assets=(src, dst), uids=(f"C{i:05d}",),
        explanation=f"alert {i}: {NASTY}", key=f"scan/address_scan/{src}/{i}", details={"hosts": i, "set": {3, 1}},
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------- strict parsers

_HEADER = re.compile(
    rb"<(?P<pri>\d{1,3})>(?P<version>[1-9]\d{0,2}) (?P<ts>\S+) (?P<host>[!-~]{1,255}) (?P<app>[!-~]{1,48}) "
    rb"(?P<procid>[!-~]{1,128}) (?P<msgid>[!-~]{1,32}) "
)
_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")
_SD_NAME = re.compile(r"[!#-<>-\\^-~]{1,32}")  # PRINTUSASCII except '=', SP, ']', '"'


@dataclass
class SyslogMessage:
    """One parsed RFC 5424 message."""

    pri: int
    version: int
    timestamp: datetime
    hostname: str
    app_name: str
    procid: str
    msgid: str
    sd: dict[str, dict[str, str]] = field(default_factory=dict)
    msg: str = ""

    @property
    def facility(self) -> int:
        """PRI // 8."""
        return self.pri // 8

    @property
    def severity(self) -> int:
        """PRI % 8."""
        return self.pri % 8


def _parse_sd(text: str) -> tuple[dict[str, dict[str, str]], str]:
    """STRUCTURED-DATA at the start of text; returns the elements and the rest (after the separating space)."""
    if text.startswith("-"):
        rest = text[1:]
        assert rest == "" or rest.startswith(" "), f"no space after NILVALUE SD: {text[:40]!r}"
        return {}, rest[1:]
    elements: dict[str, dict[str, str]] = {}
    i = 0
    assert text.startswith("["), f"STRUCTURED-DATA must be '-' or start with '[': {text[:40]!r}"
    while i < len(text) and text[i] == "[":
        m = _SD_NAME.match(text, i + 1)
        assert m, f"bad SD-ID at {text[i : i + 40]!r}"
        sd_id, i = m.group(), m.end()
        params: dict[str, str] = {}
        while text[i] == " ":
            m = _SD_NAME.match(text, i + 1)
            assert m and text[m.end() : m.end() + 2] == '="', f"bad SD-PARAM at {text[i : i + 40]!r}"
            name, i = m.group(), m.end() + 2
            value = []
            while text[i] != '"':
                ch = text[i]
                assert ch != "]", f"unescaped ']' in SD-PARAM {name}"
                if ch == "\\" and text[i + 1] in '"\\]':
                    value.append(text[i + 1])
                    i += 2
                else:
                    value.append(ch)
                    i += 1
            params[name] = "".join(value)
            i += 1
        assert text[i] == "]", f"SD-ELEMENT not closed at {text[i : i + 40]!r}"
        assert sd_id not in elements, f"SD-ID {sd_id} twice"
        elements[sd_id] = params
        i += 1
    rest = text[i:]
    assert rest == "" or rest.startswith(" "), f"no space after STRUCTURED-DATA: {rest[:40]!r}"
    return elements, rest[1:]


def parse_syslog(data: bytes) -> SyslogMessage:
    """Parse one RFC 5424 message strictly (assertion errors name what is wrong)."""
    m = _HEADER.match(data)
    assert m, f"not an RFC 5424 header: {data[:80]!r}"
    pri = int(m["pri"])
    assert 0 <= pri <= 191 and str(pri) == m["pri"].decode(), f"bad PRI {m['pri']!r}"
    assert m["version"] == b"1", "VERSION must be 1"
    ts = m["ts"].decode()
    assert _TS.match(ts), f"TIMESTAMP {ts!r} is not RFC 3339 with at most 6 fraction digits"
    rest = data[m.end() :].decode("utf-8")  # raises on bad UTF-8
    assert not rest.startswith("\ufeff"), "no BOM expected"
    sd, msg = _parse_sd(rest)
    return SyslogMessage(
        pri=pri, version=1, timestamp=datetime.fromisoformat(ts.replace("Z", "+00:00")), hostname=m["host"].decode(),
        app_name=m["app"].decode(), procid=m["procid"].decode(), msgid=m["msgid"].decode(), sd=sd, msg=msg,
    )  # fmt: skip


def _cef_unescape(value: str, allowed: dict[str, str]) -> str:
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            nxt = value[i + 1] if i + 1 < len(value) else ""
            assert nxt in allowed, f"bad escape \\{nxt} in {value!r}"
            out.append(allowed[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def parse_cef(text: str) -> tuple[list[str], dict[str, str]]:
    """Parse a CEF:0 line strictly: the 7 header fields (unescaped) and the extension (unescaped values)."""
    assert text.startswith("CEF:0|"), f"not CEF:0: {text[:40]!r}"
    assert "\n" not in text and "\r" not in text, "a CEF line has no raw line break"
    fields: list[str] = []
    cur: list[str] = []
    i = 0
    while len(fields) < 7:
        assert i < len(text), f"CEF header ends early: {text!r}"
        ch = text[i]
        if ch == "\\":
            cur.append(text[i : i + 2])
            i += 2
        elif ch == "|":
            fields.append("".join(cur))
            cur, i = [], i + 1
        else:
            cur.append(ch)
            i += 1
    header = [_cef_unescape(f, {"\\": "\\", "|": "|"}) for f in fields]
    assert header[0] == "CEF:0"
    ext_text = text[i:]
    # every unescaped '=' ends a key: the key is the word before it
    equals = [j for j in range(len(ext_text)) if ext_text[j] == "=" and _unescaped(ext_text, j)]
    ext: dict[str, str] = {}
    starts = []
    for j in equals:
        k = ext_text.rfind(" ", 0, j) + 1
        key = ext_text[k:j]
        assert re.fullmatch(r"[A-Za-z0-9_]+", key), f"bad extension key {key!r}"
        starts.append((k, j, key))
    for n, (_k, j, key) in enumerate(starts):
        end = starts[n + 1][0] - 1 if n + 1 < len(starts) else len(ext_text)
        raw = ext_text[j + 1 : end]
        assert key not in ext, f"extension key {key} twice"
        ext[key] = _cef_unescape(raw, {"\\": "\\", "=": "=", "n": "\n", "r": "\r"})
    return header[1:], ext


def _unescaped(text: str, j: int) -> bool:
    n = 0
    while j - n - 1 >= 0 and text[j - n - 1] == "\\":
        n += 1
    return n % 2 == 0


# ---------------------------------------------------------------------------------------------- receivers


class SyslogUdp:
    """A UDP syslog receiver on 127.0.0.1 (one message per datagram)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)  # the thread looks at _stop between reads
        self.port = int(self.sock.getsockname()[1])
        self.messages: list[bytes] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.messages.append(data)

    def wait(self, n: int) -> list[SyslogMessage]:
        """Wait for n messages; return them parsed."""
        wait_for(lambda: len(self.messages) >= n, f"{n} UDP syslog messages (have {len(self.messages)})", WAIT)
        with self._lock:
            return [parse_syslog(m) for m in self.messages]

    def close(self) -> None:
        """Stop receiving."""
        self._stop.set()
        self._thread.join(WAIT)
        self.sock.close()


class SyslogTcp:
    """A TCP syslog receiver on 127.0.0.1 reading octet-counted frames; TLS when given a server context."""

    def __init__(self, tls: ssl.SSLContext | None = None, port: int = 0) -> None:
        self.tls = tls
        self.server = socket.create_server(("127.0.0.1", port))
        self.server.settimeout(0.1)  # the thread looks at _stop between accepts
        self._stop = threading.Event()
        self.port = int(self.server.getsockname()[1])
        self.messages: list[bytes] = []
        self.connections = 0
        self.errors: list[str] = []
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            if self.tls is not None:
                try:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                except (OSError, ssl.SSLError) as exc:
                    with self._lock:
                        self.errors.append(f"handshake: {exc}")
                    conn.close()
                    continue
            with self._lock:
                self.connections += 1
                self._conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buf = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                if buf:
                    with self._lock:
                        self.errors.append(f"connection closed inside a frame: {buf[:40]!r}")
                return
            buf += chunk
            while True:
                m = re.match(rb"([1-9]\d*) ", buf)
                if not m:
                    if buf and not re.fullmatch(rb"[1-9]\d*", buf):
                        with self._lock:
                            self.errors.append(f"not an octet-counted frame: {buf[:40]!r}")
                        return
                    break
                length = int(m.group(1))
                if len(buf) < m.end() + length:
                    break
                with self._lock:
                    self.messages.append(buf[m.end() : m.end() + length])
                buf = buf[m.end() + length :]

    def wait(self, n: int) -> list[SyslogMessage]:
        """Wait for n messages; return them parsed (and fail on any framing error)."""
        wait_for(lambda: len(self.messages) >= n or bool(self.errors), f"{n} TCP syslog messages", WAIT)
        assert not self.errors, self.errors
        with self._lock:
            return [parse_syslog(m) for m in self.messages]

    def drop_connections(self) -> None:
        """Close every accepted connection (the receiver restarting, as the sink sees it)."""
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def close(self) -> None:
        """Stop listening and close every connection."""
        self._stop.set()
        self._thread.join(WAIT)
        self.server.close()
        self.drop_connections()


class Webhook:
    """An HTTP receiver: fails the first `fail_first` POSTs with `fail_status`, records the rest."""

    def __init__(self, fail_first: int = 0, fail_status: int = 503) -> None:
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.requests = 0
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.release = threading.Event()
        self.release.set()  # clear() to hold requests until set() again
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with hook.lock:
                    hook.requests += 1
                    n = hook.requests
                hook.release.wait(WAIT)
                if n <= hook.fail_first:
                    status = hook.fail_status
                else:
                    status = 200
                    with hook.lock:
                        hook.bodies.append(json.loads(body))
                        hook.headers.append(dict(self.headers.items()))
                        hook.paths.append(self.path)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/hook?x=1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait(self, n: int) -> list[dict[str, Any]]:
        """Wait for n accepted bodies."""
        wait_for(lambda: len(self.bodies) >= n, f"{n} webhook bodies (have {len(self.bodies)})", WAIT)
        with self.lock:
            return list(self.bodies)

    def close(self) -> None:
        """Stop serving."""
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(WAIT)


class Subscriber:
    """A paho client on the plain listener that records (topic, payload, qos) of every message."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[tuple[str, bytes, int]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fleet-view")
        subscribed: list[bool] = []
        self.client.on_message = lambda _c, _u, msg: self.messages.append((msg.topic, bytes(msg.payload), msg.qos))
        self.client.on_subscribe = lambda *_a: subscribed.append(True)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(topic, qos=1)
        wait_for(lambda: bool(subscribed), "SUBACK", WAIT)

    def wait(self, n: int) -> list[tuple[str, bytes, int]]:
        """Wait for n messages."""
        wait_for(lambda: len(self.messages) >= n, f"{n} MQTT messages (have {len(self.messages)})", WAIT)
        return list(self.messages)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()
