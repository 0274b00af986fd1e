"""Protocol decoders (the parse layer): bytes in, typed ProtocolEvents out. DECODERS is the ordered registry."""

from __future__ import annotations

from protocols.bacnet import BacnetDecoder, BacnetEthernetDecoder
from protocols.base import DecoderFactory
from protocols.dhcp import DhcpDecoder
from protocols.dns import DnsDecoder, DnsTcpDecoder
from protocols.http import HttpDecoder
from protocols.ldap import LdapDecoder
from protocols.modbus import ModbusDecoder
from protocols.mqtt import MqttDecoder
from protocols.smb import SmbDecoder

# Order matters for probing a flow on a port no decoder claims: the first decoder whose probe() accepts wins.
# HTTP last: its probe accepts any request line.
DECODERS: list[DecoderFactory] = [
    ModbusDecoder,
    BacnetDecoder,
    BacnetEthernetDecoder,
    MqttDecoder,
    DnsDecoder,
    DnsTcpDecoder,
    DhcpDecoder,
    SmbDecoder,
    LdapDecoder,
    HttpDecoder,
]
