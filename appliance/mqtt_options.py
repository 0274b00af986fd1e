"""Validation shared by the two MQTT client configs (the broker session and the MQTT alert sink)."""

from __future__ import annotations

from typing import Any


def tls_default_port(data: Any) -> Any:
    """A raw MQTT section with TLS and no port gets 8883, the MQTT-over-TLS port."""
    if isinstance(data, dict) and "port" not in data and data.get("tls") is not None:
        return {**data, "port": 8883}
    return data


def protocol_text(value: Any) -> Any:
    """The protocol version as text: YAML reads `protocol: 5` as a number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "5" if value == 5 else str(value)
    return value


def password_needs_user(password_file: Any, username: Any, key: str) -> None:
    """Refuse a password without a user name (MQTT sends a password only with one); `key` names the user key."""
    if password_file is not None and not username:
        raise ValueError(f"a password needs {key} too (MQTT sends a password only with a user name)")
