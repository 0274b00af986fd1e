"""The OT control zone: PLCs running a seeded process model, and SCADA/HMI pollers reading them over Modbus/TCP.

A cooling PLC (CRAH/chiller loop) keeps, in holding registers 0-19: supply and return water temperature (x10 degC),
flow (x10 l/s), pump speed %, the chilled-water setpoint (x10 degC, register 4), fan speed %, valve %, alarm word,
runtime hours (32 bit, 8-9), and configuration words; coils 0-7: pump A/B run (lead/lag swapped daily at the first
shift change), compressor stages, alarm, remote mode. A power PLC keeps phase voltages and currents (x10), kW,
frequency (x100), power factor (x1000) and a kWh counter; coils are breaker states. Values follow the IT load: a
diurnal curve plus AR(1) noise. Every PLC answers FC43/14 with its vendor, product code and firmware revision, and
answers exception 0x0B for unit ids it does not serve, 0x02 for addresses outside its memory: the bytes a pymodbus
server with the same memory sends (tests/simulators/test_wire_pymodbus.py; simulators/live/plc_model.py).

Each SCADA server holds one long-lived session per PLC: FC43 on connect, then every `poll_seconds` FC3 (0, 20)
and FC1 (0, 16), FC4 every sixth cycle. It writes (FC6 setpoint, FC5 pump swap) only inside maintenance windows.
"""

from __future__ import annotations

import math
import struct
from random import Random

from simulators.mixgen.net import PLC_VENDORS
from simulators.mixgen.wire import Host, TcpConn
from simulators.site.capture import SiteCapture
from simulators.site.schedule import DAY, Rhythm

__all__ = ["HOLDING", "SETPOINT", "OtPlant", "Plc", "ScadaPoller", "identity_pdu"]

HOLDING = 100
COILS = 32
INPUTS = 16
SETPOINT = 4  # chilled-water setpoint register of a cooling PLC
_MBAP = struct.Struct(">HHHB")
_ACK_P = 0.5


def identity_pdu(vendor: str, product: str, revision: str) -> bytes:
    """The PDU of an FC43/14 basic device identification response (objects 0-2), conformity level 0x83 (basic,
    stream and individual access) as pymodbus answers."""
    pdu = bytearray([0x2B, 0x0E, 0x01, 0x83, 0x00, 0x00, 0x03])
    for obj_id, text in enumerate((vendor, product, revision)):
        raw = text.encode("ascii")
        pdu += bytes([obj_id, len(raw)]) + raw
    return bytes(pdu)


def it_load(t: float) -> float:
    """The data hall's IT load, 0..1: a diurnal curve peaking mid-afternoon UTC."""
    hour = (t % DAY) / 3600.0
    return 0.6 + 0.2 * math.sin(2 * math.pi * (hour - 9.0) / 24.0)


class Plc:
    """A PLC: identity, unit ids, memory and the process that moves its values."""

    def __init__(self, host: Host, kind: str, vendor_index: int, rng: Random) -> None:
        self.host = host
        self.kind = kind
        self.rng = rng
        self.vendor, self.product, self.revision, _oui = PLC_VENDORS[vendor_index % len(PLC_VENDORS)]
        self.units = (1, 2, 3) if self.vendor == "Moxa" else ((255,) if vendor_index % 4 == 1 else (1,))
        self.holding = [0] * HOLDING
        self.inputs = [0] * INPUTS
        self.coils = 0
        self.noise = [0.0] * 8
        self.setpoint = 180 if kind == "cooling" else 0
        self.energy = rng.randrange(100_000, 900_000)
        self.runtime = rng.randrange(5_000, 40_000)
        for i in range(10, 20):
            self.holding[i] = rng.randrange(0, 1000)
        self.coils = 0b10011 if kind == "cooling" else 0b01111111
        self.update(0.0)

    @property
    def identity(self) -> bytes:
        """The FC43/14 response PDU for the current firmware."""
        return identity_pdu(self.vendor, self.product, self.revision)

    def update(self, t: float) -> None:
        """Move the process to packet time `t`."""
        rng = self.rng
        noise = self.noise
        for i in range(len(noise)):
            noise[i] = 0.9 * noise[i] + rng.gauss(0.0, 0.3)
        load = it_load(t)
        h = self.holding
        if self.kind == "cooling":
            h[SETPOINT] = self.setpoint
            supply = self.setpoint / 10 + 0.8 * (load - 0.5) + 0.2 * noise[0]
            h[0] = round(supply * 10)
            h[1] = round((supply + 4.0 + 5.0 * load + 0.2 * noise[1]) * 10)
            h[2] = round((18 + 20 * load + noise[2]) * 10)
            h[3] = max(0, min(100, round(40 + 50 * load + noise[3])))
            h[5] = max(0, min(100, round(35 + 55 * load + noise[4])))
            h[6] = max(0, min(100, round(30 + 60 * load + 2 * noise[5])))
            h[7] = 0
            h[8], h[9] = divmod(self.runtime + int(t // 3600) % 1000, 65536)
        else:
            for p in range(3):
                h[p] = round((230 + noise[p]) * 10)
                h[3 + p] = round((60 + 50 * load + 2 * noise[3 + p]) * 10)
            kw = 3 * 230 * (60 + 50 * load) * 0.95 / 1000
            h[6] = round(kw)
            h[7] = round((50 + 0.01 * noise[6]) * 100)
            h[8] = round(950 + 5 * noise[7])
            self.energy += round(kw * 5 / 3600) or 1
            h[9], h[10] = divmod(self.energy % (1 << 32), 65536)
        for i in range(INPUTS):
            self.inputs[i] = (h[i] + 7 * i) & 0xFFFF
        if self.kind == "cooling":  # lead/lag pumps swap every day
            lead = int(t // DAY) % 2
            self.coils = (self.coils & ~0b11) | (1 << lead)

    def answer(self, unit: int, pdu: bytes) -> bytes:
        """The response PDU to a request PDU for `unit` (exceptions for unknown units, functions, addresses)."""
        fc = pdu[0]
        if unit not in self.units:
            return bytes([fc | 0x80, 0x0B])
        if fc == 0x2B:
            return self.identity
        if fc in (3, 4) and len(pdu) >= 5:
            addr, qty = struct.unpack_from(">HH", pdu, 1)
            mem = self.holding if fc == 3 else self.inputs
            if not 1 <= qty <= 125 or addr + qty > len(mem):
                return bytes([fc | 0x80, 0x02])
            return bytes([fc, 2 * qty]) + struct.pack(f">{qty}H", *mem[addr : addr + qty])
        if fc in (1, 2) and len(pdu) >= 5:
            addr, qty = struct.unpack_from(">HH", pdu, 1)
            if not 1 <= qty <= 2000 or addr + qty > COILS:
                return bytes([fc | 0x80, 0x02])
            bits = (self.coils if fc == 1 else self.coils ^ 0xFFFF) >> addr & ((1 << qty) - 1)
            n = (qty + 7) // 8
            return bytes([fc, n]) + bits.to_bytes(n, "little")
        if fc == 6 and len(pdu) >= 5:
            addr, value = struct.unpack_from(">HH", pdu, 1)
            if addr >= HOLDING:
                return bytes([fc | 0x80, 0x02])
            self.holding[addr] = value
            if addr == SETPOINT and self.kind == "cooling":
                self.setpoint = value
            return pdu[:5]
        if fc == 16 and len(pdu) >= 6:
            addr, qty, n = struct.unpack_from(">HHB", pdu, 1)
            if not 1 <= qty <= 123 or n != 2 * qty or len(pdu) < 6 + n:
                return bytes([fc | 0x80, 0x03])
            if addr + qty > HOLDING:
                return bytes([fc | 0x80, 0x02])
            self.holding[addr : addr + qty] = struct.unpack_from(f">{qty}H", pdu, 6)
            return pdu[:5]
        if fc == 5 and len(pdu) >= 5:
            addr, value = struct.unpack_from(">HH", pdu, 1)
            if addr >= COILS:
                return bytes([fc | 0x80, 0x02])
            self.coils = self.coils | (1 << addr) if value == 0xFF00 else self.coils & ~(1 << addr)
            return pdu[:5]
        return bytes([fc | 0x80, 0x01])


def exchange(cap: SiteCapture, conn: TcpConn, tid: int, unit: int, pdu: bytes, plc: Plc, ack_p: float = _ACK_P) -> None:
    """One Modbus/TCP request from the client and the PLC's answer (the client ACKs it with probability ack_p)."""
    cap.add(conn.c2s(_MBAP.pack(tid & 0xFFFF, 0, len(pdu) + 1, unit) + pdu))
    resp = plc.answer(unit, pdu)
    cap.add(conn.s2c(_MBAP.pack(tid & 0xFFFF, 0, len(resp) + 1, unit) + resp))
    if cap.rng.random() < ack_p:
        cap.add(conn.ack_from_client())


class OtPlant:
    """The PLCs of the site by host name."""

    def __init__(self, plcs: list[Plc]) -> None:
        self.plcs = plcs
        self.by_ip = {p.host.ip: p for p in plcs}

    def cooling(self) -> list[Plc]:
        """The cooling PLCs (else all of them)."""
        return [p for p in self.plcs if p.kind == "cooling"] or self.plcs


class _Link:
    __slots__ = ("conn", "due", "n", "plc", "tid")

    def __init__(self, plc: Plc, due: float, tid: int) -> None:
        self.plc = plc
        self.conn: TcpConn | None = None
        self.due = due
        self.n = 0
        self.tid = tid


class ScadaPoller:
    """A SCADA/HMI server polling its PLCs at a fixed period, writing only in maintenance windows."""

    def __init__(self, host: Host, plcs: list[Plc], period: float, rhythm: Rhythm, rng: Random, t0: float) -> None:
        self.host = host
        self.period = period
        self.rhythm = rhythm
        self.rng = rng
        self.links = [_Link(p, t0 + 2.0 + rng.random() * period, rng.getrandbits(16)) for p in plcs]
        self.wrote: set[tuple[str, int]] = set()

    def plc_rebooted(self, cap: SiteCapture, plc: Plc, t: float) -> None:
        """The PLC restarts at `t` (a firmware update): it closes the session; the poller reconnects a minute later."""
        for link in self.links:
            if link.plc is plc and link.conn is not None:
                cap.at(t)
                cap.add(*link.conn.close(by_client=False))
                link.conn = None
                link.due = max(link.due, t + 60.0)

    def run(self, cap: SiteCapture, t0: float, t1: float) -> None:
        """Every poll cycle due in [t0, t1)."""
        rng = self.rng
        for link in self.links:
            while link.due < t1:
                t = link.due
                link.due = t + self.period + rng.uniform(-0.02, 0.02)
                if t < t0:
                    continue
                self._cycle(cap, link, t)

    def _cycle(self, cap: SiteCapture, link: _Link, t: float) -> None:
        plc = link.plc
        plc.update(t)
        cap.at(t)
        unit = plc.units[0]
        if link.conn is None:
            link.conn = TcpConn(self.host, plc.host, 502, cap.rng)
            cap.add(*link.conn.handshake())
            link.tid += 1
            exchange(cap, link.conn, link.tid, unit, b"\x2b\x0e\x01\x00", plc, 1.0)
        conn = link.conn
        link.n += 1
        polls = [b"\x03\x00\x00\x00\x14", b"\x01\x00\x00\x00\x10"]
        if link.n % 6 == 0:
            polls.append(b"\x04\x00\x00\x00\x08")
        for pdu in polls:
            link.tid += 1
            exchange(cap, conn, link.tid, unit, pdu, plc)
        if self.rhythm.in_maintenance(t):
            self._maintenance_writes(cap, link, t)

    def _maintenance_writes(self, cap: SiteCapture, link: _Link, t: float) -> None:
        key = (link.plc.host.name, self.rhythm.day_of(t))
        if key in self.wrote or self.rng.random() > 0.02:
            return
        self.wrote.add(key)
        plc = link.plc
        assert link.conn is not None
        if plc.kind == "cooling":
            value = max(160, min(200, plc.setpoint + self.rng.choice((-5, 5))))
            pdus = [bytes([6]) + struct.pack(">HH", SETPOINT, value), bytes([5]) + struct.pack(">HH", 2, 0xFF00)]
        else:
            pdus = [bytes([5]) + struct.pack(">HH", 7, 0xFF00)]
        for pdu in pdus:
            link.tid += 1
            exchange(cap, link.conn, link.tid, plc.units[0], pdu, plc, 1.0)
