"""The live rendering of an offline BACnet controller model (simulators.site.bms.BmsDevice) as bacpypes3 objects.

One description, two renderings: the offline synthesis encodes a BmsDevice's answers by hand
(simulators.site.bacnet_msgs); the live site serves the very same device with bacpypes3. `build_device(model)` gives
the device object (instance, name, vendor, model, firmware, application version; no segmentation, max APDU 1476) and
one bacpypes3 object per model object with the same identifier, name, units and value: analog inputs, commandable
analog values (the setpoints, relinquish default = the model's value), binary inputs, commandable binary outputs
and the weekly occupancy schedule (occupied 07:00-19:00 on weekdays). `LiveModel.step(t)` moves the analog inputs
and the schedule as the offline process does (simulators.site.bms.BmsDevice.update) and copies them in.

No network-port object is added: the object list is the model's (device first, then its objects in order), and the
link layer is bound by hand (`bind_ipv4`), as bacpypes3 would do for a network-port object.

`SiteDevice` is the bacpypes3 application of a live controller, with the two control services the offline model
answers: DeviceCommunicationControl (bacpypes3's own state machine then drops what it must: `disable` silences the
device but for DCC and ReinitializeDevice, `disable-initiation` its notifications) and ReinitializeDevice (a
SimpleACK, then `restart_seconds` of silence with the COV subscriptions lost, then an I-Am broadcast), as offline.
"""

from __future__ import annotations

import asyncio
from random import Random
from typing import Any

from bacpypes3.apdu import DeviceCommunicationControlRequest, ReinitializeDeviceRequest, SimpleAckPDU
from bacpypes3.app import Application
from bacpypes3.basetypes import (
    DailySchedule,
    DateRange,
    EngineeringUnits,
    Polarity,
    Segmentation,
    TimeValue,
)
from bacpypes3.ipv4.link import NormalLinkLayer
from bacpypes3.local.analog import AnalogInputObject, AnalogValueObjectCmd
from bacpypes3.local.binary import BinaryInputObject, BinaryOutputObject
from bacpypes3.local.device import DeviceObject
from bacpypes3.local.object import Object
from bacpypes3.local.schedule import ScheduleObject
from bacpypes3.pdu import IPv4Address, LocalBroadcast
from bacpypes3.primitivedata import Date, Enumerated, ObjectIdentifier, Time

from simulators.mixgen.wire import Host
from simulators.site import bacnet_msgs as m
from simulators.site.bms import BmsDevice, BObject

__all__ = ["LiveModel", "SiteDevice", "bind_ipv4", "build_device", "cov_increment", "model_from_spec"]

_FLAGS = [0, 0, 0, 0]
_OCCUPIED = ((7, 1), (19, 0))  # simulators.site.bms.weekly_schedule: 07:00 occupied, 19:00 unoccupied


def _binary(value: float) -> str:
    return "active" if value else "inactive"


def _schedule(o: BObject) -> ScheduleObject:
    days = []
    for day in range(7):
        slots = [TimeValue(time=Time((hour, 0, 0, 0)), value=Enumerated(value)) for hour, value in _OCCUPIED]
        days.append(DailySchedule(daySchedule=slots if day < 5 else []))
    return ScheduleObject(
        objectIdentifier=("schedule", o.instance),
        objectName=o.name,
        presentValue=Enumerated(int(o.value)),
        effectivePeriod=DateRange(startDate=Date((0, 1, 1, 255)), endDate=Date((254, 12, 31, 255))),  # always
        weeklySchedule=days,
        scheduleDefault=Enumerated(0),
        listOfObjectPropertyReferences=[],
        priorityForWriting=16,
        statusFlags=_FLAGS,
        reliability="noFaultDetected",
        outOfService=False,
    )


def cov_increment(o: BObject) -> float:
    """The change of an analog input that makes a COV notification (the offline front end's threshold)."""
    return max(o.cov, 0.5)


def _object(o: BObject) -> Object:
    """One bacpypes3 object for one model object."""
    common: dict[str, Any] = {"objectName": o.name, "statusFlags": _FLAGS, "eventState": "normal",
                              "outOfService": False}  # fmt: skip
    if o.otype == m.AI:
        return AnalogInputObject(objectIdentifier=("analog-input", o.instance), presentValue=float(o.value),
                                 units=EngineeringUnits(o.units), covIncrement=cov_increment(o), **common)  # fmt: skip
    if o.otype == m.AV:
        return AnalogValueObjectCmd(objectIdentifier=("analog-value", o.instance), presentValue=float(o.value),
                                    relinquishDefault=float(o.value), units=EngineeringUnits(o.units),
                                    covIncrement=0.1, **common)  # fmt: skip
    if o.otype == m.BI:
        return BinaryInputObject(objectIdentifier=("binary-input", o.instance), presentValue=_binary(o.value),
                                 polarity=Polarity.normal, **common)  # fmt: skip
    if o.otype == m.BO:
        return BinaryOutputObject(objectIdentifier=("binary-output", o.instance), presentValue=_binary(o.value),
                                  relinquishDefault=_binary(o.value), polarity=Polarity.normal, **common)  # fmt: skip
    if o.otype == m.SCHEDULE:
        return _schedule(o)
    raise ValueError(f"{o.name}: no live rendering of BACnet object type {o.otype}")


def build_device(model: BmsDevice) -> tuple[DeviceObject, list[Object]]:
    """The device object and the objects of an offline controller model."""
    device = DeviceObject(
        objectIdentifier=("device", model.instance),
        objectName=model.host.name.upper(),
        vendorIdentifier=model.vendor_id,
        vendorName=model.vendor,
        modelName=model.model,
        firmwareRevision=model.firmware,
        applicationSoftwareVersion=f"{model.kind}-app {model.firmware}",
        maxApduLengthAccepted=1476,
        segmentationSupported=Segmentation.noSegmentation,
    )
    return device, [_object(o) for o in model.objects]


def bind_ipv4(app: Application, address: str) -> None:
    """Bind a BACnet/IP (Annex J, normal mode) link layer on `address` (`ip/prefix[:port]`) to the application."""
    local = IPv4Address(address)
    link = NormalLinkLayer(local)
    app.link_layers[ObjectIdentifier(("network-port", 1))] = link
    app.nsap.bind(link, address=local)


def model_from_spec(name: str, kind: str, index: int, seed: int, ip: str = "0.0.0.0") -> BmsDevice:
    """The offline model of a controller from its description (the live plan's): same seed, same instance."""
    return BmsDevice(Host(name, "bacnet", ip, b"\x00" * 6, 64, Random(0)), kind, index, Random(seed))


class LiveModel:
    """Moves the live objects as the offline model moves: analog inputs follow the IT load, the schedule the clock."""

    def __init__(self, model: BmsDevice, objects: list[Object]) -> None:
        self.model = model
        self.pairs = list(zip(model.objects, objects, strict=True))

    def step(self, t: float) -> None:
        """The model's values at wall-clock time `t` (UTC epoch), copied into the analog inputs."""
        hour = (t % 86400.0) / 3600.0
        weekday = (int(t // 86400.0) + 3) % 7  # 1970-01-01 was a Thursday
        self.model.update(t, weekday < 5 and 7 <= hour < 19)
        self.sync()

    def sync(self) -> None:
        """Copy the model's analog input and binary input values into the objects."""
        for o, obj in self.pairs:
            if o.otype == m.AI:
                obj.presentValue = float(o.value)
            elif o.otype == m.BI:
                obj.presentValue = _binary(o.value)


class SiteDevice(Application):
    """A live controller's application: bacpypes3's services plus DeviceCommunicationControl and ReinitializeDevice
    with the offline model's after-effects."""

    restart_seconds = 25.0
    _comm_handle: asyncio.TimerHandle | None = None

    def set_communication(self, state: str) -> None:
        """Set bacpypes3's DCC state: `enable`, `disable` or `disableInitiation`."""
        self.asap.dccEnableDisable = state
        if state == "enable" and self._comm_handle is not None:
            self._comm_handle.cancel()
            self._comm_handle = None

    async def do_DeviceCommunicationControlRequest(self, apdu: DeviceCommunicationControlRequest) -> None:
        """Acknowledge, then enable or disable communication (for `timeDuration` minutes when given)."""
        await self.response(SimpleAckPDU(context=apdu))
        state = {"disable": "disable", "disable-initiation": "disableInitiation"}.get(str(apdu.enableDisable), "enable")
        self.set_communication(state)
        if state != "enable" and apdu.timeDuration:
            self._comm_handle = asyncio.get_running_loop().call_later(apdu.timeDuration * 60.0,
                                                                      self.set_communication, "enable")  # fmt: skip

    async def do_ReinitializeDeviceRequest(self, apdu: ReinitializeDeviceRequest) -> None:
        """Acknowledge, then restart: silent for `restart_seconds`, COV subscriptions lost, then an I-Am."""
        await self.response(SimpleAckPDU(context=apdu))
        self.set_communication("disable")
        detections: dict[Any, Any] = getattr(self, "_cov_detections", {})
        for detection in list(detections.values()):
            for cov in list(detection.cov_subscriptions):
                self.cancel_subscription(cov)
        asyncio.get_running_loop().call_later(self.restart_seconds, self._restarted)

    def _restarted(self) -> None:
        self.set_communication("enable")
        self.i_am(address=LocalBroadcast())
