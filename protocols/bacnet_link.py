"""BACnet link and network layers below the APDU: BVLC messages without an NPDU, the NPDU header, network messages.

Pure functions over a buffer slice `buf[pos:end]` that never raise on short or odd input; problems come back as
`(weird_name, addl)` pairs. protocols/bacnet.py calls them and builds the events; names come from
protocols/bacnet_names.py.
"""

from __future__ import annotations

from typing import Any

from protocols.bacnet_names import (
    BVLC_FUNCTIONS,
    NETWORK_REJECT_REASONS,
    bvlc_result_text,
    network_message_op,
)
from protocols.base import EXCEPTION, REQUEST, RESPONSE

Fields = dict[str, Any]
Problems = list[tuple[str, str]]
Parsed = tuple[str, str, Fields, Problems]
Route = tuple[int | None, str | None, int | None, str | None] | None  # (snet, sadr, dnet, dadr)

TRUNCATED_BVLC = "bacnet_truncated_bvlc_message"
BVLC_EXTRA = "bacnet_bvlc_extra_data"
INVALID_TABLE = "bacnet_invalid_bvlc_table"
TRUNCATED_NETWORK = "bacnet_truncated_network_message"
NETWORK_EXTRA = "bacnet_network_message_extra_data"


def ip_port(buf: bytes, pos: int) -> str:
    """The "a.b.c.d:port" text of a 6-byte B/IP address (the caller checked the bytes are there)."""
    return f"{buf[pos]}.{buf[pos + 1]}.{buf[pos + 2]}.{buf[pos + 3]}:{(buf[pos + 4] << 8) | buf[pos + 5]}"


def _u16(buf: bytes, pos: int) -> int:
    return (buf[pos] << 8) | buf[pos + 1]


def _table(buf: bytes, pos: int, end: int, fdt: bool, what: str, problems: Problems) -> list[str]:
    """BDT entries (ip:port/mask) or FDT entries (ip:port ttl=N remaining=M), 10 bytes each."""
    size = end - pos
    if size % 10:
        problems.append((INVALID_TABLE, f"{what} of {size} bytes is not a whole number of 10-byte entries"))
    out = []
    for p in range(pos, end - 9, 10):
        if fdt:
            out.append(f"{ip_port(buf, p)} ttl={_u16(buf, p + 6)} remaining={_u16(buf, p + 8)}")
        else:
            out.append(f"{ip_port(buf, p)}/{buf[p + 6]}.{buf[p + 7]}.{buf[p + 8]}.{buf[p + 9]}")
    return out


def bvlc_message(func: int, buf: bytes, pos: int, end: int) -> Parsed:
    """A BVLC message that carries no NPDU (functions 0x00-0x03, 0x05-0x08, 0x0C and unassigned ones)."""
    known = BVLC_FUNCTIONS.get(func)
    op = known[1] if known else f"unknown-bvlc-{func}"
    f: Fields = {}
    problems: Problems = []
    size = end - pos
    kind = REQUEST
    expect = -1  # the exact body size of fixed-size messages
    if func == 0x00:
        expect = 2
        if size >= 2:
            code = _u16(buf, pos)
            f["bvlc_result_code"] = code
            f["result_code"] = bvlc_result_text(code)
            kind = RESPONSE if code == 0 else EXCEPTION
        else:
            kind = RESPONSE
    elif func == 0x01 or func == 0x03:
        f["bdt"] = _table(buf, pos, end, False, "broadcast distribution table", problems)
        if func == 0x03:
            kind = RESPONSE
    elif func == 0x07:
        f["fdt"] = _table(buf, pos, end, True, "foreign device table", problems)
        kind = RESPONSE
    elif func == 0x05:
        expect = 2
        if size >= 2:
            f["ttl"] = _u16(buf, pos)
    elif func == 0x08:
        expect = 6
        if size >= 6:
            f["fdt"] = [ip_port(buf, pos)]
    elif func == 0x02 or func == 0x06:
        expect = 0
    elif func == 0x0C:
        f["bvll_data_length"] = size
    if expect >= 0:
        if size < expect:
            problems.append((TRUNCATED_BVLC, f"{op}: {size} bytes of body, {expect} expected"))
        elif size > expect:
            problems.append((BVLC_EXTRA, f"{op}: {size - expect} bytes after the body"))
    return op, kind, f, problems


# network-layer message kinds (ops not listed are requests)
_NET_KINDS = {
    "i_am_router_to_network": RESPONSE,
    "i_could_be_router_to_network": RESPONSE,
    "router_busy_to_network": RESPONSE,
    "router_available_to_network": RESPONSE,
    "initialize_routing_table_ack": RESPONSE,
    "security_response": RESPONSE,
    "network_number_is": RESPONSE,
    "reject_message_to_network": EXCEPTION,
}


def _networks(buf: bytes, pos: int, end: int, op: str, problems: Problems) -> list[int]:
    """A list of 2-byte network numbers filling buf[pos:end]."""
    if (end - pos) & 1:
        problems.append((TRUNCATED_NETWORK, f"{op}: odd number of bytes in the network list"))
    return [_u16(buf, p) for p in range(pos, end - 1, 2)]


def network_message(mtype: int, buf: bytes, pos: int, end: int) -> Parsed:
    """A network-layer message's parameters: buf[pos:end] is what follows the message type octet."""
    op = network_message_op(mtype)
    kind = _NET_KINDS.get(op, REQUEST)
    f: Fields = {"network_message": op}
    problems: Problems = []
    size = end - pos
    need = 0  # minimum parameter bytes
    exact = True  # fixed-size message: trailing bytes are extra
    if mtype == 0x00:  # Who-Is-Router-To-Network: an optional DNET
        f["networks"] = [_u16(buf, pos)] if size >= 2 else []
        exact = size >= 2
        need = 2 if size else 0
    elif mtype in (0x01, 0x04, 0x05):  # I-Am-Router / Router-Busy / Router-Available: a list of DNETs
        f["networks"] = _networks(buf, pos, end, op, problems)
        exact = False
        need = 2 if mtype == 0x01 else 0
    elif mtype == 0x02:  # I-Could-Be-Router-To-Network: DNET, performance index
        need = 3
        if size >= 3:
            f["networks"] = [_u16(buf, pos)]
            f["performance_index"] = buf[pos + 2]
    elif mtype == 0x03:  # Reject-Message-To-Network: reason, DNET
        need = 3
        if size >= 1:
            reason = buf[pos]
            f["reject_reason"] = NETWORK_REJECT_REASONS.get(reason) or f"unknown-{reason}"
            f["reject_reason_code"] = reason
        if size >= 3:
            f["networks"] = [_u16(buf, pos + 1)]
    elif mtype == 0x06 or mtype == 0x07:  # Initialize-Routing-Table(-Ack): count, then entries
        exact = False
        if size >= 1:
            count = buf[pos]
            p = pos + 1
            table: list[Fields] = []
            while len(table) < count and p + 4 <= end:
                info_len = buf[p + 3]
                if p + 4 + info_len > end:
                    break
                table.append({"dnet": _u16(buf, p), "port_id": buf[p + 2],
                              "port_info": buf[p + 4 : p + 4 + info_len].hex()})
                p += 4 + info_len
            if len(table) < count:
                problems.append((TRUNCATED_NETWORK, f"{op}: {len(table)} of {count} routing table entries"))
            f["routing_table"] = table
            f["networks"] = [e["dnet"] for e in table]
    elif mtype == 0x08:  # Establish-Connection-To-Network: DNET, termination time
        need = 3
        if size >= 3:
            f["networks"] = [_u16(buf, pos)]
            f["termination_time"] = buf[pos + 2]
    elif mtype == 0x09:  # Disconnect-Connection-To-Network: DNET
        need = 2
        if size >= 2:
            f["networks"] = [_u16(buf, pos)]
    elif mtype == 0x12:  # What-Is-Network-Number: no parameters
        pass
    elif mtype == 0x13:  # Network-Number-Is: network number, learned (0) or configured (1)
        need = 3
        if size >= 3:
            f["networks"] = [_u16(buf, pos)]
            f["network_number_configured"] = buf[pos + 2] == 1
    else:  # security messages, proprietary (0x80-0xFF, vendor id first) and reserved ones: sizes only
        exact = False
        if mtype >= 0x80:
            need = 2
            if size >= 2:
                f["vendor_id"] = _u16(buf, pos)
        f["network_data_length"] = size
    if size < need:
        problems.append((TRUNCATED_NETWORK, f"{op}: {size} bytes of parameters, {need} expected"))
    elif exact and size > need:
        problems.append((NETWORK_EXTRA, f"{op}: {size - need} bytes after the parameters"))
    return op, kind, f, problems


def npdu_header(buf: bytes, pos: int, end: int) -> tuple[int, int, Fields | None, Route, Problems]:
    """The NPDU header at buf[pos:end]: (control octet, offset of what follows or -1 when the header is cut or
    not version 1, routing fields or None, route or None, problems)."""
    problems: Problems = []
    if end - pos < 2:
        problems.append(("bacnet_truncated_npdu", f"{end - pos} bytes of NPDU"))
        return 0, -1, None, None, problems
    if buf[pos] != 1:
        problems.append(("bacnet_invalid_npdu_version", f"version {buf[pos]}"))
        return 0, -1, None, None, problems
    ctrl = buf[pos + 1]
    p = pos + 2
    if not ctrl & 0x28:
        return ctrl, p, None, None, problems
    net: Fields = {}
    snet = dnet = None
    sadr = dadr = None
    if ctrl & 0x20:
        if p + 3 > end or p + 3 + buf[p + 2] > end:
            problems.append(("bacnet_truncated_npdu", "destination specifier cut"))
            return ctrl, -1, None, None, problems
        dnet = _u16(buf, p)
        dadr = buf[p + 3 : p + 3 + buf[p + 2]].hex()
        p += 3 + buf[p + 2]
        net["dnet"] = dnet
        net["dadr"] = dadr
    if ctrl & 0x08:
        if p + 3 > end or p + 3 + buf[p + 2] > end:
            problems.append(("bacnet_truncated_npdu", "source specifier cut"))
            return ctrl, -1, None, None, problems
        snet = _u16(buf, p)
        slen = buf[p + 2]
        sadr = buf[p + 3 : p + 3 + slen].hex()
        p += 3 + slen
        if slen == 0 or snet == 0xFFFF:
            problems.append(("bacnet_invalid_npdu_source", f"SNET {snet} with SLEN {slen}"))
        net["snet"] = snet
        net["sadr"] = sadr
    if ctrl & 0x20:
        if p >= end:
            problems.append(("bacnet_truncated_npdu", "hop count missing"))
            return ctrl, -1, None, None, problems
        net["hop_count"] = buf[p]
        p += 1
    return ctrl, p, net, (snet, sadr, dnet, dadr), problems
