"""GSS-API / SPNEGO security blobs (RFC 4178, RFC 2743) as SMB SESSION_SETUP and LDAP SASL binds carry them.

Coverage: the InitialContextToken wrapper ([APPLICATION 0] with the SPNEGO OID), NegTokenInit / NegTokenInit2
(mechTypes, mechToken), NegTokenResp (negState, supportedMech, responseToken), a bare NTLMSSP message, and a bare
Kerberos token (the krb5 OID or a raw AP-REQ/AP-REP/KRB-ERROR application tag). Fields given:
  mechanism    the mechanism of the token carried: ntlmssp, kerberos, ms-kerberos, kerberos-u2u, negoex, or the
               OID text; when no token is carried, supportedMech, else the first of mechTypes
  mech_types   the mechanisms offered (NegTokenInit), as above
  neg_state    accept-completed, accept-incomplete, reject, request-mic (NegTokenResp)
  spnego_error what could not be read (bad BER, depth), with the fields read before it
and the NTLMSSP fields of protocols/ntlm.py when the token is NTLMSSP. Kerberos tokens are only named, never
decoded (no principal names, no tickets).
"""

from __future__ import annotations

from typing import Any

from protocols.ber import BerError, ber_int, oid_text, tlv
from protocols.ntlm import NTLMSSP, parse_ntlmssp

__all__ = ["MECHANISMS", "parse_security_blob"]

MECHANISMS: dict[bytes, str] = {
    bytes.fromhex("2b0601050502"): "spnego",
    bytes.fromhex("2a864886f712010202"): "kerberos",
    bytes.fromhex("2a864882f712010202"): "ms-kerberos",
    bytes.fromhex("2a864886f71201020203"): "kerberos-u2u",
    bytes.fromhex("2b06010401823702020a"): "ntlmssp",
    bytes.fromhex("2b06010401823702021e"): "negoex",
}
_SPNEGO = bytes.fromhex("2b0601050502")
NEG_STATES = {0: "accept-completed", 1: "accept-incomplete", 2: "reject", 3: "request-mic"}
_KRB_APP_TAGS = {0x6E: "kerberos", 0x6F: "kerberos", 0x7E: "kerberos"}  # AP-REQ, AP-REP, KRB-ERROR
MAX_MECH_TYPES = 16


def _mech(raw: bytes) -> str:
    name = MECHANISMS.get(raw)
    if name is not None:
        return name
    try:
        return oid_text(raw)
    except BerError:
        return "unknown"


def _token(buf: bytes, start: int, end: int, f: dict[str, Any]) -> None:
    """A mechanism token: NTLMSSP (parsed) or a Kerberos/other GSS token (named)."""
    if buf[start : start + 8] == NTLMSSP:
        f["mechanism"] = "ntlmssp"
        f.update(parse_ntlmssp(buf, start, end))
        return
    if start >= end:
        return
    first = buf[start]
    if first == 0x60:
        _, s, e = tlv(buf, start, end)
        tag, os_, oe = tlv(buf, s, e)
        if tag == 0x06:
            f["mechanism"] = _mech(bytes(buf[os_:oe]))
            return
    name = _KRB_APP_TAGS.get(first)
    if name is not None:
        f["mechanism"] = name


def _neg_init(buf: bytes, start: int, end: int, f: dict[str, Any]) -> None:
    tag, s, e = tlv(buf, start, end)  # SEQUENCE
    if tag != 0x30:
        raise BerError("NegTokenInit is not a SEQUENCE")
    pos = s
    while pos < e:
        tag, cs, ce = tlv(buf, pos, e)
        if tag == 0xA0:  # mechTypes
            _, ms, me = tlv(buf, cs, ce)
            mechs: list[str] = []
            while ms < me and len(mechs) < MAX_MECH_TYPES:
                otag, os_, oe = tlv(buf, ms, me)
                if otag == 0x06:
                    mechs.append(_mech(bytes(buf[os_:oe])))
                ms = oe
            f["mech_types"] = mechs
        elif tag == 0xA2:  # mechToken
            ttag, ts, te = tlv(buf, cs, ce)
            if ttag == 0x04:
                _token(buf, ts, te, f)
        pos = ce
    if "mechanism" not in f and f.get("mech_types"):
        f["mechanism"] = f["mech_types"][0]


def _neg_resp(buf: bytes, start: int, end: int, f: dict[str, Any]) -> None:
    tag, s, e = tlv(buf, start, end)
    if tag != 0x30:
        raise BerError("NegTokenResp is not a SEQUENCE")
    pos = s
    supported = None
    while pos < e:
        tag, cs, ce = tlv(buf, pos, e)
        if tag == 0xA0:
            _, vs, ve = tlv(buf, cs, ce)
            state = ber_int(buf, vs, ve)
            f["neg_state"] = NEG_STATES.get(state, f"unknown-{state}")
        elif tag == 0xA1:
            _, os_, oe = tlv(buf, cs, ce)
            supported = _mech(bytes(buf[os_:oe]))
        elif tag == 0xA2:
            ttag, ts, te = tlv(buf, cs, ce)
            if ttag == 0x04:
                _token(buf, ts, te, f)
        pos = ce
    if supported is not None and "mechanism" not in f:
        f["mechanism"] = supported


def parse_security_blob(buf: bytes, start: int, end: int) -> dict[str, Any]:
    """The fields of a GSS-API/SPNEGO (or bare NTLMSSP/Kerberos) security blob at buf[start:end]; {} when empty."""
    f: dict[str, Any] = {}
    if start >= end:
        return f
    try:
        first = buf[start]
        if first == 0x60:
            _, s, e = tlv(buf, start, end)
            tag, os_, oe = tlv(buf, s, e)
            if tag != 0x06:
                raise BerError("GSS token without a mechanism OID")
            if buf[os_:oe] != _SPNEGO:
                f["mechanism"] = _mech(bytes(buf[os_:oe]))
                return f
            tag, cs, ce = tlv(buf, oe, e)
            if tag == 0xA0:
                _neg_init(buf, cs, ce, f)
            elif tag == 0xA1:
                _neg_resp(buf, cs, ce, f)
            else:
                raise BerError(f"SPNEGO choice tag 0x{tag:02x}")
        elif first == 0xA0:
            _, cs, ce = tlv(buf, start, end)
            _neg_init(buf, cs, ce, f)
        elif first == 0xA1:
            _, cs, ce = tlv(buf, start, end)
            _neg_resp(buf, cs, ce, f)
        else:
            _token(buf, start, end, f)
            if "mechanism" not in f:
                f["spnego_error"] = f"unrecognised security blob (first byte 0x{first:02x})"
    except BerError as exc:
        f["spnego_error"] = str(exc)
    return f
