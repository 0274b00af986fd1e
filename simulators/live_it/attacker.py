"""The employee's laptop and the attacker behind the same VPN address, live against the IT servers on loopback.

`learn()` is the benign history the sensor learns: LAPTOP-JSMITH logs on to fs01 as CORP\\jsmith from the VPN
address, web01 resolves that address (PTR, answered laptop-jsmith.corp.local), the laptop resolves the intranet and
browses it. `play()` is the intrusion chain of simulators/itgen/chain_steps.py from the same address with a stolen
password on another machine (DESKTOP-7QK2M1), step by step with pauses, printing each step as it starts: the NTLM
logon, the LDAP read of the directory, Nmap's probe, the TCP scans of 9401 and RDP, the UDP enumeration, the
reverse-DNS sweep, the SMB brute force of `administrator`, and an optional OT step (a callback).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from random import Random

from simulators.itgen.chain_steps import NMAP_PROBE
from simulators.itgen.chain_wire import bacnet_who_is, nbns_node_status, ptr_name, rmcp_ping, snmp_get, ssdp_search
from simulators.itgen.smb_ldap_msgs import der, eq
from simulators.live_it import clients
from simulators.live_it.plan import (
    ATTACKER_HOSTNAME,
    DEFAULT_PASSWORD,
    DOMAIN,
    DOMAIN_DN,
    GUESSES,
    LAPTOP_HOSTNAME,
    USER,
    USER_PASSWORD,
    ItPlan,
)

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
ATTRS = ("sAMAccountName", "objectSid", "memberOf", "servicePrincipalName")


@dataclass(frozen=True, slots=True)
class StepRun:
    """One step as it ran: its name, what it did, wall-clock start and end (the sensor's packet time, live)."""

    name: str
    description: str
    start: float
    end: float


class Attacker:
    """The VPN address's two users: the laptop (`learn`) and the intruder (`play`)."""

    def __init__(self, plan: ItPlan | None = None, seed: int = 1, say: Callable[[str], None] = print) -> None:
        self.plan = plan or ItPlan()
        self.rng = Random(seed)
        self.say = say

    def learn(self, seconds: float = 8.0, every: float = 2.0) -> int:
        """The benign history for `seconds`: a round every `every` s (logon as LAPTOP-JSMITH, web01's PTR lookup of
        the VPN address, the laptop browsing the intranet); returns the rounds made."""
        p = self.plan
        end = time.monotonic() + seconds
        rounds = 0
        web_dns = clients.DnsClient(p.web01.address, p.dc1.address, p.ports.dns, self.rng)
        laptop_dns = clients.DnsClient(p.vpn, p.dc1.address, p.ports.dns, self.rng)
        try:
            while True:
                ok = clients.smb_logon(p.vpn, p.fs01.address, p.ports.smb, p.fs01.name, DOMAIN, USER, LAPTOP_HOSTNAME,
                                       USER_PASSWORD, self.rng, "home")  # fmt: skip
                if not ok:
                    raise RuntimeError("the laptop's logon failed: the SMB puppet rejects the employee's password")
                web_dns.ask(ptr_name(p.vpn), 12)
                laptop_dns.ask(f"intranet.{p.web01.fqdn.split('.', 1)[1]}", 1)
                clients.http_get(p.vpn, p.web01.address, p.ports.http, f"/news/{rounds}.html", "intranet.corp.local",
                                 "1.1", CHROME)  # fmt: skip
                rounds += 1
                left = end - time.monotonic()
                if left <= 0:
                    return rounds
                time.sleep(min(every, left))
        finally:
            web_dns.close()
            laptop_dns.close()

    def _step(self, runs: list[StepRun], name: str, fn: Callable[[], str]) -> None:
        start = time.time()
        self.say(f"[{time.strftime('%H:%M:%S', time.localtime(start))}] step {len(runs) + 1}: {name}")
        what = fn()
        runs.append(StepRun(name, what, start, time.time()))
        self.say(f"    {what}")

    def play(self, pause: float = 3.0, ot_step: Callable[[], str] | None = None) -> list[StepRun]:
        """The intrusion chain, `pause` seconds between steps; `ot_step` (if given) runs last and says what it did."""
        runs: list[StepRun] = []
        steps: list[tuple[str, Callable[[], str]]] = [
            ("new_hostname_logon", self.new_hostname_logon),
            ("ldap_recon", self.ldap_recon),
            ("nmap_service_probe", self.nmap_probe),
            ("tcp_scan_9401", lambda: self.tcp_scan(9401, self.plan.scan_9401, 30)),
            ("rdp_scan", lambda: self.tcp_scan(3389, self.plan.scan_rdp, 31)),
            ("udp_enumeration", self.udp_enumeration),
            ("reverse_dns_sweep", self.reverse_sweep),
            ("smb_bruteforce", self.bruteforce),
        ]
        if ot_step is not None:
            steps.append(("ot_step", ot_step))
        for i, (name, fn) in enumerate(steps):
            if i:
                time.sleep(pause)
            self._step(runs, name, fn)
        return runs

    def new_hostname_logon(self) -> str:
        """Step 1: an SMB2 logon to dc1 as CORP\\jsmith (the stolen password) from DESKTOP-7QK2M1."""
        p = self.plan
        ok = clients.smb_logon(p.vpn, p.dc1.address, p.ports.smb, p.dc1.name, DOMAIN, USER, ATTACKER_HOSTNAME,
                               USER_PASSWORD, self.rng)  # fmt: skip
        return f"NTLM logon to dc1 as {DOMAIN}\\{USER} from {ATTACKER_HOSTNAME}: {'success' if ok else 'FAILED'}"

    def ldap_recon(self) -> str:
        """Step 2: an LDAP session with dc2: bind, paged searches of every user, adminCount=1 and every computer."""
        p = self.plan
        users = der(0xA0, eq("objectCategory", "person") + eq("objectClass", "user"))
        with clients.LdapSession(p.vpn, p.dc2.address, p.ports.ldap) as ldap:
            code = ldap.bind(f"{USER}@corp.local", USER_PASSWORD)
            counts = [ldap.search(DOMAIN_DN, users, ATTRS, page=500),
                      ldap.search(DOMAIN_DN, eq("adminCount", "1"), ATTRS),
                      ldap.search(DOMAIN_DN, eq("objectClass", "computer"), ("dNSHostName", "operatingSystem"),
                                  page=500)]  # fmt: skip
        return f"LDAP bind (result {code}), users {counts[0]}, adminCount=1 {counts[1]}, computers {counts[2]} entries"

    def nmap_probe(self) -> str:
        """Step 3a: Nmap's service detection on web01: GET /, then the FourOhFour probe."""
        p = self.plan
        first = clients.http_get(p.vpn, p.web01.address, p.ports.http, "/")
        probe = clients.http_get(p.vpn, p.web01.address, p.ports.http, NMAP_PROBE)
        return f"GET / -> {first[9:12].decode()}, GET {NMAP_PROBE} -> {probe[9:12].decode()}"

    def tcp_scan(self, port: int, hosts: int, third: int) -> str:
        """Steps 3b/3c: a connection attempt to `port` on `hosts` addresses of 127.20.<third>.0/24."""
        p = self.plan
        opened = sum(clients.tcp_attempt(p.vpn, ip, port) for ip in p.scan_targets(hosts, third))
        return f"TCP {port} of {hosts} hosts in 127.20.{third}.0/24: {opened} open, {hosts - opened} refused"

    def udp_enumeration(self) -> str:
        """Step 3d: SNMP, NBNS, SSDP, IPMI (RMCP) and BACnet probes to 10 hosts, none answered."""
        p = self.plan
        payloads = {161: snmp_get(0x1000), 137: nbns_node_status(0x2000), 1900: ssdp_search(), 623: rmcp_ping(1),
                    47808: bacnet_who_is()}  # fmt: skip
        targets = p.scan_targets(p.udp_hosts, 32)
        for ip in targets:
            for port in p.udp_ports:
                clients.udp_probe(p.vpn, ip, port, payloads.get(port, b"\x00"))
                time.sleep(0.005)
        return f"UDP {'/'.join(map(str, p.udp_ports))} to {len(targets)} hosts in 127.20.32.0/24"

    def reverse_sweep(self) -> str:
        """Step 4: PTR queries for consecutive addresses from 127.20.0.1, one socket, to dc1."""
        p = self.plan
        dns = clients.DnsClient(p.vpn, p.dc1.address, p.ports.dns, self.rng)
        named = 0
        try:
            for ip in p.sweep_addresses():
                answer = dns.ask(ptr_name(ip), 12)
                named += answer is not None and answer[3] & 0x0F == 0
        finally:
            dns.close()
        return f"{p.sweep} PTR queries to dc1: {named} named, {p.sweep - named} NXDOMAIN"

    def bruteforce(self) -> str:
        """Step 5: SMB logons as .\\administrator, three wrong passwords on each of four servers (a connection per
        try), then the default password on sql01."""
        p = self.plan
        failed = 0
        for name in p.brute_servers:
            server = p.server(name)
            for guess in GUESSES:
                failed += not clients.smb_logon(p.vpn, server.address, p.ports.smb, server.name, ".", "administrator",
                                                ATTACKER_HOSTNAME, guess, self.rng)  # fmt: skip
        ok = clients.smb_logon(p.vpn, p.sql01.address, p.ports.smb, p.sql01.name, ".", "administrator",
                               ATTACKER_HOSTNAME, DEFAULT_PASSWORD, self.rng, "C$")  # fmt: skip
        return f"{failed} failed administrator logons on {', '.join(p.brute_servers)}; sql01: " + \
            ("success with the default password" if ok else "FAILED")  # fmt: skip
