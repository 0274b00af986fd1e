"""A simulated BMS controller: a real bacpypes3 BACnet/IP device with a device object and a few points per kind.

`python -m simulators.bacnet_device --address 127.0.0.2/8 --instance 1001 --name CRAH-01 --vendor-id 24
--model "OptiFlex G5CE" --firmware 7.0.102 --kind crah` serves until SIGTERM. One process per device. Kinds: `crah`
(computer-room air handler), `chiller`, `power-meter`, `access-panel`. Every kind has a commandable setpoint at
analog-value,1 (priority array, relinquish default), analog inputs whose values walk slowly with a RNG seeded by the
device instance (deterministic sequence), a binary-value and a multi-state-value. The bacpypes3 application answers
Who-Is, Who-Has, ReadProperty(Multiple), WriteProperty(Multiple), ReadRange and SubscribeCOV (analog, binary and
multi-state objects carry COV criteria).

On loopback give each device its own 127.x.y.z address on port 47808 with a /8 mask: bacpypes3 then also listens on
127.255.255.255:47808 for broadcast Who-Is (see simulators.bms_frontend for the client side).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from dataclasses import dataclass
from random import Random
from typing import Any

from bacpypes3.app import Application
from bacpypes3.basetypes import EngineeringUnits, Segmentation
from bacpypes3.local.analog import AnalogInputObject, AnalogValueObjectCmd
from bacpypes3.local.binary import BinaryInputObject, BinaryValueObject
from bacpypes3.local.device import DeviceObject
from bacpypes3.local.multistate import MultiStateValueObject
from bacpypes3.local.networkport import NetworkPortObject
from bacpypes3.local.object import Object

KINDS = ("crah", "chiller", "power-meter", "access-panel")

# ASHRAE vendor ids and names (as the BACnet vendor-id list and Wireshark spell them): defaults of --vendor-name
VENDOR_NAMES = {
    2: "The Trane Company",
    8: "Delta Controls",
    10: "Schneider Electric",
    24: "Automated Logic Corporation",
    36: "Tridium Inc.",
}


@dataclass(frozen=True, slots=True)
class Analog:
    """One simulated analog input: name, units, starting value, bounds and the largest step of its walk."""

    name: str
    units: str
    value: float
    low: float
    high: float
    step: float


@dataclass(frozen=True, slots=True)
class Profile:
    """The points of one kind of device."""

    description: str
    analogs: tuple[Analog, ...]
    setpoint: tuple[str, str, float]  # name, units, relinquish default
    binary: tuple[str, str]  # name, present value (active/inactive)
    states: tuple[str, tuple[str, ...], int]  # name, state texts, present value (1-based)
    binary_input: tuple[str, str] | None = None


PROFILES: dict[str, Profile] = {
    "crah": Profile(
        "Computer room air handler",
        (
            Analog("Supply Air Temperature", "degreesCelsius", 18.2, 16.0, 21.0, 0.1),
            Analog("Return Air Temperature", "degreesCelsius", 29.4, 26.0, 34.0, 0.2),
            Analog("Return Air Humidity", "percentRelativeHumidity", 45.0, 35.0, 60.0, 0.5),
        ),
        ("Supply Air Temperature Setpoint", "degreesCelsius", 18.0),
        ("Supply Fan Status", "active"),
        ("Operating Mode", ("Off", "Cooling", "Dehumidifying", "Standby"), 2),
    ),
    "chiller": Profile(
        "Water-cooled chiller",
        (
            Analog("Chilled Water Supply Temperature", "degreesCelsius", 7.1, 5.5, 9.0, 0.05),
            Analog("Chilled Water Return Temperature", "degreesCelsius", 12.6, 10.0, 15.0, 0.1),
            Analog("Compressor Load", "percent", 64.0, 20.0, 100.0, 1.5),
        ),
        ("Chilled Water Setpoint", "degreesCelsius", 7.0),
        ("Chiller Run Status", "active"),
        ("Chiller Mode", ("Off", "Mechanical Cooling", "Free Cooling", "Alarm"), 2),
    ),
    "power-meter": Profile(
        "Main switchboard power meter",
        (
            Analog("Active Power", "kilowatts", 412.5, 300.0, 520.0, 4.0),
            Analog("Voltage L1-N", "volts", 230.4, 225.0, 236.0, 0.3),
            Analog("Current L1", "amperes", 596.0, 420.0, 760.0, 6.0),
            Analog("Power Factor", "noUnits", 0.96, 0.90, 0.99, 0.005),
        ),
        ("Demand Limit Setpoint", "kilowatts", 500.0),
        ("Main Breaker Status", "active"),
        ("Metering Mode", ("Normal", "Test", "Maintenance"), 1),
    ),
    "access-panel": Profile(
        "Data hall access control panel",
        (Analog("Panel Enclosure Temperature", "degreesCelsius", 27.5, 22.0, 35.0, 0.2),),
        ("Door 1 Unlock Duration", "seconds", 5.0),
        ("Door 1 Lock", "active"),
        ("Panel Mode", ("Normal", "Lockdown", "Maintenance"), 1),
        ("Door 1 Contact", "inactive"),
    ),
}


@dataclass(frozen=True, slots=True)
class Identity:
    """What the device object says about the device."""

    instance: int
    name: str
    vendor_id: int
    vendor_name: str
    model: str
    firmware: str
    software: str
    location: str
    description: str


def build_device_object(identity: Identity) -> DeviceObject:
    """The device object: identifier, names, vendor, model, firmware, software version, location, description."""
    return DeviceObject(
        objectIdentifier=("device", identity.instance),
        objectName=identity.name,
        vendorIdentifier=identity.vendor_id,
        vendorName=identity.vendor_name,
        modelName=identity.model,
        firmwareRevision=identity.firmware,
        applicationSoftwareVersion=identity.software,
        location=identity.location,
        description=identity.description,
        maxApduLengthAccepted=1476,
        segmentationSupported=Segmentation.segmentedBoth,
    )


def build_points(kind: str) -> list[Object]:
    """The kind's objects: analog-input,1.., analog-value,1 (commandable setpoint), binary-value,1,
    multi-state-value,1 and, for panels, binary-input,1."""
    profile = PROFILES[kind]
    points: list[Object] = []
    for n, analog in enumerate(profile.analogs, start=1):
        points.append(
            AnalogInputObject(
                objectIdentifier=("analog-input", n),
                objectName=analog.name,
                presentValue=analog.value,
                units=EngineeringUnits(analog.units),
                statusFlags=[0, 0, 0, 0],
                eventState="normal",
                outOfService=False,
                covIncrement=analog.step,
                minPresValue=analog.low,
                maxPresValue=analog.high,
            )
        )
    name, units, default = profile.setpoint
    points.append(
        AnalogValueObjectCmd(
            objectIdentifier=("analog-value", 1),
            objectName=name,
            presentValue=default,
            relinquishDefault=default,
            units=EngineeringUnits(units),
            statusFlags=[0, 0, 0, 0],
            eventState="normal",
            outOfService=False,
            covIncrement=0.1,
        )
    )
    bname, bvalue = profile.binary
    points.append(
        BinaryValueObject(
            objectIdentifier=("binary-value", 1),
            objectName=bname,
            presentValue=bvalue,
            statusFlags=[0, 0, 0, 0],
            eventState="normal",
            outOfService=False,
        )
    )
    if profile.binary_input is not None:
        iname, ivalue = profile.binary_input
        points.append(
            BinaryInputObject(
                objectIdentifier=("binary-input", 1),
                objectName=iname,
                presentValue=ivalue,
                polarity="normal",
                statusFlags=[0, 0, 0, 0],
                eventState="normal",
                outOfService=False,
            )
        )
    mname, texts, state = profile.states
    points.append(
        MultiStateValueObject(
            objectIdentifier=("multi-state-value", 1),
            objectName=mname,
            presentValue=state,
            numberOfStates=len(texts),
            stateText=list(texts),
            statusFlags=[0, 0, 0, 0],
            eventState="normal",
            outOfService=False,
        )
    )
    return points


def build_application(identity: Identity, points: list[Object], address: str) -> Application:
    """A bacpypes3 application on `address` (e.g. `127.0.0.2/8` or `127.0.0.2/8:47808`) serving the device."""
    network_port = NetworkPortObject(
        address,
        objectIdentifier=("network-port", 1),
        objectName="NetworkPort-1",
        networkNumber=0,
        networkNumberQuality="unknown",
    )
    return Application.from_object_list([build_device_object(identity), network_port, *points])


class Walker:
    """Moves a kind's analog inputs (from `build_points`) by small seeded random steps within their bounds."""

    def __init__(self, points: list[Object], kind: str, seed: int) -> None:
        self.rng = Random(seed)
        inputs = [p for p in points if isinstance(p, AnalogInputObject)]
        self.points: list[tuple[Any, Analog]] = list(zip(inputs, PROFILES[kind].analogs, strict=True))

    def step(self) -> None:
        """One step of every analog input (values rounded to 3 decimals, clamped to the point's bounds)."""
        for obj, analog in self.points:
            value = float(obj.presentValue) + self.rng.uniform(-analog.step, analog.step)
            obj.presentValue = round(min(analog.high, max(analog.low, value)), 3)


async def serve(identity: Identity, kind: str, address: str, interval: float, seed: int) -> None:
    """Serve until SIGTERM or SIGINT, stepping the analog values every `interval` seconds (0: never)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    points = build_points(kind)
    app = build_application(identity, points, address)
    walker = Walker(points, kind, seed)
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval if interval > 0 else None)
            except TimeoutError:
                walker.step()
    finally:
        app.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--address", default="127.0.0.2/8", help="IPv4 address[/mask][:port] to serve on")
    parser.add_argument("--instance", type=int, default=1001, help="device instance number")
    parser.add_argument("--name", default="CRAH-01", help="device object name")
    parser.add_argument("--vendor-id", type=int, default=24)
    parser.add_argument("--vendor-name", default=None, help="default: the ASHRAE name of --vendor-id")
    parser.add_argument("--model", default="OptiFlex G5CE")
    parser.add_argument("--firmware", default="7.0.102")
    parser.add_argument("--software", default="1.4.2", help="application-software-version")
    parser.add_argument("--location", default="Data Hall 1")
    parser.add_argument("--description", default=None, help="default: the kind's description")
    parser.add_argument("--kind", choices=KINDS, default="crah")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between value steps (0: fixed values)")
    parser.add_argument("--seed", type=int, default=None, help="RNG seed (default: the device instance)")
    return parser.parse_args(argv)


def identity_from_args(args: argparse.Namespace, description: str | None = None) -> Identity:
    """A device identity from command-line arguments (instance, name, vendor, model, firmware, ...); the vendor
    name from the vendor id when not given, the description from the device kind's profile when not given."""
    return Identity(
        instance=args.instance,
        name=args.name,
        vendor_id=args.vendor_id,
        vendor_name=args.vendor_name or VENDOR_NAMES.get(args.vendor_id, f"Vendor {args.vendor_id}"),
        model=args.model,
        firmware=args.firmware,
        software=args.software,
        location=args.location,
        description=description or PROFILES[args.kind].description,
    )


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    args = parse_args(argv)
    identity = identity_from_args(args, args.description)
    seed = args.instance if args.seed is None else args.seed
    asyncio.run(serve(identity, args.kind, args.address, args.interval, seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
