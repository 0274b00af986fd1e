"""IT traffic: DNS (A and PTR on UDP 53), TLS-like sessions on TCP 443, and background noise.

TLS sessions are abbreviated (resumed) TLS 1.2 handshakes with well-formed records: ClientHello with SNI,
ServerHello + ChangeCipherSpec + encrypted Finished, then application-data records of random bytes and an
encrypted alert before FIN. Noise is NTP client/server pairs, syslog messages, SYN to closed ports answered by
RST, and heartbeat datagrams (a magic, then random bytes) between unregistered high ports.
"""

from __future__ import annotations

import struct
from collections import deque
from random import Random

from simulators.mixgen.net import Site
from simulators.mixgen.wire import Host, TcpConn, udp_frame

_DNS_HEAD = struct.Struct(">HHHHHH")
_DNS_ANSWER = struct.Struct(">HHHIH")  # name pointer, type, class, ttl, rdlength
_TLS_RECORD = struct.Struct(">BHH")
_NTP = struct.Struct(">BBbbII4sQQQQ")
A, PTR = 1, 12
_CIPHERS = bytes.fromhex("c02fc030c02bc02c009c009d002f0035")
_MAX_TLS = 8


def dns_name(name: str) -> bytes:
    """A domain name in DNS wire format (uncompressed)."""
    out = bytearray()
    for label in name.split("."):
        out.append(len(label))
        out += label.encode("ascii")
    return bytes(out) + b"\x00"


def _reverse(ip: str) -> str:
    return ".".join(reversed(ip.split("."))) + ".in-addr.arpa"


class DnsTraffic:
    """Produces DNS query/answer pairs: A for site names (some NXDOMAIN), PTR for site addresses."""

    def __init__(self, site: Site, rng: Random, out: deque[bytes]) -> None:
        self.rng = rng
        self.out = out
        self.server = site.role("dns")[0]
        self.clients = site.role("it") + site.role("scada") + site.role("bms") + site.role("server")
        self.hosts = site.all
        self.site = site

    def step(self) -> None:
        """Append one query and its answer."""
        rng = self.rng
        client = self.clients[rng.randrange(len(self.clients))]
        target = self.hosts[rng.randrange(len(self.hosts))]
        r = rng.random()
        if r < 0.65:
            qname, qtype, rdata = self.site.fqdn(target), A, target.ip4
        elif r < 0.75:
            qname, qtype, rdata = f"wpad.{target.name}.dc1.corp", A, b""
        else:
            qname, qtype, rdata = _reverse(target.ip), PTR, dns_name(self.site.fqdn(target))
        question = dns_name(qname) + qtype.to_bytes(2, "big") + b"\x00\x01"
        txid = rng.getrandbits(16)
        sport = client.ephemeral_port()
        self.out.append(
            udp_frame(client, self.server, sport, 53, _DNS_HEAD.pack(txid, 0x0100, 1, 0, 0, 0) + question)
        )
        if rdata:
            answer = _DNS_ANSWER.pack(0xC00C, qtype, 1, 300, len(rdata)) + rdata
            reply = _DNS_HEAD.pack(txid, 0x8580, 1, 1, 0, 0) + question + answer
        else:
            reply = _DNS_HEAD.pack(txid, 0x8583, 1, 0, 0, 0) + question
        self.out.append(udp_frame(self.server, client, 53, sport, reply))


def _record(content_type: int, body: bytes, version: int = 0x0303) -> bytes:
    return _TLS_RECORD.pack(content_type, version, len(body)) + body


def _handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def _extension(ext_type: int, data: bytes) -> bytes:
    return ext_type.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data


def client_hello(rng: Random, sni: str, session_id: bytes) -> bytes:
    """A TLS 1.2 ClientHello record offering a session id to resume, with SNI."""
    name = sni.encode("ascii")
    server_name = (len(name) + 3).to_bytes(2, "big") + b"\x00" + len(name).to_bytes(2, "big") + name
    exts = _extension(0x0000, server_name) + _extension(0x0017, b"") + _extension(0xFF01, b"\x00")
    body = (
        b"\x03\x03"
        + rng.randbytes(32)
        + bytes([len(session_id)])
        + session_id
        + len(_CIPHERS).to_bytes(2, "big")
        + _CIPHERS
        + b"\x01\x00"
        + len(exts).to_bytes(2, "big")
        + exts
    )
    return _record(0x16, _handshake(1, body), 0x0301)


def server_hello(rng: Random, session_id: bytes) -> bytes:
    """ServerHello resuming the session, ChangeCipherSpec and an encrypted Finished, in one segment."""
    exts = _extension(0xFF01, b"\x00") + _extension(0x0017, b"")
    body = (
        b"\x03\x03"
        + rng.randbytes(32)
        + bytes([len(session_id)])
        + session_id
        + b"\xc0\x2f\x00"
        + len(exts).to_bytes(2, "big")
        + exts
    )
    return _record(0x16, _handshake(2, body)) + _record(0x14, b"\x01") + _record(0x16, rng.randbytes(40))


class _TlsSession:
    __slots__ = ("conn", "left", "session_id", "stage")

    def __init__(self, conn: TcpConn, left: int, session_id: bytes) -> None:
        self.conn = conn
        self.left = left
        self.session_id = session_id
        self.stage = 0


class TlsTraffic:
    """Produces TLS-like sessions on 443 between IT hosts and servers, one step of a session per `step()`."""

    def __init__(self, site: Site, rng: Random, out: deque[bytes]) -> None:
        self.rng = rng
        self.out = out
        self.site = site
        self.clients = site.role("it")
        self.servers = site.role("server")
        self.active: list[_TlsSession] = []

    def step(self) -> None:
        """Append the frames of one step: a new session's hello, a request/response, or a close."""
        rng = self.rng
        out = self.out
        if not self.active or (len(self.active) < _MAX_TLS and rng.random() < 0.2):
            client = self.clients[rng.randrange(len(self.clients))]
            server = self.servers[rng.randrange(len(self.servers))]
            conn = TcpConn(client, server, 443, rng)
            sess = _TlsSession(conn, rng.randint(1, 12), rng.randbytes(32))
            out.extend(conn.handshake())
            out.append(conn.c2s(client_hello(rng, self.site.fqdn(server), sess.session_id)))
            self.active.append(sess)
            return
        sess = self.active[rng.randrange(len(self.active))]
        conn = sess.conn
        if sess.stage == 0:
            out.append(conn.s2c(server_hello(rng, sess.session_id)))
            out.append(conn.c2s(_record(0x14, b"\x01") + _record(0x16, rng.randbytes(40))))
            sess.stage = 1
        elif sess.left > 0:
            sess.left -= 1
            out.append(conn.c2s(_record(0x17, rng.randbytes(rng.randint(60, 600)))))
            for _ in range(rng.randint(1, 3)):
                out.append(conn.s2c(_record(0x17, rng.randbytes(rng.randint(100, 1400)))))
            out.append(conn.ack_from_client())
        else:
            out.append(conn.c2s(_record(0x15, rng.randbytes(26))))
            out.extend(conn.close(by_client=True))
            self.active.remove(sess)


class NoiseTraffic:
    """Produces background noise: NTP, syslog, refused TCP connections and random UDP datagrams."""

    def __init__(self, site: Site, rng: Random, out: deque[bytes]) -> None:
        self.rng = rng
        self.out = out
        self.hosts = site.role("it") + site.role("server") + site.role("scada") + site.role("bms")
        self.ntp = site.role("dns")[0]
        self.log = site.role("server")[0]
        self.ntp_time = 3_918_240_000 << 32  # an NTP-era timestamp, advanced per exchange
        self.pid = 1000 + rng.randrange(30000)

    def step(self) -> None:
        """Append one noise exchange."""
        rng = self.rng
        host = self.hosts[rng.randrange(len(self.hosts))]
        r = rng.random()
        if r < 0.3:
            self._ntp(host)
        elif r < 0.6:
            self.pid += 1
            minute, second, port = rng.randrange(60), rng.randrange(60), rng.randrange(32768, 61000)
            msg = (
                f"<134>Mar  1 08:{minute:02d}:{second:02d} {host.name} sshd[{self.pid}]: "
                f"Accepted publickey for svc from {host.ip} port {port} ssh2"
            )
            self.out.append(udp_frame(host, self.log, rng.randrange(32768, 61000), 514, msg.encode("ascii")))
        elif r < 0.8:
            other = self.hosts[rng.randrange(len(self.hosts))]
            if other is host:
                other = self.log if host is not self.log else self.ntp
            self.out.extend(TcpConn(host, other, rng.choice((23, 135, 445, 3389, 5900, 8081)), rng).refused())
        else:
            # an in-house heartbeat: fixed magic, then random bytes, between ports no dissector claims
            other = self.hosts[rng.randrange(len(self.hosts))]
            sport, dport = rng.randrange(60100, 61000), rng.randrange(60100, 61000)
            payload = b"OTHB" + rng.randbytes(rng.randint(16, 196))
            self.out.append(udp_frame(host, other, sport, dport, payload))

    def _ntp(self, host: Host) -> None:
        self.ntp_time += self.rng.randrange(1 << 32, 1 << 36)
        t = self.ntp_time
        sport = self.rng.randrange(32768, 61000)
        request = _NTP.pack(0x23, 0, 6, -23, 0, 0, b"\x00" * 4, 0, 0, 0, t)
        reply = _NTP.pack(
            0x24, 2, 6, -23, 0x200, 0x400, b"\x0a\x00\x00\x01", t - (64 << 32), t, t + 1000, t + 9000
        )
        self.out.append(udp_frame(host, self.ntp, sport, 123, request))
        self.out.append(udp_frame(self.ntp, host, 123, sport, reply))
