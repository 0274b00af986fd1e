"""The syslog sink: RFC 5424 messages with a CEF or ECS JSON body, over UDP (RFC 5426) or TCP (RFC 6587), TLS optional.

One message per record: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [origin ...][meta sequenceId="N"] BODY`.
PRI is facility * 8 + severity (critical 2, high 3, medium 4, low 5); TIMESTAMP the record's packet time in UTC with
microseconds; MSGID `alert` or `incident`; the two structured-data elements are IANA-registered ones (RFC 5424
section 7), `meta sequenceId` counting this sink's messages from 1 (a gap at the receiver is a lost message). The
body is UTF-8 without a BOM (RFC 5424 MSG-ANY), which CEF parsers expect. Over TCP each message is framed by octet
counting (`LEN SP MSG`, RFC 6587 3.4.1; RFC 5425 uses the same framing in TLS). TCP syslog has no acknowledgement:
before each send the sink checks that the receiver has not closed the connection (and reconnects if it has), but a
message sent just as the receiver dies can still be lost; UDP gives no guarantee at all.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import ssl
from collections.abc import Callable

from appliance.export.sinks.base import PermanentSinkError, QueuedSink, Record, SinkError, log_stderr
from appliance.export.sinks.formats import cef_message, dumps, ecs_document, rfc3339
from appliance.export.sinks.settings import SyslogSinkSettings

SYSLOG_SEVERITY = {"critical": 2, "high": 3, "medium": 4, "low": 5}  # crit, err, warning, notice
UNKNOWN_SYSLOG_SEVERITY = 4
MAX_SEQUENCE = 2_147_483_647


def sd_value(value: str) -> str:
    """Escape an SD-PARAM value (RFC 5424 6.3.3): backslash, double quote and closing bracket."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def octet_frame(message: bytes) -> bytes:
    """RFC 6587 octet-counting framing: the length in decimal, a space, the message."""
    return b"%d " % len(message) + message


def syslog_message(
    record: Record,
    body: str,
    *,
    facility: int,
    hostname: str,
    app_name: str,
    procid: str,
    sequence: int,
    version: str,
) -> bytes:
    """One RFC 5424 message (no framing) carrying `body`."""
    severity = SYSLOG_SEVERITY.get(record.severity, UNKNOWN_SYSLOG_SEVERITY)
    sd = f'[origin software="otwatch" swVersion="{sd_value(version)}"][meta sequenceId="{sequence}"]'
    head = f"<{facility * 8 + severity}>1 {rfc3339(record.ts)} {hostname} {app_name} {procid} {record.kind} {sd} "
    return head.encode("ascii") + body.encode("utf-8")


class SyslogSink(QueuedSink):
    """Forwards records to one syslog receiver from its own thread."""

    type = "syslog"

    def __init__(
        self,
        name: str,
        settings: SyslogSinkSettings,
        *,
        tls: ssl.SSLContext | None,
        version: str,
        log: Callable[[str], None] = log_stderr,
    ) -> None:
        self.settings = settings
        self._tls = tls
        self._version = version
        self._procid = str(os.getpid())
        self._sequence = 0
        self._pending: tuple[Record, bytes] | None = None  # the message of the record being retried
        self._sock: socket.socket | None = None
        super().__init__(
            name, queue_size=settings.queue_size, max_retries=settings.max_retries,
            backoff_base=settings.backoff_base, backoff_max=settings.backoff_max, log=log,
        )  # fmt: skip

    @property
    def connected(self) -> bool:
        """TCP: a connection is open; UDP: the last datagram went out without an error."""
        if self.settings.protocol == "tcp":
            return self._sock is not None
        return self._last_ok

    def body(self, record: Record) -> str:
        """The message body in the configured format."""
        s = self.settings
        if s.format == "cef":
            return cef_message(record, self._version)
        return dumps(ecs_document(record, s.sensor, self._version)).decode("utf-8")

    def _message(self, record: Record) -> bytes:
        pending = self._pending
        if pending is not None and pending[0] is record:
            return pending[1]
        self._sequence = self._sequence % MAX_SEQUENCE + 1
        s = self.settings
        message = syslog_message(
            record, self.body(record), facility=s.facility_code, hostname=s.hostname, app_name=s.app_name,
            procid=self._procid, sequence=self._sequence, version=self._version,
        )  # fmt: skip
        self._pending = (record, message)
        return message

    def deliver(self, record: Record) -> None:
        """Send the record's message; an error closes the socket (the retry opens a new one)."""
        message = self._message(record)
        try:
            if self.settings.protocol == "udp":
                self._send_udp(message)
            else:
                self._send_tcp(octet_frame(message))
        except OSError as exc:
            self.disconnect()
            if exc.errno == errno.EMSGSIZE:  # this message will never fit a datagram
                raise PermanentSinkError(f"message of {len(message)} bytes is too large for UDP") from None
            raise SinkError(f"{self.settings.host}:{self.settings.port}: {exc.strerror or exc}") from None
        self._pending = None

    def _connect(self, kind: int) -> socket.socket:
        s = self.settings
        last: OSError | None = None
        for family, socktype, proto, _name, addr in socket.getaddrinfo(s.host, s.port, type=kind):
            sock = socket.socket(family, socktype, proto)
            try:
                sock.settimeout(s.timeout)
                sock.connect(addr)
                if self._tls is not None:
                    server = s.tls.server_name if s.tls is not None and s.tls.server_name else s.host
                    sock = self._tls.wrap_socket(sock, server_hostname=server)
                return sock
            except OSError as exc:
                sock.close()
                last = exc
        raise last if last is not None else OSError(f"no address for {s.host}")

    def _send_udp(self, message: bytes) -> None:
        if self._sock is None:
            self._sock = self._connect(socket.SOCK_DGRAM)
        self._sock.send(message)

    def _send_tcp(self, frame: bytes) -> None:
        sock = self._sock
        if sock is not None and _peer_closed(sock, self.settings.timeout):
            self.disconnect()
            sock = None
        if sock is None:
            sock = self._sock = self._connect(socket.SOCK_STREAM)
        sock.sendall(frame)

    def disconnect(self) -> None:
        """Close the socket (a TLS session is closed without waiting for the receiver's close_notify)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


def _peer_closed(sock: socket.socket, timeout: float) -> bool:
    """A syslog receiver never sends: a readable socket means it closed the connection (or reset it)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        if isinstance(sock, ssl.SSLSocket):
            sock.setblocking(False)
            try:
                return sock.recv(1) == b""
            except ssl.SSLWantReadError:
                return False
            finally:
                sock.settimeout(timeout)
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except OSError:
        return True
