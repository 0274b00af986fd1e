"""Protocol decoders (the parse layer): bytes in, typed ProtocolEvents out. DECODERS is the ordered registry."""

from __future__ import annotations

from protocols.bacnet import BacnetDecoder, BacnetEthernetDecoder
from protocols.base import DecoderFactory
from protocols.modbus import ModbusDecoder
from protocols.mqtt import MqttDecoder

# Order matters for probing a flow on a port no decoder claims: the first decoder whose probe() accepts wins.
DECODERS: list[DecoderFactory] = [ModbusDecoder, BacnetDecoder, BacnetEthernetDecoder, MqttDecoder]
