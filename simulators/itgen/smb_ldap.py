"""A seeded generator of SMB (SMB2/SMB3 and SMB1, NTLM in SPNEGO) and LDAP traffic, written as a classic pcap.

    python -m simulators.itgen.smb_ldap OUT.pcap [--seed S]

The scenario follows the incident otwatch is built for: a VPN client opens an SMB2 session to a domain
controller (NEGOTIATE, NTLM NEGOTIATE/CHALLENGE/AUTHENTICATE in SPNEGO, success), connects to IPC$ and ADMIN$
(and C$, refused), opens, reads, writes and closes a file (a CREATE/READ/CLOSE compound too), runs an IOCTL, an
ECHO, TREE_DISCONNECT and LOGOFF; an SMB brute force of failed NTLM logons with a default credential and one
locked-out account; an anonymous (null) session; a Kerberos SESSION_SETUP; an SMB1 scanner NEGOTIATE with its
dialect strings and a basic (non-NTLMSSP) SESSION_SETUP_ANDX and TREE_CONNECT_ANDX; encrypted SMB3 messages;
an SMB session over TCP 139 with its NetBIOS session request. LDAP: a simple bind, searches of AD accounts with
filters and entries (two messages per segment, a message split across segments), a failed bind, modify, add,
delete, modDN, compare, abandon, StartTLS, unbind; a SASL GSS-SPNEGO (NTLM) bind followed by wrapped messages.
Every message is valid; malformed inputs are built by the tests. The output is a pure function of the seed.
"""

from __future__ import annotations

import argparse
import struct
from pathlib import Path
from random import Random

from simulators.itgen.smb_ldap_msgs import (
    KRB_OID,
    NTLM_OID,
    compound,
    create_req,
    create_resp,
    der,
    entry,
    eq,
    fid_body,
    ldap_msg,
    ldap_result,
    nbss,
    negotiate_req,
    negotiate_resp,
    ntlm_auth,
    ntlm_challenge,
    ntlm_negotiate,
    ostr,
    read_req,
    read_resp,
    search_req,
    session_req,
    session_resp,
    smb1,
    smb2,
    spnego_init,
    spnego_resp,
    tree_req,
    tree_resp,
    u16,
    write_req,
)
from simulators.mixed_capture import pcap_global_header
from simulators.mixgen.wire import Host, TcpConn

__all__ = ["START_TS", "build_frames", "write_pcap"]

START_TS = 1_700_100_000.0
_RECORD = struct.Struct("<IIII")


class _Cap:
    """Frames with packet time: each frame a seeded step after the previous one."""

    def __init__(self, rng: Random) -> None:
        self.rng = rng
        self.ts = START_TS
        self.frames: list[tuple[float, bytes]] = []

    def add(self, frames: list[bytes] | bytes, gap: float = 0.0) -> None:
        """Append frames (or one), the first `gap` seconds later than usual."""
        self.ts += gap
        for frame in [frames] if isinstance(frames, bytes) else frames:
            self.ts += 0.0005 + self.rng.random() * 0.004
            self.frames.append((round(self.ts, 6), frame))

    def send(self, conn: TcpConn, from_client: bool, payload: bytes, mss: int = 1460) -> None:
        """Payload from one side in MSS-sized segments."""
        for i in range(0, len(payload), mss):
            self.add(conn.c2s(payload[i : i + mss]) if from_client else conn.s2c(payload[i : i + mss]))


def _smb_auth(cap: _Cap, conn: TcpConn, rng: Random, mid: int, sid: int, user: str, domain: str, host: str,
              status: int, nt_len: int = 120, lm_len: int = 24) -> int:
    """The three SESSION_SETUP round trips of an NTLM logon; returns the next message id."""
    server = conn.s.name.upper()
    chal = ntlm_challenge(rng, "CORP", server, "CORP", f"{conn.s.name}.corp.local", "corp.local", "corp.local")
    cap.send(conn, True, nbss(smb2(1, mid, session_req(spnego_init([NTLM_OID], ntlm_negotiate())))))
    cap.send(conn, False, nbss(smb2(1, mid, session_resp(spnego_resp(1, NTLM_OID, chal)), resp=True,
                                    status=0xC0000016, sid=sid)))  # fmt: skip
    token = spnego_resp(None, None, ntlm_auth(rng, domain, user, host, nt_len, lm_len))
    cap.send(conn, True, nbss(smb2(1, mid + 1, session_req(token), sid=sid)))
    body = session_resp(spnego_resp(0, None, None), 2 if not user else 0) if status == 0 else _error()
    cap.send(conn, False, nbss(smb2(1, mid + 1, body, resp=True, status=status, sid=sid)))
    return mid + 2


def _error() -> bytes:
    return struct.pack("<HBBI", 9, 0, 0, 0) + b"\x00"


def _negotiate(cap: _Cap, conn: TcpConn) -> None:
    cap.add(conn.handshake())
    cap.send(conn, True, nbss(smb2(0, 0, negotiate_req([0x202, 0x210, 0x300, 0x302, 0x311]))))
    blob = spnego_init([bytes.fromhex("2a864882f712010202"), KRB_OID, NTLM_OID], None)
    cap.send(conn, False, nbss(smb2(0, 0, negotiate_resp(0x311, blob), resp=True)))


def _smb_main(cap: _Cap, rng: Random, client: Host, dc: Host) -> None:
    conn = TcpConn(client, dc, 445, rng)
    sid = 0x0000_1000_0000_0041
    _negotiate(cap, conn)
    mid = _smb_auth(cap, conn, rng, 1, sid, "jdoe", "CORP", "DESKTOP-X9K2Q", 0)
    for path, tid, status, stype in (("\\\\DC1\\IPC$", 1, 0, 2), ("\\\\DC1\\ADMIN$", 2, 0, 1),
                                     ("\\\\DC1\\C$", 0, 0xC0000022, 0)):  # fmt: skip
        cap.send(conn, True, nbss(smb2(3, mid, tree_req(path), sid=sid)))
        body = tree_resp(stype) if status == 0 else _error()
        cap.send(conn, False, nbss(smb2(3, mid, body, resp=True, status=status, sid=sid, tid=tid)))
        mid += 1
    f1, f2 = rng.randbytes(16), rng.randbytes(16)
    cap.send(conn, True, nbss(smb2(5, mid, create_req("Temp\\svc.exe", 2), sid=sid, tid=2)))
    cap.send(conn, False, nbss(smb2(5, mid, create_resp(f1, 0), resp=True, sid=sid, tid=2)))
    data = rng.randbytes(70_000)
    cap.send(conn, True, nbss(smb2(9, mid + 1, write_req(f1, data, 0), sid=sid, tid=2)))
    cap.send(conn, False, nbss(smb2(9, mid + 1, struct.pack("<HHIII", 17, 0, len(data), 0, 0), resp=True, sid=sid,
                                    tid=2)))  # fmt: skip
    cap.send(conn, True, nbss(smb2(6, mid + 2, fid_body(24, f1, 8), sid=sid, tid=2)))
    cap.send(conn, False, nbss(smb2(6, mid + 2, fid_body(60, b"\x00" * 16, 44), resp=True, sid=sid, tid=2)))
    mid += 3
    every = 0xFFFFFFFFFFFFFFFF
    req = compound(smb2(5, mid, create_req("Windows\\win.ini"), sid=sid, tid=2),
                    smb2(8, mid + 1, read_req(b"\xff" * 16, 4096, 0), sid=every, tid=0xFFFFFFFF, flags=4),
                    smb2(6, mid + 2, fid_body(24, b"\xff" * 16, 8), sid=every, tid=0xFFFFFFFF, flags=4))
    cap.send(conn, True, nbss(req))
    resp = compound(smb2(5, mid, create_resp(f2, 92), resp=True, sid=sid, tid=2),
                     smb2(8, mid + 1, read_resp(rng.randbytes(92)), resp=True, sid=sid, tid=2, flags=4),
                     smb2(6, mid + 2, fid_body(60, b"\x00" * 16, 44), resp=True, sid=sid, tid=2, flags=4))
    cap.send(conn, False, nbss(resp))
    mid += 3
    ioctl = struct.pack("<HHI16sIIIIIIII", 57, 0, 0x00140204, b"\xff" * 16, 120, 0, 0, 0, 0, 24, 1, 0)
    cap.send(conn, True, nbss(smb2(11, mid, ioctl, sid=sid, tid=1)))
    cap.send(conn, False, nbss(smb2(11, mid, struct.pack("<HHI16sIIIIII", 49, 0, 0x00140204, b"\xff" * 16, 0, 0,
                                                         112, 0, 0, 0), resp=True, sid=sid, tid=1)))  # fmt: skip
    echo = struct.pack("<HH", 4, 0)
    cap.send(conn, True, nbss(smb2(13, mid + 1, echo, sid=sid)) + nbss(smb2(13, mid + 2, echo, sid=sid)))
    both = nbss(smb2(13, mid + 1, echo, resp=True, sid=sid)) + nbss(smb2(13, mid + 2, echo, resp=True, sid=sid))
    cap.send(conn, False, both[:50])
    cap.send(conn, False, both[50:])
    cap.send(conn, True, nbss(smb2(4, mid + 3, echo, sid=sid, tid=2)))
    cap.send(conn, False, nbss(smb2(4, mid + 3, echo, resp=True, sid=sid, tid=2)))
    for i in range(3):
        sealed = b"\xfdSMB" + rng.randbytes(32) + struct.pack("<IHHQ", 80, 0, 1, sid) + rng.randbytes(80)
        cap.send(conn, i != 1, nbss(sealed))
    cap.send(conn, True, nbss(smb2(2, mid + 4, echo, sid=sid)))
    cap.send(conn, False, nbss(smb2(2, mid + 4, echo, resp=True, sid=sid)))
    cap.add(conn.close())


def _smb_side(cap: _Cap, rng: Random, attacker: Host, scanner: Host, ws: Host, dc1: Host, dc2: Host) -> None:
    for i, users in enumerate((("admin", "admin"), ("administrator", "svc_backup"))):  # brute force
        conn = TcpConn(attacker, dc2, 445, rng)
        _negotiate(cap, conn)
        mid = 1
        for j, user in enumerate(users):
            locked = i == 1 and j == 1
            mid = _smb_auth(cap, conn, rng, mid, 0x2000 + i, user, ".", "WIN-BRUTE", 0xC0000234 if locked else
                            0xC000006D)  # fmt: skip
        cap.add(conn.close())
    conn = TcpConn(scanner, dc1, 445, rng)  # null session
    _negotiate(cap, conn)
    _smb_auth(cap, conn, rng, 1, 0x3000, "", "", "", 0, nt_len=0, lm_len=1)
    cap.add(conn.close())
    conn = TcpConn(ws, dc1, 445, rng)  # kerberos
    _negotiate(cap, conn)
    ticket = der(0x60, der(0x06, KRB_OID) + b"\x01\x00" + der(0x6E, der(0x30, rng.randbytes(40))))
    cap.send(conn, True, nbss(smb2(1, 1, session_req(spnego_init([KRB_OID, NTLM_OID], ticket)))))
    cap.send(conn, False, nbss(smb2(1, 1, session_resp(spnego_resp(0, KRB_OID, None)), resp=True, sid=0x4000)))
    cap.add(conn.close())
    conn = TcpConn(scanner, dc2, 445, rng)  # SMB1 scanner, multi-protocol negotiate
    cap.add(conn.handshake())
    dialects = ("PC NETWORK PROGRAM 1.0", "LANMAN1.0", "Windows for Workgroups 3.1a", "LM1.2X002", "LANMAN2.1",
                "NT LM 0.12", "SMB 2.002", "SMB 2.???")  # fmt: skip
    cap.send(conn, True, nbss(smb1(0x72, 0, b"", b"".join(b"\x02" + d.encode() + b"\x00" for d in dialects))))
    cap.send(conn, False, nbss(smb2(0, 0, negotiate_resp(0x02FF, b""), resp=True)))
    cap.add(conn.close())
    conn = TcpConn(scanner, dc2, 445, rng)  # SMB1 only: basic session setup and tree connect
    cap.add(conn.handshake())
    cap.send(conn, True, nbss(smb1(0x72, 1, b"", b"\x02NT LM 0.12\x00")))
    words = struct.pack("<HBHHIIIIQhB", 0, 3, 50, 1, 16644, 65536, 0, 0xE3FC, 0, 0, 8)
    cap.send(conn, False, nbss(smb1(0x72, 1, words, rng.randbytes(8) + u16("CORP\x00DC2\x00"), resp=True)))
    for k, (user, pw) in enumerate((("guest", b""), ("administrator", rng.randbytes(24)))):
        words = struct.pack("<BBHHHHIHHII", 0xFF, 0, 0, 4356, 10, 0, 0, 0, len(pw), 0, 0xD4)
        names = b"\x00" + u16(f"{user}\x00CORP\x00Unix\x00Samba\x00")
        cap.send(conn, True, nbss(smb1(0x73, 2 + k, words, pw + names)))
        status = 0xC000006D if k == 0 else 0
        rwords = struct.pack("<BBHH", 0xFF, 0, 0, 0) if status == 0 else b""
        texts = b"" if status else b"\x00" + u16("Windows Server 2019\x00\x00")
        cap.send(conn, False, nbss(smb1(0x73, 2 + k, rwords, texts, resp=True, status=status,
                                        uid=0x800 if status == 0 else 0)))  # fmt: skip
    tree = u16("\\\\10.40.1.6\\IPC$\x00")
    cap.send(conn, True, nbss(smb1(0x75, 4, struct.pack("<BBHHH", 0xFF, 0, 0, 0, 1), b"\x00" + tree + b"?????\x00",
                                   uid=0x800)))  # fmt: skip
    cap.send(conn, False, nbss(smb1(0x75, 4, struct.pack("<BBHH", 0xFF, 0, 0, 1), b"IPC\x00", resp=True,
                                    uid=0x800, tid=0x801)))  # fmt: skip
    cap.add(conn.close())
    conn = TcpConn(ws, dc1, 139, rng)  # NetBIOS session service
    cap.add(conn.handshake())
    called, calling = _nbname("DC1", 0x20), _nbname("WS-050", 0x00)
    cap.send(conn, True, bytes([0x81, 0]) + len(called + calling).to_bytes(2, "big") + called + calling)
    cap.send(conn, False, b"\x82\x00\x00\x00")
    cap.send(conn, True, nbss(smb2(0, 0, negotiate_req([0x202, 0x210]))))
    cap.send(conn, False, nbss(smb2(0, 0, negotiate_resp(0x210, b""), resp=True)))
    cap.add(conn.close())


def _nbname(name: str, suffix: int) -> bytes:
    raw = name.upper().ljust(15).encode() + bytes([suffix])
    return b"\x20" + bytes(c for b in raw for c in (65 + (b >> 4), 65 + (b & 15))) + b"\x00"


def _ldap_main(cap: _Cap, rng: Random, client: Host, dc: Host) -> None:
    conn = TcpConn(client, dc, 389, rng)
    cap.add(conn.handshake())
    dn = "CN=John Doe,OU=Staff,DC=corp,DC=local"
    cap.send(conn, True, ldap_msg(1, 0x60, der(0x02, b"\x03") + ostr(dn) + der(0x80, b"Winter2024!")))
    cap.send(conn, False, ldap_msg(1, 0x61, ldap_result(0)))
    base = "DC=corp,DC=local"
    admins = der(0xA0, eq("objectClass", "user") + eq("adminCount", "1"))
    cap.send(conn, True, ldap_msg(2, 0x63, search_req(base, 2, admins, ["sAMAccountName", "memberOf"])))
    answer = b"".join(ldap_msg(2, 0x64, entry(f"CN=adm{i},OU=Admins,{base}", {"sAMAccountName": [f"adm{i}".encode()],
                                               "memberOf": [f"CN=Domain Admins,CN=Users,{base}".encode()]}))
                      for i in range(3)) + ldap_msg(2, 0x65, ldap_result(0))  # fmt: skip
    cap.send(conn, False, answer[:100])  # an entry split across segments, then the rest with the done
    cap.send(conn, False, answer[100:])
    prefix = der(0xA4, ostr("sAMAccountName") + der(0x30, der(0x80, b"adm")))
    spn = der(0xA1, prefix + der(0x87, b"servicePrincipalName"))
    paged = der(0xA0, der(0x30, ostr("1.2.840.113556.1.4.319") + ostr(der(0x30, der(0x02, b"\x64") + ostr(b"")))))
    cap.send(conn, True, ldap_msg(3, 0x63, search_req(base, 2, spn, ["*"], 1000), paged))
    cap.send(conn, False, b"".join(ldap_msg(3, 0x64, entry(f"CN=user{i},OU=Staff,{base}", {"cn": [b"u"]}))
                                   for i in range(5)) + ldap_msg(3, 0x65, ldap_result(0)))  # fmt: skip
    rule = der(0xA2, der(0xA9, der(0x81, b"1.2.840.113556.1.4.803") + der(0x82, b"userAccountControl") +
                         der(0x83, b"2")))  # fmt: skip
    sid = eq("objectSid", bytes.fromhex("010500000000000515000000a1b2c3d4"))
    both = der(0xA0, rule + sid + der(0xA5, ostr("pwdLastSet") + ostr("0")))
    cap.send(conn, True, ldap_msg(4, 0x63, search_req(base, 1, both, [])) +
             ldap_msg(5, 0x63, search_req("", 0, der(0x87, b"objectClass"), ["namingContexts"])))  # fmt: skip
    cap.send(conn, False, ldap_msg(4, 0x65, ldap_result(0)) + ldap_msg(5, 0x64, entry("", {"namingContexts": [
        base.encode()]})) + ldap_msg(5, 0x65, ldap_result(0)))  # fmt: skip
    target = f"CN=adm0,OU=Admins,{base}"
    change = der(0x30, der(0x0A, b"\x02") + der(0x30, ostr("description") + der(0x31, ostr("x"))))
    ops = [(6, 0x66, ostr(target) + der(0x30, change), 0x67, 50),
           (7, 0x68, ostr(f"CN=evil,{base}") + der(0x30, der(0x30, ostr("objectClass") + der(0x31, ostr("user")))),
            0x69, 0),
           (8, 0x4A, f"CN=evil,{base}".encode(), 0x6B, 0),
           (9, 0x6C, ostr(target) + ostr("CN=adm9") + der(0x01, b"\xff"), 0x6D, 0),
           (10, 0x6E, ostr(target) + der(0x30, ostr("userPassword") + ostr("guess")), 0x6F, 5),
           (12, 0x77, der(0x80, b"1.3.6.1.4.1.4203.1.11.3"), 0x78, 0)]  # fmt: skip
    for mid, tag, content, rtag, code in ops:
        cap.send(conn, True, ldap_msg(mid, tag, content))
        diag = "00002098: SecErr: DSID-03150F94, problem 4003 (INSUFF_ACCESS_RIGHTS)" if code == 50 else ""
        cap.send(conn, False, ldap_msg(mid, rtag, ldap_result(code, diag)))
    cap.send(conn, True, ldap_msg(11, 0x50, b"\x04"))
    bad = f"CN=admin,{base}"
    cap.send(conn, True, ldap_msg(13, 0x60, der(0x02, b"\x03") + ostr(bad) + der(0x80, b"Password1")), )
    diag = "80090308: LdapErr: DSID-0C090439, comment: AcceptSecurityContext error, data 52e, v4563"
    cap.send(conn, False, ldap_msg(13, 0x61, ldap_result(49, diag)))
    cap.send(conn, True, ldap_msg(14, 0x42, b""))
    cap.add(conn.close(), gap=50.0)


def _ldap_side(cap: _Cap, rng: Random, client: Host, ws: Host, dc: Host) -> None:
    conn = TcpConn(ws, dc, 389, rng)  # anonymous bind, rootDSE, StartTLS, then TLS records
    cap.add(conn.handshake())
    cap.send(conn, True, ldap_msg(1, 0x60, der(0x02, b"\x03") + ostr("") + der(0x80, b"")))
    cap.send(conn, False, ldap_msg(1, 0x61, ldap_result(0)))
    cap.send(conn, True, ldap_msg(2, 0x77, der(0x80, b"1.3.6.1.4.1.1466.20037")))
    cap.send(conn, False, ldap_msg(2, 0x78, ldap_result(0) + der(0x8A, b"1.3.6.1.4.1.1466.20037")))
    cap.send(conn, True, b"\x16\x03\x01\x00\x40" + rng.randbytes(64))
    cap.send(conn, False, b"\x16\x03\x03\x00\x50" + rng.randbytes(80))
    cap.add(conn.close())
    conn = TcpConn(client, dc, 389, rng)  # SASL GSS-SPNEGO with NTLM, then wrapped messages
    cap.add(conn.handshake())
    sasl = der(0xA3, ostr("GSS-SPNEGO") + ostr(spnego_init([NTLM_OID], ntlm_negotiate())))
    cap.send(conn, True, ldap_msg(1, 0x60, der(0x02, b"\x03") + ostr("") + sasl))
    chal = ntlm_challenge(rng, "CORP", "DC2", "CORP", "dc2.corp.local", "corp.local", "corp.local")
    cap.send(conn, False, ldap_msg(1, 0x61, ldap_result(14) + der(0x87, spnego_resp(1, NTLM_OID, chal))))
    token = spnego_resp(None, None, ntlm_auth(rng, "CORP", "jdoe", "DESKTOP-X9K2Q"))
    cap.send(conn, True, ldap_msg(2, 0x60, der(0x02, b"\x03") + ostr("") + der(0xA3, ostr("GSS-SPNEGO") + ostr(token))))
    cap.send(conn, False, ldap_msg(2, 0x61, ldap_result(0) + der(0x87, spnego_resp(0, None, None))))
    for i in range(4):
        wrapped = rng.randbytes(60 + i)
        cap.send(conn, i % 2 == 0, len(wrapped).to_bytes(4, "big") + wrapped)
    cap.add(conn.close())
    conn = TcpConn(client, dc, 3268, rng)  # the global catalog
    cap.add(conn.handshake())
    cap.send(conn, True, ldap_msg(1, 0x63, search_req("", 2, eq("sAMAccountName", "jdoe"), ["distinguishedName"])))
    cap.send(conn, False, ldap_msg(1, 0x64, entry("CN=John Doe,OU=Staff,DC=corp,DC=local", {})) +
             ldap_msg(1, 0x65, ldap_result(0)))  # fmt: skip
    cap.add(conn.close())


def build_frames(seed: int = 11) -> list[tuple[float, bytes]]:
    """Every frame of the scenario, (packet time, Ethernet frame), in time order."""
    rng = Random(seed)
    hosts = {name: Host(name, role, ip, bytes([2, 0, 0, 0, 0, i + 1]), 128 if role != "scanner" else 64, rng)
             for i, (name, role, ip) in enumerate((("vpn-jdoe", "it", "10.8.0.23"), ("scan", "scanner", "10.8.0.99"),
                                                   ("ws-050", "it", "10.40.1.50"), ("dc1", "server", "10.40.1.5"),
                                                   ("dc2", "server", "10.40.1.6")))}  # fmt: skip
    cap = _Cap(rng)
    _smb_main(cap, rng, hosts["vpn-jdoe"], hosts["dc1"])
    _smb_side(cap, rng, hosts["vpn-jdoe"], hosts["scan"], hosts["ws-050"], hosts["dc1"], hosts["dc2"])
    _ldap_main(cap, rng, hosts["vpn-jdoe"], hosts["dc2"])
    _ldap_side(cap, rng, hosts["vpn-jdoe"], hosts["ws-050"], hosts["dc2"])
    return cap.frames


def write_pcap(path: str | Path, seed: int = 11) -> int:
    """Write the scenario as a classic pcap; returns the number of frames."""
    frames = build_frames(seed)
    with open(path, "wb") as f:
        f.write(pcap_global_header())
        for ts, frame in frames:
            sec = int(ts)
            f.write(_RECORD.pack(sec, round((ts - sec) * 1e6), len(frame), len(frame)) + frame)
    return len(frames)


def main(argv: list[str] | None = None) -> int:
    """Command line: write the pcap."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    print(write_pcap(args.out, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
