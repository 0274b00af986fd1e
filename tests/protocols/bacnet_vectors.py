"""BACnet test vectors made with bacpypes3 0.0.110: real APDUs, NPDUs and BVLLs encoded by its PDU classes.

Nothing here is typed in by hand: APDUs come from bacpypes3 service sequences (ReadPropertyRequest, IAmRequest...)
or its APCI classes (SimpleAckPDU, SegmentAckPDU, RejectPDU, AbortPDU), NPDUs from its NPDU and network-message
classes, BVLLs from its BVLC classes. `decode_bvll`, `decode_npdu` and `decode_apci` read the same bytes back
with bacpypes3 so that tests can compare the decoder's framing fields with bacpypes3's reading.
"""

from __future__ import annotations

from typing import Any

from bacpypes3.apdu import (
    APCI,
    APDU,
    AbortPDU,
    APCISequence,
    ComplexAckPDU,
    ConfirmedRequestPDU,
    ErrorPDU,
    RejectPDU,
    SegmentAckPDU,
    SimpleAckPDU,
    UnconfirmedRequestPDU,
)
from bacpypes3.ipv4.bvll import (
    LPCI,
    DeleteForeignDeviceTableEntry,
    FDTEntry,
    ForwardedNPDU,
    ReadForeignDeviceTableAck,
    RegisterForeignDevice,
    Result,
    pdu_types,
)
from bacpypes3.npdu import NPDU, npdu_types
from bacpypes3.pdu import PDU, Address, IPv4Address

APCI_DEFAULTS = {"apduSeg": False, "apduMor": False, "apduSA": True, "apduMaxSegs": 0, "apduMaxResp": 5,
                 "apduSrv": False, "apduNak": False}


def apdu(obj: Any, invoke_id: int = 1, **apci: Any) -> bytes:
    """The bytes of an APDU: a bacpypes3 service sequence (encoded first) or APCI object, with APCI fields set."""
    pdu = obj.encode() if isinstance(obj, APCISequence) else obj
    for key, value in APCI_DEFAULTS.items():
        if not hasattr(pdu, key):
            setattr(pdu, key, value)
    if pdu.apduType != UnconfirmedRequestPDU.pduType and getattr(pdu, "apduInvokeID", None) is None:
        pdu.apduInvokeID = invoke_id
    for key, value in apci.items():
        setattr(pdu, key, value)
    return bytes(APDU.encode(pdu).pduData)


def confirmed(service: int, data: bytes = b"", invoke_id: int = 1, **apci: Any) -> bytes:
    """A Confirmed-Request APDU for any service choice, with raw service data."""
    return apdu(ConfirmedRequestPDU(service, invoke_id, data), invoke_id, **apci)


def unconfirmed(service: int, data: bytes = b"") -> bytes:
    """An Unconfirmed-Request APDU for any service choice, with raw service data."""
    return apdu(UnconfirmedRequestPDU(service, data))


def simple_ack(service: int, invoke_id: int) -> bytes:
    """A Simple-ACK APDU."""
    return apdu(SimpleAckPDU(service, invoke_id))


def complex_ack(service: int, invoke_id: int, data: bytes = b"", **apci: Any) -> bytes:
    """A Complex-ACK APDU with raw service data."""
    pdu = ComplexAckPDU(service, invoke_id, None, data)
    return apdu(pdu, invoke_id, **apci)


def segment_ack(invoke_id: int, seq: int, window: int, nak: bool = False, server: bool = False) -> bytes:
    """A Segment-ACK APDU."""
    pdu = SegmentAckPDU(nak, server, invoke_id, seq, window)
    return apdu(pdu, invoke_id)


def error(service: int, invoke_id: int, data: bytes = b"") -> bytes:
    """An Error APDU with raw error data."""
    return apdu(ErrorPDU(service, invoke_id, None, data), invoke_id)


def reject(invoke_id: int, reason: int) -> bytes:
    """A Reject APDU."""
    return apdu(RejectPDU(invoke_id, reason), invoke_id)


def abort(invoke_id: int, reason: int, server: bool = True) -> bytes:
    """An Abort APDU (sent by the server unless server=False)."""
    return apdu(AbortPDU(server, invoke_id, reason), invoke_id)


def npdu(payload: bytes, *, dadr: str | None = None, sadr: str | None = None, hop: int = 255,
         expecting_reply: bool = False, priority: int = 0) -> bytes:
    """An NPDU around an APDU; dadr/sadr are bacpypes3 address texts (`3:0x85`, `*:*`, `5:*`)."""
    n = NPDU(payload)
    n.npduDADR = Address(dadr) if dadr else None
    n.npduSADR = Address(sadr) if sadr else None
    n.npduHopCount = hop
    n.pduExpectingReply = expecting_reply
    n.pduNetworkPriority = priority
    return bytes(n.encode().pduData)


def network(message: NPDU, *, dadr: str | None = None, sadr: str | None = None, hop: int = 255) -> bytes:
    """A network-layer message NPDU (a bacpypes3 WhoIsRouterToNetwork, IAmRouterToNetwork...)."""
    pdu = message.encode()
    if dadr or sadr:  # re-encode with routing: bacpypes3 takes the addresses from the PCI
        message.npduDADR = Address(dadr) if dadr else None
        message.npduSADR = Address(sadr) if sadr else None
        message.npduHopCount = hop
        pdu = message.encode()
    return bytes(pdu.pduData)


def bvll(function: int, npdu_bytes: bytes = b"", **kw: Any) -> bytes:
    """A BVLL message: the NPDU-carrying functions wrap npdu_bytes; others take their own arguments."""
    cls = pdu_types[function]
    if function == LPCI.forwardedNPDU:
        msg = ForwardedNPDU(IPv4Address(kw["source"]), npdu_bytes)
    elif function in (LPCI.originalUnicastNPDU, LPCI.originalBroadcastNPDU, LPCI.distributeBroadcastToNetwork):
        msg = cls(npdu_bytes)
    elif function == LPCI.result:
        msg = Result(kw["code"])
    elif function in (LPCI.writeBroadcastDistributionTable, LPCI.readBroadcastDistributionTableAck):
        msg = cls([IPv4Address(a) for a in kw["bdt"]])
    elif function == LPCI.registerForeignDevice:
        msg = RegisterForeignDevice(kw["ttl"])
    elif function == LPCI.readForeignDeviceTableAck:
        entries = []
        for addr, ttl, remain in kw["fdt"]:
            e = FDTEntry()
            e.fdAddress, e.fdTTL, e.fdRemain = IPv4Address(addr), ttl, remain
            entries.append(e)
        msg = ReadForeignDeviceTableAck(entries)
    elif function == LPCI.deleteForeignDeviceTableEntry:
        msg = DeleteForeignDeviceTableEntry(IPv4Address(kw["address"]))
    else:
        msg = cls()
    return bytes(msg.encode().pduData)


def decode_bvll(data: bytes) -> Any:
    """bacpypes3's reading of a BVLL message (an LPDU subclass object)."""
    pdu = PDU(data)
    lpci = LPCI.decode(pdu)
    return pdu_types[lpci.bvlciFunction].decode(pdu)


def decode_npdu(data: bytes) -> Any:
    """bacpypes3's reading of an NPDU: an NPDU (APDU inside) or a network-layer message object."""
    n = NPDU.decode(PDU(data))
    if n.npduNetMessage is None:
        return n
    return npdu_types[n.npduNetMessage].decode(n)


def decode_apci(data: bytes) -> APCI:
    """bacpypes3's reading of an APDU's header."""
    return APCI.decode(PDU(data))

