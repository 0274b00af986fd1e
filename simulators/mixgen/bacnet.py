"""BACnet/IP traffic on UDP 47808: BMS workstations reading building controllers.

Encodings follow ASHRAE 135 (BVLC Annex J, NPDU clause 6, APDU clause 20): Who-Is broadcasts answered by I-Am
broadcasts, unsolicited I-Am, ReadProperty (present-value, device vendor/model/firmware/name) and
ReadPropertyMultiple (present-value, status-flags, units) confirmed requests with their ComplexACKs, and a few
Error PDUs (unknown-property).
"""

from __future__ import annotations

import struct
from collections import deque
from random import Random

from simulators.mixgen.net import Site
from simulators.mixgen.wire import Host, udp_frame

PORT = 47808
_BVLC = struct.Struct(">BBH")
_REAL = struct.Struct(">f")
_OBJID = struct.Struct(">I")

# BACnet vendor ids and names, with a model and firmware per vendor
_VENDORS = (
    (5, "Johnson Controls Inc", "FX-PCG2611", "10.1.0"),
    (8, "Delta Controls", "eBCON", "4.40.0"),
    (24, "Automated Logic Corporation", "OptiFlex G5CE", "7.0.102"),
    (36, "Tridium Inc", "JACE-8000", "4.12.1"),
    (2, "The Trane Company", "Tracer SC+", "5.3.1"),
)
AI, AO, AV, BI, BO, DEVICE = 0, 1, 2, 3, 4, 8
PV, STATUS_FLAGS, UNITS = 85, 111, 117
OBJECT_NAME, VENDOR_NAME, MODEL_NAME, FIRMWARE = 77, 121, 70, 44
_DEVICE_PROPS = (OBJECT_NAME, VENDOR_NAME, MODEL_NAME, FIRMWARE)
_UNITS = (62, 98, 29, 48)  # degrees-celsius, percent, percent-relative-humidity, kilowatts


def _objid(otype: int, instance: int) -> bytes:
    return _OBJID.pack((otype << 22) | instance)


def _ctx_objid(tag: int, otype: int, instance: int) -> bytes:
    return bytes([(tag << 4) | 0x0C]) + _objid(otype, instance)


def _ctx_prop(tag: int, prop: int) -> bytes:
    return bytes([(tag << 4) | 0x09, prop])


def _char_string(text: str) -> bytes:
    raw = b"\x00" + text.encode("utf-8")  # character set 0: UTF-8
    return (bytes([0x70 | len(raw)]) if len(raw) <= 4 else bytes([0x75, len(raw)])) + raw


class _Device:
    """A BACnet controller: its device instance, vendor, objects and their present values."""

    __slots__ = ("host", "iam", "instance", "objects", "strings", "values")

    def __init__(self, host: Host, index: int, rng: Random) -> None:
        self.host = host
        self.instance = 10000 + index
        vendor_id, vendor, model, firmware = _VENDORS[index % len(_VENDORS)]
        self.iam = _npdu_apdu(
            False,
            b"\x10\x00\xc4"
            + _objid(DEVICE, self.instance)
            + b"\x22\x05\xc4\x91\x03\x21"
            + bytes([vendor_id]),
        )
        self.strings = {
            OBJECT_NAME: host.name.upper(),
            VENDOR_NAME: vendor,
            MODEL_NAME: model,
            FIRMWARE: firmware,
        }
        self.objects = [(AI, i) for i in range(1, 9)] + [(AV, i) for i in range(1, 5)]
        self.objects += [(BI, i) for i in range(1, 5)] + [(BO, i) for i in range(1, 3)]
        self.values = {obj: rng.uniform(15.0, 80.0) for obj in self.objects}

    def value(self, obj: tuple[int, int], rng: Random) -> bytes:
        """The application-tagged present value of an object (REAL or enumerated), drifting a little."""
        if obj[0] in (BI, BO):
            return b"\x91\x01" if self.values[obj] > 40.0 else b"\x91\x00"
        v = self.values[obj] = self.values[obj] + rng.uniform(-0.2, 0.2)
        return b"\x44" + _REAL.pack(v)


def _npdu_apdu(expect_reply: bool, apdu: bytes) -> bytes:
    return (b"\x01\x04" if expect_reply else b"\x01\x00") + apdu


def _bvlc(function: int, npdu: bytes) -> bytes:
    return _BVLC.pack(0x81, function, 4 + len(npdu)) + npdu


class BacnetTraffic:
    """Produces BACnet/IP frames, one exchange (or a Who-Is with its I-Am replies) per `step()`."""

    def __init__(self, site: Site, rng: Random, out: deque[bytes]) -> None:
        self.rng = rng
        self.out = out
        self.workstations = site.role("bms")
        self.devices = [_Device(h, i, rng) for i, h in enumerate(site.role("bacnet"))]
        self.broadcast = site.broadcasts["10.20.1"]
        self.invoke = rng.getrandbits(8)

    def step(self) -> None:
        """Append the frames of one BACnet exchange."""
        rng = self.rng
        r = rng.random()
        ws = self.workstations[rng.randrange(len(self.workstations))]
        dev = self.devices[rng.randrange(len(self.devices))]
        if r < 0.005:
            self._who_is(ws)
        elif r < 0.02:
            self.out.append(udp_frame(dev.host, self.broadcast, PORT, PORT, _bvlc(0x0B, dev.iam)))
        elif r < 0.50:
            obj = dev.objects[rng.randrange(len(dev.objects))]
            self._read_property(ws, dev, obj, PV, dev.value(obj, rng))
        elif r < 0.54:
            prop = _DEVICE_PROPS[rng.randrange(len(_DEVICE_PROPS))]
            self._read_property(ws, dev, (DEVICE, dev.instance), prop, _char_string(dev.strings[prop]))
        elif r < 0.56:
            self._unknown_property(ws, dev)
        else:
            self._read_property_multiple(ws, dev)

    def _next_invoke(self) -> int:
        self.invoke = (self.invoke + 1) & 0xFF
        return self.invoke

    def _send(self, src: Host, dst: Host, npdu: bytes) -> None:
        self.out.append(udp_frame(src, dst, PORT, PORT, _bvlc(0x0A, npdu)))

    def _who_is(self, ws: Host) -> None:
        out = self.out
        out.append(udp_frame(ws, self.broadcast, PORT, PORT, _bvlc(0x0B, _npdu_apdu(False, b"\x10\x08"))))
        for dev in self.devices:
            out.append(udp_frame(dev.host, self.broadcast, PORT, PORT, _bvlc(0x0B, dev.iam)))

    def _read_property(self, ws: Host, dev: _Device, obj: tuple[int, int], prop: int, value: bytes) -> None:
        invoke = self._next_invoke()
        ref = _ctx_objid(0, *obj) + _ctx_prop(1, prop)
        self._send(ws, dev.host, _npdu_apdu(True, bytes([0x00, 0x05, invoke, 0x0C]) + ref))
        self._send(
            dev.host, ws, _npdu_apdu(False, bytes([0x30, invoke, 0x0C]) + ref + b"\x3e" + value + b"\x3f")
        )

    def _unknown_property(self, ws: Host, dev: _Device) -> None:
        invoke = self._next_invoke()
        ref = _ctx_objid(0, BI, 1) + _ctx_prop(1, UNITS)  # binary objects have no units
        self._send(ws, dev.host, _npdu_apdu(True, bytes([0x00, 0x05, invoke, 0x0C]) + ref))
        # Error PDU: error-class property (2), error-code unknown-property (32)
        self._send(dev.host, ws, _npdu_apdu(False, bytes([0x50, invoke, 0x0C, 0x91, 0x02, 0x91, 0x20])))

    def _read_property_multiple(self, ws: Host, dev: _Device) -> None:
        rng = self.rng
        invoke = self._next_invoke()
        request = bytearray([0x00, 0x05, invoke, 0x0E])
        ack = bytearray([0x30, invoke, 0x0E])
        start = rng.randrange(len(dev.objects))
        for obj in dev.objects[start : start + rng.randint(1, 3)]:
            analog = obj[0] in (AI, AO, AV)
            props = (PV, STATUS_FLAGS, UNITS) if analog else (PV, STATUS_FLAGS)
            head = _ctx_objid(0, *obj)
            request += head + b"\x1e" + b"".join(_ctx_prop(0, p) for p in props) + b"\x1f"
            ack += head + b"\x1e"
            for p in props:
                if p == PV:
                    value = dev.value(obj, rng)
                elif p == STATUS_FLAGS:
                    value = b"\x82\x04\x00"  # bit string: 4 unused bits, all flags clear
                else:
                    value = bytes([0x91, _UNITS[obj[1] % len(_UNITS)]])
                ack += _ctx_prop(2, p) + b"\x4e" + value + b"\x4f"
            ack += b"\x1f"
        self._send(ws, dev.host, _npdu_apdu(True, bytes(request)))
        self._send(dev.host, ws, _npdu_apdu(False, bytes(ack)))
