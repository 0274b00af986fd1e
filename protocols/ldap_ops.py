"""LDAP protocolOp bodies (RFC 4511 section 4.2-4.14, and Microsoft's Sicily bind choices): pure parsers from the
content bytes of one protocolOp to event fields, with Zeek's ldap.log / ldap_search.log names where Zeek has them.

Each parser takes (buf, s, e, f): the content of the protocolOp element is buf[s:e]; fields are added to `f`;
`BerError` is raised on malformed BER. Passwords are never read: a simple bind gives only `password_present`,
SASL credentials are looked into for GSS-SPNEGO/NTLMSSP names (protocols/ntlm_gss.py), never kept as bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from protocols.ber import BerError, ber_int, children, tlv
from protocols.ldap_filter import render_filter
from protocols.ldap_names import DEREF_ALIASES, EXTENDED_NAMES, RESULT_NAMES, SCOPES, result_text
from protocols.ntlm_gss import parse_security_blob

__all__ = ["OPS", "entry_fields", "text"]

MAX_TEXT = 1024
MAX_ITEMS = 64
_MOD_OPS = {0: "add", 1: "delete", 2: "replace", 3: "increment"}
_SICILY = {0x89: "sicily_package_discovery", 0x8A: "sicily_negotiate", 0x8B: "sicily_response"}
_GSS_MECHS = frozenset({"GSS-SPNEGO", "GSSAPI", "GSS-NTLM", "NTLM"})

Parser = Callable[[bytes, int, int, dict[str, Any]], None]


def text(buf: bytes, s: int, e: int) -> str:
    """UTF-8 text of an LDAPString/LDAPDN (cut to MAX_TEXT bytes)."""
    return buf[s : min(e, s + MAX_TEXT)].decode("utf-8", "replace")


def _expect(tag: int, want: int, what: str) -> None:
    if tag != want:
        raise BerError(f"{what}: tag 0x{tag:02x}")


def _result(buf: bytes, s: int, e: int, f: dict[str, Any]) -> int:
    """The LDAPResult components; returns the offset after them."""
    tag, cs, ce = tlv(buf, s, e)
    _expect(tag, 0x0A, "resultCode")
    code = ber_int(buf, cs, ce)
    f["result_code"] = code
    f["result"] = result_text(code)
    f["result_name"] = RESULT_NAMES.get(code, f"unknown-{code}")
    tag, ms, me = tlv(buf, ce, e)
    _expect(tag, 0x04, "matchedDN")
    if me > ms:
        f["matched_dn"] = text(buf, ms, me)
    tag, ds, de = tlv(buf, me, e)
    _expect(tag, 0x04, "diagnosticMessage")
    if de > ds:
        f["diagnostic_message"] = text(buf, ds, de)
    return de


def bind_request(buf: bytes, s: int, e: int, f: dict[str, Any]) -> None:
    """version, object (the name DN), opcode (Zeek's `bind simple`/`bind SASL`), auth type, SASL mechanism and
    what the credentials name (GSS-SPNEGO/NTLMSSP), argument as Zeek (mechanism, or REDACTED)."""
    tag, vs, ve = tlv(buf, s, e)
    _expect(tag, 0x02, "version")
    f["version"] = ber_int(buf, vs, ve)
    tag, ns, ne = tlv(buf, ve, e)
    _expect(tag, 0x04, "name")
    f["object"] = text(buf, ns, ne)
    tag, cs, ce = tlv(buf, ne, e)
    if tag == 0x80:
        f["opcode"] = "bind simple"
        f["auth_type"] = "simple"
        f["password_present"] = ce > cs
        f["anonymous"] = ce == cs
        if ce > cs:
            f["argument"] = "REDACTED"
    elif tag == 0xA3:
        f["opcode"] = "bind SASL"
        f["auth_type"] = "sasl"
        mtag, ms, me = tlv(buf, cs, ce)
        _expect(mtag, 0x04, "SASL mechanism")
        mech = text(buf, ms, me)
        f["sasl_mechanism"] = f["argument"] = mech
        if me < ce:
            ctag, ks, ke = tlv(buf, me, ce)
            f["credentials_present"] = ke > ks
            if ctag == 0x04 and ke > ks and mech.upper() in _GSS_MECHS:
                f.update(parse_security_blob(buf, ks, ke))
    elif tag in _SICILY:
        f["opcode"] = f"bind {_SICILY[tag]}"
        f["auth_type"] = _SICILY[tag]
        if ce > cs and tag != 0x89:
            f.update(parse_security_blob(buf, cs, ce))
    else:
        f["opcode"] = f["auth_type"] = f"unknown-{tag}"


def bind_response(buf: bytes, s: int, e: int, f: dict[str, Any]) -> None:
    """The result, and what serverSaslCreds name (a GSS-SPNEGO/NTLMSSP CHALLENGE's server names)."""
    p = _result(buf, s, e, f)
    while p < e:
        tag, cs, ce = tlv(buf, p, e)
        if tag == 0x87 and ce > cs:
            f.update(parse_security_blob(buf, cs, ce))
        p = ce


def search_request(buf: bytes, s: int, e: int, f: dict[str, Any]) -> None:
    """base_object, scope, deref_aliases, size_limit, time_limit, types_only, filter (RFC 4515), attributes."""
    items = []
    p = s
    for want in (0x04, 0x0A, 0x0A, 0x02, 0x02, 0x01):
        tag, cs, ce = tlv(buf, p, e)
        _expect(tag, want, "searchRequest")
        items.append((cs, ce))
        p = ce
    f["base_object"] = text(buf, *items[0])
    scope = ber_int(buf, *items[1])
    deref = ber_int(buf, *items[2])
    f["scope"] = SCOPES.get(scope, "unknown")
    f["deref_aliases"] = DEREF_ALIASES.get(deref, "unknown")
    f["size_limit"] = ber_int(buf, *items[3])
    f["time_limit"] = ber_int(buf, *items[4])
    f["types_only"] = any(buf[items[5][0] : items[5][1]])
    f["filter"], p = render_filter(buf, p, e)
    tag, cs, ce = tlv(buf, p, e)
    _expect(tag, 0x30, "attributes")
    f["attributes"] = [text(buf, a, b) for _, a, b in children(buf, cs, ce)[:MAX_ITEMS]]


def entry_fields(buf: bytes, s: int, e: int) -> tuple[str, list[str]]:
    """The DN and attribute types of a searchResEntry (or the entry and attribute names of an addRequest)."""
    tag, ns, ne = tlv(buf, s, e)
    _expect(tag, 0x04, "objectName")
    tag, cs, ce = tlv(buf, ne, e)
    _expect(tag, 0x30, "attributes")
    names: list[str] = []
    for _, a, b in children(buf, cs, ce)[:MAX_ITEMS]:
        _ttag, ts, te = tlv(buf, a, b)
        names.append(text(buf, ts, te))
    return text(buf, ns, ne), names


def modify_request(buf: bytes, s: int, e: int, f: dict[str, Any]) -> None:
    """object (the entry DN) and modifications (`replace:userAccountControl`, `add:member`, ...)."""
    tag, ns, ne = tlv(buf, s, e)
    _expect(tag, 0x04, "object")
    f["object"] = text(buf, ns, ne)
    tag, cs, ce = tlv(buf, ne, e)
    _expect(tag, 0x30, "changes")
    mods: list[str] = []
    for _, a, b in children(buf, cs, ce)[:MAX_ITEMS]:
        _otag, os_, oe = tlv(buf, a, b)
        op = ber_int(buf, os_, oe)
        _, ps, pe = tlv(buf, oe, b)
        _, ts, te = tlv(buf, ps, pe)
        mods.append(f"{_MOD_OPS.get(op, op)}:{text(buf, ts, te)}")
    f["modifications"] = mods


def add_request(buf: bytes, s: int, e: int, f: dict[str, Any]) -> None:
    """object (the new entry's DN) and the attribute names it is given."""
    f["object"], f["attributes"] = entry_fields(buf, s, e)


def del_request(buf: bytes, s: int, e: int, f: dict[str, Any]) -> None:
    """object (the DN deleted)."""
    f["object"] = text(buf, s, e)


def moddn_request(buf: bytes, s: int, e: int, f: dict[str, Any]) -> None:
    """object, new_rdn, delete_old_rdn, new_superior."""
    _, ns, ne = tlv(buf, s, e)
    f["object"] = text(buf, ns, ne)
    _, rs, re_ = tlv(buf, ne, e)
    f["new_rdn"] = f["argument"] = text(buf, rs, re_)
    _, bs, be = tlv(buf, re_, e)
    f["delete_old_rdn"] = any(buf[bs:be])
    if be < e:
        _tag, ss, se = tlv(buf, be, e)
        f["new_superior"] = text(buf, ss, se)


def compare_request(buf: bytes, s: int, e: int, f: dict[str, Any]) -> None:
    """object and the attribute compared (argument); never the asserted value."""
    _, ns, ne = tlv(buf, s, e)
    f["object"] = text(buf, ns, ne)
    _tag, as_, ae = tlv(buf, ne, e)
    _, ts, te = tlv(buf, as_, ae)
    f["argument"] = f["attribute"] = text(buf, ts, te)


def abandon_request(buf: bytes, s: int, e: int, f: dict[str, Any]) -> None:
    """abandon_id: the message id abandoned."""
    f["abandon_id"] = ber_int(buf, s, e)


def extended_request(buf: bytes, s: int, e: int, f: dict[str, Any]) -> None:
    """request_name (the OID), object as Zeek writes it (`OID (StartTLS)`)."""
    tag, ns, ne = tlv(buf, s, e)
    _expect(tag, 0x80, "requestName")
    oid = text(buf, ns, ne)
    f["request_name"] = oid
    f["object"] = f"{oid} ({EXTENDED_NAMES.get(oid, 'unknown')})"


def extended_response(buf: bytes, s: int, e: int, f: dict[str, Any]) -> None:
    """The result and response_name."""
    p = _result(buf, s, e, f)
    while p < e:
        tag, cs, ce = tlv(buf, p, e)
        if tag == 0x8A:
            f["response_name"] = text(buf, cs, ce)
        p = ce


def intermediate_response(buf: bytes, s: int, e: int, f: dict[str, Any]) -> None:
    """response_name, when present."""
    p = s
    while p < e:
        tag, cs, ce = tlv(buf, p, e)
        if tag == 0x80:
            f["response_name"] = text(buf, cs, ce)
        p = ce


def result_only(buf: bytes, s: int, e: int, f: dict[str, Any]) -> None:
    """The LDAPResult of a response."""
    _result(buf, s, e, f)


def nothing(buf: bytes, s: int, e: int, f: dict[str, Any]) -> None:
    """An operation without fields (unbindRequest)."""


OPS: dict[int, Parser] = {
    0: bind_request, 1: bind_response, 2: nothing, 3: search_request, 5: result_only, 6: modify_request,
    7: result_only, 8: add_request, 9: result_only, 10: del_request, 11: result_only, 12: moddn_request,
    13: result_only, 14: compare_request, 15: result_only, 16: abandon_request, 23: extended_request,
    24: extended_response, 25: intermediate_response,
}  # fmt: skip
