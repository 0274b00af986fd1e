"""The DHCP decoder on hand-built BOOTP/DHCP messages: options, message types, malformed input."""

from __future__ import annotations

import struct
from random import Random

from protocols.base import FlowId
from protocols.dhcp import DhcpDecoder
from simulators.itgen.dns_http import dhcp_message

FLOW = FlowId("CDH", "0.0.0.0", 68, "255.255.255.255", 67, "udp")
MAC = bytes.fromhex("02aa00000077")


def test_request_with_identity_options() -> None:
    opts = [(53, b"\x03"), (50, bytes([10, 30, 0, 77])), (54, bytes([10, 30, 0, 1])), (61, b"\x01" + MAC),
            (12, b"WS-ATTACKER"), (60, b"MSFT 5.0"), (81, b"\x01\x00\x00WS-ATTACKER.corp.example"),
            (55, bytes([1, 3, 6, 15, 252])), (57, b"\x05\xdc"), (0, b"")]
    (ev,) = DhcpDecoder(FLOW).feed(dhcp_message(1, 0xCAFE, MAC, opts[:-1]), True, 1.0)
    assert (ev.op, ev.kind, ev.src, ev.dst) == ("request", "request", "0.0.0.0", "255.255.255.255")
    f = ev.fields
    assert f["mac"] == "02:aa:00:00:00:77" and f["trans_id"] == 0xCAFE and f["broadcast"] is True
    assert (f["requested_addr"], f["server_id"], f["client_id"]) == ("10.30.0.77", "10.30.0.1", "02:aa:00:00:00:77")
    assert (f["host_name"], f["vendor_class"], f["client_software"]) == ("WS-ATTACKER", "MSFT 5.0", "MSFT 5.0")
    assert (f["client_fqdn"], f["fqdn_flags"]) == ("WS-ATTACKER.corp.example", 1)
    assert f["param_list"] == [1, 3, 6, 15, 252] and f["max_msg_size"] == 1500
    assert f["msg_types"] == ["REQUEST"] and f["options"] == [53, 50, 54, 61, 12, 60, 81, 55, 57]


def test_ack_from_the_server() -> None:
    opts = [(53, b"\x05"), (54, bytes([10, 30, 0, 1])), (51, struct.pack(">I", 86400)), (1, bytes([255] * 3 + [0])),
            (3, bytes([10, 30, 0, 1])), (6, bytes([10, 20, 0, 10, 10, 20, 0, 11])), (15, b"corp.example\x00"),
            (58, struct.pack(">I", 43200)), (60, b"srv-vendor"), (56, b"hello"),
            (82, b"\x01\x02ab\x02\x01c\x06\x03sub")]
    flow = FlowId("CDH2", "10.30.0.1", 67, "255.255.255.255", 68, "udp")
    msg = dhcp_message(2, 1, MAC, opts, yiaddr="10.30.0.77", siaddr="10.30.0.1")
    (ev,) = DhcpDecoder(flow).feed(msg, True, 1.0)
    f = ev.fields
    assert (ev.op, ev.kind) == ("ack", "response")
    assert (f["assigned_addr"], f["lease_time"], f["renewal_time"]) == ("10.30.0.77", 86400.0, 43200.0)
    assert (f["subnet_mask"], f["routers"], f["dns_servers"]) == ("255.255.255.0", ["10.30.0.1"],
                                                                 ["10.20.0.10", "10.20.0.11"])
    assert (f["domain"], f["server_software"], f["server_message"]) == ("corp.example", "srv-vendor", "hello")
    assert (f["circuit_id"], f["agent_remote_id"], f["subscriber_id"]) == ("6162", "63", "sub")
    assert "client_software" not in f


def test_message_types_nak_and_plain_bootp() -> None:
    ops = []
    for mt in (1, 2, 4, 6, 7, 8, 9, 10, 99):
        op = 1 if mt in (1, 4, 7, 8, 10) else 2
        (ev,) = DhcpDecoder(FLOW).feed(dhcp_message(op, 1, MAC, [(53, bytes([mt]))]), True, 1.0)
        ops.append((ev.op, ev.kind))
    assert ops == [("discover", "request"), ("offer", "response"), ("decline", "request"), ("nak", "exception"),
                   ("release", "request"), ("inform", "request"), ("forcerenew", "response"),
                   ("leasequery", "request"), ("unknown-99", "response")]
    bootp = dhcp_message(1, 1, MAC, [])[:236]
    (ev,) = DhcpDecoder(FLOW).feed(bootp, True, 1.0)
    assert ev.op == "bootp_request" and ev.fields["mac"] == "02:aa:00:00:00:77"


def test_fqdn_in_wire_format_and_odd_client_id() -> None:
    opts = [(53, b"\x01"), (81, b"\x05\x00\x00\x02ws\x04corp\x00"), (61, b"\xff\x01\x02\x03")]
    (ev,) = DhcpDecoder(FLOW).feed(dhcp_message(1, 1, MAC, opts), True, 1.0)
    assert ev.fields["client_fqdn"] == "ws.corp" and ev.fields["client_id"] == "ff010203"


def test_malformed_messages() -> None:
    dec = DhcpDecoder(FLOW)
    out = dec.feed(b"\x01" * 100, True, 1.0)
    assert [e.op for e in out] == ["dhcp_truncated_message"]
    msg = dhcp_message(1, 1, MAC, [(53, b"\x01"), (50, b"\x01\x02")])
    out = dec.feed(msg, True, 1.0)
    assert [e.op for e in out] == ["discover", "dhcp_invalid_option_length"] and "requested_addr" not in out[0].fields
    out = dec.feed(msg[:-3], True, 1.0)
    assert [e.op for e in out] == ["discover", "dhcp_truncated_option"]
    bad_cookie = bytearray(msg)
    bad_cookie[236] = 0
    assert [e.op for e in dec.feed(bytes(bad_cookie), True, 1.0)] == ["bootp_request", "dhcp_bad_magic_cookie"]
    dec2 = DhcpDecoder(FLOW)
    out = dec2.feed(b"\x07" + msg[1:], True, 1.0)
    assert [e.op for e in out] == ["dhcp_protocol_violation"] and dec2.failed


def test_probe_and_random_bytes() -> None:
    msg = dhcp_message(1, 1, MAC, [(53, b"\x01"), (12, b"host")])
    assert DhcpDecoder.probe(msg, True)
    assert not DhcpDecoder.probe(msg[:239], True) and not DhcpDecoder.probe(b"\x03" + msg[1:], True)
    rng = Random(3)
    for _ in range(2000):
        data = bytearray(msg)
        for _ in range(rng.randrange(1, 6)):
            data[rng.randrange(236, len(data))] = rng.randrange(256)
        data = data[: rng.randrange(200, len(data) + 1)]
        for ev in DhcpDecoder(FLOW).feed(bytes(data), True, 1.0):
            assert ev.protocol == "dhcp"
