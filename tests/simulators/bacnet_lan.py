"""An in-process BACnet/IP LAN for the wire tests: real bacpypes3 stacks (BVLL, NPDU, APDU) on bacpypes3's virtual
IPv4 network (bacpypes3.vlan), no sockets; every datagram is logged as (source IP, destination IP, UDP payload).

A frame sent to a local broadcast goes to the LAN's broadcast address, as a UDP socket would send it.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from bacpypes3.app import Application
from bacpypes3.comm import Client, Server, bind
from bacpypes3.ipv4.bvll import BVLLCodec
from bacpypes3.ipv4.service import BIPNormal
from bacpypes3.pdu import PDU, Address, IPv4Address
from bacpypes3.vlan import IPv4Network, IPv4Node

Message = tuple[str, str, bytes]  # source IP, destination IP, UDP payload


class _Broadcast(Client[PDU], Server[PDU]):
    """Between the BVLL codec and the virtual node: a local broadcast goes to the LAN's broadcast address."""

    def __init__(self, broadcast: IPv4Address) -> None:
        Client.__init__(self)
        Server.__init__(self)
        self.broadcast = broadcast

    async def indication(self, pdu: PDU) -> None:
        if pdu.pduDestination.addrType == Address.localBroadcastAddr:
            pdu.pduDestination = self.broadcast
        await self.request(pdu)

    async def confirmation(self, pdu: PDU) -> None:
        await self.response(pdu)


class Lan:
    """A virtual IPv4 LAN (10.0.0.0/8) with a traffic log."""

    def __init__(self, network: str = "10.0.0.0/8") -> None:
        self.net = IPv4Network(ipaddress.IPv4Network(network))
        self.log: list[Message] = []
        self.net.traffic_log = self._log

    def _log(self, _name: str, pdu: Any) -> None:
        src, dst = (str(a).split(":")[0] for a in (pdu.pduSource, pdu.pduDestination))
        self.log.append((src, dst, bytes(pdu.pduData)))

    def attach(self, app: Application, ip: str) -> None:
        """Give `app` a B/IP link layer on this LAN at `ip`."""
        bip, codec, adapter = BIPNormal(), BVLLCodec(), _Broadcast(self.net.broadcast_address)
        node = IPv4Node(IPv4Address(ip), self.net)
        bind(bip, codec, adapter, node)
        app.nsap.bind(bip, address=IPv4Address(ip))

    def mark(self) -> int:
        """How many datagrams the log holds now."""
        return len(self.log)

    async def settle(self, quiet: float = 0.05, limit: float = 10.0) -> None:
        """Wait until no datagram has been sent for `quiet` seconds (bounded by `limit`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        seen = -1
        while seen != len(self.log) and loop.time() < deadline:
            seen = len(self.log)
            await asyncio.sleep(quiet)
