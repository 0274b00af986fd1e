"""Building blocks of the attack-chain generator (simulators/itgen/chain.py): a capture with an explicit packet
clock, and the message builders the other generators lack (Modbus/TCP ADUs, SMB2 logons as whole exchanges, LDAP
paged searches, the UDP probes scanners send: SNMP, NBNS node status, SSDP, RMCP/ASF, BACnet Who-Is).

Every builder returns valid messages; frames come from simulators/mixgen/wire.py, DNS/DHCP messages from
simulators/itgen/dns_http.py, SMB2/NTLM/LDAP messages from simulators/itgen/smb_ldap_msgs.py.
"""

from __future__ import annotations

import struct
from pathlib import Path
from random import Random

from simulators.itgen.dns_http import dns_message, wire_name
from simulators.itgen.smb_ldap_msgs import (
    KRB_OID,
    NTLM_OID,
    der,
    entry,
    ldap_msg,
    ldap_result,
    nbss,
    negotiate_req,
    negotiate_resp,
    ntlm_challenge,
    ntlm_negotiate,
    ostr,
    search_req,
    session_req,
    session_resp,
    smb2,
    spnego_init,
    spnego_resp,
    tree_req,
    tree_resp,
    u16,
)
from simulators.mixed_capture import pcap_global_header
from simulators.mixgen.wire import Host, TcpConn, udp_frame

__all__ = [
    "LOGON_FAILURE",
    "PAGED_OID",
    "Capture",
    "a_rdata",
    "bacnet_who_is",
    "dns_ask",
    "ldap_ntlm_bind",
    "ldap_search",
    "ldap_simple_bind",
    "ldap_unbind",
    "modbus_exchange",
    "nbns_node_status",
    "ntlmv2_auth",
    "paged_control",
    "ptr_name",
    "ptr_rdata",
    "rmcp_ping",
    "smb_session",
    "snmp_get",
    "ssdp_search",
    "udp_probe",
]

LOGON_FAILURE = 0xC000006D
MORE_PROCESSING = 0xC0000016
PAGED_OID = "1.2.840.113556.1.4.319"
PTR, A = 12, 1
_RECORD = struct.Struct("<IIII")
_MBAP = struct.Struct(">HHHB")


class Capture:
    """Frames with packet times in integer microseconds; activities place themselves with `at()` and may overlap
    (frames are sorted by time, stably, when written)."""

    def __init__(self, rng: Random, start_us: int) -> None:
        self.rng = rng
        self.start_us = start_us
        self.now_us = start_us
        self.frames: list[tuple[int, int, bytes]] = []

    @property
    def now(self) -> float:
        """The clock in seconds of packet time."""
        return self.now_us / 1e6

    def at(self, ts: float) -> None:
        """Move the clock to packet time `ts` (seconds)."""
        self.now_us = round(ts * 1e6)

    def wait(self, seconds: float) -> None:
        """Move the clock on by `seconds`."""
        self.now_us += round(seconds * 1e6)

    def add(self, *frames: bytes) -> None:
        """Append frames, each 0.2-1.2 ms after the previous one."""
        for frame in frames:
            self.now_us += 200 + self.rng.randrange(1000)
            self.frames.append((self.now_us, len(self.frames), frame))

    def send(self, conn: TcpConn, from_client: bool, payload: bytes, mss: int = 1460) -> None:
        """Payload from one side in MSS-sized segments, then the peer's ACK."""
        for i in range(0, len(payload), mss):
            chunk = payload[i : i + mss]
            self.add(conn.c2s(chunk) if from_client else conn.s2c(chunk))
        self.add(conn.ack_from_server() if from_client else conn.ack_from_client())

    def sorted_frames(self) -> list[tuple[int, bytes]]:
        """(microseconds, frame) in time order; frames with equal times keep the order they were made in."""
        return [(us, frame) for us, _, frame in sorted(self.frames)]

    def write(self, path: str | Path) -> int:
        """Write a classic microsecond pcap; returns the number of frames."""
        frames = self.sorted_frames()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.write(pcap_global_header())
            for us, frame in frames:
                f.write(_RECORD.pack(us // 1_000_000, us % 1_000_000, len(frame), len(frame)) + frame)
        return len(frames)


def dns_ask(
    cap: Capture, client: Host, server: Host, name: str, qtype: int, answers: list[bytes], sport: int = 0
) -> None:
    """A DNS query over UDP and its answer (NXDOMAIN when `answers` is empty); answers are rdata bytes."""
    tid = cap.rng.getrandbits(16)
    sport = sport or client.ephemeral_port()
    q = [(name, qtype)]
    cap.add(udp_frame(client, server, sport, 53, dns_message(tid, 0x0100, q)))
    records = [(name, qtype, 300, rdata) for rdata in answers]
    cap.add(udp_frame(server, client, 53, sport, dns_message(tid, 0x8580 | (0 if answers else 3), q, records)))


def ptr_name(ip: str) -> str:
    """The in-addr.arpa name of an IPv4 address."""
    return ".".join(reversed(ip.split("."))) + ".in-addr.arpa"


def ptr_rdata(name: str) -> bytes:
    """PTR rdata: a domain name in wire format."""
    return wire_name(name)


def a_rdata(ip: str) -> bytes:
    """A rdata: four address bytes."""
    return bytes(int(x) for x in ip.split("."))


def modbus_exchange(cap: Capture, conn: TcpConn, tid: int, unit: int, req: bytes, resp: bytes) -> None:
    """One Modbus/TCP request and its response (PDUs given), each with an ACK."""
    cap.send(conn, True, _MBAP.pack(tid & 0xFFFF, 0, len(req) + 1, unit) + req)
    cap.send(conn, False, _MBAP.pack(tid & 0xFFFF, 0, len(resp) + 1, unit) + resp)


_NTLM_TIME = 133_620_000_000_000_000  # 2024-06 in Windows FILETIME units


def ntlmv2_auth(rng: Random, domain: str, user: str, host: str, server: str) -> bytes:
    """An NTLMSSP AUTHENTICATE (VERSION, MIC) whose NT response is a well-formed NTLMv2 response: a random
    NTProofStr and the client challenge structure with the target's AV pairs (random where secrets are)."""
    pairs = [(2, u16("CORP")), (1, u16(server.upper())), (4, u16("corp.local")),
             (3, u16(f"{server.lower()}.corp.local")), (5, u16("corp.local")),
             (7, struct.pack("<Q", _NTLM_TIME)), (6, struct.pack("<I", 2)),
             (9, u16(f"cifs/{server.lower()}.corp.local")), (0, b"")]  # fmt: skip
    av = b"".join(struct.pack("<HH", k, len(v)) + v for k, v in pairs)
    blob = struct.pack("<BBHIQ", 1, 1, 0, 0, _NTLM_TIME) + rng.randbytes(8) + b"\x00" * 4 + av + b"\x00" * 4
    fields = [b"\x00" * 24, rng.randbytes(16) + blob, u16(domain), u16(user), u16(host), rng.randbytes(16)]
    offsets, payload, off = {}, b"", 88
    for i in (2, 3, 4, 0, 1, 5):  # Windows' payload order: domain, user, workstation, LM, NT, session key
        offsets[i] = off + len(payload)
        payload += fields[i]
    head = b"NTLMSSP\x00" + struct.pack("<I", 3)
    head += b"".join(struct.pack("<HHI", len(fields[i]), len(fields[i]), offsets[i]) for i in range(6))
    head += struct.pack("<I", 0xE2888215) + bytes([10, 0]) + struct.pack("<H", 19041) + b"\x00\x00\x00\x0f"
    return head + rng.randbytes(16) + payload


def _smb_error() -> bytes:
    return struct.pack("<HBBI", 9, 0, 0, 0) + b"\x00"


def smb_session(
    cap: Capture,
    conn: TcpConn,
    domain: str,
    user: str,
    host: str,
    outcomes: list[int],
    share: str = "IPC$",
    sid: int = 0x4000_0001,
) -> None:
    """A whole SMB2 session: handshake, NEGOTIATE, one NTLM SESSION_SETUP exchange per outcome (NTSTATUS: 0 is
    success), a TREE_CONNECT and a LOGOFF after a success, and an orderly close."""
    rng = cap.rng
    server = conn.s.name.upper()
    cap.add(*conn.handshake())
    cap.send(conn, True, nbss(smb2(0, 0, negotiate_req([0x202, 0x210, 0x300, 0x302, 0x311]))))
    blob = spnego_init([KRB_OID, NTLM_OID], None)
    cap.send(conn, False, nbss(smb2(0, 0, negotiate_resp(0x311, blob), resp=True)))
    mid = 1
    for status in outcomes:
        chal = ntlm_challenge(rng, "CORP", server, "CORP", f"{conn.s.name}.corp.local", "corp.local", "corp.local")
        cap.send(conn, True, nbss(smb2(1, mid, session_req(spnego_init([NTLM_OID], ntlm_negotiate())))))
        cap.send(conn, False, nbss(smb2(1, mid, session_resp(spnego_resp(1, NTLM_OID, chal)), resp=True,
                                        status=MORE_PROCESSING, sid=sid)))  # fmt: skip
        token = spnego_resp(None, None, ntlmv2_auth(rng, domain, user, host, server))
        cap.send(conn, True, nbss(smb2(1, mid + 1, session_req(token), sid=sid)))
        body = session_resp(spnego_resp(0, None, None)) if status == 0 else _smb_error()
        cap.send(conn, False, nbss(smb2(1, mid + 1, body, resp=True, status=status, sid=sid)))
        mid += 2
        if status == 0:
            path = f"\\\\{server}\\{share}"
            cap.send(conn, True, nbss(smb2(3, mid, tree_req(path), sid=sid)))
            cap.send(conn, False, nbss(smb2(3, mid, tree_resp(2 if share == "IPC$" else 1), resp=True, sid=sid,
                                            tid=1)))  # fmt: skip
            logoff = struct.pack("<HH", 4, 0)
            cap.send(conn, True, nbss(smb2(2, mid + 1, logoff, sid=sid)))
            cap.send(conn, False, nbss(smb2(2, mid + 1, logoff, resp=True, sid=sid)))
            break
    cap.add(*conn.close())


def paged_control(size: int, cookie: bytes) -> bytes:
    """The controls of a message with the simple paged results control (RFC 2696)."""
    value = der(0x30, der(0x02, size.to_bytes(2, "big")) + ostr(cookie))
    return der(0xA0, der(0x30, ostr(PAGED_OID) + ostr(value)))


def ldap_search(
    cap: Capture,
    conn: TcpConn,
    mid: int,
    base: str,
    scope: int,
    flt: bytes,
    attrs: list[str],
    entries: list[tuple[str, dict[str, list[bytes]]]],
    page: tuple[int, bytes, bytes] | None = None,
    batch: int = 40,
    pause: float = 0.0,
) -> None:
    """A searchRequest, its entries (`batch` per send, `pause` seconds between sends) and searchResDone; `page`
    is (size, cookie asked, cookie returned) for a paged search."""
    asked = paged_control(page[0], page[1]) if page else b""
    cap.send(conn, True, ldap_msg(mid, 0x63, search_req(base, scope, flt, attrs), asked))
    for i in range(0, len(entries), batch):
        cap.wait(pause)
        cap.send(conn, False, b"".join(ldap_msg(mid, 0x64, entry(dn, a)) for dn, a in entries[i : i + batch]))
    done = paged_control(page[0], page[2]) if page else b""
    cap.send(conn, False, ldap_msg(mid, 0x65, ldap_result(0), done))


def ldap_simple_bind(cap: Capture, conn: TcpConn, mid: int, dn: str, password: bytes) -> None:
    """A simple bind and its success."""
    cap.send(conn, True, ldap_msg(mid, 0x60, der(0x02, b"\x03") + ostr(dn) + der(0x80, password)))
    cap.send(conn, False, ldap_msg(mid, 0x61, ldap_result(0)))


def ldap_ntlm_bind(cap: Capture, conn: TcpConn, domain: str, user: str, host: str) -> None:
    """A SASL GSS-SPNEGO bind with NTLM (message ids 1 and 2), success; later messages stay unwrapped."""
    rng = cap.rng
    sasl = der(0xA3, ostr("GSS-SPNEGO") + ostr(spnego_init([NTLM_OID], ntlm_negotiate())))
    cap.send(conn, True, ldap_msg(1, 0x60, der(0x02, b"\x03") + ostr("") + sasl))
    server = conn.s.name.upper()
    chal = ntlm_challenge(rng, "CORP", server, "CORP", f"{conn.s.name}.corp.local", "corp.local", "corp.local")
    cap.send(conn, False, ldap_msg(1, 0x61, ldap_result(14) + der(0x87, spnego_resp(1, NTLM_OID, chal))))
    token = spnego_resp(None, None, ntlmv2_auth(rng, domain, user, host, server))
    bind = der(0x02, b"\x03") + ostr("") + der(0xA3, ostr("GSS-SPNEGO") + ostr(token))
    cap.send(conn, True, ldap_msg(2, 0x60, bind))
    cap.send(conn, False, ldap_msg(2, 0x61, ldap_result(0) + der(0x87, spnego_resp(0, None, None))))


def ldap_unbind(cap: Capture, conn: TcpConn, mid: int) -> None:
    """An unbindRequest and the orderly close."""
    cap.add(conn.c2s(ldap_msg(mid, 0x42, b"")))
    cap.add(*conn.close())


def snmp_get(request_id: int, community: str = "public") -> bytes:
    """An SNMPv1 GetRequest for sysDescr.0."""
    varbind = der(0x30, der(0x06, bytes.fromhex("2b06010201010100")) + b"\x05\x00")
    pdu = der(0xA0, der(0x02, request_id.to_bytes(4, "big")) + b"\x02\x01\x00\x02\x01\x00" + der(0x30, varbind))
    return der(0x30, b"\x02\x01\x00" + ostr(community) + pdu)


def nbns_node_status(tid: int) -> bytes:
    """A NetBIOS name service NODE STATUS request for the wildcard name `*`."""
    raw = b"*" + b"\x00" * 15
    encoded = bytes(c for b in raw for c in (65 + (b >> 4), 65 + (b & 15)))
    return struct.pack(">HHHHHH", tid, 0, 1, 0, 0, 0) + b"\x20" + encoded + b"\x00" + struct.pack(">HH", 0x21, 1)


def ssdp_search() -> bytes:
    """An SSDP M-SEARCH for every device."""
    return (b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\n"
            b"ST: ssdp:all\r\n\r\n")  # fmt: skip


def rmcp_ping(tag: int) -> bytes:
    """An RMCP/ASF Presence Ping (what IPMI discovery sends to UDP 623)."""
    return bytes([6, 0, 0xFF, 6]) + struct.pack(">IBBBB", 4542, 0x80, tag & 0xFF, 0, 0)


def bacnet_who_is() -> bytes:
    """A unicast BACnet/IP Who-Is without a range."""
    return bytes([0x81, 0x0A, 0x00, 0x08, 0x01, 0x00, 0x10, 0x08])


def udp_probe(cap: Capture, src: Host, dst: Host, dport: int, payload: bytes) -> None:
    """One datagram that gets no answer."""
    cap.add(udp_frame(src, dst, src.ephemeral_port(), dport, payload))
