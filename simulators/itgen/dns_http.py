"""A seeded generator of DNS (UDP, TCP, mDNS, LLMNR), DHCP and HTTP/1.x traffic, written as a classic pcap.

    python -m simulators.itgen.dns_http OUT.pcap [--seed S]

The scenario follows the incident otwatch is built for, plus everyday traffic: A/AAAA/CNAME/MX/TXT/SRV/NS/SOA/
ANY/HTTPS lookups with name compression, a reverse-DNS sweep of 10.20.0.0/24 (PTR, mostly NXDOMAIN), an ip6.arpa
PTR, an unanswered query, a retransmitted query, DNS over TCP (two messages in one segment, one split across
segments), mDNS and LLMNR queries, a DHCP DISCOVER/OFFER/REQUEST/ACK exchange with host name, vendor class,
client id, FQDN and parameter list, an INFORM and a RELEASE, HTTP browsing (Host, User-Agent, Referer), Nmap's
`/nice%20ports%2C/Tri%6Eity.txt%2ebak` probe, HTTP scanning of port 9401, pipelined requests, chunked and
Content-Length bodies, a body that runs until the close, HEAD and 304 answers, and a response split across segments.
Every message is valid; malformed inputs are built by the tests themselves. Frames come from
simulators/mixgen/wire.py; time advances by a seeded step from a fixed start, so a seed gives the same bytes.
"""

from __future__ import annotations

import argparse
import struct
from pathlib import Path
from random import Random

from simulators.mixed_capture import pcap_global_header
from simulators.mixgen.wire import Host, TcpConn, udp_frame

__all__ = ["START_TS", "build_frames", "dhcp_message", "dns_message", "wire_name", "write_pcap"]

START_TS = 1_700_000_000.0
_HEAD = struct.Struct(">HHHHHH")
_RR = struct.Struct(">HHIH")
_RECORD = struct.Struct("<IIII")
_BOOTP = struct.Struct(">BBBBIHH4s4s4s4s16s64s128s")
A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, HTTPS, ANY = 1, 2, 5, 6, 12, 15, 16, 28, 33, 65, 255
Record = tuple[str, int, int, bytes]  # owner name, type, ttl, rdata (names in rdata already in wire format)


def wire_name(name: str) -> bytes:
    """A domain name in DNS wire format, uncompressed ("" is the root)."""
    out = bytearray()
    for label in name.split(".") if name else []:
        out.append(len(label))
        out += label.encode("ascii")
    return bytes(out) + b"\x00"


def _ip(addr: str) -> bytes:
    return bytes(int(x) for x in addr.split("."))


def dns_message(tid: int, flags: int, questions: list[tuple[str, int]], answers: list[Record] = (),  # type: ignore[assignment]
                authority: list[Record] = (), compress: bool = True) -> bytes:  # type: ignore[assignment]
    """A DNS message; owner names equal to the first question's name are written as a pointer to offset 12."""
    body = bytearray(_HEAD.pack(tid, flags, len(questions), len(answers), len(authority), 0))
    first = questions[0][0].lower() if questions else None
    for name, qtype in questions:
        body += wire_name(name) + struct.pack(">HH", qtype, 1)
    for owner, rtype, ttl, rdata in [*answers, *authority]:
        body += b"\xc0\x0c" if compress and owner.lower() == first else wire_name(owner)
        body += _RR.pack(rtype, 1, ttl, len(rdata)) + rdata
    return bytes(body)


def dhcp_message(op: int, xid: int, mac: bytes, options: list[tuple[int, bytes]], *, ciaddr: str = "0.0.0.0",
                 yiaddr: str = "0.0.0.0", siaddr: str = "0.0.0.0") -> bytes:
    """A BOOTP message with the DHCP magic cookie and the given options (End appended)."""
    head = _BOOTP.pack(op, 1, 6, 0, xid, 0, 0x8000 if op == 1 else 0, _ip(ciaddr), _ip(yiaddr), _ip(siaddr),
                       b"\0" * 4, mac + b"\0" * 10, b"\0" * 64, b"\0" * 128)
    opts = b"".join(bytes([code, len(value)]) + value for code, value in options)
    return head + b"\x63\x82\x53\x63" + opts + b"\xff"


class _Capture:
    """Frames with their times; the clock advances by a seeded step per frame."""

    def __init__(self, rng: Random) -> None:
        self.rng = rng
        self.ts = START_TS
        self.frames: list[tuple[float, bytes]] = []

    def add(self, *frames: bytes, step: float = 0.0) -> None:
        """Append frames, each a little later than the one before."""
        for frame in frames:
            self.ts += step or (0.0005 + self.rng.random() * 0.002)
            self.frames.append((round(self.ts, 6), frame))


def _dns(cap: _Capture, rng: Random, client: Host, server: Host, mdns: Host, llmnr: Host) -> None:
    def ask(q: list[tuple[str, int]], answers: list[Record], rcode: int = 0, authority: list[Record] = (),  # type: ignore[assignment]
            answered: bool = True, port: int | None = None) -> None:
        tid = rng.getrandbits(16)
        sport = port or client.ephemeral_port()
        cap.add(udp_frame(client, server, sport, 53, dns_message(tid, 0x0100, q)))
        if answered:
            reply = dns_message(tid, 0x8180 | rcode, q, answers, authority)
            cap.add(udp_frame(server, client, 53, sport, reply))

    soa = wire_name("ns1.corp.example") + wire_name("hostmaster.corp.example") + struct.pack(">IIIII", 7, 3600,
                                                                                              600, 86400, 300)
    ask([("intranet.corp.example", A)], [("intranet.corp.example", CNAME, 300, wire_name("web01.corp.example")),
                                         ("web01.corp.example", A, 300, _ip("10.20.0.80"))])
    ask([("web01.corp.example", AAAA)], [("web01.corp.example", AAAA, 120,
                                          bytes.fromhex("fd000000000000000000000000000080"))])
    ask([("corp.example", MX)], [("corp.example", MX, 3600, b"\x00\x0a" + wire_name("mail.corp.example"))])
    ask([("corp.example", TXT)], [("corp.example", TXT, 3600, b"\x0bv=spf1 -all\x05hello")])
    srv = "_ldap._tcp.dc._msdcs.corp.example"
    ask([(srv, SRV)], [(srv, SRV, 600, struct.pack(">HHH", 0, 100, 389) + wire_name(f"dc{i}.corp.example"))
                       for i in (1, 2)])
    ask([("corp.example", NS)], [("corp.example", NS, 86400, wire_name("ns1.corp.example"))])
    ask([("corp.example", ANY)], [("corp.example", SOA, 300, soa)])
    ask([("www.example.org", HTTPS)], [("www.example.org", HTTPS, 60, b"\x00\x01\x00")])
    ask([("Mixed.Case.Example", A)], [("Mixed.Case.Example", A, 30, _ip("192.0.2.7"))])
    ask([("missing.corp.example", A)], [], 3, [("corp.example", SOA, 300, soa)])
    ask([("refused.example", A)], [], 5)
    ask([("lost.corp.example", A)], [], answered=False)
    # a retransmission: the same query twice from one socket, one answer
    tid, sport = rng.getrandbits(16), client.ephemeral_port()
    q = dns_message(tid, 0x0100, [("slow.corp.example", A)])
    cap.add(udp_frame(client, server, sport, 53, q), udp_frame(client, server, sport, 53, q))
    answer = [("slow.corp.example", A, 5, _ip("10.20.0.9"))]
    cap.add(udp_frame(server, client, 53, sport, dns_message(tid, 0x8180, [("slow.corp.example", A)], answer)))
    # the reverse sweep: 10.20.0.1 .. 10.20.0.24 from one socket, a few names known
    sweep_port = client.ephemeral_port()
    for last in range(1, 25):
        rev = f"{last}.0.20.10.in-addr.arpa"
        known = last in (5, 9, 80 % 24)
        answers = [(rev, PTR, 300, wire_name(f"host{last}.corp.example"))] if known else []
        ask([(rev, PTR)], answers, 0 if known else 3, port=sweep_port)
    rev6 = ".".join(reversed("fd000000000000000000000000000080")) + ".ip6.arpa"
    ask([(rev6, PTR)], [(rev6, PTR, 300, wire_name("web01.corp.example"))])
    # DNS over TCP: two queries in one segment, the answers split across segments
    conn = TcpConn(client, server, 53, rng)
    cap.add(*conn.handshake())
    q1 = dns_message(0x0A01, 0x0100, [("dc1.corp.example", A)])
    q2 = dns_message(0x0A02, 0x0100, [("dc2.corp.example", A)])
    r1 = dns_message(0x0A01, 0x8580, [("dc1.corp.example", A)], [("dc1.corp.example", A, 600, _ip("10.20.0.10"))])
    r2 = dns_message(0x0A02, 0x8580, [("dc2.corp.example", A)], [("dc2.corp.example", A, 600, _ip("10.20.0.11"))])
    tcp = lambda m: struct.pack(">H", len(m)) + m  # noqa: E731
    cap.add(conn.c2s(tcp(q1) + tcp(q2)))
    both = tcp(r1) + tcp(r2)
    cap.add(conn.s2c(both[:20]), conn.ack_from_client(), conn.s2c(both[20:]))
    cap.add(conn.ack_from_client(), *conn.close())
    # mDNS and LLMNR queries to their multicast groups
    cap.add(udp_frame(client, mdns, 5353, 5353, dns_message(0, 0x0000, [("_printer._tcp.local", PTR)])))
    cap.add(udp_frame(client, llmnr, client.ephemeral_port(), 5355, dns_message(0x4242, 0x0000, [("fileserver", A)])))


def _dhcp(cap: _Capture, rng: Random, server: Host, zero: Host, bcast: Host, client: Host) -> None:
    mac = client.mac
    xid = rng.getrandbits(32)
    params = bytes([1, 3, 6, 15, 31, 33, 43, 44, 46, 47, 119, 121, 249, 252])
    ident = [(61, b"\x01" + mac), (12, b"WS-ATTACKER"), (60, b"MSFT 5.0")]
    cap.add(udp_frame(zero, bcast, 68, 67, dhcp_message(1, xid, mac, [(53, b"\x01"), *ident, (55, params)])))
    offer = [(53, b"\x02"), (54, server.ip4), (51, struct.pack(">I", 86400)), (1, _ip("255.255.255.0")),
             (3, _ip("10.30.0.1")), (6, _ip("10.20.0.10") + _ip("10.20.0.11")), (15, b"corp.example")]
    cap.add(udp_frame(server, bcast, 67, 68, dhcp_message(2, xid, mac, offer, yiaddr=client.ip, siaddr=server.ip)))
    fqdn = b"\x01\x00\x00WS-ATTACKER.corp.example"
    req = [(53, b"\x03"), (50, client.ip4), (54, server.ip4), *ident, (81, fqdn), (55, params)]
    cap.add(udp_frame(zero, bcast, 68, 67, dhcp_message(1, xid, mac, req)))
    ack = [(53, b"\x05"), *offer[1:]]
    cap.add(udp_frame(server, bcast, 67, 68, dhcp_message(2, xid, mac, ack, yiaddr=client.ip, siaddr=server.ip)))
    xid2 = rng.getrandbits(32)
    inform = [(53, b"\x08"), (61, b"\x01" + mac), (12, b"WS-ATTACKER"), (60, b"MSFT 5.0"), (55, bytes([1, 15, 3, 6]))]
    cap.add(udp_frame(client, server, 68, 67, dhcp_message(1, xid2, mac, inform, ciaddr=client.ip)))
    cap.add(udp_frame(client, server, 68, 67, dhcp_message(1, rng.getrandbits(32), mac,
                                                           [(53, b"\x07"), (54, server.ip4)], ciaddr=client.ip)))


def _http(cap: _Capture, rng: Random, client: Host, web: Host, scanned: list[Host]) -> None:
    ua = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
    conn = TcpConn(client, web, 80, rng)
    cap.add(*conn.handshake())
    cap.add(conn.c2s(b"GET /index.html HTTP/1.1\r\nHost: intranet.corp.example\r\nUser-Agent: " + ua
                     + b"\r\nAccept: */*\r\n\r\n"))
    page = b"<html>" + b"x" * 1500 + b"</html>"
    resp = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nContent-Type: text/html\r\nContent-Length: "
            + str(len(page)).encode() + b"\r\n\r\n" + page)
    cap.add(conn.s2c(resp[:1000]), conn.s2c(resp[1000:]), conn.ack_from_client())
    # pipelined: three requests in one segment, answered in order (chunked, 304, HEAD)
    pipe = b"".join(b"GET /" + p + b" HTTP/1.1\r\nHost: intranet.corp.example\r\nReferer: http://intranet.corp.example/"
                    b"index.html\r\nUser-Agent: " + ua + b"\r\n\r\n" for p in (b"app.js", b"logo.png"))
    pipe += b"HEAD /health HTTP/1.1\r\nHost: intranet.corp.example\r\n\r\n"
    cap.add(conn.c2s(pipe))
    chunked = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"10\r\n0123456789abcdef\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: yes\r\n\r\n")
    rest = b"HTTP/1.1 304 Not Modified\r\nServer: nginx/1.24.0\r\n\r\n" \
           b"HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nContent-Length: 12345\r\n\r\n"
    cap.add(conn.s2c(chunked + rest), conn.ack_from_client())
    cap.add(conn.c2s(b"POST /login HTTP/1.1\r\nHost: intranet.corp.example\r\nContent-Type: "
                     b"application/x-www-form-urlencoded\r\nContent-Length: 27\r\n\r\nuser=bob&password=hunter2xx"))
    cap.add(conn.s2c(b"HTTP/1.1 302 Found\r\nLocation: /home\r\nContent-Length: 0\r\n\r\n"), conn.ack_from_client())
    cap.add(*conn.close())
    # Nmap's service probe, answered 400
    conn = TcpConn(client, web, 8080, rng)
    cap.add(*conn.handshake())
    cap.add(conn.c2s(b"GET /nice%20ports%2C/Tri%6Eity.txt%2ebak HTTP/1.0\r\n\r\n"))
    cap.add(conn.s2c(b"HTTP/1.1 400 Bad Request\r\nServer: Apache\r\nContent-Length: 11\r\nConnection: close\r\n"
                     b"\r\nBad Request"), conn.ack_from_client(), *conn.close(by_client=False))
    # scanning port 9401 (no port claims it: found by probe), answers without length until the close
    for host in scanned:
        conn = TcpConn(client, host, 9401, rng)
        cap.add(*conn.handshake())
        cap.add(conn.c2s(b"GET / HTTP/1.0\r\nUser-Agent: Mozilla/5.0 (compatible; Nmap Scripting Engine; "
                         b"https://nmap.org/book/nse.html)\r\n\r\n"))
        cap.add(conn.s2c(b"HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnot found\n"),
                conn.ack_from_client(), *conn.close(by_client=False))


def build_frames(seed: int = 7) -> list[tuple[float, bytes]]:
    """Every frame of the scenario, with its time, in order."""
    rng = Random(seed)
    mk = lambda name, ip, mac: Host(name, "it", ip, bytes.fromhex(mac), 64, rng)  # noqa: E731
    client = mk("ws-attacker", "10.30.0.77", "02aa00000077")
    dns = mk("dns", "10.20.0.10", "02aa00000010")
    web = mk("web01", "10.20.0.80", "02aa00000080")
    dhcp = mk("dhcp", "10.30.0.1", "02aa00000001")
    zero = mk("unconfigured", "0.0.0.0", "02aa00000077")
    bcast = mk("broadcast", "255.255.255.255", "ffffffffffff")
    mdns = mk("mdns", "224.0.0.251", "01005e0000fb")
    llmnr = mk("llmnr", "224.0.0.252", "01005e0000fc")
    scanned = [mk(f"h{i}", f"10.20.0.{100 + i}", f"02aa000001{i:02x}") for i in range(3)]
    cap = _Capture(rng)
    _dhcp(cap, rng, dhcp, zero, bcast, client)
    _dns(cap, rng, client, dns, mdns, llmnr)
    _http(cap, rng, client, web, scanned)
    return cap.frames


def write_pcap(path: str | Path, seed: int = 7) -> int:
    """Write the scenario to a classic pcap at path; return the number of frames."""
    frames = build_frames(seed)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(pcap_global_header())
        for ts, frame in frames:
            us = round(ts * 1_000_000)
            f.write(_RECORD.pack(us // 1_000_000, us % 1_000_000, len(frame), len(frame)) + frame)
    return len(frames)


def main(argv: list[str] | None = None) -> int:
    """Command line: write the scenario pcap."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="pcap file to write")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    print(write_pcap(args.out, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
