"""NTLMSSP messages (MS-NLMP) as carried by SMB SESSION_SETUP and LDAP SASL/Sicily binds: names, never secrets.

Coverage: the three messages of an NTLM authentication.
  NEGOTIATE (type 1)     negotiate_flags (names), ntlm_domain / ntlm_workstation when the client supplied them
                         (OEM), client_os_version (from the VERSION structure when present)
  CHALLENGE (type 2)     target_name, negotiate_flags, the AV pairs of the target info as Zeek's ntlm.log
                         names them: server_nb_computer_name, server_dns_computer_name, server_tree_name, plus
                         server_nb_domain_name and server_dns_domain_name; server_os_version
  AUTHENTICATE (type 3)  username, domainname, hostname (the workstation) as Zeek's ntlm.log names them,
                         lm_response_present, nt_response_present, ntlm_version ("v1" for a 24-byte NT response,
                         "v2" for a longer one), anonymous (empty user name with an empty NT response and an empty
                         or one-zero-byte LM response, or the ANONYMOUS flag), session_key_present, mic_present
                         (guessed from the field layout), client_os_version
Never read: the server challenge, the LM/NT responses, the session key and the MIC (only their presence and
lengths). Strings are UTF-16LE when the UNICODE flag is set, else OEM (read as latin-1), cut to MAX_NAME
characters. A message with fields pointing outside it gives `{"ntlm_error": ...}` with what could be read.
"""

from __future__ import annotations

from struct import Struct
from typing import Any

__all__ = ["NTLMSSP", "NTLM_FLAGS", "flag_names", "parse_ntlmssp"]

NTLMSSP = b"NTLMSSP\x00"
MAX_NAME = 256  # characters kept of a name
_FIELD = Struct("<HHI")  # length, max length, offset
_U32 = Struct("<I")
_VERSION = Struct("<BBH")
MESSAGE_TYPES = {1: "NEGOTIATE", 2: "CHALLENGE", 3: "AUTHENTICATE"}

NTLM_FLAGS: dict[int, str] = {
    0x00000001: "NEGOTIATE_UNICODE",
    0x00000002: "NEGOTIATE_OEM",
    0x00000004: "REQUEST_TARGET",
    0x00000010: "NEGOTIATE_SIGN",
    0x00000020: "NEGOTIATE_SEAL",
    0x00000040: "NEGOTIATE_DATAGRAM",
    0x00000080: "NEGOTIATE_LM_KEY",
    0x00000200: "NEGOTIATE_NTLM",
    0x00000800: "NEGOTIATE_ANONYMOUS",
    0x00001000: "NEGOTIATE_OEM_DOMAIN_SUPPLIED",
    0x00002000: "NEGOTIATE_OEM_WORKSTATION_SUPPLIED",
    0x00008000: "NEGOTIATE_ALWAYS_SIGN",
    0x00010000: "TARGET_TYPE_DOMAIN",
    0x00020000: "TARGET_TYPE_SERVER",
    0x00080000: "NEGOTIATE_EXTENDED_SESSIONSECURITY",
    0x00100000: "NEGOTIATE_IDENTIFY",
    0x00400000: "REQUEST_NON_NT_SESSION_KEY",
    0x00800000: "NEGOTIATE_TARGET_INFO",
    0x02000000: "NEGOTIATE_VERSION",
    0x20000000: "NEGOTIATE_128",
    0x40000000: "NEGOTIATE_KEY_EXCH",
    0x80000000: "NEGOTIATE_56",
}
_UNICODE, _OEM_DOMAIN, _OEM_WS, _ANON, _VERSION_FLAG = 0x1, 0x1000, 0x2000, 0x800, 0x02000000
# AV pair ids of the CHALLENGE target info -> field names (Zeek's ntlm.log names where it has them)
_AV_NAMES = {
    1: "server_nb_computer_name",
    2: "server_nb_domain_name",
    3: "server_dns_computer_name",
    4: "server_dns_domain_name",
    5: "server_tree_name",
}
MAX_AV_PAIRS = 32


class _Bad(ValueError):
    pass


def flag_names(flags: int) -> list[str]:
    """The names of the NTLMSSP negotiate flags set in `flags` (unknown bits as 0xNNNNNNNN)."""
    out = [name for bit, name in NTLM_FLAGS.items() if flags & bit]
    rest = flags & ~sum(NTLM_FLAGS)
    if rest:
        out.append(f"0x{rest:08x}")
    return out


def _field(buf: bytes, base: int, end: int, at: int) -> tuple[int, int]:
    """(start, stop) of the payload a (length, max, offset) field at base+at points to, within buf[base:end]."""
    if base + at + 8 > end:
        raise _Bad("truncated header")
    ln, _, off = _FIELD.unpack_from(buf, base + at)
    start = base + off
    if ln and (off < at + 8 or start + ln > end):
        raise _Bad(f"field at {at} points outside the message")
    return start, start + ln


def _text(buf: bytes, start: int, stop: int, unicode: bool) -> str:
    raw = buf[start : min(stop, start + (2 * MAX_NAME if unicode else MAX_NAME))]
    if unicode:
        return raw[: len(raw) & ~1].decode("utf-16-le", "replace")
    return raw.decode("latin-1")


def _version(buf: bytes, pos: int, end: int) -> str | None:
    if pos + 8 > end:
        return None
    major, minor, build = _VERSION.unpack_from(buf, pos)
    return f"{major}.{minor}.{build}"


def _negotiate(buf: bytes, base: int, end: int, f: dict[str, Any]) -> None:
    flags = _U32.unpack_from(buf, base + 12)[0] if base + 16 <= end else 0
    f["negotiate_flags"] = flag_names(flags)
    if flags & _OEM_DOMAIN and base + 24 <= end:
        s, e = _field(buf, base, end, 16)
        f["ntlm_domain"] = _text(buf, s, e, False)
    if flags & _OEM_WS and base + 32 <= end:
        s, e = _field(buf, base, end, 24)
        f["ntlm_workstation"] = _text(buf, s, e, False)
    if flags & _VERSION_FLAG:
        version = _version(buf, base + 32, end)
        if version is not None:
            f["client_os_version"] = version


def _challenge(buf: bytes, base: int, end: int, f: dict[str, Any]) -> None:
    if base + 32 > end:
        raise _Bad("truncated CHALLENGE")
    flags = _U32.unpack_from(buf, base + 20)[0]
    unicode = bool(flags & _UNICODE)
    f["negotiate_flags"] = flag_names(flags)
    s, e = _field(buf, base, end, 12)
    f["target_name"] = _text(buf, s, e, unicode)
    if base + 48 <= end:
        s, e = _field(buf, base, end, 40)
        pairs = 0
        while s + 4 <= e and pairs < MAX_AV_PAIRS:
            av_id = buf[s] | (buf[s + 1] << 8)
            av_len = buf[s + 2] | (buf[s + 3] << 8)
            if av_id == 0:
                break
            s += 4
            if s + av_len > e:
                raise _Bad("AV pair runs past the target info")
            name = _AV_NAMES.get(av_id)
            if name is not None:
                f[name] = _text(buf, s, s + av_len, True)
            s += av_len
            pairs += 1
    if flags & _VERSION_FLAG:
        version = _version(buf, base + 48, end)
        if version is not None:
            f["server_os_version"] = version


def _authenticate(buf: bytes, base: int, end: int, f: dict[str, Any]) -> None:
    if base + 64 > end:
        raise _Bad("truncated AUTHENTICATE")
    flags = _U32.unpack_from(buf, base + 60)[0]
    unicode = bool(flags & _UNICODE)
    lm_s, lm_e = _field(buf, base, end, 12)
    nt_s, nt_e = _field(buf, base, end, 20)
    dom = _field(buf, base, end, 28)
    user = _field(buf, base, end, 36)
    ws = _field(buf, base, end, 44)
    key_s, key_e = _field(buf, base, end, 52)
    f["username"] = _text(buf, user[0], user[1], unicode)
    f["domainname"] = _text(buf, dom[0], dom[1], unicode)
    f["hostname"] = _text(buf, ws[0], ws[1], unicode)
    lm_len, nt_len = lm_e - lm_s, nt_e - nt_s
    lm_empty = lm_len == 0 or (lm_len == 1 and buf[lm_s] == 0)
    f["lm_response_present"] = not lm_empty
    f["nt_response_present"] = nt_len > 0
    if nt_len:
        f["ntlm_version"] = "v1" if nt_len == 24 else "v2"
    f["anonymous"] = bool(flags & _ANON) or (not f["username"] and nt_len == 0 and lm_empty)
    f["session_key_present"] = key_e > key_s
    f["negotiate_flags"] = flag_names(flags)
    # the payload starts after the fixed part: 64 bytes, +8 with VERSION, +16 more with a MIC
    spans = ((lm_s, lm_e), (nt_s, nt_e), dom, user, ws, (key_s, key_e))
    first = min((s - base for s, e in spans if e > s), default=64)
    if flags & _VERSION_FLAG and first >= 72:
        version = _version(buf, base + 64, end)
        if version is not None:
            f["client_os_version"] = version
    f["mic_present"] = first >= 88


def parse_ntlmssp(buf: bytes, start: int, end: int) -> dict[str, Any]:
    """The fields of the NTLMSSP message at buf[start:end] (ntlm_message NEGOTIATE/CHALLENGE/AUTHENTICATE/unknown-N)."""
    f: dict[str, Any] = {}
    if end - start < 12 or buf[start : start + 8] != NTLMSSP:
        f["ntlm_error"] = "not an NTLMSSP message"
        return f
    mtype = _U32.unpack_from(buf, start + 8)[0]
    f["ntlm_message"] = MESSAGE_TYPES.get(mtype, f"unknown-{mtype}")
    try:
        if mtype == 1:
            _negotiate(buf, start, end, f)
        elif mtype == 2:
            _challenge(buf, start, end, f)
        elif mtype == 3:
            _authenticate(buf, start, end, f)
    except _Bad as exc:
        f["ntlm_error"] = str(exc)
    return f
