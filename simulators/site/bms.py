"""The BMS zone: BACnet/IP controllers (CRAH/CRAC units, chillers, power meters, access-control panels) and the
front end that polls them.

Each controller has a device object (name, vendor, model, firmware), analog inputs that follow the IT load,
analog-value setpoints (writable, with a priority array), binary inputs/outputs and, for HVAC and access control,
a schedule object (occupied 07:00-19:00 on workdays). The front end sends a Who-Is at start (every controller
answers I-Am), reads each device object once (ReadPropertyMultiple) and its weekly schedule, subscribes to COV on
the analog inputs (unconfirmed, 3600 s lifetime, renewed hourly) and on door contacts (confirmed), polls present
values with ReadPropertyMultiple every `poll_seconds`, and makes a few operator setpoint writes (WriteProperty,
priority 8) in office hours. Every message is what a bacpypes3 peer puts on the wire (tests/simulators/
test_wire_bacpypes3.py): the I-Ams answer the Who-Is by unicast, each SubscribeCOV (new or renewed) is followed by a
notification of the current value, and a request left unanswered is sent again three times, 3 s apart.

A controller's communication can be cut: after a DeviceCommunicationControl `disable` it answers nothing but DCC and
ReinitializeDevice and sends nothing until the duration is over (`disable-initiation`: it still answers, but sends
no notifications); after a ReinitializeDevice it is silent while it restarts, loses its COV subscriptions (until the
front end renews them) and announces itself with an I-Am. The requests it leaves unanswered are kept (`missed`).
"""

from __future__ import annotations

from random import Random

from simulators.mixgen.wire import Host, udp_frame
from simulators.site import bacnet_msgs as m
from simulators.site.capture import SiteCapture
from simulators.site.ot import it_load
from simulators.site.schedule import HOUR, Rhythm

__all__ = ["BObject", "BmsDevice", "BmsFrontEnd"]

PORT = 47808
APDU_TIMEOUT, APDU_RETRIES = 3.0, 3  # bacpypes3's defaults: a confirmed request is sent up to four times
COV_LIFETIME = 3600
_VENDORS = {
    "crah": (5, "Johnson Controls Inc", "FX-PCG2611", "10.1.0"),
    "crac": (8, "Delta Controls", "eBCON", "4.40.0"),
    "chiller": (2, "The Trane Company", "Tracer UC800", "6.10.2"),
    "power_meter": (10, "Schneider Electric", "PowerLogic PM5560", "2.7.4"),
    "access_control": (24, "Automated Logic Corporation", "OptiFlex G5CE", "7.0.102"),
}
# (object type, suffix, units, base value, load gain, COV increment)
_OBJECTS: dict[str, list[tuple[int, str, int, float, float, float]]] = {
    "crah": [(m.AI, "SAT", 62, 18.0, 3.0, 0.5), (m.AI, "RAT", 62, 27.0, 6.0, 0.5), (m.AI, "FAN", 98, 45.0, 40.0, 5.0),
             (m.AI, "RH", 29, 45.0, 5.0, 2.0), (m.AV, "SAT-SP", 62, 18.0, 0.0, 0.0), (m.BI, "FAN-STS", 0, 1, 0, 0),
             (m.BO, "ENABLE", 0, 1, 0, 0)],
    "chiller": [(m.AI, "CHWS", 62, 7.0, 2.0, 0.3), (m.AI, "CHWR", 62, 12.0, 4.0, 0.3), (m.AI, "KW", 48, 120.0, 180.0,
                10.0), (m.AV, "CHWS-SP", 62, 7.0, 0.0, 0.0), (m.AV, "CDW-SP", 62, 29.0, 0.0, 0.0),
                (m.BI, "COMP-RUN", 0, 1, 0, 0), (m.BO, "ENABLE", 0, 1, 0, 0)],
    "power_meter": [(m.AI, "KW", 48, 250.0, 200.0, 10.0), (m.AI, "VLL", 5, 400.0, 0.0, 2.0),
                    (m.AI, "AMPS", 3, 380.0, 300.0, 10.0), (m.AI, "KWH", 19, 1.2e6, 0.0, 50.0),
                    (m.AI, "PF", 95, 0.95, 0.02, 0.01), (m.BI, "BREAKER", 0, 1, 0, 0)],
    "access_control": [(m.BI, "DOOR-1", 0, 0, 0, 0), (m.BI, "DOOR-2", 0, 0, 0, 0), (m.BI, "DOOR-3", 0, 0, 0, 0),
                       (m.BO, "LOCK-1", 0, 1, 0, 0), (m.BO, "LOCK-2", 0, 1, 0, 0), (m.AV, "BADGES", 95, 0, 0, 0)],
}  # fmt: skip
_OBJECTS["crac"] = _OBJECTS["crah"]


class BObject:
    """One BACnet object of a controller."""

    __slots__ = ("base", "cov", "gain", "instance", "name", "otype", "units", "value")

    def __init__(self, otype: int, instance: int, name: str, units: int, base: float, gain: float, cov: float) -> None:
        self.otype, self.instance, self.name, self.units = otype, instance, name, units
        self.base, self.gain, self.cov = base, gain, cov
        self.value = base

    def pv(self) -> bytes:
        """The present value, application-tagged."""
        if self.otype in (m.BI, m.BO):
            return m.app_enum(1 if self.value else 0)
        if self.otype == m.SCHEDULE:
            return m.app_enum(int(self.value))
        return m.app_real(float(self.value))


class BmsDevice:
    """A BACnet controller and its objects."""

    def __init__(self, host: Host, kind: str, index: int, rng: Random) -> None:
        self.host = host
        self.kind = kind
        self.rng = rng
        self.instance = 2000 + index * 100 + rng.randrange(1, 99)
        self.vendor_id, self.vendor, self.model, self.firmware = _VENDORS[kind]
        self.objects: list[BObject] = []
        counters: dict[int, int] = {}
        for otype, suffix, units, base, gain, cov in _OBJECTS[kind]:
            counters[otype] = counters.get(otype, 0) + 1
            name = f"{host.name.upper()}.{suffix}"
            self.objects.append(BObject(otype, counters[otype], name, units, base, gain, cov))
        if kind != "power_meter":
            self.objects.append(BObject(m.SCHEDULE, 1, f"{host.name.upper()}.OCC-SCHED", 0, 0, 0, 0))
        self.by_id = {(o.otype, o.instance): o for o in self.objects}
        self.comm = "enable"  # the DeviceCommunicationControl state: enable, disable or disable-initiation
        self.comm_until = 0.0
        self.down_until = 0.0  # restarting (after a ReinitializeDevice) until then
        self.subscribed_until = float("inf")  # its COV subscriptions lapse then (a restart loses them)
        self.missed: list[float] = []  # packet times of the requests it left unanswered

    def answers(self, t: float) -> bool:
        """Whether it answers a request at `t`: not while restarting or DCC-disabled."""
        return t >= self.down_until and not (self.comm == "disable" and t < self.comm_until)

    def initiates(self, t: float) -> bool:
        """Whether it sends notifications at `t`: not while restarting or under any DCC disable."""
        return t >= self.down_until and not (self.comm != "enable" and t < self.comm_until)

    def communication_control(self, t: float, state: str, minutes: int) -> None:
        """A DeviceCommunicationControl accepted at `t`: `state` for `minutes` (0: until told otherwise)."""
        self.comm, self.comm_until = state, t + minutes * 60.0 if minutes else float("inf")

    def restart(self, t: float, seconds: float) -> None:
        """A ReinitializeDevice accepted at `t`: silent for `seconds`, DCC state and COV subscriptions lost."""
        self.down_until, self.comm, self.comm_until, self.subscribed_until = t + seconds, "enable", 0.0, t

    def update(self, t: float, occupied: bool) -> None:
        """Move the values to packet time `t`."""
        load = it_load(t)
        rng = self.rng
        for o in self.objects:
            if o.otype == m.AI:
                if o.units == 19:
                    o.value += 0.1
                else:
                    o.value = o.base + o.gain * (load - 0.5) + rng.gauss(0.0, max(o.cov, 0.01) * 0.3)
            elif o.otype == m.SCHEDULE:
                o.value = 1 if occupied else 0

    def device_props(self) -> list[tuple[int, bytes]]:
        """The device object's identity properties with their encoded values."""
        return [(m.OBJECT_NAME, m.char_string(self.host.name.upper())), (m.VENDOR_NAME, m.char_string(self.vendor)),
                (m.MODEL_NAME, m.char_string(self.model)), (m.FIRMWARE, m.char_string(self.firmware)),
                (m.APP_VERSION, m.char_string(f"{self.kind}-app {self.firmware}"))]  # fmt: skip

    def object_list(self) -> bytes:
        """The object-list property value (device first)."""
        ids = [(m.DEVICE, self.instance)] + [(o.otype, o.instance) for o in self.objects]
        return b"".join(b"\xc4" + m.objid(t, i) for t, i in ids)

    def rpm_ack(self, refs: list[tuple[int, int, list[int]]]) -> bytes:
        """The ReadPropertyMultiple ACK parameters for (type, instance, properties) references."""
        out = bytearray()
        for otype, inst, props in refs:
            out += m.ctx_objid(0, otype, inst) + m.open_(1)
            for p in props:
                out += m.ctx_uint(2, p) + m.open_(4) + self.value_of(otype, inst, p) + m.close(4)
            out += m.close(1)
        return bytes(out)

    def value_of(self, otype: int, inst: int, prop: int) -> bytes:
        """One property's encoded value."""
        if otype == m.DEVICE:
            if prop == m.OBJECT_LIST:
                return self.object_list()
            return dict(self.device_props())[prop]
        o = self.by_id[(otype, inst)]
        if prop == m.PRESENT_VALUE:
            return o.pv()
        if prop == m.STATUS_FLAGS:
            return b"\x82\x04\x00"
        if prop == m.OBJECT_NAME:
            return m.char_string(o.name)
        if prop == m.UNITS:
            return m.app_enum(o.units)
        return m.char_string(o.name.lower())

    def poll_refs(self) -> list[tuple[int, int, list[int]]]:
        """What the front end reads every cycle: present value and status flags of every object."""
        return [(o.otype, o.instance, [m.PRESENT_VALUE, m.STATUS_FLAGS]) for o in self.objects]

    def cov_params(self, pid: int, o: BObject, remaining: int) -> bytes:
        """COV notification parameters for one object (present value and status flags)."""
        return (m.ctx_uint(0, pid) + m.ctx_objid(1, m.DEVICE, self.instance) + m.ctx_objid(2, o.otype, o.instance)
                + m.ctx_uint(3, remaining) + m.open_(4) + m.ctx_uint(0, m.PRESENT_VALUE) + m.open_(2) + o.pv()
                + m.close(2) + m.ctx_uint(0, m.STATUS_FLAGS) + m.open_(2) + b"\x82\x04\x00" + m.close(2)
                + m.close(4))  # fmt: skip


def weekly_schedule() -> bytes:
    """Seven daily schedules: occupied 07:00-19:00 on weekdays, unoccupied at the weekend."""
    out = bytearray()
    for day in range(7):
        out += m.open_(0)
        if day < 5:
            out += m.time_value(7, 0, m.app_enum(1)) + m.time_value(19, 0, m.app_enum(0))
        out += m.close(0)
    return bytes(out)


class BmsFrontEnd:
    """The BMS workstation/server: discovery at start, COV subscriptions, polls and operator writes."""

    def __init__(self, host: Host, devices: list[BmsDevice], bcast: Host, rhythm: Rhythm, period: float,
                 writes_per_day: int, rng: Random, t0: float) -> None:  # fmt: skip
        self.host, self.devices, self.bcast, self.rhythm = host, devices, bcast, rhythm
        self.period, self.writes_per_day, self.rng = period, writes_per_day, rng
        self.invoke = rng.getrandbits(8)
        self.start_at = t0 + 20.0
        self.started = False
        self.due = [t0 + 60.0 + rng.random() * period for _ in devices]
        self.subs: dict[tuple[int, int, int], tuple[int, bool, float]] = {}  # (dev, type, inst) -> pid, conf, last
        self.next_renew = t0 + 60.0 + HOUR
        self.plans: dict[int, list[tuple[float, str, float]]] = {}  # day -> (time, action, argument)
        self.answered = True  # whether the last request was answered

    def next_invoke(self) -> int:
        """The next invoke id."""
        self.invoke = (self.invoke + 1) & 0xFF
        return self.invoke

    def _u(self, cap: SiteCapture, src: Host, dst: Host, payload: bytes) -> None:
        cap.add(udp_frame(src, dst, PORT, PORT, payload))

    def request(self, cap: SiteCapture, dev: BmsDevice, service: int, params: bytes, ack: bytes | None) -> int:
        """A confirmed request to `dev` and its answer (`ack` = ComplexACK params; None = SimpleACK); a device that
        does not answer gets it four times (`answered` says which)."""
        inv = self.next_invoke()
        message = m.confirmed(inv, service, params)
        self._u(cap, self.host, dev.host, message)
        self.answered = dev.answers(cap.now)
        if not self.answered:
            dev.missed.append(cap.now)
            for _ in range(APDU_RETRIES):
                cap.wait(APDU_TIMEOUT)
                self._u(cap, self.host, dev.host, message)
            cap.wait(APDU_TIMEOUT)
            return inv
        answer = m.simple_ack(inv, service) if ack is None else m.complex_ack(inv, service, ack)
        self._u(cap, dev.host, self.host, answer)
        return inv

    def run(self, cap: SiteCapture, t0: float, t1: float) -> None:
        """Everything the front end and the controllers do in [t0, t1)."""
        if not self.started and self.start_at < t1:
            self.started = True
            self._discover(cap, max(t0, self.start_at))
        day = self.rhythm.day_of(t0)
        if day not in self.plans:
            self.plans[day] = self._plan(day)
        for at, action, arg in self.plans[day]:
            if t0 <= at < t1:
                self._act(cap, at, action, arg)
        while self.next_renew < t1:
            t, self.next_renew = self.next_renew, self.next_renew + HOUR
            if t >= t0:
                self._subscribe(cap, t, renew=True)
        for i, dev in enumerate(self.devices):
            while self.due[i] < t1:
                t = self.due[i]
                self.due[i] = t + self.period
                if t >= t0:
                    self._poll(cap, i, dev, t)

    def _plan(self, day: int) -> list[tuple[float, str, float]]:
        rng, r = self.rng, self.rhythm
        plan: list[tuple[float, str, float]] = []
        if r.is_workday(day):
            base = r.day_start(day) + r.office[0] * HOUR
            span = (r.office[1] - r.office[0]) * HOUR
            plan += [(base + rng.random() * span, "write", rng.choice((-0.5, 0.5))) for _ in range(self.writes_per_day)]
            plan += [(base + rng.random() * span, "door", float(rng.randrange(3))) for _ in range(rng.randint(6, 14))]
        return sorted(plan)

    def _discover(self, cap: SiteCapture, t: float) -> None:
        cap.at(t)
        self._u(cap, self.host, self.bcast, m.who_is())
        for dev in self.devices:
            cap.wait(0.005 + self.rng.random() * 0.05)
            if dev.answers(cap.now):
                self._u(cap, dev.host, self.host, m.i_am(dev.instance, dev.vendor_id, broadcast=False))
        for dev in self.devices:
            cap.wait(0.2)
            props = [p for p, _ in dev.device_props()]
            self.request(cap, dev, m.READ_PROPERTY_MULTIPLE, m.ctx_objid(0, m.DEVICE, dev.instance) + m.open_(1)
                         + b"".join(m.ctx_uint(0, p) for p in props) + m.close(1),
                         dev.rpm_ack([(m.DEVICE, dev.instance, props)]))  # fmt: skip
            sched = dev.by_id.get((m.SCHEDULE, 1))
            if sched is not None:
                ref = m.ctx_objid(0, m.SCHEDULE, 1) + m.ctx_uint(1, m.WEEKLY_SCHEDULE)
                self.request(cap, dev, m.READ_PROPERTY, ref, ref + m.open_(3) + weekly_schedule() + m.close(3))
        self._subscribe(cap, cap.now + 1.0, renew=False)

    def _subscribe(self, cap: SiteCapture, t: float, renew: bool) -> None:
        cap.at(t)
        for d, dev in enumerate(self.devices):
            self.subscribe_device(cap, d, dev, renew)

    def subscribe_device(self, cap: SiteCapture, d: int, dev: BmsDevice, renew: bool = False) -> None:
        """SubscribeCOV (3600 s) to the analog inputs (unconfirmed) and door contacts (confirmed) of the d-th
        controller, each answered subscription followed by a notification of the current value, as bacpypes3 does."""
        for o in dev.objects:
            door = dev.kind == "access_control" and o.otype == m.BI
            if o.otype != m.AI and not door:
                continue
            key = (d, o.otype, o.instance)
            pid = self.subs[key][0] if renew and key in self.subs else 100 + len(self.subs)
            params = m.ctx_uint(0, pid) + m.ctx_objid(1, o.otype, o.instance) + m.ctx_bool(2, door)
            self.request(cap, dev, m.SUBSCRIBE_COV, params + m.ctx_uint(3, COV_LIFETIME), None)
            if key not in self.subs:
                self.subs[key] = (pid, door, float(o.value))
            if self.answered:  # a new or renewed subscription: a notification of the current value
                dev.subscribed_until = cap.now + COV_LIFETIME
                if dev.initiates(cap.now):
                    self._cov(cap, dev, pid, o, door, COV_LIFETIME)
                    self.subs[key] = (pid, door, float(o.value))

    def _poll(self, cap: SiteCapture, d: int, dev: BmsDevice, t: float) -> None:
        day = self.rhythm.day_of(t)
        hour = (t - self.rhythm.day_start(day)) / HOUR
        dev.update(t, self.rhythm.is_workday(day) and 7 <= hour < 19)
        cap.at(t)
        refs = dev.poll_refs()
        req = b"".join(m.ctx_objid(0, ot, inst) + m.open_(1) + b"".join(m.ctx_uint(0, p) for p in props) + m.close(1)
                       for ot, inst, props in refs)  # fmt: skip
        self.request(cap, dev, m.READ_PROPERTY_MULTIPLE, req, dev.rpm_ack(refs))
        self._notify(cap, d, dev, t)

    def _notify(self, cap: SiteCapture, d: int, dev: BmsDevice, t: float) -> None:
        if t >= dev.subscribed_until or not dev.initiates(t):
            return
        for o in dev.objects:
            key = (d, o.otype, o.instance)
            if key not in self.subs:
                continue
            pid, conf, last = self.subs[key]
            if abs(float(o.value) - last) < max(o.cov, 0.5):
                continue
            self.subs[key] = (pid, conf, float(o.value))
            cap.wait(0.05 + self.rng.random() * 0.2)
            self._cov(cap, dev, pid, o, conf, max(1, int(self.next_renew - t)))

    def _cov(self, cap: SiteCapture, dev: BmsDevice, pid: int, o: BObject, conf: bool, remaining: int) -> None:
        """One COV notification from `dev` (confirmed ones are acknowledged by the front end)."""
        params = dev.cov_params(pid, o, remaining)
        if conf:
            inv = (self.rng.getrandbits(8) + 1) & 0xFF
            self._u(cap, dev.host, self.host, m.confirmed(inv, m.CONFIRMED_COV, params))
            self._u(cap, self.host, dev.host, m.simple_ack(inv, m.CONFIRMED_COV))
        else:
            self._u(cap, dev.host, self.host, m.unconfirmed(m.UNCONFIRMED_COV, params))

    def _act(self, cap: SiteCapture, t: float, action: str, arg: float) -> None:
        cap.at(t)
        if action == "write":
            hvac = [d for d in self.devices if d.kind in ("crah", "crac", "chiller")]
            if not hvac:
                return
            dev = hvac[int(t) % len(hvac)]
            sp = next(o for o in dev.objects if o.otype == m.AV)
            sp.value = round(float(sp.value) + arg, 1)
            params = (m.ctx_objid(0, m.AV, sp.instance) + m.ctx_uint(1, m.PRESENT_VALUE) + m.open_(3) + sp.pv()
                      + m.close(3) + m.ctx_uint(4, 8))  # fmt: skip
            self.request(cap, dev, m.WRITE_PROPERTY, params, None)
        elif action == "door":
            for d, dev in enumerate(self.devices):
                if dev.kind != "access_control":
                    continue
                door = dev.by_id[(m.BI, 1 + int(arg))]
                door.value = 1
                self._notify(cap, d, dev, t)
                cap.wait(6.0 + self.rng.random() * 10)
                door.value = 0
                self._notify(cap, d, dev, cap.now)
