"""Live connection state for the FlowTable: TCP endpoint states, history letters and conn_state, as Zeek has them.

The rules follow Zeek's TCP session adapter and `base/protocols/conn/main.zeek` (read, not copied):
- each TCP endpoint moves through INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET;
- `conn_state` (S0, S1, SF, REJ, S2, S3, RSTO, RSTR, RSTOS0, RSTRH, SH, SHR, OTH) is computed from the two
  endpoint states (and, for REJ and RSTOS0, the payload sizes and the history) when the record is written;
- history letters are upper case for the originator, lower case for the responder; `A`, `D`, `I`, `Q` appear at
  most once per direction, `S`, `H`, `F`, `R` again only when the sequence number differs from the last packet
  with that flag, `T` (retransmitted payload) and `G` (content gap) at the 1st, 10th, 100th... occurrence;
  `^` marks a connection whose direction was flipped. UDP records `D`/`d` once per direction.
- payload sizes of a TCP endpoint come from its sequence space: max(highest sequence seen, highest sequence the
  peer acknowledged) minus the SYN and FIN octets, so data missed by the capture but acknowledged still counts.
"""

from __future__ import annotations

import random
import re
from binascii import b2a_base64

from appliance.model import LLC, Flow, mac_str
from protocols.base import Decoder, FlowId

__all__ = [
    "CLOSED", "ESTABLISHED", "INACTIVE", "PARTIAL", "RESET", "SYN_ACK_SENT", "SYN_SENT",
    "Conn", "Half", "check_history", "conn_state", "flip_roles", "flow_record", "icmp_ports", "new_uid", "note_gap",
    "note_rxmit", "tcp_history", "tcp_size", "tcp_transition", "update_last_seq",
]

# TCP endpoint states (Zeek's values and order)
INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7)

# TCP flag bits
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10

# history masks, one set per direction (kept in Half.hseen)
H_SYN, H_FIN, H_RST, H_FIN_RST, H_DATA, H_ACK, H_MULTI = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40

TOO_LARGE_SEQ_DELTA = 1 << 20  # a SYN/RST this far from the last sequence is not trusted (as Zeek)

_RSTOS0 = re.compile(r"\^?S[^HAFGIQ]*R.*")
_UID_ALPHABET = bytes.maketrans(b"+/", b"xy")
_POWERS_OF_TEN = frozenset(10**i for i in range(19))

# ICMP request/reply pairs (Zeek's counterpart tables): a message of one type and its answer share a flow
_ICMP4_PAIRS = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 17: 18, 18: 17, 10: 9, 9: 10}
_ICMP6_PAIRS = {128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135, 130: 131, 131: 130, 139: 140, 140: 139}


class Half:
    """One direction of a connection: counters, TCP endpoint state, sequence space and reassembly buffer."""

    __slots__ = (
        "ack", "base", "bytes", "conn", "fast", "fin", "gap_cnt", "hseen", "ip_bytes", "is_orig", "last",
        "last_fin", "last_rst", "last_syn", "nxt", "obytes", "odata", "ostarts", "peer", "pkts", "prev_state",
        "probes", "rx_cnt", "state",
    )

    # fast: a plain segment (no SYN/FIN/RST) needs no state-machine step;
    # base: 32-bit sequence number of relative offset 0 (the SYN, or one before the first byte seen midstream);
    # last: highest relative end seen (Zeek's last_seq; 0 until the sequence space is known, then >= 1);
    # ack: highest offset the peer acknowledged;
    # nxt: offset of the next byte to deliver in order; fin: offset of the FIN (-1: none yet);
    # ostarts/odata: held out-of-order segments (sorted starts, bytes), obytes: their size;
    # hseen: history letters recorded (H_* masks); rx_cnt/gap_cnt: retransmissions and gaps (T and G letters);
    # a direction has closed (Zeek's did_close) once its state is CLOSED or RESET: it never leaves those.
    conn: Conn
    peer: Half
    ostarts: list[int] | None
    odata: list[bytes] | None

    def __init__(self, conn: Conn, is_orig: bool) -> None:
        self.conn = conn
        self.is_orig = is_orig
        self.fast = False
        self.pkts = self.ip_bytes = self.bytes = self.obytes = self.hseen = self.probes = self.ack = self.nxt = 0
        self.state = self.prev_state = self.base = self.last = self.last_syn = self.last_fin = self.last_rst = 0
        self.rx_cnt = self.gap_cnt = 0
        self.fin = -1
        self.ostarts = self.odata = None


class Conn:
    """A live connection: identity, both directions, decoder, history and timers."""

    __slots__ = (
        "closed_at", "decoder", "dname", "done", "dstate", "fid", "hist", "last_ts", "missed", "n", "noticed", "orig",
        "orig_mac", "proto", "raw", "resp", "resp_mac", "sched", "service", "ts", "vlans",
    )

    decoder: Decoder | None

    def __init__(self, n: int, fid: FlowId, proto: int, ts: float) -> None:
        self.n = n
        self.fid = fid
        self.proto = proto
        self.ts = self.last_ts = ts
        self.orig = Half(self, True)
        self.resp = Half(self, False)
        self.orig.peer = self.resp
        self.resp.peer = self.orig
        self.decoder = None
        self.dname = ""  # the decoder's name, once one is chosen
        self.dstate = 0  # 0 no decoder chosen yet, 1 decoding, 2 not decoded (none matched, failed or none exist)
        self.service: str | None = None
        self.hist = ""
        self.missed = 0
        self.closed_at: float | None = None
        self.sched = float("inf")  # the deadline of this connection's live entry in the timer heap
        self.done = False
        self.noticed = False  # an unanswered UDP flow was reported to on_attempt already
        self.orig_mac = self.resp_mac = b""
        self.vlans: tuple[int, ...] = ()
        self.raw: bytes | None = None  # the raw-bytes key of an IPv4 TCP/UDP connection (appliance.flow_frames)


def new_uid(rng: random.Random) -> str:
    """A Zeek-like connection uid: "C" and 17 letters and digits drawn from `rng` (reproducible for a seed)."""
    # base64 of 13 random bytes with "+" and "/" mapped to letters: several times cheaper than rng.choices
    return "C" + b2a_base64(rng.randbytes(13), newline=False)[:17].translate(_UID_ALPHABET).decode()


def icmp_ports(proto: int, icmp_type: int, code: int) -> tuple[int, int]:
    """Zeek's ICMP "ports": (type, the answer's type) for request/reply messages, else (type, code)."""
    pairs = _ICMP4_PAIRS if proto == 1 else _ICMP6_PAIRS
    other = pairs.get(icmp_type)
    return (icmp_type, code) if other is None else (icmp_type, other)


def _add(half: Half, code: str) -> None:
    half.conn.hist += code if half.is_orig else code.lower()


def check_history(half: Half, mask: int, code: str) -> bool:
    """Record `code` once per direction; True when it had been recorded before (Zeek's CheckHistory)."""
    if half.hseen & mask:
        return True
    half.hseen |= mask
    _add(half, code)
    return False


def note_rxmit(half: Half) -> None:
    """Count a retransmitted payload; `T` goes into the history at the 1st, 10th, 100th... one."""
    half.rx_cnt += 1
    if half.rx_cnt in _POWERS_OF_TEN:
        _add(half, "T")


def note_gap(half: Half) -> None:
    """Count a content gap; `G` goes into the history at the 1st, 10th, 100th... one."""
    half.gap_cnt += 1
    if half.gap_cnt in _POWERS_OF_TEN:
        _add(half, "G")


def tcp_history(half: Half, flags: int, rel: int, n: int) -> None:
    """History letters for one TCP segment of `n` payload bytes at relative sequence `rel`."""
    syn, fin, rst = flags & SYN, flags & FIN, flags & RST
    nbits = (syn != 0) + (fin != 0) + (rst != 0)
    if nbits > 1:
        if fin and rst:
            check_history(half, H_FIN_RST, "I")
        else:
            check_history(half, H_MULTI, "Q")
    elif syn:
        code = "H" if flags & ACK else "S"
        if check_history(half, H_SYN, code) and rel != half.last_syn:
            _add(half, code)
        half.last_syn = rel
    elif fin:
        if check_history(half, H_FIN, "F") and rel + n != half.last_fin:
            _add(half, "F")
        half.last_fin = rel + n
    elif rst:
        if check_history(half, H_RST, "R") and rel != half.last_rst:
            _add(half, "R")
        half.last_rst = rel
    elif n:
        check_history(half, H_DATA, "D")
    elif flags & ACK:
        check_history(half, H_ACK, "A")


def update_last_seq(half: Half, flags: int, end: int, n: int) -> None:
    """Advance the highest sequence seen to `end`, or count a retransmission (Zeek's update_last_seq)."""
    delta = end - half.last
    if flags & (SYN | RST) and (delta > TOO_LARGE_SEQ_DELTA or delta < -TOO_LARGE_SEQ_DELTA):
        return
    if flags & FIN and half.last == 1 and end > 0:
        half.last = end  # only the SYN seen so far: trust the FIN even when it seems to go backwards
    elif half.state == RESET:
        return
    elif delta > 0:
        half.last = end
    elif n:
        note_rxmit(half)


def _set(half: Half, state: int) -> None:
    if state != half.state:
        half.prev_state = half.state
        half.state = state


def tcp_transition(half: Half, flags: int, n: int) -> None:
    """Move the endpoint states after a segment from `half` (Zeek's UpdateStateMachine, without its weirds)."""
    peer = half.peer
    state = half.state
    syn, fin, rst, ack = flags & SYN, flags & FIN, flags & RST, flags & ACK
    if state == INACTIVE:
        if syn:
            if half.is_orig:
                _set(half, SYN_ACK_SENT if ack else SYN_SENT)
            else:
                if peer.state == SYN_SENT:
                    _set(peer, ESTABLISHED)
                _set(half, ESTABLISHED)
        if fin:
            _set(half, CLOSED)
        if rst:
            _set(half, RESET)
        if half.state == INACTIVE:
            if not half.is_orig and n == 0 and peer.state == SYN_SENT:
                pass  # an ACK of the SYN before the SYN-ACK: not yet a partial connection
            elif ack and peer.state == ESTABLISHED:
                _set(half, ESTABLISHED)  # the SYN was missed but the SYN-ACK was seen
            else:
                _set(half, PARTIAL)
    elif state in (SYN_SENT, SYN_ACK_SENT):
        if fin:
            _set(half, CLOSED)
        if rst:
            _set(half, RESET)
    elif state in (PARTIAL, ESTABLISHED):
        if syn and state == PARTIAL and peer.state == INACTIVE and not ack:
            _set(half, SYN_SENT)
        if fin and not rst:
            _set(half, CLOSED)
            if peer.state == RESET and peer.prev_state == CLOSED:
                _set(peer, CLOSED)  # the peer's FIN then RST was a normal close
        if rst:
            _set(half, RESET)
    elif state == CLOSED and rst and peer.state != CLOSED:
        _set(half, RESET)
    half.fast = SYN_SENT <= half.state <= ESTABLISHED
    peer.fast = SYN_SENT <= peer.state <= ESTABLISHED


def tcp_size(half: Half) -> int:
    """Payload bytes of one TCP direction from its sequence space, as Zeek's endpoint Size()."""
    if not half.last:
        return 0  # nothing seen from this direction
    size = half.last if half.last > half.ack else half.ack
    if size > 0:
        size -= 1  # the SYN octet (or the one before the first byte seen midstream)
    if half.fin >= 0 and size > 0:
        size -= 1  # the FIN octet
    return size


def conn_state(conn: Conn) -> str:
    """Zeek's conn_state of a connection (TCP from endpoint states, UDP from who sent, ICMP always OTH)."""
    orig, resp = conn.orig, conn.resp
    if conn.proto == 17 or conn.proto == LLC:
        if orig.pkts:
            return "SF" if resp.pkts else "S0"
        return "SHR" if resp.pkts else "OTH"
    if conn.proto != 6:
        return "OTH"
    os, rs = orig.state, resp.state
    o_inactive = os in (INACTIVE, PARTIAL)
    r_inactive = rs in (INACTIVE, PARTIAL)
    if rs == RESET:
        if os in (SYN_SENT, SYN_ACK_SENT) or (os == RESET and tcp_size(orig) == tcp_size(resp) == 0):
            return "REJ"
        return "RSTRH" if o_inactive else "RSTR"
    if os == RESET:
        if r_inactive:
            return "RSTOS0" if _RSTOS0.fullmatch(conn.hist) else "OTH"
        return "RSTO"
    if rs == CLOSED and os == CLOSED:
        return "SF"
    if os == CLOSED:
        return "SH" if r_inactive else "S2"
    if rs == CLOSED:
        return "SHR" if o_inactive else "S3"
    if os == SYN_SENT and rs == INACTIVE:
        return "S0"
    if os == ESTABLISHED and rs == ESTABLISHED:
        return "S1"
    return "OTH"


def flip_roles(tcp_flags: int | None, sport: int, dport: int, likely: frozenset[int]) -> bool:
    """Whether the receiver of a connection's first packet is its originator (Zeek's likely server ports).

    `tcp_flags` is None for UDP. A port is a likely server port below 1024 or in `likely` (decoder ports). TCP
    midstream and UDP: flip when the source is a likely server port and the destination is not (TCP midstream
    also when both are and the source port is lower). A SYN-ACK flips unless its destination is a likely server
    port (then it is more likely a SYN-ACK scan than a missed SYN); a SYN never flips.
    """
    dst_server = dport < 1024 or dport in likely
    if tcp_flags is not None and tcp_flags & SYN:
        return bool(tcp_flags & ACK) and not dst_server
    if not (sport < 1024 or sport in likely):
        return False
    return not dst_server or (tcp_flags is not None and sport < dport)


def flow_record(conn: Conn, macs: dict[bytes, str | None]) -> Flow:
    """The conn record of a connection; `macs` caches the text of MAC addresses."""
    orig, resp = conn.orig, conn.resp
    if conn.proto == 6:
        orig_bytes, resp_bytes = tcp_size(orig), tcp_size(resp)
    else:
        orig_bytes, resp_bytes = orig.bytes, resp.bytes
    duration = conn.last_ts - conn.ts
    return Flow(  # positional: a frozen dataclass of 16 fields is much cheaper to build that way
        conn.fid, conn.ts, duration if duration > 0.0 else 0.0, conn.service, orig_bytes, resp_bytes,
        conn_state(conn), conn.missed, conn.hist, orig.pkts, orig.ip_bytes, resp.pkts, resp.ip_bytes,
        _mac(conn.orig_mac, macs), _mac(conn.resp_mac, macs), conn.vlans,
    )


def _mac(mac: bytes, cache: dict[bytes, str | None]) -> str | None:
    if mac in cache:
        return cache[mac]
    if len(cache) > 65536:
        cache.clear()
    text = cache[mac] = mac_str(mac) if mac and mac.strip(b"\x00") else None
    return text
