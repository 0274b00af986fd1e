"""The simulated data-center site: hosts by role in a few /24 subnets, each with a stable MAC and DNS name."""

from __future__ import annotations

from random import Random

from simulators.mixgen.wire import Host

DOMAIN = "dc1.corp"

# PLC vendor profiles: (vendor name, product code, revision, OUI or None for a locally administered MAC)
PLC_VENDORS: tuple[tuple[str, str, str, bytes | None], ...] = (
    ("Schneider Electric", "BMX P34 2020", "v3.20", b"\x00\x80\xf4"),
    ("Siemens", "6ES7 315-2EH14-0AB0", "V3.2.17", b"\x00\x1b\x1b"),
    ("Rockwell Automation", "1756-L83E", "32.011", b"\x00\x00\xbc"),
    ("WAGO", "750-8202", "03.10.08", b"\x00\x30\xde"),
    ("Phoenix Contact", "AXC F 2152", "2023.0.4", b"\x00\xa0\x45"),
    ("Moxa", "MGate MB3170", "4.3", b"\x00\x90\xe8"),
)
AXIS_OUI = b"\x00\x40\x8c"

# role -> (share of hosts, minimum count, subnet prefix, first host octet, name prefix)
_ROLES: tuple[tuple[str, float, int, str, int, str], ...] = (
    ("scada", 0.015, 1, "10.10.1", 10, "scada"),
    ("plc", 0.18, 2, "10.10.1", 100, "plc"),
    ("bms", 0.01, 1, "10.20.1", 10, "bms-ws"),
    ("bacnet", 0.19, 2, "10.20.1", 100, "bac"),
    ("broker", 0.0, 1, "10.30.1", 10, "mqtt"),
    ("historian", 0.0, 1, "10.30.1", 11, "historian"),
    ("iot", 0.25, 3, "10.30.1", 50, "iot"),
    ("dns", 0.0, 1, "10.40.1", 2, "ns"),
    ("server", 0.02, 1, "10.40.1", 10, "srv"),
    ("it", 0.0, 2, "10.40.1", 50, "ws"),
)
MIN_HOSTS = 20


def _mac(oui: bytes | None, rng: Random) -> bytes:
    if oui is None:  # locally administered, unicast
        return bytes([0x02, rng.getrandbits(8)]) + rng.getrandbits(32).to_bytes(4, "big")
    return oui + rng.getrandbits(24).to_bytes(3, "big")


def _address(prefix: str, first: int, index: int) -> str:
    """Address number `index` of a role, spilling into the next /24s past .250."""
    a, b, c = (int(x) for x in prefix.split("."))
    slot = first + index
    c += (slot - 1) // 250
    return f"{a}.{b}.{c}.{(slot - 1) % 250 + 1}"


class Site:
    """All hosts of the simulated site, grouped by role, with DNS names and a broadcast host per subnet."""

    def __init__(self, hosts: int, rng: Random) -> None:
        if hosts < MIN_HOSTS:
            raise ValueError(f"hosts must be at least {MIN_HOSTS}")
        counts = {role: max(minimum, round(hosts * share)) for role, share, minimum, *_ in _ROLES}
        counts["it"] = hosts - sum(n for role, n in counts.items() if role != "it")
        if counts["it"] < 2:
            raise ValueError("too few hosts for the role mix")
        self.by_role: dict[str, list[Host]] = {}
        self.all: list[Host] = []
        for role, _share, _minimum, prefix, first, name_prefix in _ROLES:
            group: list[Host] = []
            for i in range(counts[role]):
                vendor = ""
                oui: bytes | None = None
                ttl = 64
                if role == "plc":
                    vendor, _product, _rev, oui = PLC_VENDORS[i % len(PLC_VENDORS)]
                elif role == "iot" and i % 3 == 0:
                    vendor, oui = "Axis", AXIS_OUI
                elif role in ("it", "scada", "bms") and i % 2 == 0:
                    ttl = 128  # Windows hosts
                name = self._name(role, name_prefix, i)
                host = Host(name, role, _address(prefix, first, i), _mac(oui, rng), ttl, rng, vendor)
                group.append(host)
            self.by_role[role] = group
            self.all.extend(group)
        if len({h.ip for h in self.all}) != len(self.all):
            raise ValueError("too many hosts for the address plan")
        self.broadcasts = {
            prefix: Host(f"broadcast-{prefix}", "broadcast", prefix + ".255", b"\xff" * 6, 64, rng)
            for prefix in {p for _r, _s, _m, p, _f, _n in _ROLES}
        }

    @staticmethod
    def _name(role: str, prefix: str, i: int) -> str:
        if role == "iot":
            kind = ("cam", "sensor", "pdu")[i % 3]
            return f"{kind}-{i // 3 + 1:02d}"
        if role == "bacnet":
            return f"{('ahu', 'vav', 'crah', 'chiller')[i % 4]}-{i // 4 + 1:02d}"
        if role in ("broker", "historian"):
            return prefix
        return f"{prefix}-{i + 1:02d}"

    def fqdn(self, host: Host) -> str:
        """The host's DNS name."""
        return f"{host.name}.{DOMAIN}"

    def role(self, name: str) -> list[Host]:
        """The hosts of one role."""
        return self.by_role[name]
