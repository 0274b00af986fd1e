"""Plain-text tables for the terminal (the `otwatch inventory` view)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from appliance.model import Asset, Attribute

INVENTORY_COLUMNS = (
    "IP",
    "MAC",
    "CATEGORY",
    "ZONE",
    "VENDOR",
    "MODEL",
    "FIRMWARE",
    "ROLES",
    "FIRST SEEN",
    "LAST SEEN",
)


def _attr(attr: Attribute | None) -> str:
    return attr.value if attr is not None else "-"


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) if ts else "-"


def _roles(asset: Asset) -> str:
    parts = []
    for role in asset.roles:
        units = ",".join(str(u) for u in role.units[:6]) + ("..." if len(role.units) > 6 else "")
        parts.append(f"{role.protocol} {role.role}" + (f" (unit {units})" if units else ""))
    return "; ".join(parts) or ",".join(asset.protocols) or "-"


def asset_rows(assets: Sequence[Asset]) -> list[tuple[str, ...]]:
    """One row of text per asset, OT assets first, then by address."""

    def order(a: Asset) -> tuple[bool, str, str]:
        return (not a.ot_traffic, a.category, a.ip)

    rows: list[tuple[str, ...]] = []
    for a in sorted(assets, key=order):
        mac = a.mac or (f"via {a.via_mac}" if a.via_mac else "-")
        vendor = _attr(a.vendor) if a.vendor is not None else _attr(a.mac_vendor)
        rows.append(
            (
                a.ip,
                mac,
                a.category,
                a.zone or "-",
                vendor,
                _attr(a.model),
                _attr(a.firmware),
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
