"""The broker session's health as the metrics exporter reads it: one immutable snapshot per scrape."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BrokerHealth"]


@dataclass(frozen=True, slots=True)
class BrokerHealth:
    """Whether the session is up, how often it came back or failed, and the messages it received."""

    up: bool
    reconnects: int  # sessions established again after one was lost
    connect_failures: int  # attempts that failed (no TCP/TLS connection, or CONNACK refused)
    messages_sys: int  # messages received on $SYS topics
    messages_data: int  # messages received on every other topic
    last_message_ts: float  # wall-clock time of the newest message, 0.0 before the first
