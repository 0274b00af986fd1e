"""Live capture on a Linux interface through an AF_PACKET TPACKET_V3 memory-mapped ring (stdlib only).

The kernel fills fixed-size blocks of the ring with packets and hands a block over when it is full or its
timeout expires, so the reader wakes once per block rather than once per packet. Iterating a `LiveCapture`
yields the same `(linktype, ts, frame, wire_len)` tuples as `PcapReader`:

- Ethernet and loopback devices give link type 1 (VLAN tags the NIC stripped are put back into the frame);
- devices without a link header (tun, ARPHRD_NONE / RAWIP) give raw IP, link type 101;
- anything else is handed over as a Linux cooked (SLL, 113) frame built from the packet's `sockaddr_ll`.

On loopback every packet shows up twice, as PACKET_OUTGOING and as PACKET_HOST: the outgoing copy is dropped
(PACKET_IGNORE_OUTGOING, and per packet by `sll_pkttype` as a fallback), as libpcap does. Elsewhere outgoing
packets are distinct packets and are kept. The interface "any" captures on every interface.

Needs CAP_NET_RAW (root, or the capability alone: promiscuous membership works with it too).
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Iterator
from types import TracebackType

from appliance.capture.pcapfile import CaptureError

__all__ = ["LiveCapture"]

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_FANOUT = 18
PACKET_IGNORE_OUTGOING = 23
TPACKET_V3 = 2
PACKET_MR_PROMISC = 1
PACKET_OUTGOING = 4
PACKET_FANOUT_HASH = 0
PACKET_FANOUT_FLAG_IGNORE_OUTGOING = 0x4000
PACKET_FANOUT_FLAG_DEFRAG = 0x8000
SO_ATTACH_FILTER = 26
ETH_P_ALL = 0x0003

TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40

ARPHRD_ETHER = 1
ARPHRD_IEEE802 = 6
ARPHRD_LOOPBACK = 772
ARPHRD_RAWIP = 519
ARPHRD_NONE = 0xFFFE
ETHERNET_HATYPES = frozenset((ARPHRD_ETHER, ARPHRD_IEEE802, ARPHRD_LOOPBACK))
RAW_HATYPES = frozenset((ARPHRD_NONE, ARPHRD_RAWIP))

LINKTYPE_ETHERNET = 1
TICK = -1  # pseudo link type of a tick frame: no packet, only the wall time, so an idle pipeline still reports
LINKTYPE_RAW = 101
LINKTYPE_SLL = 113

FRAME_SIZE = 2048  # only used by the kernel to check the request: TPACKET_V3 frames have variable size

_U32 = struct.Struct("=I")
_BLOCK = struct.Struct("=II")  # num_pkts, offset_to_first_pkt (at block offset 12)
# tpacket3_hdr (48 bytes) then struct sockaddr_ll: next_offset, sec, nsec, snaplen, len, status, mac, net,
# rxhash, vlan_tci, vlan_tpid, (padding), sll_family, sll_protocol (network order), sll_ifindex, sll_hatype,
# sll_pkttype, sll_halen
_PKT = struct.Struct("=IIIIIIHHIIH10xHHiHBB")
_REQ3 = struct.Struct("=IIIIIII")
_STATS3 = struct.Struct("=III")
_MREQ = struct.Struct("=iHH8s")
_VLAN_TAG = struct.Struct("!HH")

_CAP_HINT = (
    "live capture needs the CAP_NET_RAW capability (run as root, or grant it: "
    "AmbientCapabilities=CAP_NET_RAW in the systemd unit, "
    "or `setcap cap_net_raw+ep` on the Python interpreter)"
)


class LiveCapture:
    """Capture from a Linux interface through a TPACKET_V3 ring; yields `(linktype, ts, frame, wire_len)`."""

    def __init__(
        self,
        interface: str,
        *,
        snaplen: int = 65535,
        block_size: int = 1 << 20,
        block_count: int = 64,
        promisc: bool = True,
        poll_ms: int = 200,
        block_timeout_ms: int = 100,
        fanout_group: int | None = None,
        tick_ms: int | None = None,
    ) -> None:
        self.interface = interface
        self.tick_ms = tick_ms  # when set, yield a TICK frame at least this often, traffic or not
        self.snaplen = snaplen
        self.block_size = block_size
        self.block_count = block_count
        self.poll_ms = poll_ms
        page = mmap.PAGESIZE
        if block_size <= 0 or block_size % page or block_size % FRAME_SIZE:
            raise CaptureError(f"capture ring block size {block_size} must be a positive multiple of {page}")
        if block_count < 1:
            raise CaptureError(f"capture ring block count {block_count} must be at least 1")
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._active = False
        self._close_pending = False
        self._closed = False
        self._block = 0
        self._totals = {"packets": 0, "drops": 0, "freeze_q_cnt": 0}
        self.delivered = 0  # packets yielded
        self.ignored_outgoing = 0  # loopback duplicates dropped
        self._sock: socket.socket | None = None
        self._ring: mmap.mmap | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        try:
            self._open(interface, promisc, block_timeout_ms, fanout_group)
        except BaseException:
            self._teardown()
            raise

    def _open(self, interface: str, promisc: bool, block_timeout_ms: int, fanout_group: int | None) -> None:
        """Create the socket, the ring, bind, join promiscuous mode and the fanout group."""
        any_iface = interface == "any"
        ifindex = 0
        if not any_iface:
            try:
                ifindex = socket.if_nametoindex(interface)
            except OSError as e:
                raise CaptureError(f"cannot capture on {interface!r}: no such network interface") from e
        # loopback interfaces: their outgoing copies are duplicates of the incoming ones
        self._dup_ifindexes = frozenset(
            idx for idx, name in socket.if_nameindex() if _is_loopback(name) and (any_iface or idx == ifindex)
        )
        try:
            # protocol 0: nothing is received until bind() names the interface and ETH_P_ALL
            sock = socket.socket(
                socket.AF_PACKET, socket.SOCK_RAW, 0 if not any_iface else socket.htons(ETH_P_ALL)
            )
        except PermissionError as e:
            raise CaptureError(f"cannot capture on {interface!r}: permission denied; {_CAP_HINT}") from e
        except OSError as e:
            raise CaptureError(f"cannot capture on {interface!r}: {e.strerror or e}") from e
        self._sock = sock
        try:
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            frames = self.block_size // FRAME_SIZE * self.block_count
            req = _REQ3.pack(
                self.block_size, self.block_count, FRAME_SIZE, frames, max(1, block_timeout_ms), 0, 0
            )
            sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
            self._ring = mmap.mmap(
                sock.fileno(),
                self.block_size * self.block_count,
                mmap.MAP_SHARED,
                mmap.PROT_READ | mmap.PROT_WRITE,
            )
            if self.snaplen < 262144:
                _attach_snaplen_filter(sock, self.snaplen)
            if self._dup_ifindexes and not any_iface:
                with contextlib.suppress(OSError):  # an older kernel: the per-packet check drops them
                    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            if not any_iface:
                sock.bind((interface, ETH_P_ALL))
                if promisc:
                    mreq = _MREQ.pack(ifindex, PACKET_MR_PROMISC, 0, b"")
                    sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            if fanout_group is not None:
                flags = PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG
                if self._dup_ifindexes:
                    flags |= PACKET_FANOUT_FLAG_IGNORE_OUTGOING  # a fanout member ignores the socket option
                sock.setsockopt(
                    SOL_PACKET, PACKET_FANOUT, struct.pack("I", (fanout_group & 0xFFFF) | flags << 16)
                )
        except PermissionError as e:
            raise CaptureError(f"cannot capture on {interface!r}: permission denied; {_CAP_HINT}") from e
        except OSError as e:
            raise CaptureError(f"cannot capture on {interface!r}: {e.strerror or e}") from e

    # ---------------------------------------------------------------- iterating

    def __iter__(self) -> Iterator[tuple[int, float, bytes, int]]:
        """Yield packets as the kernel hands over ring blocks, until `stop()` or `close()`."""
        with self._lock:
            if self._closed or self._ring is None or self._sock is None:
                raise CaptureError(f"capture on {self.interface!r} is closed")
            if self._active:
                raise CaptureError(f"capture on {self.interface!r} is already being iterated")
            self._active = True
            ring, sock = self._ring, self._sock
        try:
            yield from self._iterate(ring, sock)
        finally:
            with self._lock:
                self._active = False
                pending = self._close_pending
            if pending:
                self._teardown()

    def _iterate(self, ring: mmap.mmap, sock: socket.socket) -> Iterator[tuple[int, float, bytes, int]]:
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN | select.POLLERR)
        poller.register(self._wake_r, select.POLLIN)
        stopped = self._stopped.is_set
        bs = self.block_size
        count = self.block_count
        dup = self._dup_ifindexes
        pkt_unpack = _PKT.unpack_from
        idx = self._block
        holding = False
        delivered = ignored = 0
        tick = self.tick_ms / 1000 if self.tick_ms else None
        next_tick = time.monotonic() + tick if tick else 0.0
        try:
            while not stopped():
                if tick and time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + tick
                    yield TICK, time.time(), b"", 0
                base = idx * bs
                if not _U32.unpack_from(ring, base + 8)[0] & TP_STATUS_USER:
                    poller.poll(min(self.poll_ms, self.tick_ms) if self.tick_ms else self.poll_ms)
                    continue
                holding = True
                num, off = _BLOCK.unpack_from(ring, base + 12)
                off += base
                for _ in range(num):
                    # fmt: off
                    (nxt, sec, nsec, snap, wire, status, mac, net, _hash, tci, tpid, _family, proto, ifindex,
                     hatype, pkttype, _halen) = pkt_unpack(ring, off)
                    # fmt: on
                    if pkttype == PACKET_OUTGOING and ifindex in dup:
                        ignored += 1
                    elif hatype in ETHERNET_HATYPES:
                        data = ring[off + mac : off + mac + snap]
                        if status & TP_STATUS_VLAN_VALID:  # the NIC stripped a tag: put it back
                            tpid = tpid if status & TP_STATUS_VLAN_TPID_VALID else 0x8100
                            tag = _VLAN_TAG.pack(tpid, tci & 0xFFFF)
                            data = data[:12] + tag + data[12:]
                            wire += 4
                        delivered += 1
                        yield LINKTYPE_ETHERNET, sec + nsec / 1e9, data, wire
                    else:
                        delivered += 1
                        yield self._other(ring, off, mac, net, snap, wire, proto, hatype, sec + nsec / 1e9)
                    off += nxt
                _U32.pack_into(ring, base + 8, TP_STATUS_KERNEL)
                holding = False
                idx = (idx + 1) % count
                self.delivered += delivered
                self.ignored_outgoing += ignored
                delivered = ignored = 0
        finally:
            if holding and not ring.closed:
                _U32.pack_into(ring, idx * bs + 8, TP_STATUS_KERNEL)
                idx = (idx + 1) % count
            self._block = idx
            self.delivered += delivered
            self.ignored_outgoing += ignored

    @staticmethod
    def _other(
        ring: mmap.mmap,
        off: int,
        mac: int,
        net: int,
        snap: int,
        wire: int,
        proto: int,
        hatype: int,
        ts: float,
    ) -> tuple[int, float, bytes, int]:
        """A packet from a device without an Ethernet header: raw IP, or a synthesised Linux cooked frame."""
        link_len = net - mac
        data = ring[off + net : off + mac + snap]
        if hatype in RAW_HATYPES:
            return LINKTYPE_RAW, ts, data, wire - link_len
        pkttype, halen = ring[off + 58], ring[off + 59]
        addr = ring[off + 60 : off + 60 + min(halen, 8)]
        # sll_protocol was unpacked in host order from network-order bytes: swap it back
        header = struct.pack("!HHH8sH", pkttype, hatype, halen, addr, socket.ntohs(proto))
        return LINKTYPE_SLL, ts, header + data, wire - link_len + 16

    # ---------------------------------------------------------- control, stats

    def stop(self) -> None:
        """Ask the iteration to end (thread-safe, any thread); it ends within poll_ms, usually at once."""
        self._stopped.set()
        with self._lock:
            if self._wake_w < 0:
                return
            with contextlib.suppress(OSError):  # the pipe is full: the flag is enough
                os.write(self._wake_w, b"x")

    def stats(self) -> dict[str, int]:
        """Kernel counters since the start (packets incl. drops, drops, freeze_q_cnt) and our own counts."""
        with self._lock:
            if self._sock is not None and not self._closed:
                try:
                    raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATS3.size)
                except OSError:
                    raw = b""
                if len(raw) == _STATS3.size:
                    # the kernel resets its counters on every read: keep running totals
                    for key, value in zip(
                        ("packets", "drops", "freeze_q_cnt"), _STATS3.unpack(raw), strict=True
                    ):
                        self._totals[key] += value
            return {**self._totals, "delivered": self.delivered, "ignored_outgoing": self.ignored_outgoing}

    def close(self) -> None:
        """Stop and release the ring and socket (deferred to the iterating thread if it is inside a block)."""
        self.stop()
        with self._lock:
            if self._active:
                self._close_pending = True
                return
        self._teardown()

    def _teardown(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            ring, sock = self._ring, self._sock
            self._ring = self._sock = None
        if ring is not None:
            ring.close()
        if sock is not None:
            sock.close()
        with self._lock:
            fds, self._wake_r, self._wake_w = (self._wake_r, self._wake_w), -1, -1
        for fd in fds:
            if fd >= 0:
                os.close(fd)

    def __enter__(self) -> LiveCapture:
        """Use as a context manager: closed on exit."""
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close on leaving the `with` block."""
        self.close()


def _is_loopback(name: str) -> bool:
    """Whether an interface is a loopback device (ARPHRD_LOOPBACK in sysfs)."""
    try:
        with open(f"/sys/class/net/{name}/type") as f:
            return int(f.read().strip()) == ARPHRD_LOOPBACK
    except (OSError, ValueError):
        return name == "lo"


def _attach_snaplen_filter(sock: socket.socket, snaplen: int) -> None:
    """Attach the classic BPF program `ret #snaplen`: the kernel keeps at most snaplen bytes a packet."""
    insn = ctypes.create_string_buffer(struct.pack("=HBBI", 0x06, 0, 0, snaplen))  # BPF_RET | BPF_K
    prog = struct.pack("@HP", 1, ctypes.addressof(insn))  # struct sock_fprog {unsigned short len; filter *}
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, prog)
