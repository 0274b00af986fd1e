"""IT-to-OT pivots and device control: an IT, VPN or DMZ host speaking an industrial protocol to an OT or BMS device,
writing to one, and commands that restart a device or silence it (from anyone).

Zones come from the config (`zones:` with their domains); without zones this detector has nothing to judge by and
stays quiet. The Purdue rule it applies: IT, VPN and DMZ hosts do not talk Modbus or BACnet to level 0-2 devices
directly; an HMI or a jump host in the OT zone does. A write or command from such a host is the incident this
product exists for (a VPN user's machine writing to a cooling-plant controller). Device control: BACnet
ReinitializeDevice and DeviceCommunicationControl, Modbus FC8 restart-communications and force-listen-only, Modbus
program/firmware functions. Program transfers: BACnet AtomicWriteFile (a download into the controller) and
AtomicReadFile (an upload of its files), from anyone. (The learned allow-lists of the behaviour issue refine "first
time" and "who usually writes"; this is the policy part.) One alert per source, destination zone, protocol and note in
the suppression interval: a Who-Is sweep of a BMS network is one alert, its repeats are counted.
"""

from __future__ import annotations

from typing import ClassVar

from appliance.detectors.base import AlertContext, Note, notes_of
from appliance.model import Flow, ProtocolEvent

IT_DOMAINS = frozenset({"IT", "VPN", "DMZ"})
OT_DOMAINS = frozenset({"OT", "BMS"})
INDUSTRIAL = frozenset({"modbus", "bacnet", "dnp3", "s7comm", "enip", "cip", "iec104", "opcua"})
WRITES = frozenset({"write", "command"})
BACNET_CONTROL = {"reinitialize_device": "T0816", "device_communication_control": "T0814"}
MODBUS_CONTROL = frozenset({"RESTART_COMMUNICATIONS_OPTION", "FORCE_LISTEN_ONLY_MODE"})
BACNET_FILES = {"atomic_write_file": ("program_download", "into"), "atomic_read_file": ("program_upload", "from")}


def _where(zone: object) -> str:
    name, domain = getattr(zone, "name", None), getattr(zone, "domain", None)
    return f"{name}, {domain}" if name else "no zone"


class OtPivotDetector:
    """Zone crossings into OT by industrial protocols, and device-control commands."""

    name: ClassVar[str] = "ot_pivot"
    notes: ClassVar[dict[str, Note]] = notes_of(
        Note(
            "it_to_ot", "high", 75, ("T0886",),
            "an IT, VPN or DMZ host speaking an industrial protocol to an OT or BMS device",
        ),
        Note(
            "it_to_ot_write", "critical", 95, ("T0886", "T0855", "T0836"),
            "an IT, VPN or DMZ host writing to or commanding an OT or BMS device",
        ),
        Note(
            "device_control", "high", 80, ("T0816", "T0814", "T0858"),
            "a command that restarts a device, stops its communication or changes its mode",
        ),
        Note("program_download", "high", 80, ("T0843",),
             "a file written into a controller (BACnet AtomicWriteFile): a program or configuration download"),
        Note("program_upload", "medium", 55, ("T0845",),
             "a file read from a controller (BACnet AtomicReadFile): its program or configuration uploaded"),
    )  # fmt: skip
    event_protocols: ClassVar[frozenset[str]] = INDUSTRIAL
    wants_flows: ClassVar[bool] = False

    def __init__(self) -> None:
        self._pairs: dict[tuple[str, str], bool] = {}  # (src, dst) -> it crosses from IT/VPN/DMZ into OT/BMS

    def _crossing(self, src: str, dst: str, ctx: AlertContext) -> bool:
        key = (src, dst)
        known = self._pairs.get(key)
        if known is None:
            inventory = ctx.inventory
            zs = inventory.zone_of(src) if inventory is not None else None
            zd = inventory.zone_of(dst) if inventory is not None else None
            known = (zs is not None and zd is not None and zs.domain in IT_DOMAINS and zd.domain in OT_DOMAINS)
            if len(self._pairs) >= 65536:
                self._pairs.clear()
            self._pairs[key] = known
        return known

    def on_event(self, ev: ProtocolEvent, ctx: AlertContext) -> None:
        """Judge one industrial-protocol request."""
        if ev.kind != "request" or not ev.src or not ev.dst:
            return
        self._control(ev, ctx)
        if not self._crossing(ev.src, ev.dst, ctx):
            return
        inventory = ctx.inventory
        assert inventory is not None
        op_class = inventory.op_class(ev.protocol, ev.op)
        write = op_class in WRITES
        note = "it_to_ot_write" if write else "it_to_ot"
        zs, zd = inventory.zone_of(ev.src), inventory.zone_of(ev.dst)
        key = f"{ev.src}/{getattr(zd, 'name', '')}/{ev.protocol}"  # one alert per source, zone and protocol
        if not ctx.fresh(self, note, key, ev.ts):
            return
        what = "wrote to" if write else "spoke to"
        ctx.alert(
            self, note, ev.ts, ev.src, assets=(ev.src, ev.dst), uids=(ev.uid,) if ev.uid else (), key=key,
            explanation=(
                f"{ev.src} ({_where(zs)}) {what} {ev.dst} ({_where(zd)}) with {ev.protocol} {ev.op}: hosts of IT, "
                f"VPN and DMZ zones do not speak industrial protocols to OT and BMS devices"
            ),
            details={"protocol": ev.protocol, "op": ev.op, "op_class": op_class, "dst": ev.dst,
                     "src_zone": getattr(zs, "name", None), "dst_zone": getattr(zd, "name", None)},
        )  # fmt: skip

    def _control(self, ev: ProtocolEvent, ctx: AlertContext) -> None:
        """Device-control commands, whoever sends them."""
        f = ev.fields
        if ev.protocol == "bacnet" and ev.op in BACNET_FILES:
            self._file(ev, ctx)
            return
        if ev.protocol == "bacnet" and ev.op in BACNET_CONTROL:
            detail = f.get("device_state") or f.get("enable_disable") or ""
        elif ev.protocol == "modbus" and (f.get("request_subfunction_code") in MODBUS_CONTROL
                                          or ev.op.startswith(("program_", "firmware_"))):  # fmt: skip
            detail = f.get("request_subfunction_code") or ev.op
        else:
            return
        key = f"{ev.src}/{ev.dst}/{ev.op}"
        if not ctx.fresh(self, "device_control", key, ev.ts):
            return
        ctx.alert(
            self, "device_control", ev.ts, ev.src, assets=(ev.src, ev.dst), uids=(ev.uid,) if ev.uid else (),
            key=key,
            explanation=f"{ev.src} sent {ev.protocol} {ev.op} ({detail or 'no detail'}) to {ev.dst}",
            details={"protocol": ev.protocol, "op": ev.op, "detail": detail},
        )  # fmt: skip

    def _file(self, ev: ProtocolEvent, ctx: AlertContext) -> None:
        """A BACnet file transfer into or out of a device."""
        note, way = BACNET_FILES[ev.op]
        key = f"{ev.src}/{ev.dst}/{ev.op}"
        if not ctx.fresh(self, note, key, ev.ts):
            return
        f = ev.fields
        obj = f.get("file_object") or "a file object"
        ctx.alert(
            self, note, ev.ts, ev.src, assets=(ev.src, ev.dst), uids=(ev.uid,) if ev.uid else (), key=key,
            explanation=(f"{ev.src} sent bacnet {ev.op} {way} {ev.dst} ({obj}, from position "
                         f"{f.get('file_start_position', '?')})"),
            details={"protocol": ev.protocol, "op": ev.op, "file_object": f.get("file_object"),
                     "file_start_position": f.get("file_start_position")},
        )  # fmt: skip

    def on_flow(self, flow: Flow, ctx: AlertContext) -> None:
        """Not used: judged on events."""

    def on_tick(self, now: float, ctx: AlertContext) -> None:
        """No windows to close."""
