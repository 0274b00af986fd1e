"""Packet sources (pcap and pcapng files, live AF_PACKET rings) and the L2-L4 dissector that makes Packets.

Every source yields `(linktype, ts, frame, wire_len)` tuples; `Dissector.dissect` takes the same four values.
"""

from appliance.capture.dissect import Dissector
from appliance.capture.live import LiveCapture
from appliance.capture.pcapfile import CaptureError, PcapReader

__all__ = ["CaptureError", "Dissector", "LiveCapture", "PcapReader"]
