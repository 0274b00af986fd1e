"""SMB decoder: SMB2/SMB3 and SMB1 over TCP 445 (4-byte direct-TCP header) and TCP 139 (NetBIOS session service).

Coverage. Framing: NetBIOS session messages (type 0 with a 24-bit length; 0x81 session request with the called
and calling NetBIOS names, 0x82/0x83 positive/negative response, 0x84 retarget, 0x85 keep-alive: no event),
several messages per segment, messages split across segments, messages over DECODE_CAP bytes decoded from their
first DECODE_CAP bytes (READ/WRITE data is skipped, never buffered), SMB2 compounds (NextCommand; related
operations inherit session, tree and file).
Every SMB2 message gives one event; op = the lower-cased command (negotiate, session_setup, logoff, tree_connect,
tree_disconnect, create, close, flush, read, write, lock, ioctl, cancel, echo, query_directory, change_notify,
query_info, set_info, oplock_break; else unknown-N), kind = request, response, or exception (an error status,
severity bits 11, except STATUS_MORE_PROCESSING_REQUIRED). Fields of every message (Zeek's smb_cmd.log names):
  version "SMB2"/"SMB1", command (upper-case name), status (responses: NTSTATUS name or 0xXXXXXXXX),
  message_id, session_id, tree_id (async_id for async messages), flags; tree and share_type of a known tree;
  responses: matched, request_ts, rtt, and what the request named (path, name)
Bodies (protocols/smb2.py): NEGOTIATE dialects offered / dialect chosen, signing_required, client_guid /
server_guid, mech_types; SESSION_SETUP the GSS-API/SPNEGO blob (protocols/ntlm_gss.py: mechanism, mech_types,
neg_state, and the NTLMSSP fields of protocols/ntlm.py: never a hash or response byte), is_guest, is_null,
encrypt_data; TREE_CONNECT path / share_type, share_flags; CREATE name, create_disposition, desired_access,
directory, delete_on_close / create_action, size, times (modified accessed created changed), is_directory;
READ/WRITE length, offset (request) / length (response); IOCTL ctl_code (FSCTL names); QUERY_DIRECTORY pattern,
info_class; QUERY_INFO/SET_INFO info_type, info_class; CLOSE, FLUSH, LOCK, CHANGE_NOTIFY, OPLOCK_BREAK the
file's name (from the CREATE that opened it). Authentication outcome (protocols/smb_session.py): the response
that ends a SESSION_SETUP exchange carries auth (ntlm, kerberos), success, and for NTLM Zeek's ntlm.log fields
username hostname domainname server_nb_computer_name server_dns_computer_name server_tree_name (and anonymous).
SMB1 (protocols/smb1.py): header fields as above for every command (op = lower-cased SMB1 name: negotiate,
session_setup_andx, tree_connect_andx, nt_create_andx, transaction, ...), NEGOTIATE dialect strings offered /
dialect_index and dialect chosen, SESSION_SETUP_ANDX with extended security (NTLMSSP as above) or basic (account
name, primary domain, password_present; never the password), native_os, native_lanman; TREE_CONNECT_ANDX path,
service, native_file_system. Only the first command of an AndX chain.
SMB3 encrypted messages (0xFD 'SMB' transform header) and compressed ones (0xFC 'SMB') are counted, not decoded:
one notice (op encrypted/compressed) at the first, one with the counts at close.
NetBIOS: session_request (called_name, calling_name and suffixes) request/response/exception (error), and
session_retarget.
Not decoded: SMB1 AndX chains past the first command, SMB1 transactions' contents (RAP, named-pipe DCE/RPC),
SMB2 create contexts, IOCTL/query payloads, READ/WRITE data, Kerberos tickets.
Weirds: smb_invalid_nbss_type (not a NetBIOS session message: resynchronise on the next SMB header; 4 in a row,
or the first bytes of a flow, end the decoding), smb_unknown_protocol, smb2_truncated_header,
smb2_bad_structure_size, smb2_bad_next_command, smb2_truncated_body, smb1_truncated, smb_truncated_message (a
partial message at close); each name at most MAX_WEIRDS times per flow, then a count at close.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from protocols.base import EXCEPTION, NOTICE, REQUEST, RESPONSE, FlowId, ProtocolEvent, unknown, weird
from protocols.smb1 import HEADER as HEADER1
from protocols.smb1 import REQUESTS as SMB1_REQUESTS
from protocols.smb1 import RESPONSES as SMB1_RESPONSES
from protocols.smb2 import HEADER as HEADER2
from protocols.smb2 import REQUESTS, RESPONSES, Short
from protocols.smb_logs import log_rows
from protocols.smb_names import OP_CLASSES, SMB1_COMMANDS, SMB2_COMMANDS, status_name
from protocols.smb_session import NBSS_OPS, Auth, session_message

__all__ = ["SmbDecoder"]

PROTO = "smb"
DECODE_CAP = 65536  # bytes of one message decoded; the rest (READ/WRITE data) is skipped
MAX_PENDING = 1024
MAX_TREES = 1024
MAX_FILES = 4096
MAX_WEIRDS = 8
MAX_BAD = 4
MORE_PROCESSING, PENDING = 0xC0000016, 0x00000103
_NO_FID = b"\xff" * 16
_OP2 = [SMB2_COMMANDS[c].lower() if c in SMB2_COMMANDS else unknown(c) for c in range(256)]
_CMD2 = [SMB2_COMMANDS.get(c, unknown(c)) for c in range(256)]
_OP1 = [SMB1_COMMANDS[c].lower() if c in SMB1_COMMANDS else unknown(c) for c in range(256)]
_CMD1 = [SMB1_COMMANDS.get(c, unknown(c)) for c in range(256)]
_MAGIC = {b"\xfeSMB", b"\xffSMB", b"\xfdSMB", b"\xfcSMB"}


class SmbDecoder:
    """Decodes one SMB connection (both directions): commands, statuses, trees, files and authentications."""

    name: ClassVar[str] = PROTO
    transport: ClassVar[str] = "tcp"
    ports: ClassVar[frozenset[int]] = frozenset({445, 139})
    op_classes: ClassVar[dict[str, str]] = OP_CLASSES
    log_rows: ClassVar[Callable[[dict[str, Any]], list[tuple[str, dict[str, Any]]]]] = staticmethod(log_rows)

    def __init__(self, flow: FlowId) -> None:
        self.flow = flow
        self.failed = False
        self._ends = {True: (flow.orig_h, flow.resp_h), False: (flow.resp_h, flow.orig_h)}
        self._buf = [b"", b""]
        self._skip = [0, 0]
        self._seen = [False, False]  # a valid message was seen in this direction
        self._bad = [0, 0]
        self._pending: dict[int, tuple[float, str, dict[str, Any]]] = {}
        self._trees: dict[int, tuple[str, str]] = {}
        self._files: dict[bytes, str] = {}
        self._auth = Auth()
        self._opaque = {"encrypted": [0, 0], "compressed": [0, 0]}
        self._wcount: dict[str, int] = {}
        self.messages = 0

    @classmethod
    def probe(cls, payload: bytes, is_orig: bool) -> bool:
        """True when the payload starts with a NetBIOS session header and an SMB header, or a session request."""
        if len(payload) >= 8 and payload[0] == 0 and payload[4:8] in _MAGIC:
            return True
        return len(payload) >= 72 and payload[0] == 0x81 and payload[4] == 32

    # --- framing ------------------------------------------------------------------------------------------

    def feed(self, data: bytes, is_orig: bool, ts: float) -> list[ProtocolEvent]:
        """Decode the next in-order bytes of one direction: one event per SMB message (plus notices, weirds)."""
        if self.failed or not data:
            return []
        d = 0 if is_orig else 1
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
        while n - pos >= 4:
            t = buf[pos]
            if t == 0:
                ln = (buf[pos + 1] << 16) | (buf[pos + 2] << 8) | buf[pos + 3]
            elif 0x81 <= t <= 0x85 and buf[pos + 1] < 2:
                ln = ((buf[pos + 1] & 1) << 16) | (buf[pos + 2] << 8) | buf[pos + 3]
            else:
                pos = self._resync(buf, pos, n, d, is_orig, ts, out)
                if pos < 0:
                    return out
                continue
            end = pos + 4 + ln
            if end > n:
                if ln <= DECODE_CAP or pos + 4 + DECODE_CAP > n:
                    break
                self._message(t, buf, pos + 4, pos + 4 + DECODE_CAP, d, is_orig, ts, out)
                self._skip[d] = end - n
                pos = n
                break
            self._message(t, buf, pos + 4, end, d, is_orig, ts, out)
            pos = end
        self._buf[d] = buf[pos:] if pos < n else b""
        return out

    def _resync(self, buf: bytes, pos: int, n: int, d: int, is_orig: bool, ts: float,
                out: list[ProtocolEvent]) -> int:
        """After bytes that are no NetBIOS header: the offset of the next plausible message, or -1 (gave up/wait)."""
        self._bad[d] += 1
        if not self._seen[d] or self._bad[d] >= MAX_BAD:
            self.failed = True
            out.append(weird(self.flow, PROTO, "smb_invalid_nbss_type", ts, is_orig,
                             f"message type 0x{buf[pos]:02x}: not SMB, decoding stopped"))
            return -1
        i = buf.find(b"SMB", pos + 5)
        while i >= 0 and not (buf[i - 5] == 0 and buf[i - 1] in (0xFE, 0xFF, 0xFD, 0xFC)):
            i = buf.find(b"SMB", i + 1)
        nxt = i - 5 if i >= 0 else -1
        skipped = (nxt if nxt >= 0 else n) - pos
        self._weird(out, "smb_invalid_nbss_type", ts, is_orig, f"message type 0x{buf[pos]:02x}; skipped {skipped}")
        if nxt < 0:
            self._buf[d] = buf[max(pos, n - 8) :]
            return -1
        return nxt

    def gap(self, is_orig: bool, ts: float, length: int) -> list[ProtocolEvent]:
        """Drop the direction's partial message; decoding resumes at the next message boundary found."""
        d = 0 if is_orig else 1
        self._buf[d] = b""
        if self._skip[d]:
            self._skip[d] = max(0, self._skip[d] - length)
        return []

    def close(self, ts: float) -> list[ProtocolEvent]:
        """Report partial messages, unanswered authentications, opaque-message counts and suppressed weirds."""
        if self.failed:
            return []
        out: list[ProtocolEvent] = []
        for d in (0, 1):
            if self._buf[d]:
                self._weird(out, "smb_truncated_message", ts, d == 0, f"{len(self._buf[d])} bytes at close")
        src, dst = self._ends[True]
        for mid, (req_ts, op, carry) in self._pending.items():
            if carry.get("auth") == "ntlm":
                f = {"message_id": mid, "request_ts": req_ts, "matched": False, **carry}
                out.append(ProtocolEvent(ts, self.flow, PROTO, op, NOTICE, True, src, dst, f))
        for op, counts in self._opaque.items():
            if counts[0] or counts[1]:
                f = {"messages": counts[0] + counts[1], "orig_messages": counts[0], "resp_messages": counts[1]}
                out.append(ProtocolEvent(ts, self.flow, PROTO, op, NOTICE, True, src, dst, f))
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

    # --- messages -----------------------------------------------------------------------------------------

    def _message(self, t: int, buf: bytes, p: int, e: int, d: int, is_orig: bool, ts: float,
                 out: list[ProtocolEvent]) -> None:
        """One NetBIOS session message buf[p:e] (type t)."""
        if t:
            if t == 0x85:
                return
            self._seen[d] = True
            try:
                f = session_message(t, buf, p, e)
            except Short as exc:
                self._weird(out, "smb_bad_session_request", ts, is_orig, str(exc))
                return
            kind = REQUEST if t == 0x81 else EXCEPTION if t == 0x83 else RESPONSE
            src, dst = self._ends[is_orig]
            out.append(ProtocolEvent(ts, self.flow, PROTO, NBSS_OPS[t], kind, is_orig, src, dst, f))
            return
        magic = buf[p : p + 4]
        if magic == b"\xfeSMB":
            self._smb2(buf, p, e, is_orig, ts, out)
        elif magic == b"\xffSMB":
            self._smb1(buf, p, e, is_orig, ts, out)
        elif magic == b"\xfdSMB" or magic == b"\xfcSMB":
            op = "encrypted" if magic[0] == 0xFD else "compressed"
            counts = self._opaque[op]
            counts[d] += 1
            if counts[0] + counts[1] == 1:
                nf: dict[str, Any] = {"first_seen": True}
                if op == "encrypted" and e - p >= 52:
                    nf["session_id"] = int.from_bytes(buf[p + 44 : p + 52], "little")
                src, dst = self._ends[is_orig]
                out.append(ProtocolEvent(ts, self.flow, PROTO, op, NOTICE, is_orig, src, dst, nf))
        else:
            self._weird(out, "smb_unknown_protocol", ts, is_orig, f"protocol id {bytes(magic).hex()}")
            return
        self._seen[d] = True
        self._bad[d] = 0

    def _smb2(self, buf: bytes, h: int, e: int, is_orig: bool, ts: float, out: list[ProtocolEvent]) -> None:
        """The SMB2 messages of one NetBIOS message (a compound chain)."""
        prev_sid = prev_tid = 0
        prev_name: str | None = None
        while True:
            if e - h < 64:
                self._weird(out, "smb2_truncated_header", ts, is_orig, f"{e - h} bytes")
                return
            size, _, status, cmd, _, flags, nxt, mid, pid, tid, sid = HEADER2.unpack_from(buf, h + 4)
            if size != 64:
                self._weird(out, "smb2_bad_structure_size", ts, is_orig, f"structure size {size}")
                return
            mend = h + nxt if nxt else e
            if nxt and (nxt < 64 or mend > e):
                self._weird(out, "smb2_bad_next_command", ts, is_orig, f"next command {nxt}")
                mend, nxt = e, 0
            resp = flags & 1
            if flags & 4:  # related: ids of the previous message of the chain
                if sid == 0xFFFFFFFFFFFFFFFF:
                    sid = prev_sid
                if tid == 0xFFFFFFFF and not flags & 2:
                    tid = prev_tid
            op = _OP2[cmd & 0xFF] if cmd < 256 else unknown(cmd)
            f: dict[str, Any] = {"version": "SMB2", "command": _CMD2[cmd & 0xFF] if cmd < 256 else unknown(cmd)}
            if resp:
                f["status"] = status_name(status)
            f["message_id"] = mid
            f["session_id"] = sid
            if flags & 2:
                f["async_id"] = pid | (tid << 32)
                tid = 0
            else:
                f["tree_id"] = tid
            f["flags"] = flags
            tree = self._trees.get(tid)
            if tree is not None:
                f["tree"], f["share_type"] = tree
            parser = (RESPONSES.get(cmd) if status == 0 or status == MORE_PROCESSING or status & 0xC0000000 ==
                      0x80000000 else None) if resp else REQUESTS.get(cmd)  # fmt: skip
            fid = None
            if parser is not None:
                try:
                    fid = parser(buf, h, mend, f)
                except Short as exc:
                    self._weird(out, "smb2_truncated_body", ts, is_orig, f"{f['command']}: {exc}", message_id=mid)
            if fid is not None:
                name = prev_name if fid == _NO_FID else self._files.get(fid)
                if name is not None and "name" not in f:
                    f["name"] = name
            self._pair(op, bool(resp), status, mid, f, ts, is_orig, out, fid, tid)
            prev_sid, prev_tid = sid, tid
            if "name" in f:
                prev_name = f["name"]
            if not nxt:
                return
            h = mend

    def _smb1(self, buf: bytes, h: int, e: int, is_orig: bool, ts: float, out: list[ProtocolEvent]) -> None:
        """One SMB1 message (the first command of an AndX chain)."""
        if e - h < 32:
            self._weird(out, "smb1_truncated", ts, is_orig, f"{e - h}-byte header")
            return
        cmd, status, flags, flags2, _, _, _, tid, _, uid, mid = HEADER1.unpack_from(buf, h + 4)
        resp = flags & 0x80
        f: dict[str, Any] = {"version": "SMB1", "command": _CMD1[cmd]}
        if resp:
            f["status"] = status_name(status) if flags2 & 0x4000 else f"DOS-{status & 0xFF}-{status >> 16}"
        f["message_id"] = mid
        f["session_id"] = uid
        f["tree_id"] = tid
        f["flags"] = flags
        f["flags2"] = flags2
        tree = self._trees.get(tid)
        if tree is not None:
            f["tree"], f["share_type"] = tree
        if not flags2 & 0x4000 and status:
            status |= 0xC0000000  # a DOS error: an error all the same
        parser = (SMB1_RESPONSES.get(cmd) if status == 0 or status == MORE_PROCESSING else None) if resp else \
            SMB1_REQUESTS.get(cmd)  # fmt: skip
        if parser is not None:
            try:
                parser(buf, h, e, bool(flags2 & 0x8000), f)
            except Short as exc:
                self._weird(out, "smb1_truncated", ts, is_orig, f"{f['command']}: {exc}", message_id=mid)
        if resp and "dialect_index" in f:
            entry = self._pending.get(mid)
            offered = entry[2].get("dialects") if entry is not None else None
            if offered is not None and 0 <= f["dialect_index"] < len(offered):
                f["dialect"] = offered[f["dialect_index"]]
        self._pair(_OP1[cmd], bool(resp), status, mid, f, ts, is_orig, out, None, tid)

    def _pair(self, op: str, resp: bool, status: int, mid: int, f: dict[str, Any], ts: float, is_orig: bool,
              out: list[ProtocolEvent], fid: bytes | None, tid: int) -> None:
        """Pair a message with its request by message id, keep trees/files/auth state, and emit its event."""
        self.messages += 1
        src, dst = self._ends[is_orig]
        pending = self._pending
        if not resp:
            if op != "cancel":
                carry: dict[str, Any] = {}
                if "path" in f:
                    carry["path"] = f["path"]
                if "name" in f:
                    carry["name"] = f["name"]
                if fid is not None:
                    carry["fid"] = fid
                if "dialects" in f:
                    carry["dialects"] = f["dialects"]
                elif op.startswith("session_setup"):
                    self._auth.request(f, carry)
                if mid not in pending and len(pending) >= MAX_PENDING:
                    pending.pop(next(iter(pending)))
                pending[mid] = (ts, op, carry)
            out.append(ProtocolEvent(ts, self.flow, PROTO, op, REQUEST, is_orig, src, dst, f))
            return
        entry = pending.get(mid)
        got: dict[str, Any] | None = None
        if entry is not None and entry[1] == op:
            if status != PENDING:
                del pending[mid]
            req_ts, _, got = entry
            f["matched"] = True
            f["request_ts"] = req_ts
            f["rtt"] = round(ts - req_ts, 6)
            for key in ("path", "name"):
                if key in got and key not in f:
                    f[key] = got[key]
            if fid is None:
                fid = got.get("fid")
        else:
            f["matched"] = False
        ok = status == 0
        if op.startswith("session_setup"):
            self._auth.response(f, got, status)
        elif ok and op.startswith("tree_connect") and "path" in f:
            if len(self._trees) >= MAX_TREES:
                self._trees.pop(next(iter(self._trees)))
            self._trees[tid] = (f["path"], f.get("share_type", ""))
            f["tree"], f["share_type"] = self._trees[tid]
        elif ok and op == "create" and fid is not None:
            if len(self._files) >= MAX_FILES:
                self._files.pop(next(iter(self._files)))
            self._files[fid] = f.get("name", "")
        elif ok and op == "close" and fid is not None:
            self._files.pop(fid, None)
        elif ok and op == "tree_disconnect":
            self._trees.pop(tid, None)
        kind = EXCEPTION if status >= 0xC0000000 and status != MORE_PROCESSING else RESPONSE
        out.append(ProtocolEvent(ts, self.flow, PROTO, op, kind, is_orig, src, dst, f))
