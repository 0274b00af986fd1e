"""LDAP decoder (RFC 4511) for plain LDAP over TCP 389 and 3268: every LDAPMessage, BER decoded by hand.

Coverage. Framing: one LDAPMessage (a definite-length SEQUENCE) after another, several per segment or split
across segments; a message over DECODE_CAP bytes is not buffered: a searchResEntry is still counted (its DN read
when it lies in the first bytes), anything else gives ldap_oversized_message; both are skipped.
Events: one per protocolOp except searchResEntry and searchResRef, which are counted into their search (Zeek's
result_count; entry_dns: the DNs of the first MAX_DNS entries; entry_attributes: the attribute types returned,
up to MAX_ATTRS; reference_count). op (protocolOp): bind (bindRequest, bindResponse), unbind, search
(searchRequest), search_result_done, modify, add, delete, modify_dn, compare, abandon, extended, intermediate;
protocol_op gives the RFC name (`bindRequest`, `searchResDone`, ...); an unknown [APPLICATION n] is
ldap_unknown_op. kind: request, response, exception (a result code other than success, compareFalse, compareTrue,
referral, saslBindInProgress).
Fields (Zeek 6's ldap.log and ldap_search.log names): message_id; opcode (`bind simple`, `bind SASL`, search,
modify, add, delete, compare, abandon, extended, unbind); version, object, argument (a SASL mechanism, or
REDACTED for a simple bind with a password: never the password); result (Zeek's text, `invalid credentials`),
result_code, result_name (RFC 4511: invalidCredentials), matched_dn, diagnostic_message; for searches
base_object, scope (base single tree), deref_aliases (never searching finding always), size_limit, time_limit,
types_only, filter (RFC 4515 text), attributes; and auth_type, password_present, anonymous, sasl_mechanism,
credentials_present, the GSS-SPNEGO/NTLMSSP fields of SASL GSS-SPNEGO and Sicily binds (username, domainname,
hostname, server names: protocols/ntlm.py) with the outcome (auth ntlm, success) on the bind response;
modifications (`replace:userAccountControl`), new_rdn, delete_old_rdn, new_superior, attribute (compare),
abandon_id, request_name / response_name (extended OIDs), controls (control OIDs). Responses carry their
request's fields, matched, request_ts and rtt.
Opaque traffic: after a successful SASL bind with a GSS mechanism (GSSAPI, GSS-SPNEGO: signing/sealing wraps
later messages) or a successful StartTLS, bytes that are not an LDAPMessage switch the flow to opaque: one
notice (op sasl_wrapped or tls) and, at close, one with the byte counts; nothing else is decoded.
Not decoded: LDAP over UDP (CLDAP), LDAPS, SASL security layers' contents, attribute values of entries,
control values, indefinite lengths. Requests left unanswered at close give a notice each (at most MAX_NOTICES).
Weirds: ldap_invalid_message (the bytes are no LDAPMessage and the flow is not opaque: decoding stops),
ldap_malformed_message (bad BER inside a message: the message is skipped), ldap_unknown_op,
ldap_oversized_message, ldap_truncated_message (partial at close); each at most MAX_WEIRDS times per flow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from protocols.base import EXCEPTION, NOTICE, REQUEST, RESPONSE, FlowId, ProtocolEvent, weird
from protocols.ber import BerError, ber_int, children, tlv
from protocols.ldap_logs import log_rows
from protocols.ldap_names import OK_RESULTS, OP_CLASSES, PROTOCOL_OPS, STARTTLS
from protocols.ldap_ops import OPS, entry_fields, text
from protocols.smb_session import Auth

__all__ = ["LdapDecoder"]

PROTO = "ldap"
DECODE_CAP = 1 << 20
MAX_DNS = 32
MAX_ATTRS = 64
MAX_PENDING = 1024
MAX_NOTICES = 16
MAX_WEIRDS = 8
_GSS = frozenset({"GSSAPI", "GSS-SPNEGO"})
_ZEEK_OPCODE = {"modify_dn": "modify", "search_result_done": "search"}
_PAIR = {"search_result_done": "search"}
_CARRY = ("opcode", "version", "object", "argument", "base_object", "scope", "deref_aliases", "size_limit",
          "time_limit", "types_only", "filter", "attributes", "auth_type", "sasl_mechanism")  # fmt: skip
_MORE = 0xC0000016  # what Auth.response takes for "authentication continues"


def _header(buf: bytes, pos: int, n: int) -> tuple[int, int]:
    """(header length, content length) of the SEQUENCE at buf[pos]; (0, 0) when more bytes are needed, (-1, 0)
    when it is no definite-length SEQUENCE."""
    if buf[pos] != 0x30:
        return -1, 0
    ln = buf[pos + 1]
    if ln < 0x80:
        return 2, ln
    count = ln & 0x7F
    if count == 0 or count > 4:
        return -1, 0
    if pos + 2 + count > n:
        return 0, 0
    return 2 + count, int.from_bytes(buf[pos + 2 : pos + 2 + count], "big")


class LdapDecoder:
    """Decodes one LDAP connection: messages paired by message id, searches with their result counts."""

    name: ClassVar[str] = PROTO
    transport: ClassVar[str] = "tcp"
    ports: ClassVar[frozenset[int]] = frozenset({389, 3268})
    op_classes: ClassVar[dict[str, str]] = OP_CLASSES
    log_rows: ClassVar[Callable[[dict[str, Any]], list[tuple[str, dict[str, Any]]]]] = staticmethod(log_rows)

    def __init__(self, flow: FlowId) -> None:
        self.flow = flow
        self.failed = False
        self._ends = {True: (flow.orig_h, flow.resp_h), False: (flow.resp_h, flow.orig_h)}
        self._buf = [b"", b""]
        self._skip = [0, 0]
        self._pending: dict[int, tuple[float, str, dict[str, Any]]] = {}
        self._auth = Auth()
        self._armed: str | None = None  # "sasl_wrapped" or "tls" once a security layer may start
        self._armed_mech = ""
        self._opaque: str | None = None
        self._opaque_bytes = [0, 0]
        self._wcount: dict[str, int] = {}
        self.messages = 0

    @classmethod
    def probe(cls, payload: bytes, is_orig: bool) -> bool:
        """True when the payload starts with an LDAPMessage header: SEQUENCE, INTEGER message id, a protocolOp."""
        if len(payload) < 7:
            return False
        hl, ln = _header(payload, 0, len(payload))
        if hl <= 0 or ln < 5:
            return False
        p = hl
        if payload[p] != 0x02 or not 1 <= payload[p + 1] <= 4 or p + 2 + payload[p + 1] >= len(payload):
            return False
        op = payload[p + 2 + payload[p + 1]]
        return op & 0xC0 == 0x40 and (op & 0x1F) in PROTOCOL_OPS

    def feed(self, data: bytes, is_orig: bool, ts: float) -> list[ProtocolEvent]:
        """Decode the next in-order bytes of one direction into one event per LDAPMessage (entries counted)."""
        if self.failed or not data:
            return []
        d = 0 if is_orig else 1
        if self._opaque is not None:
            self._opaque_bytes[d] += len(data)
            return []
        out: list[ProtocolEvent] = []
        skip = self._skip[d]
        if skip:
            if skip >= len(data):
                self._skip[d] = skip - len(data)
                return out
            data = data[skip:]
            self._skip[d] = 0
        buf = self._buf[d] + data if self._buf[d] else data
        n = len(buf)
        pos = 0
        while n - pos >= 2:
            hl, ln = _header(buf, pos, n)
            if hl < 0:
                self._not_ldap(buf, pos, n, d, is_orig, ts, out)
                return out
            if hl == 0:
                break
            end = pos + hl + ln
            if end > n:
                if hl + ln > DECODE_CAP and n - pos >= 64:
                    self._oversized(buf, pos + hl, n, is_orig, ts, out)
                    self._skip[d] = end - n
                    pos = n
                break
            self._message(buf, pos + hl, end, is_orig, ts, out)
            pos = end
        self._buf[d] = buf[pos:] if pos < n else b""
        return out

    def _not_ldap(self, buf: bytes, pos: int, n: int, d: int, is_orig: bool, ts: float,
                  out: list[ProtocolEvent]) -> None:
        """Bytes that are no LDAPMessage: a security layer after an armed bind/StartTLS, else a violation."""
        src, dst = self._ends[is_orig]
        if self._armed is not None:
            self._opaque = self._armed
            self._opaque_bytes[d] += n - pos
            self._buf = [b"", b""]
            f = {"mechanism": self._armed_mech, "first_seen": True}
            out.append(ProtocolEvent(ts, self.flow, PROTO, self._opaque, NOTICE, is_orig, src, dst, f))
            return
        self.failed = True
        out.append(weird(self.flow, PROTO, "ldap_invalid_message", ts, is_orig,
                         f"byte 0x{buf[pos]:02x} at a message start: not LDAP, decoding stopped"))

    def _oversized(self, buf: bytes, s: int, n: int, is_orig: bool, ts: float, out: list[ProtocolEvent]) -> None:
        """A message too big to buffer: count it when it is a search entry, else report it."""
        try:
            _tag, ms, me = tlv(buf, s, n)
            mid = ber_int(buf, ms, me)
            optag = buf[me]
        except (BerError, IndexError):
            mid, optag = -1, 0
        entry = self._pending.get(mid)
        if optag == 0x64 and entry is not None:
            carry = entry[2]
            carry["result_count"] = carry.get("result_count", 0) + 1
            return
        self._weird(out, "ldap_oversized_message", ts, is_orig, f"message {mid} over {DECODE_CAP} bytes, skipped")

    def gap(self, is_orig: bool, ts: float, length: int) -> list[ProtocolEvent]:
        """A hole: LDAP cannot resynchronise reliably, so the flow's decoding stops (one weird)."""
        if self.failed or self._opaque is not None:
            return []
        self.failed = True
        return [weird(self.flow, PROTO, "ldap_gap", ts, is_orig, f"{length} bytes missing: decoding stopped")]

    def close(self, ts: float) -> list[ProtocolEvent]:
        """Report partial messages, unanswered requests (searches with their counts), opaque byte counts."""
        if self.failed:
            return []
        out: list[ProtocolEvent] = []
        for d in (0, 1):
            if self._buf[d]:
                self._weird(out, "ldap_truncated_message", ts, d == 0, f"{len(self._buf[d])} bytes at close")
        src, dst = self._ends[True]
        for i, (mid, (req_ts, op, carry)) in enumerate(self._pending.items()):
            if i >= MAX_NOTICES:
                break
            f = {"message_id": mid, **carry, "matched": False, "request_ts": req_ts}
            out.append(ProtocolEvent(ts, self.flow, PROTO, op, NOTICE, True, src, dst, f))
        if self._opaque is not None:
            f = {"mechanism": self._armed_mech, "orig_bytes": self._opaque_bytes[0],
                 "resp_bytes": self._opaque_bytes[1]}  # fmt: skip
            out.append(ProtocolEvent(ts, self.flow, PROTO, self._opaque, NOTICE, True, src, dst, f))
        for name, count in self._wcount.items():
            if count > MAX_WEIRDS:
                more = count - MAX_WEIRDS
                out.append(weird(self.flow, PROTO, name, ts, True, f"{more} more not reported", count=more))
        self._pending.clear()
        return out

    def _weird(self, out: list[ProtocolEvent], name: str, ts: float, is_orig: bool, addl: str, **kw: Any) -> None:
        count = self._wcount[name] = self._wcount.get(name, 0) + 1
        if count <= MAX_WEIRDS:
            out.append(weird(self.flow, PROTO, name, ts, is_orig, addl, **kw))

    def _message(self, buf: bytes, s: int, e: int, is_orig: bool, ts: float, out: list[ProtocolEvent]) -> None:
        """One LDAPMessage's content buf[s:e]."""
        mid = -1
        try:
            tag, ms, me = tlv(buf, s, e)
            if tag != 0x02:
                raise BerError(f"message id tag 0x{tag:02x}")
            mid = ber_int(buf, ms, me)
            optag, os_, oe = tlv(buf, me, e)
            num = optag & 0x1F
            info = PROTOCOL_OPS.get(num) if optag & 0xC0 == 0x40 else None
            if info is None:
                self._weird(out, "ldap_unknown_op", ts, is_orig, f"protocolOp tag 0x{optag:02x}", message_id=mid)
                return
            if num == 4 or num == 19:
                self._entry(num, buf, os_, oe, mid)
                return
            protocol_op, op, is_request = info
            f: dict[str, Any] = {"message_id": mid, "protocol_op": protocol_op}
            OPS[num](buf, os_, oe, f)
            if oe < e:
                ctag, cs, ce = tlv(buf, oe, e)
                if ctag == 0xA0:
                    f["controls"] = [self._control(buf, a, b) for _, a, b in children(buf, cs, ce)[:16]]
        except BerError as exc:
            self._weird(out, "ldap_malformed_message", ts, is_orig, str(exc), message_id=mid)
            return
        self.messages += 1
        if "opcode" not in f and is_request:
            f["opcode"] = _ZEEK_OPCODE.get(op, op)
        src, dst = self._ends[is_orig]
        if is_request:
            self._request(op, mid, f, ts)
            out.append(ProtocolEvent(ts, self.flow, PROTO, op, REQUEST, is_orig, src, dst, f))
            return
        code = f.get("result_code", 0)
        entry = self._pending.get(mid)
        carry: dict[str, Any] | None = None
        if entry is not None and entry[1] == _PAIR.get(op, op):
            if op != "intermediate":
                del self._pending[mid]
            req_ts, _, carry = entry
            f["matched"] = True
            f["request_ts"] = req_ts
            f["rtt"] = round(ts - req_ts, 6)
            for key, value in carry.items():
                if key not in f:
                    f[key] = value
        else:
            f["matched"] = False
        if op == "bind":
            self._auth.response(f, carry, 0 if code == 0 else _MORE if code == 14 else 1)
            mech = f.get("sasl_mechanism", "")
            if code == 0 and isinstance(mech, str) and mech.upper() in _GSS:
                self._armed, self._armed_mech = "sasl_wrapped", mech
        elif op == "extended" and code == 0 and f.get("request_name") == STARTTLS:
            self._armed, self._armed_mech = "tls", "StartTLS"
        kind = RESPONSE if code in OK_RESULTS else EXCEPTION
        out.append(ProtocolEvent(ts, self.flow, PROTO, op, kind, is_orig, src, dst, f))

    @staticmethod
    def _control(buf: bytes, s: int, e: int) -> str:
        _tag, cs, ce = tlv(buf, s, e)
        return text(buf, cs, ce)

    def _request(self, op: str, mid: int, f: dict[str, Any], ts: float) -> None:
        """Keep what a response (or the search's entries) needs from its request."""
        if op == "unbind" or op == "abandon":
            return
        carry = {key: f[key] for key in _CARRY if key in f}
        if op == "search":
            carry["result_count"] = 0
        elif op == "bind":
            self._auth.request(f, carry)
        elif op == "extended" and "request_name" in f:
            carry["request_name"] = f["request_name"]
        pending = self._pending
        if mid not in pending and len(pending) >= MAX_PENDING:
            pending.pop(next(iter(pending)))
        pending[mid] = (ts, op, carry)

    def _entry(self, num: int, buf: bytes, s: int, e: int, mid: int) -> None:
        """A searchResEntry or searchResRef: counted into its pending search."""
        entry = self._pending.get(mid)
        if entry is None or entry[1] != "search":
            return
        carry = entry[2]
        if num == 19:
            carry["reference_count"] = carry.get("reference_count", 0) + 1
            return
        carry["result_count"] += 1
        dns = carry.setdefault("entry_dns", [])
        if len(dns) < MAX_DNS:
            dn, names = entry_fields(buf, s, e)
            dns.append(dn)
            seen = carry.setdefault("entry_attributes", [])
            for name in names:
                if name not in seen and len(seen) < MAX_ATTRS:
                    seen.append(name)
