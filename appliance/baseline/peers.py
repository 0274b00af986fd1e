"""Peer groups from the inventory: devices that look alike share a baseline.

A device's signature is its category, vendor, model and protocol roles as the inventory knows them (a CRAH
controller: `BMS controller`, `Johnson Controls Inc`, `FX-PCG2611`, `bacnet:server`). Devices with the same
signature form a peer group: a fact learned for one member holds for the others (a fifth identical controller,
polled and written by the same front end, is not an incident). Devices without a category of their own
(`unknown`, `IT host`) join no group. Looser, a device's category peers are the devices of the same category in the
same zone: an established writer of one kind of point on some of them may write it on the others.
"""

from __future__ import annotations

from collections.abc import Iterable

from appliance.model import Asset

UNGROUPED = frozenset({"unknown", "IT host", ""})
Signature = tuple[str, str, str, str]


def signature(asset: Asset) -> Signature | None:
    """The peer signature of an asset (None when it has no category of its own)."""
    if asset.category in UNGROUPED or not asset.ip:
        return None
    vendor = asset.vendor  # not the MAC's vendor: it shows only once a connection ended (a camera's may last days)
    model = asset.model or asset.product_code
    roles = ",".join(sorted({f"{r.protocol}:{r.role}" for r in asset.roles}))
    return (asset.category, vendor.value if vendor else "", model.value if model else "", roles)


def describe(sig: Signature) -> str:
    """A signature in words: `Johnson Controls Inc FX-PCG2611 (BMS controller; bacnet:server)`."""
    category, vendor, model, roles = sig
    name = " ".join(p for p in (vendor, model) if p) or category
    return f"{name} ({category}; {roles or 'no roles'})"


class Peers:
    """Signatures, peer groups and category peers of the inventory's devices, rebuilt by `refresh`."""

    def __init__(self) -> None:
        self.sig_of: dict[str, Signature] = {}
        self.groups: dict[Signature, list[str]] = {}
        self.by_category: dict[tuple[str, str], list[str]] = {}
        self.category_of: dict[str, tuple[str, str]] = {}

    def refresh(self, assets: Iterable[Asset]) -> None:
        """Recompute every group from an inventory snapshot (members in discovery order)."""
        self.sig_of.clear()
        self.groups.clear()
        self.by_category.clear()
        self.category_of.clear()
        for asset in assets:
            sig = signature(asset)
            if sig is None:
                continue
            self.sig_of[asset.ip] = sig
            self.groups.setdefault(sig, []).append(asset.ip)
            cat = (asset.zone or "", asset.category)
            self.category_of[asset.ip] = cat
            self.by_category.setdefault(cat, []).append(asset.ip)

    def group_peers(self, ip: str) -> list[str]:
        """The other members of the device's peer group."""
        sig = self.sig_of.get(ip)
        if sig is None:
            return []
        return [m for m in self.groups.get(sig, ()) if m != ip]

    def category_peers(self, ip: str) -> list[str]:
        """The other devices of the device's category in its zone."""
        cat = self.category_of.get(ip)
        if cat is None:
            return []
        return [m for m in self.by_category.get(cat, ()) if m != ip]

    def describe(self, ip: str) -> str:
        """The device's signature in words (empty when it has none)."""
        sig = self.sig_of.get(ip)
        return describe(sig) if sig is not None else ""
