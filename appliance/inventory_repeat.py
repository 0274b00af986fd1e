"""The inventory's repeat memo: a protocol event that repeats one already learnt from changes only counters and times.

A Modbus poller or a BACnet front end sends the same request to the same device over and over, and gets the same
kind of answer. The first such event goes through `AssetInventory.on_event` in full; what it adds to the sender's
and receiver's sets (protocols, peers, roles, unit ids, BACnet services) is there after it, and sets only grow, so
an identical event later adds nothing to them: it only moves the sender's first/last seen and counts one event
sent and (if the receiver is an asset) one received. `RepeatMemo.hit` does just that for an event whose
*repeat key* (protocol, sender, receiver, op, kind, and everything else that the full path and the choice to
remember read: the Modbus unit id; the BACnet BVLC function, routing fields and a device object in the event) it
has seen, provided the sender and receiver still map to the same records (a record re-keyed, merged or created
meanwhile makes the entry stale: full path).

Only events whose full path is exactly that are remembered: Modbus and BACnet events with no identity in them
(not an FC43 answer, not a BACnet announcement, a device-object read or a ReadPropertyMultiple ACK with a device
object's properties, a routed, forwarded or network-layer message), and MQTT PUBLISHes (the topic is in the key,
the payload type too, and its count is redone on a hit), sent by an IP that is already an asset. Every other
event, and every event of another protocol, takes the full path each time. A new step in the full path for
Modbus or BACnet must keep this true (or exclude its events here): tests/test_inventory_repeat.py compares memo and
full path on every event of the test traces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from appliance.asset_index import looks_like_mac
from appliance.asset_rules import AssetRecord
from appliance.bacnet_assets import (
    ANNOUNCE_OPS,
    DISTRIBUTE,
    FORWARDED,
    NO_ROLE_OPS,
    READ_OPS,
    is_network_op,
)
from protocols.base import EXCEPTION, REQUEST, RESPONSE, WEIRD, ProtocolEvent

if TYPE_CHECKING:
    from appliance.inventory import AssetInventory

__all__ = ["MAX_ENTRIES", "RepeatMemo"]

MAX_ENTRIES = 1 << 16  # a full memo is emptied and fills again
_RDI = "read_device_identification"
_RPM = "read_property_multiple"
_NOT_DEVICE = "-"  # (not False: a key of device instance 0 would equal it)
_DEVICE_ENTRIES = "device entries"  # a ReadPropertyMultiple ACK with a device object's properties (never kept)
_KINDS = frozenset({REQUEST, RESPONSE, EXCEPTION, WEIRD})
# (sender record, receiver record or None, activity key, sender's BACnet instance, receiver's BACnet instance)
Entry = tuple[AssetRecord, AssetRecord | None, tuple[str, str], int | None, int | None]


def _device_entries(f: dict[str, Any]) -> bool:
    """True when a ReadPropertyMultiple's property list has a device object's entry (or is not a plain list)."""
    entries = f.get("properties")
    if type(entries) is not list:
        return True
    return any(type(e) is not dict or e.get("object_type") == "device" for e in entries)


class RepeatMemo:
    """Repeat keys of events learnt in full, and the records they touched (pipeline thread only)."""

    def __init__(self, inventory: AssetInventory) -> None:
        self._inv = inventory
        self._by_ip = inventory._by_ip  # (the same dict object for the inventory's lifetime)
        self._memo: dict[tuple[Any, ...], Entry] = {}

    def hit(self, ev: ProtocolEvent) -> bool:
        """Account a repeated event (times and counters) and return True; else remember it if it qualifies and
        return False: the caller then learns from it in full."""
        protocol = ev.protocol
        f = ev.fields
        if protocol == "modbus":
            unit = f.get("unit")
            key: tuple[Any, ...] = (protocol, ev.src, ev.dst, ev.op, ev.kind, unit)
        elif protocol == "bacnet":
            # everything `_remember` decides on is in the key: routing, and a device object with its instance
            if f.get("object_type") == "device":
                dev = f.get("instance_number")
            elif ev.op == _RPM and ev.kind == RESPONSE and _device_entries(f):
                dev = _DEVICE_ENTRIES
            else:
                dev = _NOT_DEVICE
            routed = "snet" in f or "dnet" in f
            key = (protocol, ev.src, ev.dst, ev.op, ev.kind, f.get("bvlc_function"), dev, routed)
        elif protocol == "mqtt":
            if ev.op != "publish":
                return False
            # the full path adds the topic (a set) and counts the payload type: both in the key, the count redone
            key = (protocol, ev.src, ev.dst, ev.op, ev.kind, f.get("topic"), f.get("payload_type"))
        else:
            return False
        try:
            entry = self._memo.get(key)
        except TypeError:  # an unhashable value in the key: never remembered
            return False
        by_ip = self._by_ip
        if entry is not None:
            rec, target, skey, rinst, tinst = entry
            dst = ev.dst
            if (by_ip.get(ev.src) is rec and (by_ip.get(dst) if dst else None) is target
                    and rec.bacnet_instance == rinst and (target is None or target.bacnet_instance == tinst)):
                ts = ev.ts
                if ts > rec.last_seen:
                    rec.last_seen = ts
                elif ts < rec.first_seen:
                    rec.first_seen = ts
                rec.cached = None
                rec.sent[skey] += 1
                if target is not None:
                    target.received[skey] += 1
                    target.cached = None
                if protocol == "mqtt" and ev.kind == REQUEST:  # what mqtt_assets.learn_wire counts
                    kind = f.get("payload_type")
                    if isinstance(kind, str):
                        rec.mqtt_payload_types[kind] += 1
                return True
        self._remember(key, ev)
        return False

    def _remember(self, key: tuple[Any, ...], ev: ProtocolEvent) -> None:
        """Keep the records an event of `key` touches, if its full path is only counters and idempotent set
        additions (checked here, before the full path runs; the entry serves only later events)."""
        src, dst, op, kind, f = ev.src, ev.dst, ev.op, ev.kind, ev.fields
        if not src or kind not in _KINDS or looks_like_mac(src) or (dst and looks_like_mac(dst)):
            return
        inv = self._inv
        if ev.protocol == "mqtt":
            skey = ("mqtt", inv.op_class("mqtt", op))
        elif ev.protocol == "modbus":
            unit = f.get("unit")
            if (kind == RESPONSE and op == _RDI) or not (unit is None or type(unit) is int):
                return
            skey = ("modbus", inv.op_class("modbus", op))
        else:
            bvlc = f.get("bvlc_function")
            if bvlc == FORWARDED or "snet" in f or "dnet" in f or (type(bvlc) is str and bvlc in DISTRIBUTE):
                return
            if kind != WEIRD:
                if is_network_op(op) or op in ANNOUNCE_OPS or op in NO_ROLE_OPS:
                    return
                if kind == RESPONSE and op in READ_OPS and (
                    _device_entries(f) if op == _RPM else f.get("object_type") == "device"
                ):
                    return  # may carry the sender's own device properties
            skey = ("bacnet", inv.op_class("bacnet", op))
        by_ip = self._by_ip
        rec = by_ip.get(src)
        if rec is None:
            return
        target = by_ip.get(dst) if dst else None
        memo = self._memo
        if len(memo) >= MAX_ENTRIES:
            memo.clear()
        memo[key] = (rec, target, skey, rec.bacnet_instance, target.bacnet_instance if target is not None else None)
