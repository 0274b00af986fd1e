"""DNS message parsing by hand: header, questions, resource records, names with compression, Zeek's answer texts.

`parse_message(msg)` reads one whole DNS message (no TCP length prefix) and returns its event fields and the
problems found (weird name, text). Names are lower-cased as Zeek's analyzer does, the trailing dot dropped, the
root name is "" (Zeek's), bytes outside printable ASCII are written `\\xNN` and a dot inside a label `\\.`.
Compression pointers must point strictly before the start of the labels that contain them, so no chain can loop;
a name longer than 255 octets is cut with a weird. Answer texts follow Zeek's base/protocols/dns/main.zeek: A and
AAAA the address; NS, CNAME, PTR the name; MX the exchange; SOA the mname; SRV the target; TXT and SPF
`TXT <len> <text>` per string joined by spaces; DS `DS <alg> <digest type>`; DNSKEY `DNSKEY <alg>`; RRSIG
`RRSIG <type covered> <signer or <Root>>`; NSEC `NSEC <owner> <next>`; NSEC3, NSEC3PARAM; SSHFP `SSHFP: <hex>`;
LOC `LOC:  <size> <horiz> <vert>`; type 65534 `BIND9 signing signal`. The types Zeek parses but does not log
(WKS HINFO OPT TSIG TKEY CAA SVCB HTTPS) give no answer text, as in Zeek; every other type `<unknown type=N>`.
Only answer-section records make `answers`/`TTLs`; authority and additional records are checked for framing only.
"""

from __future__ import annotations

import re
import socket
from struct import Struct
from typing import Any

from protocols.dns_names import class_name, opcode_name, qtype_name, rcode_name

__all__ = ["HEADER", "MAX_ANSWERS", "MAX_QUESTIONS", "parse_message", "ptr_address", "read_name"]

HEADER = Struct(">HHHHHH")
_QT = Struct(">HH")
_RR = Struct(">HHIH")  # type, class, ttl, rdlength
_H = Struct(">H")
MAX_ANSWERS = 100  # answer texts kept per message (the rest counted in answers_dropped)
MAX_QUESTIONS = 16  # questions reported per message
MAX_JUMPS = 64
_UNSAFE = re.compile(rb"[^\x21-\x7e]|[A-Z]")
_NOANSWER = frozenset({11, 13, 41, 249, 250, 257, 64, 65})
Fields = dict[str, Any]
Problems = list[tuple[str, str]]


def _escape(raw: bytes, dots: bool) -> str:
    """Printable ASCII kept (upper case lowered), other bytes `\\xNN`; a dot `\\.` when `dots`."""
    out = []
    for b in raw:
        if 0x41 <= b <= 0x5A:
            out.append(chr(b + 32))
        elif b == 0x2E and dots:
            out.append("\\.")
        elif 0x21 <= b <= 0x7E:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out)


def _text(raw: bytes) -> str:
    """A character-string as text: printable ASCII kept as is (case too), other bytes `\\xNN`."""
    try:
        s = raw.decode("ascii")
    except UnicodeDecodeError:
        s = ""
    else:
        if s.isprintable():
            return s
    return "".join(chr(b) if 0x20 <= b <= 0x7E else f"\\x{b:02x}" for b in raw)


def read_name(msg: bytes, pos: int) -> tuple[str, int, str]:
    """The name at msg[pos:]: (text, offset after it in the record, "") or ("", -1, weird name) on an error."""
    n = len(msg)
    labels: list[bytes] = []
    after = -1
    seg = pos  # start of the labels being read: a pointer must point before it
    jumps = 0
    wire = 1
    while True:
        if pos >= n:
            return "", -1, "dns_truncated_name"
        ln = msg[pos]
        if ln == 0:
            if after < 0:
                after = pos + 1
            break
        if ln >= 0xC0:
            if pos + 1 >= n:
                return "", -1, "dns_truncated_name"
            ptr = ((ln & 0x3F) << 8) | msg[pos + 1]
            if after < 0:
                after = pos + 2
            jumps += 1
            if ptr >= seg or jumps > MAX_JUMPS:
                return "", -1, "dns_name_loop"
            seg = pos = ptr
            continue
        if ln & 0xC0:
            return "", -1, "dns_invalid_label_type"
        end = pos + 1 + ln
        if end > n:
            return "", -1, "dns_truncated_name"
        wire += ln + 1
        if wire > 255:
            return "", -1, "dns_name_too_long"
        labels.append(msg[pos + 1 : end])
        pos = end
    if not labels:
        return "", after, ""
    raw = b".".join(labels)
    if _UNSAFE.search(raw) is None and raw.count(b".") == len(labels) - 1:
        return raw.decode("ascii"), after, ""
    return ".".join(_escape(label, True) for label in labels), after, ""


def ptr_address(name: str) -> str | None:
    """The address a reverse name asks about: 10.20.0.5 from 5.0.20.10.in-addr.arpa; ip6.arpa too; else None."""
    if name.endswith(".in-addr.arpa"):
        parts = name[:-13].split(".")
        if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts):
            return None
        return ".".join(str(int(p)) for p in reversed(parts))
    if name.endswith(".ip6.arpa"):
        nibbles = name[:-9].split(".")
        if len(nibbles) != 32 or not all(len(x) == 1 and x in "0123456789abcdef" for x in nibbles):
            return None
        return socket.inet_ntop(socket.AF_INET6, bytes.fromhex("".join(reversed(nibbles))))
    return None


def _answer(msg: bytes, rtype: int, owner: str, p: int, end: int) -> tuple[str | None, str]:
    """Zeek's text for one answer record's rdata msg[p:end]: (text or None for none, problem or "")."""
    size = end - p
    if rtype == 1:
        if size != 4:
            return None, f"A record of {size} bytes"
        return socket.inet_ntoa(msg[p:end]), ""
    if rtype == 28:
        if size != 16:
            return None, f"AAAA record of {size} bytes"
        return socket.inet_ntop(socket.AF_INET6, msg[p:end]), ""
    if rtype in (2, 5, 12, 6, 15, 33):
        start = p + 2 if rtype == 15 else p + 6 if rtype == 33 else p
        if start > end:
            return None, f"{qtype_name(rtype)} record of {size} bytes"
        name, _, err = read_name(msg[:end], start)
        if err:
            return None, f"{qtype_name(rtype)} rdata: {err}"
        return name, ""
    if rtype == 16 or rtype == 99:
        label = "TXT" if rtype == 16 else "SPF"
        parts = []
        while p < end:
            ln = msg[p]
            if p + 1 + ln > end:
                return None, f"{label} string beyond its record"
            parts.append(f"{label} {ln} {_text(msg[p + 1 : p + 1 + ln])}")
            p += 1 + ln
        return " ".join(parts), ""
    if rtype in _NOANSWER:
        return None, ""
    if rtype == 43 or rtype == 48:
        if size < 4:
            return None, f"{qtype_name(rtype)} record of {size} bytes"
        return (f"DS {msg[p + 2]} {msg[p + 3]}" if rtype == 43 else f"DNSKEY {msg[p + 3]}"), ""
    if rtype == 46:
        if size < 18:
            return None, f"RRSIG record of {size} bytes"
        signer, _, err = read_name(msg[:end], p + 18)
        if err:
            return None, f"RRSIG signer: {err}"
        return f"RRSIG {_H.unpack_from(msg, p)[0]} {signer or '<Root>'}", ""
    if rtype == 47:
        nxt_name, _, err = read_name(msg[:end], p)
        if err:
            return None, f"NSEC next name: {err}"
        return f"NSEC {owner} {nxt_name}", ""
    if rtype == 50 or rtype == 51:
        return qtype_name(rtype), ""
    if rtype == 44:
        if size < 2:
            return None, f"SSHFP record of {size} bytes"
        return f"SSHFP: {msg[p + 2 : end].hex()}", ""
    if rtype == 29:
        if size < 4:
            return None, f"LOC record of {size} bytes"
        return f"LOC:  {msg[p + 1]} {msg[p + 2]} {msg[p + 3]}", ""
    if rtype == 65534:
        return "BIND9 signing signal", ""
    return f"<unknown type={rtype}>", ""


def _question(msg: bytes, pos: int, problems: Problems) -> tuple[Fields | None, int]:
    """One question at msg[pos:]: its fields and the offset after it, or (None, -1) with a problem."""
    name, pos, err = read_name(msg, pos)
    if err:
        problems.append((err, "in a question"))
        return None, -1
    if pos + 4 > len(msg):
        problems.append(("dns_truncated_question", "question type and class missing"))
        return None, -1
    qtype, qclass = _QT.unpack_from(msg, pos)
    q: Fields = {"query": name, "qclass": qclass, "qclass_name": class_name(qclass), "qtype": qtype,
                 "qtype_name": qtype_name(qtype)}
    if name.endswith("arpa"):
        addr = ptr_address(name)
        if addr is not None:
            q["ptr_address"] = addr
    return q, pos + 4


MEMO_ENTRIES = 4096  # parsed messages kept by their bytes after the transaction id; full: emptied, fills again
_memo: dict[bytes, tuple[Fields | None, Problems, bool]] = {}


def parse_message(msg: bytes) -> tuple[Fields | None, Problems, bool]:
    """One DNS message: (fields or None when shorter than a header, problems, questions parsed whole).

    Memoised by the bytes after the transaction id (the same name asked by many hosts, the same answer given to
    them): a repeat costs a dict copy. The fields returned are a fresh top-level dict each time (callers add
    rtt, matched, ... to it); nested lists are shared and must not be changed."""
    if len(msg) < 12:
        return _parse_message(msg)
    key = msg[2:]
    hit = _memo.get(key)
    if hit is None:
        hit = _parse_message(msg)
        if len(_memo) >= MEMO_ENTRIES:
            _memo.clear()
        _memo[key] = hit
        fields = hit[0]
        return (dict(fields) if fields is not None else None), hit[1], hit[2]
    fields, problems, ok = hit
    if fields is None:
        return None, problems, ok
    out = dict(fields)
    out["trans_id"] = (msg[0] << 8) | msg[1]
    return out, problems, ok


def _parse_message(msg: bytes) -> tuple[Fields | None, Problems, bool]:
    """One DNS message, parsed (see parse_message)."""
    problems: Problems = []
    if len(msg) < 12:
        problems.append(("dns_truncated_message", f"{len(msg)} bytes, shorter than a DNS header"))
        return None, problems, False
    tid, flags, qd, an, ns, ar = HEADER.unpack_from(msg)
    qr = flags >> 15
    f: Fields = {"trans_id": tid, "opcode": (flags >> 11) & 15, "opcode_name": opcode_name(flags >> 11),
                 "AA": bool(flags & 0x400), "TC": bool(flags & 0x200), "RD": bool(flags & 0x100),
                 "RA": bool(flags & 0x80), "Z": (flags >> 4) & 7}
    if qr:
        rc = flags & 15
        f["rcode"] = rc
        f["rcode_name"] = rcode_name(rc)
    pos = 12
    qok = True
    extra: list[Fields] = []
    for i in range(qd):
        q, pos = _question(msg, pos, problems)
        if q is None:
            qok = False
            break
        if i == 0:
            f.update(q)
        elif len(extra) < MAX_QUESTIONS:
            extra.append(q)
    if extra:
        f["questions"] = [{k: v for k, v in f.items() if k in _QKEYS}, *extra]
    if qd == 0:
        qok = len(msg) == 12 or bool(qr)
    if qr:
        f["rejected"] = (an == 0 and ns == 0 and ar == 0 and qd > 0) or (f["rcode"] != 0 and qd == 0)
        f["total_answers"] = an
        f["total_replies"] = an + ns + ar
    if not qok:
        return f, problems, False
    answers: list[str] = []
    ttls: list[float] = []
    dropped = 0
    n = len(msg)
    for section, count in ((0, an), (1, ns), (2, ar)):
        for _ in range(count):
            owner, pos, err = read_name(msg, pos)
            if err:
                problems.append((err, f"in a record of section {section + 1}"))
                break
            if pos + 10 > n:
                problems.append(("dns_truncated_rr", "record header beyond the message"))
                pos = -1
                break
            rtype, _rclass, ttl, rdlen = _RR.unpack_from(msg, pos)
            p = pos + 10
            end = p + rdlen
            if end > n:
                problems.append(("dns_truncated_rr", f"{qtype_name(rtype)} rdata beyond the message"))
                pos = -1
                break
            if section == 0 and qr:
                text, bad = _answer(msg, rtype, owner, p, end)
                if bad:
                    problems.append(("dns_invalid_rdata", bad))
                elif text:
                    if len(answers) < MAX_ANSWERS:
                        answers.append(text)
                        ttls.append(float(ttl))
                    else:
                        dropped += 1
            pos = end
        if pos < 0:
            break
    if answers:
        f["answers"] = answers
        f["TTLs"] = ttls
    if dropped:
        f["answers_dropped"] = dropped
    if pos > 0 and pos < n:
        problems.append(("dns_extra_data", f"{n - pos} bytes after the last record"))
    return f, problems, True


_QKEYS = frozenset({"query", "qclass", "qclass_name", "qtype", "qtype_name", "ptr_address"})
