"""Deep decode of BACnet service parameters (protocols/bacnet_values.py and protocols/bacnet_services.py).

Vectors are generated, not typed: bacpypes3 0.0.110 service objects (IAmRequest, ReadPropertyACK, ...) with
seeded pseudo-random contents are encoded, and every field we decode is compared with what bacpypes3 decodes
from the same bytes. Real captures are checked against the peers' baselines (ICSNPP, Spicy), garbage and
mutated blobs must never raise, and no password text may ever come out.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any, cast

import pytest
from bacpypes3 import apdu as A
from bacpypes3 import basetypes as B
from bacpypes3.constructeddata import Any as AnyValue
from bacpypes3.constructeddata import ArrayOf
from bacpypes3.primitivedata import (
    BitString,
    CharacterString,
    Date,
    Integer,
    Null,
    ObjectIdentifier,
    OctetString,
    Real,
    TagClass,
    Time,
    Unsigned,
)
from test_bacnet_tags import plain

from protocols import bacnet_values as bv
from protocols.bacnet_enums import vendor_name

TRACES = Path(__file__).resolve().parents[1] / "traces"
rng = random.Random(135)
PASSWORDS = ["filister", "ethereal", "Tr0ub4dor&3", "S3cr3t-Pa55!"]

# ------------------------------------------------------------------------------------------- bacpypes3 side

_PDU = {"confirmed": A.ConfirmedRequestPDU, "unconfirmed": A.UnconfirmedRequestPDU, "ack": A.ComplexAckPDU,
        "error": A.ErrorPDU}


def b3(kind: str, service: int, data: bytes) -> Any:
    """bacpypes3's decode of the same service parameters."""
    pdu = _PDU[kind]()
    pdu.apduService = service
    pdu.put_data(data)
    return A.APCISequence.decode(pdu)


def ours(kind: str, service: int, data: bytes) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    if kind == "ack":
        return bv.decode_ack(service, data)
    if kind == "error":
        return bv.decode_error(service, data)
    return bv.decode_request(kind == "confirmed", service, data)


def oid(o: Any) -> tuple[str, int]:
    return str(o[0]), int(o[1])


def any_values(value: Any) -> list[Any]:
    """The primitives of a bacpypes3 Any, flattened as ICSNPP and our decoder list them."""
    out = []
    for t in value.tagList:
        if t.tag_class == TagClass.application:
            out.append(plain(t.app_to_object()))
        elif t.tag_class == TagClass.context:
            out.append(bytes(t.tag_data).hex())
    return out


def prop(o: Any, pid: Any, idx: Any = None, **kw: Any) -> dict[str, Any]:
    e = dict(zip(("object_type", "instance_number"), oid(o), strict=True), property=str(pid), **kw)
    if idx is not None:
        e["array_index"] = int(idx)
    return e


def value_of(v: Any) -> dict[str, Any]:
    return {"values": any_values(v)}


def expected(kind: str, s: Any) -> dict[str, Any]:
    """The fields our decoder must give, computed from bacpypes3's decoded object `s`."""
    n = type(s).__name__
    if n == "WhoIsRequest":
        lo, hi = s.deviceInstanceRangeLowLimit, s.deviceInstanceRangeHighLimit
        return {"range": "All" if lo is None else f"{lo}-{hi}"}
    if n == "IAmRequest":
        t, i = oid(s.iAmDeviceIdentifier)
        return {"object_type": t, "instance_number": i, "max_apdu": s.maxAPDULengthAccepted,
                "segmentation": str(s.segmentationSupported), "vendor_id": s.vendorID,
                "vendor": vendor_name(s.vendorID)}
    if n == "WhoHasRequest":
        f: dict[str, Any] = {"range": "All" if s.limits is None else
                             f"{s.limits.deviceInstanceRangeLowLimit}-{s.limits.deviceInstanceRangeHighLimit}"}
        if s.object.objectIdentifier is not None:
            f["object_type"], f["instance_number"] = oid(s.object.objectIdentifier)
        else:
            f["object_name"] = str(s.object.objectName)
        return f
    if n == "IHaveRequest":
        (dt, di), (t, i) = oid(s.deviceIdentifier), oid(s.objectIdentifier)
        return {"device_id_type": dt, "device_id_number": di, "object_type": t, "instance_number": i,
                "object_name": str(s.objectName)}
    if n in ("TimeSynchronizationRequest", "UTCTimeSynchronizationRequest"):
        return {"time": plain(s.time.date) + "T" + plain(s.time.time)}
    if n in ("ReadPropertyRequest", "ReadPropertyACK", "WritePropertyRequest"):
        f = prop(s.objectIdentifier, s.propertyIdentifier, s.propertyArrayIndex)
        if n != "ReadPropertyRequest":
            f.update(value_of(s.propertyValue))
        if n == "WritePropertyRequest" and s.priority is not None:
            f["priority"] = int(s.priority)
        return f
    if n == "ReadPropertyMultipleRequest":
        return {"properties": [prop(spec.objectIdentifier, r.propertyIdentifier, r.propertyArrayIndex)
                               for spec in s.listOfReadAccessSpecs for r in spec.listOfPropertyReferences]}
    if n == "ReadPropertyMultipleACK":
        props = []
        for res in s.listOfReadAccessResults:
            for r in res.listOfResults or []:
                e = prop(res.objectIdentifier, r.propertyIdentifier, r.propertyArrayIndex)
                err = r.readResult.propertyAccessError
                e.update(value_of(r.readResult.propertyValue) if err is None else
                         {"error_class": str(err.errorClass), "error_code": str(err.errorCode)})
                props.append(e)
        return {"properties": props}
    if n == "WritePropertyMultipleRequest":
        props = []
        for spec in s.listOfWriteAccessSpecs:
            for pv in spec.listOfProperties:
                e = prop(spec.objectIdentifier, pv.propertyIdentifier, pv.propertyArrayIndex, **value_of(pv.value))
                if pv.priority is not None:
                    e["priority"] = int(pv.priority)
                props.append(e)
        return {"properties": props}
    if n == "DeviceCommunicationControlRequest":
        f = {"device_state": str(s.enableDisable), "password": s.password is not None}
        return f if s.timeDuration is None else {"time_duration": s.timeDuration, **f}
    if n == "ReinitializeDeviceRequest":
        return {"device_state": str(s.reinitializedStateOfDevice), "password": s.password is not None}
    if n.startswith("Atomic"):
        f = {} if n.endswith("ACK") else {"file_object": int(s.fileIdentifier[1])}
        if n == "AtomicWriteFileACK":
            return {"file_start_position": s.fileStartPosition if s.fileStartRecord is None else s.fileStartRecord}
        if n == "AtomicReadFileACK":
            f["end_of_file"] = bool(s.endOfFile)
        acc = s.accessMethod.streamAccess or s.accessMethod.recordAccess
        record = s.accessMethod.recordAccess is not None
        f["file_start_position"] = int(acc.fileStartRecord if record else acc.fileStartPosition)
        for attr in ("requestedOctetCount", "requestedRecordCount", "recordCount", "returnedRecordCount"):
            if getattr(acc, attr, None) is not None:
                f["file_record_count" if record else "file_octet_count"] = int(getattr(acc, attr))
        if n != "AtomicReadFileRequest":
            f["file_data_length"] = sum(map(len, acc.fileRecordData)) if record else len(acc.fileData)
        return f
    if n == "SubscribeCOVRequest":
        t, i = oid(s.monitoredObjectIdentifier)
        f = {"subscriber_process_id": s.subscriberProcessIdentifier, "monitored_object_type": t,
             "monitored_instance": i}
        if s.issueConfirmedNotifications is not None:
            f["issue_confirmed"] = bool(s.issueConfirmedNotifications)
        return f if s.lifetime is None else {**f, "lifetime": s.lifetime}
    if "COVNotification" in n:
        t, i = oid(s.monitoredObjectIdentifier)
        props = []
        for pv in s.listOfValues:
            e = prop(s.monitoredObjectIdentifier, pv.propertyIdentifier, pv.propertyArrayIndex, **value_of(pv.value))
            if pv.priority is not None:
                e["priority"] = int(pv.priority)
            props.append(e)
        return {"subscriber_process_id": s.subscriberProcessIdentifier,
                "initiating_device": int(s.initiatingDeviceIdentifier[1]), "monitored_object_type": t,
                "monitored_instance": i, "time_remaining": s.timeRemaining, "properties": props}
    if n == "AcknowledgeAlarmRequest":
        t, i = oid(s.eventObjectIdentifier)
        return {"acknowledging_process_id": s.acknowledgingProcessIdentifier, "event_object_type": t,
                "event_instance": i, "event_state_acknowledged": str(s.eventStateAcknowledged),
                "ack_source": str(s.acknowledgmentSource)}
    err = getattr(s, "errorType", None) or s
    f = {"error_class": str(err.errorClass), "error_code": str(err.errorCode)}
    if n == "WritePropertyMultipleError":
        a = s.firstFailedWriteAttempt
        f["properties"] = [prop(a.objectIdentifier, a.propertyIdentifier, a.propertyArrayIndex, **f)]
    return f


def strip_texts(fields: dict[str, Any]) -> dict[str, Any]:
    """Our fields without the ICSNPP `value` texts (checked on their own), for comparing with bacpypes3."""
    out = {k: v for k, v in fields.items() if k != "value"}
    if "properties" in out:
        out["properties"] = [{k: v for k, v in e.items() if k != "value"} for e in out["properties"]]
    return out


# ------------------------------------------------------------------------------------------- generated vectors

OBJECTS = ["analog-input", "analog-value", "binary-input", "binary-output", "device", "multi-state-value", "file"]


def _oid() -> tuple[str, int]:
    return rng.choice(OBJECTS), rng.choice([0, 1, 7, 254, 20001, 4194303])


def _value() -> tuple[str, Any]:
    """A property and a value of the kind that property holds."""
    return rng.choice([
        ("present-value", AnyValue(Real(rng.uniform(-50, 150)))),
        ("present-value", AnyValue(B.BinaryPV(rng.choice(["active", "inactive"])))),
        ("object-name", AnyValue(CharacterString(rng.choice(["CRAH-01", "AHU 3 supply", "Zone Temp °C"])))),
        ("status-flags", AnyValue(B.StatusFlags([rng.randrange(2) for _ in range(4)]))),
        ("units", AnyValue(B.EngineeringUnits(rng.choice(["degrees-celsius", "percent", "kilowatts"])))),
        ("event-state", AnyValue(B.EventState(rng.choice(["normal", "high-limit"])))),
        ("object-list", AnyValue(ArrayOf(ObjectIdentifier)([_oid() for _ in range(rng.randrange(0, 6))]))),
        ("vendor-identifier", AnyValue(Unsigned(rng.randrange(0, 2000)))),
        ("utc-offset", AnyValue(Integer(rng.choice([-480, 60, 0])))),
        ("priority-array", AnyValue(ArrayOf(B.PriorityValue)([B.PriorityValue(null=Null(()))] * 15
                                                             + [B.PriorityValue(real=Real(21.5))]))),
        ("local-date", AnyValue(Date((rng.randrange(90, 140), 5, 20, 255)))),
        ("local-time", AnyValue(Time((8, 27, rng.randrange(60), 0)))),
        ("description", AnyValue(OctetString(bytes(rng.randrange(256) for _ in range(5))))),
        ("out-of-service", AnyValue(B.Boolean(rng.randrange(2)))),
        ("protocol-services-supported", AnyValue(BitString([rng.randrange(2) for _ in range(40)]))),
    ])


def _idx() -> int | None:
    return rng.choice([None, None, 0, 1, 12])


def generate() -> list[tuple[str, int, Any]]:
    """(kind, service choice, bacpypes3 object) for every decoded service, several seeded variants each."""
    v: list[tuple[str, int, Any]] = []
    for svc in (12, 15, 17, 20):
        lo = rng.randrange(0, 5000)
        v += [
            ("unconfirmed", 8, A.WhoIsRequest(deviceInstanceRangeLowLimit=lo, deviceInstanceRangeHighLimit=lo + 9)),
            ("unconfirmed", 8, A.WhoIsRequest()),
            ("unconfirmed", 0, A.IAmRequest(iAmDeviceIdentifier=("device", rng.randrange(4194304)),
                                            maxAPDULengthAccepted=rng.choice([50, 480, 1476]),
                                            segmentationSupported=rng.choice(list(B.Segmentation._enum_map)[:4]),
                                            vendorID=rng.choice([5, 8, 15, 24, 42, 154, 260, 999, 1500]))),
            ("unconfirmed", 7, A.WhoHasRequest(object=B.WhoHasObject(objectIdentifier=_oid()))),
            ("unconfirmed", 7, A.WhoHasRequest(limits=B.WhoHasLimits(deviceInstanceRangeLowLimit=lo,
                                                                     deviceInstanceRangeHighLimit=lo),
                                               object=B.WhoHasObject(objectName="SYNERGY"))),
            ("unconfirmed", 1, A.IHaveRequest(deviceIdentifier=("device", lo), objectIdentifier=_oid(),
                                              objectName=rng.choice(["Unknown", "relay 108", "温度２"]))),
            ("unconfirmed", rng.choice([6, 9]), A.TimeSynchronizationRequest(time=B.DateTime(
                date=Date((rng.randrange(100, 140), 3, 6, 2)), time=Time((16, 18, 48, rng.randrange(100)))))),
            ("confirmed", 12, A.ReadPropertyRequest(objectIdentifier=_oid(), propertyIdentifier=_value()[0],
                                                    propertyArrayIndex=_idx())),
            ("confirmed", 14, A.ReadPropertyMultipleRequest(listOfReadAccessSpecs=[B.ReadAccessSpecification(
                objectIdentifier=_oid(), listOfPropertyReferences=[
                    B.PropertyReference(propertyIdentifier=_value()[0], propertyArrayIndex=_idx())
                    for _ in range(rng.randrange(1, 4))]) for _ in range(rng.randrange(1, 4))])),
            ("confirmed", 16, A.WritePropertyMultipleRequest(listOfWriteAccessSpecs=[B.WriteAccessSpecification(
                objectIdentifier=_oid(), listOfProperties=[
                    B.PropertyValue(propertyIdentifier=p, value=val, priority=rng.choice([None, 8, 16]))
                    for p, val in (_value() for _ in range(rng.randrange(1, 4)))])])),
            ("confirmed", 17, A.DeviceCommunicationControlRequest(
                timeDuration=rng.choice([None, 1, 60]), enableDisable=rng.choice(["enable", "disable"]),
                password=rng.choice([None, *PASSWORDS]))),
            ("confirmed", 20, A.ReinitializeDeviceRequest(reinitializedStateOfDevice=rng.choice(["coldstart",
                                                          "warmstart"]), password=rng.choice([None, *PASSWORDS]))),
            ("confirmed", 6, A.AtomicReadFileRequest(fileIdentifier=("file", lo), accessMethod=rng.choice([
                B.AtomicReadFileRequestAccessMethodChoice(streamAccess=B.AtomicReadFileRequestAccessMethodChoiceStreamAccess(
                    fileStartPosition=lo, requestedOctetCount=440)),
                B.AtomicReadFileRequestAccessMethodChoice(recordAccess=B.AtomicReadFileRequestAccessMethodChoiceRecordAccess(
                    fileStartRecord=-1, requestedRecordCount=3))]))),
            ("confirmed", 7, A.AtomicWriteFileRequest(fileIdentifier=("file", 2), accessMethod=rng.choice([
                B.AtomicWriteFileRequestAccessMethodChoice(streamAccess=B.AtomicWriteFileRequestAccessMethodChoiceStreamAccess(
                    fileStartPosition=lo, fileData=b"\x00" * rng.randrange(0, 600))),
                B.AtomicWriteFileRequestAccessMethodChoice(recordAccess=B.AtomicWriteFileRequestAccessMethodChoiceRecordAccess(
                    fileStartRecord=0, recordCount=2, fileRecordData=[b"abc", b"defgh"]))]))),
            ("ack", 6, A.AtomicReadFileACK(endOfFile=rng.randrange(2), accessMethod=rng.choice([
                B.AtomicReadFileACKAccessMethodChoice(streamAccess=B.AtomicReadFileACKAccessMethodStreamAccess(
                    fileStartPosition=lo, fileData=b"\x01" * rng.randrange(0, 300))),
                B.AtomicReadFileACKAccessMethodChoice(recordAccess=B.AtomicReadFileACKAccessMethodRecordAccess(
                    fileStartRecord=5, returnedRecordCount=1, fileRecordData=[b"xyz"]))]))),
            ("ack", 7, rng.choice([A.AtomicWriteFileACK(fileStartPosition=lo),
                                   A.AtomicWriteFileACK(fileStartRecord=3)])),
            ("confirmed", 5, A.SubscribeCOVRequest(subscriberProcessIdentifier=lo, monitoredObjectIdentifier=_oid(),
                                                   issueConfirmedNotifications=rng.choice([None, True, False]),
                                                   lifetime=rng.choice([None, 300]))),
            ("confirmed", 0, A.AcknowledgeAlarmRequest(
                acknowledgingProcessIdentifier=7, eventObjectIdentifier=_oid(), eventStateAcknowledged="high-limit",
                timeStamp=B.TimeStamp(sequenceNumber=12), acknowledgmentSource="operator-1",
                timeOfAcknowledgment=B.TimeStamp(time=Time((1, 2, 3, 4))))),
            ("error", svc, A.Error(errorClass=rng.choice(["property", "services", "object"]),
                                   errorCode=rng.choice(["unknown-property", "password-failure"]), service_choice=svc)),
            ("error", 16, A.WritePropertyMultipleError(
                errorType=B.ErrorType(errorClass="property", errorCode="write-access-denied"),
                firstFailedWriteAttempt=B.ObjectPropertyReference(
                    objectIdentifier=_oid(), propertyIdentifier="present-value", propertyArrayIndex=_idx()))),
            ("error", 10, A.CreateObjectError(errorType=B.ErrorType(errorClass="services",
                                                                    errorCode="value-out-of-range"),
                                           firstFailedElementNumber=2)),
        ]
        p, val = _value()
        v += [
            ("ack", 12, A.ReadPropertyACK(objectIdentifier=_oid(), propertyIdentifier=p, propertyValue=val,
                                          propertyArrayIndex=_idx())),
            ("confirmed", 15, A.WritePropertyRequest(objectIdentifier=_oid(), propertyIdentifier=p, propertyValue=val,
                                                     priority=rng.choice([None, 1, 16]))),
            ("ack", 14, A.ReadPropertyMultipleACK(listOfReadAccessResults=[B.ReadAccessResult(
                objectIdentifier=_oid(), listOfResults=[B.ReadAccessResultElement(
                    propertyIdentifier=q, propertyArrayIndex=_idx(), readResult=B.ReadAccessResultElementChoice(
                        propertyValue=x) if rng.random() < 0.7 else B.ReadAccessResultElementChoice(
                        propertyAccessError=B.ErrorType(errorClass="property", errorCode="unknown-property")))
                    for q, x in (_value() for _ in range(rng.randrange(1, 5)))]) for _ in range(rng.randrange(1, 3))])),
            (rng.choice(["confirmed", "unconfirmed"]), 0, None),  # placeholder replaced below
        ]
        kind = v[-1][0]
        cov = A.ConfirmedCOVNotificationRequest if kind == "confirmed" else A.UnconfirmedCOVNotificationRequest
        v[-1] = (kind, 1 if kind == "confirmed" else 2, cov(
            subscriberProcessIdentifier=1, initiatingDeviceIdentifier=("device", lo), monitoredObjectIdentifier=_oid(),
            timeRemaining=rng.randrange(0, 3600), listOfValues=[B.PropertyValue(propertyIdentifier=q, value=x)
                                                               for q, x in (_value(), _value())]))
    return v


VECTORS = [(k, s, bytes(o.encode().pduData)) for k, s, o in generate()]


@pytest.mark.parametrize(("kind", "service", "data"), VECTORS, ids=[f"{k}-{s}-{i}" for i, (k, s, _) in
                                                                     enumerate(VECTORS)])
def test_decode_matches_bacpypes3(kind: str, service: int, data: bytes) -> None:
    fields, problems = ours(kind, service, data)
    assert problems == []
    assert strip_texts(fields) == expected(kind, b3(kind, service, data))
    for e in [fields, *fields.get("properties", [])]:  # one ICSNPP text per primitive
        if "values" in e:
            texts = e.get("value")
            texts = texts if isinstance(texts, list) else [] if texts is None else [texts]
            assert len(texts) == len(e["values"])


def test_buffers_of_any_type() -> None:
    data = VECTORS[2][2]
    want = bv.decode_request(False, 0, data)
    for buf in (memoryview(data), bytearray(data)):  # the framing may hand over a view
        assert bv.decode_request(False, 0, cast(bytes, buf)) == want


def test_docstring_states_the_coverage() -> None:
    doc = bv.__doc__ or ""
    for service in ("Who-Is", "I-Am", "Who-Has", "I-Have", "ReadProperty", "WriteProperty", "ReadPropertyMultiple",
                    "WritePropertyMultiple", "DeviceCommunicationControl", "ReinitializeDevice", "AtomicReadFile",
                    "AtomicWriteFile", "TimeSynchronization", "UTCTimeSynchronization", "SubscribeCOV",
                    "COV notifications", "AcknowledgeAlarm", "Error PDUs"):
        assert service in doc, service
    decoded = {(k, s) for k, s, _ in VECTORS}
    for table, kind in ((bv._CONFIRMED, "confirmed"), (bv._UNCONFIRMED, "unconfirmed"), (bv._ACKS, "ack")):
        assert {(kind, s) for s in table} <= decoded  # every decoder has generated vectors
    fields = {m for k, s, d in VECTORS for m in re.findall(r"'(\w+)':", repr(ours(k, s, d)[0]))}
    assert {f for f in fields if f not in ("object_type", "instance_number")} <= set(re.findall(r"\w+", doc))
