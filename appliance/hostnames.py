"""Names of hosts from the wire: NTLM workstation names, DHCP host names, DNS answers; (ip, name, source) facts.

`hostname_facts(event)` reads one decoded event and returns what it says about which address goes by which name:
- NTLM (an `smb` event carrying Zeek's ntlm fields): `hostname` is the client's workstation name; the client is the
  event's src when the client sent it (kind request), else its dst.
- DHCP: `host_name` (option 12; else `client_fqdn`, option 81) for the address the client has or asks for
  (`assigned_addr`, `requested_addr`, `client_addr`, else a non-zero src of a client message).
- DNS responses: a PTR answer names the address asked about (`ptr_address`); an A/AAAA answer gives the query
  name to each address in `answers`.
Names are trimmed of a trailing dot and bounded; addresses must parse as IP addresses.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from appliance.model import ProtocolEvent

MAX_NAME = 255
MAX_ANSWERS = 16
Fact = tuple[str, str, str]  # (ip, name, source)


_IPS: dict[str, str | None] = {}  # text -> the address it names (None: not a usable address); bounded
_MAX_IPS = 65536


def _ip(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    if value in _IPS:
        return _IPS[value]
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        out = None
    else:
        out = None if ip.is_unspecified or ip.is_multicast else str(ip)
    if len(_IPS) >= _MAX_IPS:
        _IPS.clear()
    _IPS[value] = out
    return out


def _name(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    name = value.strip().rstrip(".")
    if not name or len(name) > MAX_NAME or not name.isprintable():
        return None
    return name


def _ntlm(ev: ProtocolEvent) -> list[Fact]:
    name = _name(ev.fields.get("hostname"))
    client = _ip(ev.src if ev.kind == "request" else ev.dst)
    return [(client, name, "ntlm")] if name and client else []


def _dhcp(ev: ProtocolEvent) -> list[Fact]:
    f = ev.fields
    name = _name(f.get("host_name")) or _name(f.get("client_fqdn"))
    if not name:
        return []
    for key in ("assigned_addr", "client_addr", "requested_addr"):
        ip = _ip(f.get(key))
        if ip:
            return [(ip, name, "dhcp")]
    ip = _ip(ev.src) if ev.kind == "request" else None
    return [(ip, name, "dhcp")] if ip else []


def _dns(ev: ProtocolEvent) -> list[Fact]:
    f = ev.fields
    answers = f.get("answers")
    if ev.kind != "response" or not isinstance(answers, list) or not answers:
        return []
    qtype = f.get("qtype_name")
    if qtype == "PTR":
        ip = _ip(f.get("ptr_address"))
        return [(ip, n, "dns") for n in map(_name, answers[:MAX_ANSWERS]) if n] if ip else []
    if qtype in ("A", "AAAA"):
        name = _name(f.get("query"))
        return [(ip, name, "dns") for ip in map(_ip, answers[:MAX_ANSWERS]) if ip] if name else []
    return []


def hostname_facts(ev: ProtocolEvent) -> list[Fact]:
    """What one event says about names of addresses ([] for most events)."""
    protocol = ev.protocol
    if protocol == "smb" or protocol == "ntlm" or protocol == "ldap":
        return _ntlm(ev) if "hostname" in ev.fields else []
    if protocol == "dhcp":
        return _dhcp(ev)
    if protocol == "dns":
        return _dns(ev)
    return []


HOSTNAME_PROTOCOLS = frozenset({"smb", "ntlm", "ldap", "dhcp", "dns"})
CLIENT_SOURCES = frozenset({"ntlm", "dhcp"})  # the named address sent the message: it may become an asset
