"""SMB session helpers: the authentication summary of a SESSION_SETUP exchange (Zeek's ntlm.log fields), and
the NetBIOS session service messages of TCP 139 (RFC 1002 section 4.3).

An NTLM authentication spans several SESSION_SETUP round trips: the CHALLENGE (from the server) gives the server's
names, the AUTHENTICATE (from the client) the user, domain and workstation, and the response to the AUTHENTICATE
its outcome. `Auth` keeps the server names per flow and carries the client's names from the request to its
response, where the summary fields are put: auth (ntlm, kerberos), username, hostname, domainname,
server_nb_computer_name, server_dns_computer_name, server_tree_name, success.
"""

from __future__ import annotations

from typing import Any

from protocols.smb2 import Short

__all__ = ["NBSS_ERRORS", "Auth", "netbios_name", "session_message"]

_SERVER_NAMES = ("server_nb_computer_name", "server_dns_computer_name", "server_tree_name")
_CLIENT_NAMES = ("username", "hostname", "domainname")
_KERBEROS = frozenset({"kerberos", "ms-kerberos", "kerberos-u2u"})
MORE_PROCESSING = 0xC0000016
NBSS_ERRORS = {
    0x80: "not listening on called name", 0x81: "not listening for calling name", 0x82: "called name not present",
    0x83: "called name present, insufficient resources", 0x8F: "unspecified error",
}  # fmt: skip
NBSS_OPS = {0x81: "session_request", 0x82: "session_request", 0x83: "session_request", 0x84: "session_retarget"}


class Auth:
    """Per-flow authentication state: the last CHALLENGE's server names."""

    __slots__ = ("server",)

    def __init__(self) -> None:
        self.server: dict[str, Any] = {}

    def request(self, f: dict[str, Any], carry: dict[str, Any]) -> None:
        """Note what a SESSION_SETUP request's token says, into `carry` for its response."""
        if f.get("ntlm_message") == "AUTHENTICATE" or f.get("smb1_basic"):
            carry["auth"] = "ntlm"
            for key in _CLIENT_NAMES:
                if key in f:
                    carry[key] = f[key]
            for key in _SERVER_NAMES:
                if key in self.server:
                    carry[key] = self.server[key]
            if "anonymous" in f:
                carry["anonymous"] = f["anonymous"]
        elif f.get("mechanism") in _KERBEROS:
            carry["auth"] = "kerberos"

    def response(self, f: dict[str, Any], carry: dict[str, Any] | None, status: int) -> None:
        """Note a SESSION_SETUP response: the server names of a CHALLENGE; the outcome of an authentication."""
        if f.get("ntlm_message") == "CHALLENGE":
            self.server = {key: f[key] for key in _SERVER_NAMES if key in f}
        if carry is None or status == MORE_PROCESSING:
            return
        auth = carry.get("auth")
        if auth is None:
            return
        f["auth"] = auth
        for key, value in carry.items():
            if key != "auth" and key not in f:
                f[key] = value
        f["success"] = status == 0


def netbios_name(buf: bytes, pos: int, end: int) -> tuple[str, int, int]:
    """A first-level encoded NetBIOS name at buf[pos]: (name without padding, suffix byte, offset after it)."""
    if pos + 34 > end or buf[pos] != 32:
        raise Short("bad NetBIOS name")
    raw = bytearray(16)
    for i in range(16):
        hi, lo = buf[pos + 1 + 2 * i] - 65, buf[pos + 2 + 2 * i] - 65
        if not (0 <= hi < 16 and 0 <= lo < 16):
            raise Short("bad NetBIOS name encoding")
        raw[i] = (hi << 4) | lo
    pos += 33
    labels = 0
    while pos < end and buf[pos] and labels < 16:  # the scope, if any
        pos += buf[pos] + 1
        labels += 1
    return raw[:15].rstrip(b" \x00").decode("latin-1"), raw[15], pos + 1


def session_message(kind: int, buf: bytes, p: int, e: int) -> dict[str, Any]:
    """The fields of a NetBIOS session service message other than SESSION MESSAGE (0x81..0x84)."""
    f: dict[str, Any] = {}
    if kind == 0x81:
        called, csuffix, pos = netbios_name(buf, p, e)
        calling, gsuffix, _ = netbios_name(buf, pos, e)
        f["called_name"] = called
        f["called_suffix"] = csuffix
        f["calling_name"] = calling
        f["calling_suffix"] = gsuffix
    elif kind == 0x83:
        code = buf[p] if p < e else 0x8F
        f["error_code"] = code
        f["error"] = NBSS_ERRORS.get(code, f"unknown-{code}")
    elif kind == 0x84 and p + 6 <= e:
        f["retarget_addr"] = ".".join(str(b) for b in buf[p : p + 4])
        f["retarget_port"] = (buf[p + 4] << 8) | buf[p + 5]
    return f
