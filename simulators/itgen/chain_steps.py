"""The steps of the intrusion, as traffic from the attacker's machine on the employee's VPN address 10.8.0.23.

Each function writes one step into the capture from packet time `t` and returns when its last frame was sent.
The steps follow the published incident: an NTLM logon to a DC from a workstation name never seen for the address,
a 53-second LDAP read of Active Directory, Nmap's service probe and TCP/UDP scans, a reverse-DNS sweep, an SMB
brute force with the default administrator account, and the pivot into the cooling plant (a Modbus write).
"""

from __future__ import annotations

from simulators.itgen.chain_site import DOMAIN_DN, Site
from simulators.itgen.chain_wire import (
    LOGON_FAILURE,
    Capture,
    bacnet_who_is,
    dns_ask,
    ldap_search,
    ldap_simple_bind,
    ldap_unbind,
    modbus_exchange,
    nbns_node_status,
    ptr_name,
    ptr_rdata,
    rmcp_ping,
    smb_session,
    snmp_get,
    ssdp_search,
    udp_probe,
)
from simulators.itgen.smb_ldap_msgs import der, eq
from simulators.mixgen.wire import TcpConn

__all__ = [
    "ATTACKER_HOSTNAME",
    "NMAP_PROBE",
    "SWEEP",
    "bruteforce",
    "ldap_recon",
    "modbus_write",
    "new_hostname_logon",
    "nmap_probe",
    "rdp_scan",
    "reverse_sweep",
    "tcp_scan_9401",
    "udp_enumeration",
]

ATTACKER_HOSTNAME = "DESKTOP-7QK2M1"
NMAP_PROBE = "/nice%20ports%2C/Tri%6Eity.txt%2ebak"
SWEEP = 300  # PTR queries of the reverse sweep (10.20.0.1 onwards)
SCAN_9401 = 40
SCAN_RDP = 35
UDP_HOSTS = 10
UDP_PORTS = (161, 137, 1900, 623, 47808)
BRUTE_HOSTS = ("fs01", "app01", "sql01", "dc2")
BRUTE_TRIES = 3
_SID = bytes.fromhex("010500000000000515000000") + bytes.fromhex("a1b2c3d4e5f60718293a4b5c")  # S-1-5-21-x-y-z-


def new_hostname_logon(cap: Capture, s: Site, t: float) -> float:
    """Step 1: an SMB2 session to dc1, NTLM as CORP\\jsmith from DESKTOP-7QK2M1, success, IPC$."""
    cap.at(t)
    smb_session(cap, TcpConn(s.attacker, s.dc1, 445, cap.rng), "CORP", "jsmith", ATTACKER_HOSTNAME, [0])
    return cap.now


def _people(kind: str, n: int, first: int = 0) -> list[tuple[str, dict[str, list[bytes]]]]:
    ou = {"user": "Staff", "admin": "Admins", "computer": "Computers"}[kind]
    out = []
    for i in range(first, first + n):
        name = f"{kind}{i:04d}"
        out.append((f"CN={name},OU={ou},{DOMAIN_DN}", {"sAMAccountName": [name.encode()],
                                                       "objectSid": [_SID + i.to_bytes(4, "little")]}))  # fmt: skip
    return out


def ldap_recon(cap: Capture, s: Site, t: float) -> float:
    """Step 2: a 53-second LDAP session with dc2: simple bind, paged searches of every user (1180 entries),
    `(adminCount=1)` (14) and every computer (240)."""
    cap.at(t)
    conn = TcpConn(s.attacker, s.dc2, 389, cap.rng)
    cap.add(*conn.handshake())
    ldap_simple_bind(cap, conn, 1, "jsmith@corp.local", b"Spring2024!")
    users = der(0xA0, eq("objectCategory", "person") + eq("objectClass", "user"))
    attrs = ["sAMAccountName", "objectSid", "memberOf", "servicePrincipalName"]
    cap.wait(1.5)
    ldap_search(cap, conn, 2, DOMAIN_DN, 2, users, attrs, _people("user", 500), (500, b"", b"c1"), 50, 0.4)
    cap.wait(2.0)
    admins = eq("adminCount", "1")
    ldap_search(cap, conn, 3, DOMAIN_DN, 2, admins, attrs, _people("admin", 14))
    cap.wait(3.0)
    ldap_search(cap, conn, 4, DOMAIN_DN, 2, users, attrs, _people("user", 500, 500), (500, b"c1", b"c2"), 50, 0.8)
    cap.wait(3.0)
    ldap_search(cap, conn, 5, DOMAIN_DN, 2, users, attrs, _people("user", 180, 1000), (500, b"c2", b""), 50, 0.8)
    cap.wait(3.0)
    computers = eq("objectClass", "computer")
    ldap_search(cap, conn, 6, DOMAIN_DN, 2, computers, ["dNSHostName", "operatingSystem"], _people("computer", 240),
                batch=40, pause=1.5)  # fmt: skip
    cap.at(t + 53.0)
    ldap_unbind(cap, conn, 7)
    return cap.now


def _http_get(cap: Capture, s: Site, ip: str, port: int, uri: str, status: bytes) -> None:
    conn = TcpConn(s.attacker, s.host(ip), port, cap.rng)
    cap.add(*conn.handshake())
    cap.send(conn, True, f"GET {uri} HTTP/1.0\r\n\r\n".encode())
    body = b"<html><body>" + status + b"</body></html>"
    cap.send(conn, False, b"HTTP/1.1 " + status + b"\r\nServer: nginx\r\nContent-Type: text/html\r\nContent-Length: "
             + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)  # fmt: skip
    cap.add(*conn.close(by_client=False))


def nmap_probe(cap: Capture, s: Site, t: float) -> float:
    """Step 3a: Nmap's service detection on the intranet server: GetRequest, then the FourOhFourRequest probe."""
    cap.at(t)
    _http_get(cap, s, s.web01.ip, 80, "/", b"200 OK")
    cap.wait(0.3)
    _http_get(cap, s, s.web01.ip, 80, NMAP_PROBE, b"404 Not Found")
    return cap.now


def scan_targets(n: int, third: int) -> list[str]:
    """n internal addresses 10.20.<third>.x, spread over the /24."""
    return [f"10.20.{third}.{1 + (i * 7) % 250}" for i in range(n)]


def _syn_scan(
    cap: Capture, s: Site, t: float, port: int, targets: list[str], rst_every: int, open_hosts: tuple[int, ...] = ()
) -> None:
    for i, ip in enumerate(targets):
        cap.at(t + i * 0.4)
        if i in open_hosts:  # an open port: Nmap's service detection follows
            _http_get(cap, s, ip, port, NMAP_PROBE, b"404 Not Found")
            continue
        conn = TcpConn(s.attacker, s.host(ip), port, cap.rng)
        if i % rst_every == 0:
            cap.add(*conn.refused())
        else:
            cap.add(conn.handshake()[0])  # only the SYN goes out: nobody answers


def tcp_scan_9401(cap: Capture, s: Site, t: float) -> float:
    """Step 3b: SYNs to port 9401 of 40 hosts (a few answer RST, two are open and get Nmap's probe)."""
    _syn_scan(cap, s, t, 9401, scan_targets(SCAN_9401, 30), 6, (13, 27))
    return cap.now


def rdp_scan(cap: Capture, s: Site, t: float) -> float:
    """Step 3c: SYNs to RDP (3389) of 35 hosts, unanswered or refused."""
    _syn_scan(cap, s, t, 3389, scan_targets(SCAN_RDP, 31), 5)
    return cap.now


def udp_enumeration(cap: Capture, s: Site, t: float) -> float:
    """Step 3d: SNMP, NBNS, SSDP, IPMI (RMCP) and BACnet probes to 10 hosts, none answered."""
    payloads = {161: snmp_get(0x1000), 137: nbns_node_status(0x2000), 1900: ssdp_search(), 623: rmcp_ping(1),
                47808: bacnet_who_is()}  # fmt: skip
    for i, ip in enumerate(scan_targets(UDP_HOSTS, 32)):
        for k, port in enumerate(UDP_PORTS):
            cap.at(t + i * 1.5 + k * 0.25)
            udp_probe(cap, s.attacker, s.host(ip), port, payloads[port])
    return cap.now


def sweep_addresses() -> list[str]:
    """The 300 addresses of the reverse sweep: 10.20.0.1 up to 10.20.1.44."""
    return [f"10.20.{n // 256}.{n % 256}" for n in range(1, SWEEP + 1)]


def reverse_sweep(cap: Capture, s: Site, t: float) -> float:
    """Step 4: 300 PTR queries for consecutive addresses of 10.20.0.0/16 in 54 s, from one socket; known hosts
    are answered with their names, the rest NXDOMAIN."""
    sport = s.attacker.ephemeral_port()
    for i, ip in enumerate(sweep_addresses()):
        cap.at(t + i * 0.18)
        name = s.names.get(ip)
        dns_ask(cap, s.attacker, s.dc1, ptr_name(ip), 12, [ptr_rdata(name)] if name else [], sport)
    return cap.now


def bruteforce(cap: Capture, s: Site, t: float) -> float:
    """Step 5: SMB logons as .\\administrator on four servers, three failures each (one connection per try),
    then a success on sql01."""
    n = 0
    for name in BRUTE_HOSTS:
        server = getattr(s, name)
        for _ in range(BRUTE_TRIES):
            cap.at(t + n * 1.2)
            smb_session(cap, TcpConn(s.attacker, server, 445, cap.rng), ".", "administrator", ATTACKER_HOSTNAME,
                        [LOGON_FAILURE])  # fmt: skip
            n += 1
    cap.at(t + n * 1.2 + 2.0)
    smb_session(cap, TcpConn(s.attacker, s.sql01, 445, cap.rng), ".", "administrator", ATTACKER_HOSTNAME, [0], "C$")
    return cap.now


def modbus_write(cap: Capture, s: Site, t: float) -> float:
    """Step 6: the pivot into the cooling plant: read the chiller's setpoints, write one (FC6)."""
    cap.at(t)
    conn = TcpConn(s.attacker, s.plc, 502, cap.rng)
    cap.add(*conn.handshake())
    modbus_exchange(cap, conn, 1, 1, bytes([3, 0, 0, 0, 10]), bytes([3, 20]) + bytes(range(20)))
    cap.wait(1.0)
    write = bytes([6, 0, 4, 0, 0x5F])  # register 4 (chilled water setpoint) := 95
    modbus_exchange(cap, conn, 2, 1, write, write)
    cap.add(*conn.close())
    return cap.now
