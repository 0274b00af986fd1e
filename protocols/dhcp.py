"""DHCP decoder (BOOTP with DHCP options, RFC 2131/2132) on UDP 67/68: one event per message.

Coverage. The BOOTP header is decoded whole: op, htype/hlen/chaddr (`mac` for Ethernet addresses, else
`chaddr` in hex), hops, trans_id (xid), secs, broadcast flag, ciaddr (`client_addr`), yiaddr, siaddr, giaddr,
sname and file. Options (decoded until End, Pad skipped): 53 message type (`msg_type`, Zeek's `msg_types` name
list), 12 `host_name`, 15 `domain`, 81 client FQDN (`client_fqdn`, `fqdn_flags`; wire-format or ASCII name),
50 `requested_addr`, 51 `lease_time`, 58 `renewal_time`, 59 `rebinding_time` (seconds, float as Zeek's
intervals), 54 `server_id`, 61 client identifier (`client_id`: a MAC text for type 1 with 6 bytes, else hex),
60 vendor class (`vendor_class`, and Zeek's `client_software` from a client / `server_software` from a server),
55 parameter request list (`param_list`, codes in order), 1 `subnet_mask`, 3 `routers`, 6 `dns_servers`,
42 `ntp_servers`, 56 message (Zeek's `client_message` / `server_message`), 57 `max_msg_size`, 82 relay agent
(`circuit_id`, `agent_remote_id` as hex; `subscriber_id` (sub-option 6) as text), and every option code seen in
`options` (in order). Option overload (52: options inside sname/file), other options' contents, and pairing of a
transaction across flows (Zeek's uids list) are not decoded: DHCP replies often travel on another 5-tuple
(broadcast), so each message stands alone, with its trans_id to join them.

Event shape. protocol "dhcp"; op = the DHCP message type in lower case (discover offer request decline ack nak
release inform forcerenew leasequery ... , `unknown-N`), or bootp_request / bootp_reply for plain BOOTP (no
option 53). kind: request for BOOTREQUEST (op 1), response for BOOTREPLY, exception for a NAK. `assigned_addr`
is yiaddr on OFFER and ACK (Zeek's). src/dst are the true sender and receiver (often 0.0.0.0 and the broadcast).

Weirds (kind "weird", op = name): dhcp_truncated_message (shorter than the 236-byte BOOTP header),
dhcp_bad_magic_cookie (a BOOTP message without the DHCP cookie: the header is still reported, no options),
dhcp_truncated_option (an option longer than the message; or no End option), dhcp_invalid_option_length (an
option whose length its type does not allow: its value is left out), dhcp_protocol_violation (BOOTP op not 1
or 2 on the first message: `failed` is set).
"""

from __future__ import annotations

import socket
from struct import Struct
from typing import Any, ClassVar

from protocols.base import EXCEPTION, REQUEST, RESPONSE, FlowId, ProtocolEvent, weird

__all__ = ["MESSAGE_TYPES", "DhcpDecoder"]

PROTO = "dhcp"
BOOTP = Struct(">BBBBIHH4s4s4s4s16s64s128s")
COOKIE = b"\x63\x82\x53\x63"
_U32 = Struct(">I")
MESSAGE_TYPES = {
    1: "DISCOVER", 2: "OFFER", 3: "REQUEST", 4: "DECLINE", 5: "ACK", 6: "NAK", 7: "RELEASE", 8: "INFORM",
    9: "FORCERENEW", 10: "LEASEQUERY", 11: "LEASEUNASSIGNED", 12: "LEASEUNKNOWN", 13: "LEASEACTIVE",
    14: "BULKLEASEQUERY", 15: "LEASEQUERYDONE", 16: "ACTIVELEASEQUERY", 17: "LEASEQUERYSTATUS", 18: "TLS",
}  # fmt: skip
OP_CLASSES: dict[str, str] = {
    "discover": "discovery", "offer": "discovery", "inform": "discovery", "request": "other", "ack": "other",
    "nak": "other", "decline": "other", "release": "other", "bootp_request": "discovery", "bootp_reply": "other",
}  # fmt: skip
MAX_TEXT = 255
_ADDR = {50: "requested_addr", 54: "server_id", 1: "subnet_mask"}
_TIMES = {51: "lease_time", 58: "renewal_time", 59: "rebinding_time"}
_LISTS = {3: "routers", 6: "dns_servers", 42: "ntp_servers"}
_TEXTS = {12: "host_name", 15: "domain"}


def _text(raw: bytes) -> str:
    """Option text: printable ASCII kept, a trailing NUL dropped, other bytes `\\xNN`, at most MAX_TEXT chars."""
    raw = raw[:MAX_TEXT].rstrip(b"\x00")
    try:
        s = raw.decode("ascii")
        if s.isprintable():
            return s
    except UnicodeDecodeError:
        pass
    return "".join(chr(b) if 0x20 <= b <= 0x7E else f"\\x{b:02x}" for b in raw)


def _fqdn(raw: bytes) -> tuple[int, str]:
    """Option 81: (flags, name); the name is wire-format labels when flag E (0x04) is set, else ASCII."""
    flags = raw[0]
    body = raw[3:]
    if not flags & 0x04:
        return flags, _text(body)
    labels = []
    p = 0
    while p < len(body) and body[p]:
        ln = body[p]
        if ln & 0xC0:
            break
        labels.append(_text(body[p + 1 : p + 1 + ln]))
        p += 1 + ln
    return flags, ".".join(labels)


def _options(msg: bytes, pos: int, f: dict[str, Any], from_client: bool) -> list[tuple[str, str]]:
    """Decode the options from msg[pos:] into f; return the problems."""
    problems: list[tuple[str, str]] = []
    n = len(msg)
    codes: list[int] = []
    ended = False
    while pos < n:
        code = msg[pos]
        if code == 0:
            pos += 1
            continue
        if code == 255:
            ended = True
            break
        if pos + 1 >= n or pos + 2 + msg[pos + 1] > n:
            problems.append(("dhcp_truncated_option", f"option {code} runs past the message"))
            return problems
        ln = msg[pos + 1]
        v = msg[pos + 2 : pos + 2 + ln]
        pos += 2 + ln
        codes.append(code)
        bad = False
        if code == 53:
            if ln == 1:
                f["msg_type"] = v[0]
            else:
                bad = True
        elif code in _ADDR:
            if ln == 4:
                f[_ADDR[code]] = socket.inet_ntoa(v)
            else:
                bad = True
        elif code in _TIMES:
            if ln == 4:
                f[_TIMES[code]] = float(_U32.unpack(v)[0])
            else:
                bad = True
        elif code in _TEXTS:
            f[_TEXTS[code]] = _text(v)
        elif code in _LISTS:
            if ln and ln % 4 == 0:
                f[_LISTS[code]] = [socket.inet_ntoa(v[i : i + 4]) for i in range(0, ln, 4)]
            else:
                bad = True
        elif code == 55:
            f["param_list"] = list(v)
        elif code == 60:
            vendor = _text(v)
            f["vendor_class"] = vendor
            f["client_software" if from_client else "server_software"] = vendor
        elif code == 61:
            if ln == 7 and v[0] == 1:
                f["client_id"] = v[1:].hex(":")
            elif ln:
                f["client_id"] = v.hex()
            else:
                bad = True
        elif code == 81:
            if ln >= 3:
                f["fqdn_flags"], f["client_fqdn"] = _fqdn(v)
            else:
                bad = True
        elif code == 56:
            f["client_message" if from_client else "server_message"] = _text(v)
        elif code == 57:
            if ln == 2:
                f["max_msg_size"] = (v[0] << 8) | v[1]
            else:
                bad = True
        elif code == 82:
            p = 0
            while p + 2 <= ln and p + 2 + v[p + 1] <= ln:
                sub, sl = v[p], v[p + 1]
                sv = v[p + 2 : p + 2 + sl]
                if sub == 1:
                    f["circuit_id"] = sv.hex()
                elif sub == 2:
                    f["agent_remote_id"] = sv.hex()
                elif sub == 6:
                    f["subscriber_id"] = _text(sv)
                p += 2 + sl
        if bad:
            problems.append(("dhcp_invalid_option_length", f"option {code} of {ln} bytes"))
    f["options"] = codes
    if not ended:
        problems.append(("dhcp_truncated_option", "no End option"))
    return problems


class DhcpDecoder:
    """Decodes the DHCP/BOOTP messages of one UDP flow (one datagram per feed)."""

    name: ClassVar[str] = PROTO
    transport: ClassVar[str] = "udp"
    ports: ClassVar[frozenset[int]] = frozenset({67, 68})
    op_classes: ClassVar[dict[str, str]] = OP_CLASSES

    def __init__(self, flow: FlowId) -> None:
        self.flow = flow
        self.failed = False
        self._good = False
        self._ends = {True: (flow.orig_h, flow.resp_h), False: (flow.resp_h, flow.orig_h)}

    @classmethod
    def probe(cls, payload: bytes, is_orig: bool) -> bool:
        """True for a BOOTP message (op 1 or 2, Ethernet addresses) carrying the DHCP magic cookie."""
        return (len(payload) >= 240 and payload[0] in (1, 2) and payload[1] == 1 and payload[2] == 6
                and payload[236:240] == COOKIE)

    def feed(self, data: bytes, is_orig: bool, ts: float) -> list[ProtocolEvent]:
        """Decode one datagram (one DHCP message)."""
        if self.failed or not data:
            return []
        msg = bytes(data)
        out: list[ProtocolEvent] = []
        if len(msg) < 236:
            out.append(weird(self.flow, PROTO, "dhcp_truncated_message", ts, is_orig,
                             f"{len(msg)} bytes, shorter than a BOOTP header"))
            return out
        op, htype, hlen, hops, xid, secs, flags, ci, yi, si, gi, chaddr, sname, bfile = BOOTP.unpack_from(msg)
        if op not in (1, 2):
            if not self._good:
                self.failed = True
                out.append(weird(self.flow, PROTO, "dhcp_protocol_violation", ts, is_orig, f"BOOTP op {op}"))
            else:
                out.append(weird(self.flow, PROTO, "dhcp_invalid_op", ts, is_orig, f"BOOTP op {op}"))
            return out
        self._good = True
        from_client = op == 1
        f: dict[str, Any] = {"trans_id": xid, "hops": hops, "secs": secs, "broadcast": bool(flags & 0x8000)}
        if htype == 1 and hlen == 6:
            f["mac"] = chaddr[:6].hex(":")
        else:
            f["htype"] = htype
            f["chaddr"] = chaddr[: min(hlen, 16)].hex()
        f["client_addr"] = socket.inet_ntoa(ci)
        f["yiaddr"] = socket.inet_ntoa(yi)
        f["siaddr"] = socket.inet_ntoa(si)
        f["giaddr"] = socket.inet_ntoa(gi)
        if sname[0]:
            f["sname"] = _text(sname.split(b"\x00", 1)[0])
        if bfile[0]:
            f["file"] = _text(bfile.split(b"\x00", 1)[0])
        problems: list[tuple[str, str]] = []
        if msg[236:240] == COOKIE:
            problems = _options(msg, 240, f, from_client)
        elif len(msg) > 236:
            problems.append(("dhcp_bad_magic_cookie", f"vendor area starts {msg[236:240].hex()}"))
        mt = f.get("msg_type")
        if mt is None:
            op_name = "bootp_request" if from_client else "bootp_reply"
        else:
            name = MESSAGE_TYPES.get(mt)
            op_name = name.lower() if name else f"unknown-{mt}"
            f["msg_types"] = [name or f"unknown-{mt}"]
            if mt in (2, 5):
                f["assigned_addr"] = f["yiaddr"]
        kind = REQUEST if from_client else EXCEPTION if mt == 6 else RESPONSE
        src, dst = self._ends[is_orig]
        out.append(ProtocolEvent(ts, self.flow, PROTO, op_name, kind, is_orig, src, dst, f))
        for wname, addl in problems:
            out.append(weird(self.flow, PROTO, wname, ts, is_orig, addl, trans_id=xid))
        return out

    def gap(self, is_orig: bool, ts: float, length: int) -> list[ProtocolEvent]:
        """Nothing to do for datagrams."""
        return []

    def close(self, ts: float) -> list[ProtocolEvent]:
        """Nothing is pending: each message stands alone."""
        return []
