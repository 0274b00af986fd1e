"""Blocking clients for the live IT site, every socket bound to a chosen source address (the VPN address for the
attacker, so that the sensor sees one actor): SMB2 NTLM logons, an LDAP session with paged searches, HTTP GETs,
DNS questions, TCP connection attempts and unanswered UDP probes. Messages come from simulators/itgen's builders."""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Iterable
from random import Random

from simulators.itgen.chain_wire import ntlmv2_auth, paged_control
from simulators.itgen.dns_http import dns_message
from simulators.itgen.smb_ldap_msgs import (
    NTLM_OID,
    der,
    ldap_msg,
    nbss,
    negotiate_req,
    ntlm_negotiate,
    ostr,
    search_req,
    session_req,
    smb2,
    spnego_init,
    spnego_resp,
    tree_req,
)
from simulators.live_it import wire

TIMEOUT = 5.0
LDAP_BUSY = 0x0B  # a search result code other than success


def connect(src: str, dst: str, port: int, timeout: float = TIMEOUT) -> socket.socket:
    """A TCP connection from `src` (any free port) to dst:port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.bind((src, 0))
        sock.connect((dst, port))
    except OSError:
        sock.close()
        raise
    return sock


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        data = sock.recv(n - len(out))
        if not data:
            raise ConnectionError("the server closed the connection")
        out += data
    return out


def _smb_call(sock: socket.socket, msg: bytes) -> bytes:
    sock.sendall(nbss(msg))
    head = _recv_exact(sock, 4)
    return _recv_exact(sock, int.from_bytes(head[1:], "big"))


def smb_logon(src: str, dst: str, port: int, server_name: str, domain: str, user: str, workstation: str,
              password: str, rng: Random, share: str = "IPC$") -> bool:  # fmt: skip
    """One SMB2 session: NEGOTIATE, NTLM NEGOTIATE/CHALLENGE/AUTHENTICATE; after a success TREE_CONNECT and LOGOFF;
    then close. True when the logon succeeded."""
    with connect(src, dst, port) as sock:
        _smb_call(sock, smb2(0, 0, negotiate_req([0x202, 0x210, 0x300, 0x302, 0x311])))
        reply = _smb_call(sock, smb2(1, 1, session_req(spnego_init([NTLM_OID], ntlm_negotiate()))))
        header = wire.smb2_header(reply)
        kind, chal = wire.ntlm_message(wire.security_blob(reply))
        if header is None or kind != 2:
            return False
        sid = header[3]
        auth = wire.with_proof(ntlmv2_auth(rng, domain, user, workstation, server_name), password,
                               wire.challenge_of(chal))  # fmt: skip
        reply = _smb_call(sock, smb2(1, 2, session_req(spnego_resp(None, None, auth)), sid=sid))
        header = wire.smb2_header(reply)
        ok = header is not None and header[1] == 0
        if ok:
            _smb_call(sock, smb2(3, 3, tree_req(f"\\\\{server_name.upper()}\\{share}"), sid=sid))
            _smb_call(sock, smb2(2, 4, struct.pack("<HH", 4, 0), sid=sid))
        sock.shutdown(socket.SHUT_WR)
        return ok


class LdapSession:
    """A client's LDAP session over one TCP connection (a context manager that unbinds and closes)."""

    def __init__(self, src: str, dst: str, port: int) -> None:
        self.sock = connect(src, dst, port)
        self.mid = 0
        self._buf = b""

    def _next(self) -> tuple[int, int, bytes, list[wire.Element]]:
        while True:
            got = wire.read_element(self._buf)
            if got is not None:
                _tag, content, end = got
                self._buf = self._buf[end:]
                return wire.ldap_message(content)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the LDAP server closed the connection")
            self._buf += data

    def bind(self, name: str, password: str) -> int:
        """A simple bind; returns its result code."""
        self.mid += 1
        self.sock.sendall(ldap_msg(self.mid, 0x60, der(0x02, b"\x03") + ostr(name) + der(0x80, password.encode())))
        _mid, _op, body, _controls = self._next()
        return wire.integer(next(iter(wire.elements(body)))[1])

    def search(self, base: str, flt: bytes, attrs: Iterable[str], page: int = 0) -> int:
        """A subtree search, paged by `page` entries when given (one request per page); returns the entries read."""
        cookie, total = b"", 0
        while True:
            self.mid += 1
            controls = paged_control(page, cookie) if page else b""
            self.sock.sendall(ldap_msg(self.mid, 0x63, search_req(base, 2, flt, list(attrs)), controls))
            while True:
                _mid, op, body, got = self._next()
                if op == 0x64:
                    total += 1
                    continue
                if op == 0x65:
                    break
            paged = wire.paged_value(got)
            code = wire.integer(next(iter(wire.elements(body)))[1])
            if code or not page or paged is None or not paged[1]:
                return total
            cookie = paged[1]

    def close(self) -> None:
        """Unbind and close."""
        self.mid += 1
        with contextlib.suppress(OSError):
            self.sock.sendall(ldap_msg(self.mid, 0x42, b""))
        self.sock.close()

    def __enter__(self) -> LdapSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def http_get(src: str, dst: str, port: int, uri: str, host: str = "", version: str = "1.0",
             agent: str = "") -> bytes:  # fmt: skip
    """A GET (HTTP/1.0 with no headers unless given, as Nmap sends its probes); returns the whole answer."""
    lines = [f"GET {uri} HTTP/{version}"] + ([f"Host: {host}"] if host else []) + ([f"User-Agent: {agent}"]
                                                                                  if agent else [])  # fmt: skip
    with connect(src, dst, port) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        out = b""
        while data := sock.recv(65536):
            out += data
        return out


class DnsClient:
    """A UDP socket bound to a source address that asks one server, one question at a time."""

    def __init__(self, src: str, server: str, port: int, rng: Random) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((src, 0))
        self.sock.settimeout(2.0)
        self.server = (server, port)
        self.rng = rng

    def ask(self, name: str, qtype: int) -> bytes | None:
        """Ask and wait for the answer with the same id; None if none came."""
        tid = self.rng.getrandbits(16)
        self.sock.sendto(dns_message(tid, 0x0100, [(name, qtype)]), self.server)
        try:
            while True:
                data = self.sock.recv(4096)
                if len(data) >= 4 and struct.unpack_from(">H", data)[0] == tid:
                    return data
        except TimeoutError:
            return None

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


def tcp_attempt(src: str, dst: str, port: int) -> bool:
    """A TCP connection attempt (a SYN scan's probe, completed as a connect); True if something accepted it."""
    try:
        connect(src, dst, port, timeout=1.0).close()
        return True
    except OSError:
        return False


def udp_probe(src: str, dst: str, port: int, payload: bytes) -> None:
    """One datagram from its own socket, not waiting for an answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((src, 0))
        sock.sendto(payload, (dst, port))
