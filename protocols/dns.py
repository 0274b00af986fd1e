"""DNS decoder: DNS over UDP (53, and mDNS 5353 and LLMNR 5355 by port) and over TCP 53 (2-byte length prefix).

Coverage. Every message becomes one event: the header (trans_id, opcode, opcode_name, AA TC RD RA Z; rcode and
rcode_name on responses), every question (the first one as Zeek's query qclass qclass_name qtype qtype_name
columns; when there are several, all of them in `questions`), and on responses the answer section rendered as
Zeek's dns.log does (`answers`, `TTLs`: see protocols/dns_wire.py for the text of each record type), Zeek's
`rejected` (a response with no record in any section, or an error with no question), total_answers and
total_replies. Names are lower-cased (Zeek); compression is followed with loop protection. A question under
in-addr.arpa or ip6.arpa carries the address it asks about as `ptr_address` (10.20.0.5 for
5.0.20.10.in-addr.arpa; IPv6 in its compressed form). Names use Zeek's tables (protocols/dns_names.py): qtype
255 is `*` and unknown codes are `query-N`, `qclass-N`, `rcode-N`. EDNS options, the authority and additional
sections' contents, DNSSEC details and SVCB/HTTPS parameters are not decoded (their records are only framed).

Event shape. protocol "dns"; op "query" (QR 0, kind request) or "response" (QR 1, kind response, or exception
when rcode is not NOERROR); src/dst are the true sender and receiver. A response is paired with the oldest
pending query of its flow with the same trans_id (Zeek's queue per trans_id): it then carries `rtt` (seconds,
left out when 0, as Zeek does), `request_ts`, `matched` True and the query's question fields when it has none of
its own; an unpaired response has `matched` False.

Mapping to Zeek's dns.log. Zeek writes one dns.log row per query/response pair when the response arrives (ts of
the query), and at the end of the connection one row per query never answered and per response never paired. Here:
- each response event is the row Zeek writes for its pair (ts is the response's; `request_ts` the query's);
- an unpaired response event is Zeek's row for a reply without a query;
- each query still unanswered when the flow ends gives, at close, one event op "query" kind "notice" with the
  query's fields, `request_ts` and `matched` False: Zeek's close-time row (at most 64 per flow, then one
  dns_unmatched_queries weird with the count); multicast flows (mDNS, LLMNR queries) report none, their answers
  travel on other flows;
- query events (kind request) are ours: Zeek has no row for a query until its answer comes.

Weirds (kind "weird", op = name): dns_truncated_message (shorter than a header), dns_truncated_name,
dns_name_loop (a compression pointer that does not point backwards, or too many jumps), dns_invalid_label_type,
dns_name_too_long, dns_truncated_question, dns_truncated_rr, dns_invalid_rdata (e.g. an A record that is not 4
bytes), dns_extra_data (bytes after the last record), dns_protocol_violation (the first message of a flow has no
parseable question section, or a TCP length prefix below 12: `failed` is set), dns_too_many_pending (more than
1024 queries waiting: the oldest is reported and dropped), dns_truncated_tcp_message (a partial TCP message at
close), dns_lost_sync (a TCP gap: the direction is not decoded any more), dns_unmatched_queries.
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar

from protocols.base import EXCEPTION, NOTICE, REQUEST, RESPONSE, FlowId, ProtocolEvent, weird
from protocols.dns_names import OP_CLASSES
from protocols.dns_wire import HEADER, parse_message

__all__ = ["DnsDecoder", "DnsTcpDecoder"]

PROTO = "dns"
MAX_PENDING = 1024
MAX_UNMATCHED_REPORTS = 64
_QUESTION_KEYS = ("query", "qclass", "qclass_name", "qtype", "qtype_name", "ptr_address", "questions")
_MULTICAST = ("224.0.0.251", "224.0.0.252", "ff02::fb", "ff02::1:3")


_NETBIOS_LETTERS = frozenset("abcdefghijklmnop")


def _netbios_name(query: object) -> bool:
    """True for a NetBIOS first-level-encoded name (32 letters A-P): NBNS on UDP 137 looks like DNS but is not."""
    if not isinstance(query, str):
        return False
    label = query.split(".", 1)[0]
    return len(label) == 32 and _NETBIOS_LETTERS.issuperset(label)


class DnsDecoder:
    """Decodes the DNS messages of one UDP flow (one datagram per feed), pairing responses with queries."""

    name: ClassVar[str] = PROTO
    transport: ClassVar[str] = "udp"
    ports: ClassVar[frozenset[int]] = frozenset({53, 5353, 5355})
    op_classes: ClassVar[dict[str, str]] = OP_CLASSES

    def __init__(self, flow: FlowId) -> None:
        self.flow = flow
        self.failed = False
        self._ends = {True: (flow.orig_h, flow.resp_h), False: (flow.resp_h, flow.orig_h)}
        self._pending: dict[int, deque[tuple[float, bool, dict[str, Any]]]] = {}
        self._npending = 0
        self._good = False
        self._lost: list[tuple[float, bool, dict[str, Any]]] = []
        self._lost_more = 0
        self._quiet = flow.resp_h in _MULTICAST

    @classmethod
    def probe(cls, payload: bytes, is_orig: bool) -> bool:
        """True for a standard query with one question that parses and fills the datagram exactly (or + OPT)."""
        if len(payload) < 17 or payload[2] & 0xF8 or payload[3] & 0x4F:
            return False
        _tid, _flags, qd, an, ns, ar = HEADER.unpack_from(payload)
        if qd != 1 or an or ns or ar > 1:
            return False
        f, problems, ok = parse_message(payload)
        return ok and not problems and f is not None and not _netbios_name(f.get("query"))

    def feed(self, data: bytes, is_orig: bool, ts: float) -> list[ProtocolEvent]:
        """Decode one datagram (one DNS message)."""
        if self.failed or not data:
            return []
        out: list[ProtocolEvent] = []
        self._message(bytes(data), is_orig, ts, out)
        return out

    def gap(self, is_orig: bool, ts: float, length: int) -> list[ProtocolEvent]:
        """Nothing to do for datagrams."""
        return []

    def close(self, ts: float) -> list[ProtocolEvent]:
        """One notice per query never answered (Zeek's close-time dns.log rows), capped; then forget them."""
        out: list[ProtocolEvent] = []
        if self.failed or self._quiet:
            self._pending.clear()
            return out
        lost = self._lost + [q for queue in self._pending.values() for q in queue]
        more = self._lost_more + max(0, len(lost) - MAX_UNMATCHED_REPORTS)
        for rts, is_orig, f in lost[:MAX_UNMATCHED_REPORTS]:
            src, dst = self._ends[is_orig]
            nf = dict(f)
            nf["request_ts"] = rts
            nf["matched"] = False
            out.append(ProtocolEvent(ts, self.flow, PROTO, "query", NOTICE, is_orig, src, dst, nf))
        if more:
            out.append(weird(self.flow, PROTO, "dns_unmatched_queries", ts, True,
                             f"{more} more queries never answered", count=more))
        self._pending.clear()
        self._lost.clear()
        self._lost_more = 0
        return out

    # ---- internals -------------------------------------------------------------------------------------

    def _message(self, msg: bytes, is_orig: bool, ts: float, out: list[ProtocolEvent]) -> None:
        """Decode one whole message and append its event (and weirds) to `out`."""
        f, problems, ok = parse_message(msg)
        if f is None or (not ok and not self._good):
            why = problems[0][1] if problems else "not a DNS message"
            name = problems[0][0] if problems else ""
            self.failed = True
            self._pending.clear()
            out.append(weird(self.flow, PROTO, "dns_protocol_violation", ts, is_orig, f"{name}: {why}"))
            return
        self._good = True
        src, dst = self._ends[is_orig]
        if "rcode" not in f:
            self._remember(ts, is_orig, f, out)
            out.append(ProtocolEvent(ts, self.flow, PROTO, "query", REQUEST, is_orig, src, dst, f))
        else:
            queue = self._pending.get(f["trans_id"])
            if queue:
                rts, _, qf = queue.popleft()
                self._npending -= 1
                if not queue:
                    del self._pending[f["trans_id"]]
                if ts > rts:
                    f["rtt"] = ts - rts
                f["request_ts"] = rts
                f["matched"] = True
                if "query" not in qf or "query" not in f:
                    for key in _QUESTION_KEYS:
                        if key not in f and key in qf:
                            f[key] = qf[key]
            else:
                f["matched"] = False
            kind = RESPONSE if f["rcode"] == 0 else EXCEPTION
            out.append(ProtocolEvent(ts, self.flow, PROTO, "response", kind, is_orig, src, dst, f))
        tid = f["trans_id"]
        for wname, addl in problems:
            out.append(weird(self.flow, PROTO, wname, ts, is_orig, addl, trans_id=tid))

    def _remember(self, ts: float, is_orig: bool, f: dict[str, Any], out: list[ProtocolEvent]) -> None:
        """Queue a query for pairing; beyond MAX_PENDING the oldest is given up."""
        if self._npending >= MAX_PENDING:
            first = next(iter(self._pending))
            queue = self._pending[first]
            old = queue.popleft()
            self._npending -= 1
            if not queue:
                del self._pending[first]
            if len(self._lost) < MAX_UNMATCHED_REPORTS:
                self._lost.append(old)
            else:
                self._lost_more += 1
            out.append(weird(self.flow, PROTO, "dns_too_many_pending", ts, is_orig,
                             f"more than {MAX_PENDING} queries waiting; trans_id {old[2]['trans_id']} given up"))
        self._pending.setdefault(f["trans_id"], deque()).append((ts, is_orig, f))
        self._npending += 1


class DnsTcpDecoder(DnsDecoder):
    """Decodes DNS over TCP: messages behind a 2-byte length prefix, several per segment or split across them."""

    transport: ClassVar[str] = "tcp"
    ports: ClassVar[frozenset[int]] = frozenset({53})

    def __init__(self, flow: FlowId) -> None:
        super().__init__(flow)
        self._buf = [b"", b""]
        self._lost_sync = [False, False]

    @classmethod
    def probe(cls, payload: bytes, is_orig: bool) -> bool:
        """True when the payload is one length-prefixed standard query (see DnsDecoder.probe)."""
        if len(payload) < 19 or (payload[0] << 8 | payload[1]) != len(payload) - 2:
            return False
        return DnsDecoder.probe(payload[2:], is_orig)

    def feed(self, data: bytes, is_orig: bool, ts: float) -> list[ProtocolEvent]:
        """Decode the next in-order bytes of one direction: every complete length-prefixed message."""
        d = 0 if is_orig else 1
        if self.failed or not data or self._lost_sync[d]:
            return []
        buf = self._buf[d] + data if self._buf[d] else bytes(data)
        n = len(buf)
        pos = 0
        out: list[ProtocolEvent] = []
        while n - pos >= 2:
            ln = (buf[pos] << 8) | buf[pos + 1]
            if ln < 12:
                self.failed = True
                self._buf = [b"", b""]
                out.append(weird(self.flow, PROTO, "dns_protocol_violation", ts, is_orig,
                                 f"TCP length prefix {ln} is shorter than a DNS header"))
                return out
            end = pos + 2 + ln
            if end > n:
                break
            self._message(buf[pos + 2 : end], is_orig, ts, out)
            if self.failed:
                return out
            pos = end
        self._buf[d] = buf[pos:] if pos < n else b""
        return out

    def gap(self, is_orig: bool, ts: float, length: int) -> list[ProtocolEvent]:
        """A hole in one direction: the message framing is lost there; that direction is not decoded any more."""
        d = 0 if is_orig else 1
        self._buf[d] = b""
        if self._lost_sync[d] or self.failed:
            return []
        self._lost_sync[d] = True
        return [weird(self.flow, PROTO, "dns_lost_sync", ts, is_orig, f"{length} bytes missing")]

    def close(self, ts: float) -> list[ProtocolEvent]:
        """Report partial messages, then the queries never answered."""
        out: list[ProtocolEvent] = []
        if not self.failed:
            for d, rest in enumerate(self._buf):
                if rest:
                    out.append(weird(self.flow, PROTO, "dns_truncated_tcp_message", ts, d == 0,
                                     f"{len(rest)} bytes of an incomplete message at close"))
        self._buf = [b"", b""]
        return out + super().close(ts)
