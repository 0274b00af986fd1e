"""Reading the messages the live IT puppets exchange: BER elements and LDAP messages (with a small filter evaluator),
DNS questions, SMB2 headers and security blobs, NTLM CHALLENGE/AUTHENTICATE fields, and the NTLMv2-shaped proof.

The proof is NTLMv2's construction (HMAC-MD5 of the server challenge and the client blob under a key derived from
user, domain and password) with MD5 in place of MD4 for the password hash (OpenSSL 3 ships no MD4): the puppet
server decides success or STATUS_LOGON_FAILURE by checking a password it was never sent. Messages are built with
simulators/itgen's builders; this module only reads them.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Iterator

from simulators.itgen.chain_wire import PAGED_OID
from simulators.itgen.smb_ldap_msgs import der, ostr

H2 = struct.Struct("<4sHHIHHIIQIIQ16s")  # the SMB2 sync header
_FIELD = struct.Struct("<HHI")
NTLM_SIG = b"NTLMSSP\x00"

Element = tuple[int, bytes]  # (tag, content)


def read_element(buf: bytes, pos: int = 0) -> tuple[int, bytes, int] | None:
    """The BER element at `pos`: (tag, content, end), or None when the buffer does not hold all of it yet;
    ValueError on a length form no LDAP peer sends."""
    if len(buf) < pos + 2:
        return None
    tag, n = buf[pos], buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4:
            raise ValueError(f"BER length of {k} bytes")
        if len(buf) < pos + k:
            return None
        n = int.from_bytes(buf[pos : pos + k], "big")
        pos += k
    if len(buf) < pos + n:
        return None
    return tag, bytes(buf[pos : pos + n]), pos + n


def elements(content: bytes) -> Iterator[Element]:
    """The elements inside a constructed element's content."""
    pos = 0
    while pos < len(content):
        got = read_element(content, pos)
        if got is None:
            return
        tag, value, pos = got
        yield tag, value


def integer(content: bytes) -> int:
    """A BER INTEGER's value."""
    return int.from_bytes(content, "big", signed=True) if content else 0


def ldap_message(content: bytes) -> tuple[int, int, bytes, list[Element]]:
    """(message id, protocolOp tag, protocolOp content, controls) of an LDAPMessage's content."""
    parts = list(elements(content))
    mid = integer(parts[0][1]) if parts else 0
    tag, op = parts[1] if len(parts) > 1 else (0, b"")
    controls = list(elements(parts[2][1])) if len(parts) > 2 and parts[2][0] == 0xA0 else []
    return mid, tag, op, controls


def paged_value(controls: list[Element]) -> tuple[int, bytes] | None:
    """(page size, cookie) of the simple paged results control, if the message carries it."""
    for _tag, control in controls:
        parts = list(elements(control))
        if parts and parts[0][1] == PAGED_OID.encode() and parts[-1][0] == 0x04:
            inner = list(elements(next(iter(elements(parts[-1][1])))[1]))
            return integer(inner[0][1]), inner[1][1]
    return None


def paged_response(size: int, cookie: bytes) -> bytes:
    """The controls of a searchResDone that carries the paged results cookie."""
    value = der(0x30, der(0x02, size.to_bytes(2, "big")) + ostr(cookie))
    return der(0xA0, der(0x30, ostr(PAGED_OID) + ostr(value)))


def search_fields(op: bytes) -> tuple[str, Element, list[str]]:
    """(base, filter element, requested attributes) of a searchRequest's content."""
    parts = list(elements(op))
    attrs = [v.decode(errors="replace") for _t, v in elements(parts[7][1])] if len(parts) > 7 else []
    return parts[0][1].decode(errors="replace"), parts[6], attrs


def matches(flt: Element, attrs: dict[str, list[str]]) -> bool:
    """Whether an entry's attributes satisfy a filter (and, or, not, equality, presence; case-insensitive)."""
    tag, content = flt
    if tag == 0xA0:
        return all(matches(f, attrs) for f in elements(content))
    if tag == 0xA1:
        return any(matches(f, attrs) for f in elements(content))
    if tag == 0xA2:
        inner = next(iter(elements(content)), None)
        return inner is not None and not matches(inner, attrs)
    lower = {k.lower(): v for k, v in attrs.items()}
    if tag == 0x87:
        return content.decode(errors="replace").lower() in lower
    if tag == 0xA3:
        parts = list(elements(content))
        name, value = parts[0][1].decode(errors="replace").lower(), parts[1][1].decode(errors="replace").lower()
        return value in (v.lower() for v in lower.get(name, []))
    return False


def dns_question(msg: bytes) -> tuple[int, str, int] | None:
    """(transaction id, query name, query type) of a DNS query, or None if it is not one."""
    if len(msg) < 17:
        return None
    tid, flags, qd = struct.unpack_from(">HHH", msg)
    if flags & 0x8000 or qd < 1:
        return None
    pos, labels = 12, []
    while pos < len(msg) and msg[pos]:
        n = msg[pos]
        if n & 0xC0 or pos + 1 + n > len(msg):
            return None
        labels.append(msg[pos + 1 : pos + 1 + n].decode(errors="replace"))
        pos += 1 + n
    if pos + 5 > len(msg):
        return None
    return tid, ".".join(labels), struct.unpack_from(">H", msg, pos + 1)[0]


def ptr_address(name: str) -> str | None:
    """The IPv4 address an in-addr.arpa name asks about."""
    suffix = ".in-addr.arpa"
    if not name.lower().endswith(suffix):
        return None
    parts = name[: -len(suffix)].split(".")
    return ".".join(reversed(parts)) if len(parts) == 4 else None


def smb2_header(msg: bytes) -> tuple[int, int, int, int] | None:
    """(command, status, message id, session id) of an SMB2 message, or None."""
    if len(msg) < H2.size or msg[:4] != b"\xfeSMB":
        return None
    f = H2.unpack_from(msg)
    return f[4], f[3], f[8], f[11]


def security_blob(msg: bytes) -> bytes:
    """The security buffer of an SMB2 SESSION_SETUP request or response (offsets from the header)."""
    cmd_flags = H2.unpack_from(msg)[6]
    at = H2.size + (12 if not cmd_flags & 1 else 4)
    off, n = struct.unpack_from("<HH", msg, at)
    return msg[off : off + n]


def ntlm_message(blob: bytes) -> tuple[int, bytes]:
    """(NTLMSSP message type, the message from its signature on) found in a SPNEGO blob; (0, b"") if none."""
    at = blob.find(NTLM_SIG)
    if at < 0 or len(blob) < at + 12:
        return 0, b""
    msg = blob[at:]
    return struct.unpack_from("<I", msg, 8)[0], msg


def challenge_of(msg: bytes) -> bytes:
    """The server challenge of an NTLM CHALLENGE message."""
    return msg[24:32]


def _field(msg: bytes, at: int) -> bytes:
    n, _max, off = _FIELD.unpack_from(msg, at)
    return msg[off : off + n]


def auth_fields(msg: bytes) -> tuple[str, str, str, bytes]:
    """(domain, user, workstation, NT response) of an NTLM AUTHENTICATE message."""
    text = [_field(msg, at).decode("utf-16-le", errors="replace") for at in (28, 36, 44)]
    return text[0], text[1], text[2], _field(msg, 20)


def proof(password: str, user: str, domain: str, challenge: bytes, blob: bytes) -> bytes:
    """The 16-byte NTLMv2-shaped proof of a password (MD5 where NTLM has MD4; see the module docstring)."""
    key = hmac.new(hashlib.md5(password.encode("utf-16-le")).digest(), (user.upper() + domain).encode("utf-16-le"),
                   "md5").digest()  # fmt: skip
    return hmac.new(key, challenge + blob, "md5").digest()


def with_proof(auth: bytes, password: str, challenge: bytes) -> bytes:
    """An NTLM AUTHENTICATE with its NTProofStr replaced by the proof of `password` for the server's challenge."""
    domain, user, _host, nt = auth_fields(auth)
    _n, _max, off = _FIELD.unpack_from(auth, 20)
    return auth[:off] + proof(password, user, domain, challenge, nt[16:]) + auth[off + 16 :]


def verify(auth: bytes, challenge: bytes, accounts: dict[str, str]) -> bool:
    """Whether an NTLM AUTHENTICATE proves the password of one of `accounts` (user -> password)."""
    domain, user, _host, nt = auth_fields(auth)
    password = accounts.get(user.lower())
    if password is None or len(nt) < 17:
        return False
    return hmac.compare_digest(nt[:16], proof(password, user, domain, challenge, nt[16:]))
