"""Plain-text tables for the terminal (the `otwatch inventory` view)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from appliance.model import Asset, Attribute

INVENTORY_COLUMNS = (
    "ADDRESS",
    "MAC",
    "CATEGORY",
    "ZONE",
    "VENDOR",
    "MODEL",
    "FIRMWARE",
    "DEVICE",
    "NAME",
    "ROLES",
    "FIRST SEEN",
    "LAST SEEN",
)

# what the unit numbers of a role are, by (protocol, role); Modbus unit ids by default
_UNIT_WORDS = {
    ("bacnet", "client"): "device",
    ("bacnet", "server"): "device",
    ("bacnet", "router"): "net",
}


def _attr(attr: Attribute | None) -> str:
    return attr.value if attr is not None else "-"


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) if ts else "-"


def _roles(asset: Asset) -> str:
    parts = []
    for role in asset.roles:
        units = ",".join(str(u) for u in role.units[:6]) + ("..." if len(role.units) > 6 else "")
        word = _UNIT_WORDS.get((role.protocol, role.role), "unit")
        parts.append(f"{role.protocol} {role.role}" + (f" ({word} {units})" if units else ""))
    return "; ".join(parts) or ",".join(asset.protocols) or "-"


def bacnet_mac_text(mac: str) -> str:
    """A BACnet MAC (hex) as engineers read it: MS/TP and ARCNET (1 byte) in decimal; 6 bytes as the BACnet/IP
    `ip:port` when the port is a BACnet one (0xBAC0-0xBACF), else as an Ethernet MAC; others in hex."""
    try:
        raw = bytes.fromhex(mac)
    except ValueError:
        return mac
    if len(raw) == 1:
        return str(raw[0])
    if len(raw) == 6:
        port = int.from_bytes(raw[4:], "big")
        if 0xBAC0 <= port <= 0xBACF:
            return ".".join(str(b) for b in raw[:4]) + f":{port}"
        return raw.hex(":")
    return mac


def address_text(asset: Asset) -> str:
    """The IP; a routed BACnet device as `net N mac M`; a MAC-only station as `-` (its MAC has a column)."""
    if asset.ip:
        return asset.ip
    if asset.bacnet_network is not None and asset.bacnet_mac is not None:
        return f"net {asset.bacnet_network} mac {bacnet_mac_text(asset.bacnet_mac)}"
    return "-"


def _order(a: Asset) -> tuple[bool, str, str, int, str, str]:
    return (not a.ot_traffic, a.category, a.ip or a.via_ip or "", a.bacnet_network or 0, a.bacnet_mac or "",
            a.mac or "")


def asset_rows(assets: Sequence[Asset]) -> list[tuple[str, ...]]:
    """One row of text per asset, OT assets first, then by category and address (routed devices by router)."""

    rows: list[tuple[str, ...]] = []
    for a in sorted(assets, key=_order):
        via = a.via_ip or a.via_mac
        mac = a.mac or (f"via {via}" if via else "-")
        vendor = _attr(a.vendor) if a.vendor is not None else _attr(a.mac_vendor)
        device = str(a.bacnet_device_instance) if a.bacnet_device_instance is not None else "-"
        name = _attr(a.object_name) if a.object_name is not None else ",".join(a.mqtt_client_ids[:2]) or "-"
        rows.append(
            (
                address_text(a),
                mac,
                a.category,
                a.zone or "-",
                vendor,
                _attr(a.model if a.model is not None else a.product_name),
                _attr(a.firmware),
                device,
                name,
                _roles(a),
                _when(a.first_seen),
                _when(a.last_seen),
            )
        )
    return rows


def render_table(rows: Sequence[tuple[str, ...]], columns: Sequence[str] = INVENTORY_COLUMNS, cap: int = 40) -> str:
    """Left-aligned columns sized to their content (each cell cut at `cap` characters)."""
    cut = [tuple(c if len(c) <= cap else c[: cap - 1] + "~" for c in row) for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cut]) for i, h in enumerate(columns)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cut]
    return "\n".join(lines)
