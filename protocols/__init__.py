"""Protocol decoders (the parse layer): bytes in, typed ProtocolEvents out. DECODERS is the ordered registry."""

from __future__ import annotations

from protocols.base import DecoderFactory

DECODERS: list[DecoderFactory] = []
