"""What the live IT site is made of: addresses on loopback, service ports, accounts, DNS names and directory entries.

The addresses mirror the offline chain (simulators/itgen/chain_site.py) with `10.` read as `127.`: the employee's VPN
address 127.8.0.23, the servers in 127.20.0.0/16 (dc1 answers DNS and SMB, dc2 LDAP and SMB, fs01/app01/sql01 SMB,
web01 HTTP), the scan targets in 127.20.30-32.x where nothing listens. Loopback answers any 127/8 address with no
configuration. Ports are the standard ones when the process may bind them (root), else high ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

DOMAIN = "CORP"
DNS_DOMAIN = "corp.local"
DOMAIN_DN = "DC=corp,DC=local"
LAPTOP_HOSTNAME = "LAPTOP-JSMITH"
ATTACKER_HOSTNAME = "DESKTOP-7QK2M1"  # the name of the attacker's machine (simulators.itgen.chain_steps)
USER = "jsmith"
USER_PASSWORD = "Spring2024!"  # the employee's password, stolen with the VPN credentials
DEFAULT_PASSWORD = "P@ssw0rd"  # sql01's local administrator still has the default one
GUESSES = ("Password1", "Welcome1!", "admin")  # the three failed tries on every server
USERS, ADMINS, COMPUTERS = 1166, 14, 240  # persons = users + admins = 1180; 1434 entries read in all


@dataclass(frozen=True, slots=True)
class Ports:
    """The service ports of the IT servers."""

    dns: int
    http: int
    smb: int
    ldap: int


STANDARD_PORTS = Ports(53, 80, 445, 389)
HIGH_PORTS = Ports(10053, 10080, 10445, 10389)


def default_ports() -> Ports:
    """Standard ports when running as root (they need privilege), else high ones."""
    return STANDARD_PORTS if os.geteuid() == 0 else HIGH_PORTS


@dataclass(frozen=True, slots=True)
class Server:
    """An IT server: its name, address, and the local accounts its SMB service accepts (user -> password)."""

    name: str
    address: str
    local_accounts: tuple[tuple[str, str], ...] = ()

    @property
    def fqdn(self) -> str:
        """Its DNS name."""
        return f"{self.name}.{DNS_DOMAIN}"


@dataclass(frozen=True, slots=True)
class ItPlan:
    """The whole live IT site and the attacker's view of it."""

    ports: Ports = field(default_factory=default_ports)
    vpn: str = "127.8.0.23"
    dc1: Server = Server("dc1", "127.20.0.10", (("administrator", "Zq7!domain-only"),))
    dc2: Server = Server("dc2", "127.20.0.11", (("administrator", "Zq7!domain-only"),))
    fs01: Server = Server("fs01", "127.20.1.20", (("administrator", "Xk2#fs01-local"),))
    app01: Server = Server("app01", "127.20.1.30", (("administrator", "Rb9$app01-local"),))
    sql01: Server = Server("sql01", "127.20.1.40", (("administrator", DEFAULT_PASSWORD),))
    web01: Server = Server("web01", "127.20.1.80")
    domain_accounts: tuple[tuple[str, str], ...] = ((USER, USER_PASSWORD), ("mjones", "Autumn#77"))
    scan_9401: int = 40
    scan_rdp: int = 35
    udp_hosts: int = 10
    udp_ports: tuple[int, ...] = (161, 137, 1900, 623, 47808)
    sweep: int = 300
    brute_servers: tuple[str, ...] = ("fs01", "app01", "sql01", "dc2")

    @property
    def servers(self) -> tuple[Server, ...]:
        """Every server."""
        return (self.dc1, self.dc2, self.fs01, self.app01, self.sql01, self.web01)

    @property
    def smb_servers(self) -> tuple[Server, ...]:
        """The servers with an SMB service."""
        return (self.dc1, self.dc2, self.fs01, self.app01, self.sql01)

    def server(self, name: str) -> Server:
        """The server called `name`."""
        return next(s for s in self.servers if s.name == name)

    def names(self) -> dict[str, str]:
        """The DNS zone: address -> name (PTR answers), the laptop's VPN address included."""
        out = {s.address: s.fqdn for s in self.servers}
        out[self.vpn] = f"{LAPTOP_HOSTNAME.lower()}.{DNS_DOMAIN}"
        return out

    def forward(self) -> dict[str, str]:
        """The DNS zone: name -> address (A answers), with the intranet alias of web01."""
        out = {name: ip for ip, name in self.names().items()}
        out[f"intranet.{DNS_DOMAIN}"] = self.web01.address
        return out

    def scan_targets(self, n: int, third: int) -> list[str]:
        """n addresses 127.20.<third>.x spread over the /24 (nothing listens there)."""
        return [f"127.20.{third}.{1 + (i * 7) % 250}" for i in range(n)]

    def sweep_addresses(self) -> list[str]:
        """The addresses of the reverse sweep: 127.20.0.1 onwards, `sweep` of them."""
        return [f"127.20.{n // 256}.{n % 256}" for n in range(1, self.sweep + 1)]


def directory() -> list[tuple[str, dict[str, list[str]]]]:
    """The canned Active Directory content: (dn, attributes); objectCategory is kept as its short name."""
    out: list[tuple[str, dict[str, list[str]]]] = []
    person = ["top", "person", "organizationalPerson", "user"]
    for i in range(USERS):
        name = f"user{i:04d}"
        out.append((f"CN={name},OU=Staff,{DOMAIN_DN}", {"objectClass": person, "objectCategory": ["person"],
                                                         "sAMAccountName": [name]}))  # fmt: skip
    for i in range(ADMINS):
        name = f"admin{i:02d}"
        out.append(
            (
                f"CN={name},OU=Admins,{DOMAIN_DN}",
                {
                    "objectClass": person,
                    "objectCategory": ["person"],
                    "sAMAccountName": [name],
                    "adminCount": ["1"],
                    "memberOf": [f"CN=Domain Admins,CN=Users,{DOMAIN_DN}"],
                },
            )
        )
    for i in range(COMPUTERS):
        name = f"WS-{i:03d}"
        out.append(
            (
                f"CN={name},OU=Computers,{DOMAIN_DN}",
                {
                    "objectClass": ["top", "person", "organizationalPerson", "user", "computer"],
                    "objectCategory": ["computer"],
                    "sAMAccountName": [name + "$"],
                    "dNSHostName": [f"{name.lower()}.{DNS_DOMAIN}"],
                    "operatingSystem": ["Windows 10 Enterprise"],
                },
            )
        )
    return out
