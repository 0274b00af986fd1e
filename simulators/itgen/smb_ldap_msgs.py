"""Message builders for simulators/itgen/smb_ldap.py: DER, NTLMSSP, SPNEGO, SMB2, SMB1, NetBIOS and LDAP
messages as bytes, valid by construction (random bytes where secrets would be: challenges, responses, keys)."""

from __future__ import annotations

import struct
from random import Random

_H2 = struct.Struct("<4sHHIHHIIQIIQ16s")
NTLM_OID = bytes.fromhex("2b06010401823702020a")
KRB_OID = bytes.fromhex("2a864886f712010202")
SPNEGO_OID = bytes.fromhex("2b0601050502")
FLAGS1 = 0xE2088297  # a Windows 10 NEGOTIATE's flags (UNICODE, NTLM, SIGN, SEAL, VERSION, 128, 56, KEY_EXCH ...)


def der(tag: int, content: bytes) -> bytes:
    """A DER element."""
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + content


def u16(text: str) -> bytes:
    return text.encode("utf-16-le")


def ntlm_negotiate(flags: int = FLAGS1) -> bytes:
    """An NTLMSSP NEGOTIATE message with VERSION 10.0.19041."""
    return b"NTLMSSP\x00" + struct.pack("<II8s8s", 1, flags, b"", b"") + bytes([10, 0]) + struct.pack("<H", 19041) + \
        b"\x00\x00\x00\x0f"  # fmt: skip


def ntlm_challenge(rng: Random, target: str, nb: str, nb_domain: str, dns: str, dns_domain: str, tree: str) -> bytes:
    """An NTLMSSP CHALLENGE with the target info AV pairs Windows servers send."""
    av = b"".join(struct.pack("<HH", i, len(u16(v))) + u16(v)
                  for i, v in ((2, nb_domain), (1, nb), (4, dns_domain), (3, dns), (5, tree)))  # fmt: skip
    av += struct.pack("<HHQ", 7, 8, 133_000_000_000_000_000) + b"\x00\x00\x00\x00"
    name = u16(target)
    off = 56
    head = b"NTLMSSP\x00" + struct.pack("<IHHII", 2, len(name), len(name), off, 0xE28A8215)
    head += rng.randbytes(8) + b"\x00" * 8 + struct.pack("<HHI", len(av), len(av), off + len(name))
    head += bytes([10, 0]) + struct.pack("<H", 17763) + b"\x00\x00\x00\x0f"
    return head + name + av


def ntlm_auth(rng: Random, domain: str, user: str, host: str, nt_len: int = 120, lm_len: int = 24,
              flags: int = 0xE2888215) -> bytes:
    """An NTLMSSP AUTHENTICATE (with VERSION and MIC) carrying random response bytes of the given lengths."""
    lm = rng.randbytes(lm_len) if lm_len != 1 else b"\x00"
    fields = [lm, rng.randbytes(nt_len), u16(domain), u16(user), u16(host), rng.randbytes(16)]
    off = 88
    head = b"NTLMSSP\x00" + struct.pack("<I", 3)
    order = [0, 1, 2, 3, 4, 5]
    payload = b""
    offsets = {}
    for i in (2, 3, 4, 0, 1, 5):  # Windows order: domain, user, workstation, LM, NT, session key
        offsets[i] = off + len(payload)
        payload += fields[i]
    for i in order:
        head += struct.pack("<HHI", len(fields[i]), len(fields[i]), offsets[i])
    head += struct.pack("<I", flags) + bytes([10, 0]) + struct.pack("<H", 19041) + b"\x00\x00\x00\x0f"
    return head + rng.randbytes(16) + payload


def spnego_init(mechs: list[bytes], token: bytes | None) -> bytes:
    """A GSS-API InitialContextToken with a SPNEGO NegTokenInit."""
    inner = der(0xA0, der(0x30, b"".join(der(0x06, m) for m in mechs)))
    if token is not None:
        inner += der(0xA2, der(0x04, token))
    return der(0x60, der(0x06, SPNEGO_OID) + der(0xA0, der(0x30, inner)))


def spnego_resp(state: int | None, mech: bytes | None, token: bytes | None) -> bytes:
    """A SPNEGO NegTokenResp."""
    inner = b""
    if state is not None:
        inner += der(0xA0, der(0x0A, bytes([state])))
    if mech is not None:
        inner += der(0xA1, der(0x06, mech))
    if token is not None:
        inner += der(0xA2, der(0x04, token))
    return der(0xA1, der(0x30, inner))


def smb2(cmd: int, mid: int, body: bytes, *, resp: bool = False, status: int = 0, sid: int = 0, tid: int = 0,
         flags: int = 0, nxt: int = 0) -> bytes:
    """An SMB2 header (sync) and its body."""
    return _H2.pack(b"\xfeSMB", 64, 1, status, cmd, 1, flags | (1 if resp else 0), nxt, mid, 0xFEFF, tid, sid,
                    b"\x00" * 16) + body  # fmt: skip


def nbss(msg: bytes) -> bytes:
    """A NetBIOS session message (direct TCP header)."""
    return b"\x00" + len(msg).to_bytes(3, "big") + msg


def compound(*msgs: bytes) -> bytes:
    """SMB2 messages chained with NextCommand (each padded to 8 bytes)."""
    out = b""
    for i, m in enumerate(msgs):
        if i < len(msgs) - 1:
            m += b"\x00" * (-len(m) % 8)
            m = m[:20] + struct.pack("<I", len(m)) + m[24:]
        out += m
    return out


def _sec(blob: bytes, fixed: bytes, at: int) -> bytes:
    return fixed[:at] + struct.pack("<HH", 64 + len(fixed), len(blob)) + fixed[at + 4 :] + blob


def negotiate_req(dialects: list[int]) -> bytes:
    """SMB2 NEGOTIATE request body."""
    return struct.pack("<HHHHI16sQ", 36, len(dialects), 1, 0, 0x7F, b"G" * 16, 0) + \
        b"".join(struct.pack("<H", d) for d in dialects)  # fmt: skip


def negotiate_resp(dialect: int, blob: bytes) -> bytes:
    """SMB2 NEGOTIATE response body."""
    fixed = struct.pack("<HHHH16sIIIIQQHHI", 65, 1, dialect, 0, bytes(range(16)), 0x2F, 8 << 20, 8 << 20, 8 << 20,
                        0, 0, 128, len(blob), 0)  # fmt: skip
    return fixed + blob


def session_req(blob: bytes) -> bytes:
    """SMB2 SESSION_SETUP request body."""
    return _sec(blob, struct.pack("<HBBIIHHQ", 25, 0, 1, 1, 0, 0, 0, 0), 12)


def session_resp(blob: bytes, flags: int = 0) -> bytes:
    """SMB2 SESSION_SETUP response body."""
    return _sec(blob, struct.pack("<HHHH", 9, flags, 0, 0), 4)


def tree_req(path: str) -> bytes:
    """SMB2 TREE_CONNECT request body."""
    return struct.pack("<HHHH", 9, 0, 72, len(u16(path))) + u16(path)


def tree_resp(share_type: int) -> bytes:
    """SMB2 TREE_CONNECT response body."""
    return struct.pack("<HBBIII", 16, share_type, 0, 0x800, 0, 0x1F01FF)


def create_req(name: str, disposition: int = 1) -> bytes:
    """SMB2 CREATE request body."""
    return struct.pack("<HBBIQQIIIIIHHII", 57, 0, 0, 2, 0, 0, 0x120089, 0x80, 7, disposition, 0x40, 120,
                       len(u16(name)), 0, 0) + u16(name)  # fmt: skip


def create_resp(fid: bytes, size: int) -> bytes:
    """SMB2 CREATE response body (times in 2023)."""
    t = 133_400_000_000_000_000
    return struct.pack("<HBBIQQQQQQII16sII", 89, 0, 0, 1, t, t + 10, t + 20, t + 30, size, size, 0x20, 0, fid, 0, 0)


def fid_body(size: int, fid: bytes, at: int, extra: bytes = b"") -> bytes:
    """A body of `size` fixed bytes with the file id at `at`."""
    body = bytearray(max(size & ~1, at + 16))
    body[0:2] = struct.pack("<H", size)
    body[at : at + 16] = fid
    return bytes(body) + extra


def read_req(fid: bytes, length: int, offset: int) -> bytes:
    """SMB2 READ request body."""
    return struct.pack("<HBBIQ16sIIIHHB", 49, 0, 0, length, offset, fid, 0, 0, 0, 0, 0, 0)


def read_resp(data: bytes) -> bytes:
    """SMB2 READ response body with its data."""
    return struct.pack("<HBBIII", 17, 80, 0, len(data), 0, 0) + data


def write_req(fid: bytes, data: bytes, offset: int) -> bytes:
    """SMB2 WRITE request body with its data."""
    return struct.pack("<HHIQ16sIIHHI", 49, 112, len(data), offset, fid, 0, 0, 0, 0, 0) + data


def smb1(cmd: int, mid: int, words: bytes, data: bytes, *, resp: bool = False, status: int = 0, uid: int = 0,
         tid: int = 0, unicode: bool = True) -> bytes:
    """An SMB1 message: header, word block, byte block."""
    flags2 = 0x4001 | (0x8000 if unicode else 0)
    head = struct.pack("<4sBIBHH8sHHHHH", b"\xffSMB", cmd, status, 0x98 if resp else 0x18, flags2, 0, b"", 0, tid,
                       0xFEFF, uid, mid)  # fmt: skip
    return head + bytes([len(words) // 2]) + words + struct.pack("<H", len(data)) + data


def ldap_msg(mid: int, tag: int, content: bytes, controls: bytes = b"") -> bytes:
    """An LDAPMessage with a protocolOp of application tag `tag` (constructed unless 0x42/0x4A/0x50)."""
    return der(0x30, der(0x02, mid.to_bytes(1 if mid < 128 else 2, "big")) + der(tag, content) + controls)


def ostr(text: str | bytes) -> bytes:
    return der(0x04, text.encode() if isinstance(text, str) else text)


def ldap_result(code: int, diag: str = "", matched: str = "") -> bytes:
    return der(0x0A, bytes([code])) + ostr(matched) + ostr(diag)


def eq(attr: str, value: bytes | str) -> bytes:
    """An equalityMatch filter."""
    return der(0xA3, ostr(attr) + ostr(value))


def search_req(base: str, scope: int, flt: bytes, attrs: list[str], size: int = 0) -> bytes:
    """searchRequest content."""
    return ostr(base) + der(0x0A, bytes([scope])) + der(0x0A, b"\x00") + der(0x02, size.to_bytes(2, "big")) + \
        der(0x02, b"\x78") + der(0x01, b"\x00") + flt + der(0x30, b"".join(ostr(a) for a in attrs))  # fmt: skip


def entry(dn: str, attrs: dict[str, list[bytes]]) -> bytes:
    """searchResEntry content."""
    return ostr(dn) + der(0x30, b"".join(der(0x30, ostr(k) + der(0x31, b"".join(ostr(v) for v in vs)))
                                       for k, vs in attrs.items()))  # fmt: skip


