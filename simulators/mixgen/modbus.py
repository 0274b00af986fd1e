"""Modbus/TCP traffic: SCADA pollers holding long-lived sessions to PLCs on port 502.

Each session opens with a 3-way handshake and, on a PLC's first session, an FC43/14 Read Device Identification
exchange (vendor name, product code, revision). Then the poller cycles through its poll list (FC3/FC4 reads of
10-125 registers, FC1/FC2 coil and input reads), with occasional FC6/FC16 writes. A few poll entries point
outside a PLC's memory and get exception 02; a Moxa gateway answers for an offline unit with exception 0x0B.
Clients ACK about half of the responses on their own; sessions occasionally close with FIN and reconnect.
"""

from __future__ import annotations

import struct
from collections import deque
from random import Random

from simulators.mixgen.net import PLC_VENDORS, Site
from simulators.mixgen.wire import Host, TcpConn

PORT = 502
REGISTERS = 1000  # per table, per PLC
_REQ = struct.Struct(">HHHBBHH")  # MBAP (tid, proto, length, unit) + fc, address, quantity/value
_MBAP = struct.Struct(">HHHB")
_WRITE_MULTI = struct.Struct(">BHHB")  # fc, address, quantity, byte count
_READ_FCS = (3, 3, 3, 3, 3, 3, 3, 4, 4, 1, 1, 2)
CLOSE_P = 0.001
WRITE6_P = 0.03
WRITE16_P = 0.02
ACK_P = 0.5


class _Plc:
    """A PLC's identity and memory: holding and input registers, coils and discrete inputs."""

    __slots__ = ("coils", "discretes", "holding", "host", "identity", "inputs", "units")

    def __init__(self, host: Host, vendor_index: int, rng: Random) -> None:
        self.host = host
        vendor, product, revision, _oui = PLC_VENDORS[vendor_index % len(PLC_VENDORS)]
        self.identity = _identity(vendor, product, revision, 0x81 if vendor_index % 2 else 0x01)
        self.units = (1, 2, 3, 4) if vendor == "Moxa" else ((255,) if vendor_index % 4 == 1 else (1,))
        values = [rng.getrandbits(12) if rng.random() < 0.7 else 0 for _ in range(REGISTERS)]
        self.holding = bytearray(struct.pack(f">{REGISTERS}H", *values))
        self.inputs = bytearray(struct.pack(f">{REGISTERS}H", *(v ^ 0x5A for v in values)))
        self.coils = bytearray(rng.randbytes(REGISTERS // 8))
        self.discretes = bytearray(rng.randbytes(REGISTERS // 8))


def _identity(vendor: str, product: str, revision: str, conformity: int) -> bytes:
    """The PDU of an FC43/14 basic device identification response (objects 0, 1, 2)."""
    pdu = bytearray([0x2B, 0x0E, 0x01, conformity, 0x00, 0x00, 0x03])
    for obj_id, text in enumerate((vendor, product, revision)):
        raw = text.encode("ascii")
        pdu += bytes([obj_id, len(raw)]) + raw
    return bytes(pdu)


class _Session:
    """One poller-to-PLC association: its poll list and, while connected, its TCP session."""

    __slots__ = ("conn", "plc", "poller", "polls", "pos", "tid")

    def __init__(self, poller: Host, plc: _Plc, rng: Random) -> None:
        self.poller = poller
        self.plc = plc
        self.conn: TcpConn | None = None
        self.tid = rng.getrandbits(16)
        self.pos = 0
        polls: list[tuple[int, int, int, int]] = []
        for unit in plc.units:
            for _ in range(rng.randint(2, 5)):
                fc = rng.choice(_READ_FCS)
                if fc in (3, 4):
                    qty = rng.randint(10, 125)
                    addr = rng.randrange(0, REGISTERS - qty) // 10 * 10
                else:
                    qty = rng.randint(8, 256)
                    addr = rng.randrange(0, REGISTERS - qty) // 8 * 8
                polls.append((fc, unit, addr, qty))
        if rng.random() < 0.1:
            polls.append((3, plc.units[0], 4000, 10))  # outside the PLC's memory: exception 02
        self.polls = polls


class ModbusTraffic:
    """Produces Modbus/TCP frames, one exchange per `step()`, appended to `out`."""

    def __init__(self, site: Site, rng: Random, out: deque[bytes]) -> None:
        self.rng = rng
        self.out = out
        pollers = site.role("scada")
        self.identified: set[str] = set()
        self.sessions: list[_Session] = []
        for i, host in enumerate(site.role("plc")):
            plc = _Plc(host, i, rng)
            self.sessions.append(_Session(pollers[i % len(pollers)], plc, rng))
            if len(pollers) > 1 and i % 5 == 0:  # redundant SCADA server polls this PLC too
                self.sessions.append(_Session(pollers[(i + 1) % len(pollers)], plc, rng))

    def step(self) -> None:
        """Append the frames of one exchange (connect, poll, write or close) of a random session."""
        rng = self.rng
        sess = self.sessions[rng.randrange(len(self.sessions))]
        conn = sess.conn
        if conn is None:
            conn = sess.conn = TcpConn(sess.poller, sess.plc.host, PORT, rng)
            self.out.extend(conn.handshake())
            if sess.plc.host.ip not in self.identified:
                self.identified.add(sess.plc.host.ip)
                self._exchange(sess, conn, sess.plc.units[0], b"\x2b\x0e\x01\x00", sess.plc.identity)
            return
        r = rng.random()
        if r < CLOSE_P:
            self.out.extend(conn.close(by_client=True))
            sess.conn = None
        elif r < CLOSE_P + WRITE6_P:
            self._write_single(sess, conn)
        elif r < CLOSE_P + WRITE6_P + WRITE16_P:
            self._write_multiple(sess, conn)
        else:
            self._poll(sess, conn)

    def _exchange(self, sess: _Session, conn: TcpConn, unit: int, req_pdu: bytes, resp_pdu: bytes) -> None:
        tid = sess.tid = (sess.tid + 1) & 0xFFFF
        out = self.out
        out.append(conn.c2s(_MBAP.pack(tid, 0, len(req_pdu) + 1, unit) + req_pdu))
        out.append(conn.s2c(_MBAP.pack(tid, 0, len(resp_pdu) + 1, unit) + resp_pdu))
        if self.rng.random() < ACK_P:
            out.append(conn.ack_from_client())

    def _poll(self, sess: _Session, conn: TcpConn) -> None:
        fc, unit, addr, qty = sess.polls[sess.pos]
        sess.pos = (sess.pos + 1) % len(sess.polls)
        tid = sess.tid = (sess.tid + 1) & 0xFFFF
        plc = sess.plc
        out = self.out
        out.append(conn.c2s(_REQ.pack(tid, 0, 6, unit, fc, addr, qty)))
        if unit == 4 and len(plc.units) == 4:
            pdu = bytes([fc | 0x80, 0x0B])  # gateway: target device failed to respond
        elif fc in (3, 4):
            if addr + qty > REGISTERS:
                pdu = bytes([fc | 0x80, 0x02])
            else:
                regs = plc.holding if fc == 3 else plc.inputs
                k = 2 * (addr + self.rng.randrange(qty)) + 1
                regs[k] = (regs[k] + 1) & 0xFF  # a counter ticks: values drift between polls
                pdu = bytes([fc, 2 * qty]) + regs[2 * addr : 2 * (addr + qty)]
        else:
            bits = plc.coils if fc == 1 else plc.discretes
            nbytes = (qty + 7) // 8
            data = bytearray(bits[addr // 8 : addr // 8 + nbytes])
            if qty % 8:
                data[-1] &= (1 << (qty % 8)) - 1
            pdu = bytes([fc, nbytes]) + data
        out.append(conn.s2c(_MBAP.pack(tid, 0, len(pdu) + 1, unit) + pdu))
        if self.rng.random() < ACK_P:
            out.append(conn.ack_from_client())

    def _write_single(self, sess: _Session, conn: TcpConn) -> None:
        rng = self.rng
        addr = rng.randrange(REGISTERS)
        value = rng.getrandbits(12)
        sess.plc.holding[2 * addr : 2 * addr + 2] = value.to_bytes(2, "big")
        pdu = bytes([6]) + addr.to_bytes(2, "big") + value.to_bytes(2, "big")
        self._exchange(sess, conn, sess.plc.units[0], pdu, pdu)

    def _write_multiple(self, sess: _Session, conn: TcpConn) -> None:
        rng = self.rng
        qty = rng.randint(2, 10)
        addr = rng.randrange(REGISTERS - qty)
        values = rng.randbytes(2 * qty)
        sess.plc.holding[2 * addr : 2 * (addr + qty)] = values
        req = _WRITE_MULTI.pack(16, addr, qty, 2 * qty) + values
        resp = _WRITE_MULTI.pack(16, addr, qty, 0)[:-1]
        self._exchange(sess, conn, sess.plc.units[0], req, resp)
