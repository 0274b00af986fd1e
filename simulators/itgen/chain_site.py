"""The site of the attack-chain generator: its hosts, a day of ordinary traffic, and the benign look-alikes.

Hosts: VPN clients (10.8.0.0/24, all behind the VPN concentrator's MAC), among them the employee's laptop
LAPTOP-JSMITH at 10.8.0.23; two domain controllers (dc1 also the DNS and DHCP server), file, application,
database, intranet web and backup servers in 10.20.0.0/16, office workstations, and the cooling plant: an HMI
polling a chiller PLC over Modbus/TCP. The history (`history`) is a quarter-hourly rhythm: the HMI's polls, VPN
users browsing the intranet and logging on to the file server with NTLM, a web server resolving its clients'
names (the PTR answers name the laptop), a workstation's group-policy LDAP lookups and DHCP renewals, and a
nightly backup. The look-alikes stay below every detector threshold or succeed where attacks fail.
"""

from __future__ import annotations

from collections.abc import Callable
from random import Random

from simulators.itgen.chain_wire import (
    LOGON_FAILURE,
    Capture,
    a_rdata,
    dns_ask,
    ldap_ntlm_bind,
    ldap_search,
    ldap_simple_bind,
    ldap_unbind,
    modbus_exchange,
    ptr_name,
    ptr_rdata,
    smb_session,
)
from simulators.itgen.dns_http import dhcp_message
from simulators.itgen.smb_ldap_msgs import der, eq
from simulators.mixgen.wire import Host, TcpConn, udp_frame

__all__ = ["DOMAIN_DN", "Site", "history", "lookalikes"]

DOMAIN_DN = "DC=corp,DC=local"
VPN_MAC = "020a08000001"
CHROME = (b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 "
          b"Safari/537.36")  # fmt: skip
BACKUP_HOSTS = 200
QUARTER = 900.0


class Site:
    """Every host of the scenario, with the DNS names the resolver gives them."""

    def __init__(self, rng: Random) -> None:
        def mk(name: str, ip: str, mac: str, ttl: int = 128) -> Host:
            return Host(name, "it", ip, bytes.fromhex(mac), ttl, rng)

        self.laptop = mk("laptop-jsmith", "10.8.0.23", VPN_MAC)
        self.attacker = mk("desktop-7qk2m1", "10.8.0.23", VPN_MAC, 63)  # same VPN address, another machine
        self.vpn_users = [mk("laptop-mjones", "10.8.0.31", VPN_MAC), mk("laptop-akim", "10.8.0.47", VPN_MAC)]
        self.dc1 = mk("dc1", "10.20.0.10", "020a14000010")
        self.dc2 = mk("dc2", "10.20.0.11", "020a14000011")
        self.fs01 = mk("fs01", "10.20.1.20", "020a14010020")
        self.app01 = mk("app01", "10.20.1.30", "020a14010030")
        self.sql01 = mk("sql01", "10.20.1.40", "020a14010040")
        self.web01 = mk("web01", "10.20.1.80", "020a14010080", 64)
        self.bkp01 = mk("bkp01", "10.20.2.5", "020a14020005")
        self.adm01 = mk("adm-01", "10.20.5.10", "020a14050010")
        self.ws050 = mk("ws-050", "10.20.5.50", "020a14050050")
        self.ws061 = mk("ws-061", "10.20.5.61", "020a14050061")
        self.hmi = mk("hmi-chiller", "10.50.1.20", "020a32010020")
        self.plc = mk("plc-chiller", "10.50.1.10", "00800f010010", 64)
        self.backup_targets = [mk(f"srv-{i:03d}", f"10.20.10.{i}", f"020a140a{i:04x}") for i in range(1, 201)]
        self.names = {h.ip: f"{h.name}.corp.local" for h in (
            self.laptop, *self.vpn_users, self.dc1, self.dc2, self.fs01, self.app01, self.sql01, self.web01,
            self.bkp01, self.adm01, self.ws050, self.ws061, self.hmi, self.plc)}  # fmt: skip
        self.hmi_tid = 0
        self.hosts: dict[str, Host] = {}  # extra hosts made on demand by address (scan targets)

    def host(self, ip: str) -> Host:
        """The host at `ip` (a known one, else a stable one made on first use)."""
        for h in (self.dc1, self.dc2, self.fs01, self.app01, self.sql01, self.web01, self.bkp01, self.plc):
            if h.ip == ip:
                return h
        if ip not in self.hosts:
            last = bytes(int(x) for x in ip.split("."))
            self.hosts[ip] = Host(f"h-{ip}", "it", ip, b"\x02\x0b" + last, 128, Random(ip))
        return self.hosts[ip]


def hmi_poll(cap: Capture, s: Site, t: float, polls: int, every: float) -> None:
    """The HMI's connection to the chiller PLC: `polls` FC3/FC4 read cycles `every` seconds apart, then a close."""
    cap.at(t)
    conn = TcpConn(s.hmi, s.plc, 502, cap.rng)
    cap.add(*conn.handshake())
    for i in range(polls):
        cap.at(t + i * every + 0.01)
        for fc, addr, qty in ((3, 0, 10), (4, 100, 6)):
            s.hmi_tid += 1
            values = b"".join((200 + cap.rng.randrange(60)).to_bytes(2, "big") for _ in range(qty))
            modbus_exchange(cap, conn, s.hmi_tid, 1, bytes([fc]) + addr.to_bytes(2, "big") + qty.to_bytes(2, "big"),
                            bytes([fc, 2 * qty]) + values)  # fmt: skip
    cap.add(*conn.close())


def browse(cap: Capture, s: Site, client: Host, t: float, page: str) -> None:
    """A user's browser: resolve the intranet name, fetch one page."""
    cap.at(t)
    dns_ask(cap, client, s.dc1, "intranet.corp.local", 1, [a_rdata(s.web01.ip)])
    conn = TcpConn(client, s.web01, 80, cap.rng)
    cap.add(*conn.handshake())
    cap.send(conn, True, f"GET /{page} HTTP/1.1\r\nHost: intranet.corp.local\r\nUser-Agent: ".encode() + CHROME +
             b"\r\nAccept: text/html\r\n\r\n")  # fmt: skip
    body = b"<html><body>" + cap.rng.randbytes(300).hex().encode() + b"</body></html>"
    cap.send(conn, False, b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html\r\nContent-Length: " +
             str(len(body)).encode() + b"\r\n\r\n" + body)  # fmt: skip
    cap.add(*conn.close())


def reverse_lookup(cap: Capture, s: Site, asker: Host, ips: list[str], t: float) -> None:
    """`asker` resolves the names of a few addresses (PTR), one socket per lookup, all answered with names."""
    cap.at(t)
    for ip in ips:
        dns_ask(cap, asker, s.dc1, ptr_name(ip), 12, [ptr_rdata(s.names[ip])])


def logon(cap: Capture, s: Site, client: Host, server: Host, user: str, t: float, outcomes: list[int]) -> None:
    """An SMB2 session with NTLM from `client` (workstation name = its host name) as CORP\\user."""
    cap.at(t)
    smb_session(cap, TcpConn(client, server, 445, cap.rng), "CORP", user, client.name.upper(), outcomes, "home")


def gpo_lookups(cap: Capture, s: Site, t: float) -> None:
    """WS-050's group-policy processing: NTLM bind as its machine account, base searches of its own object, the
    domain's gPLink and the linked group policy containers."""
    cap.at(t)
    conn = TcpConn(s.ws050, s.dc1, 389, cap.rng)
    cap.add(*conn.handshake())
    ldap_ntlm_bind(cap, conn, "CORP", "WS-050$", "WS-050")
    every = der(0x87, b"objectClass")
    me = f"CN=WS-050,OU=Workstations,{DOMAIN_DN}"
    gpcs = [f"CN={{{g}}},CN=Policies,CN=System,{DOMAIN_DN}" for g in
            ("31B2F340-016D-11D2-945F-00C04FB984F9", "6AC1786C-016F-11D2-945F-00C04FB984F9")]  # fmt: skip
    searches = [(me, ["distinguishedName", "gPLink"]), (f"OU=Workstations,{DOMAIN_DN}", ["gPLink", "gPOptions"]),
                (DOMAIN_DN, ["gPLink", "gPOptions"]), *((g, ["gPCFileSysPath", "displayName", "flags"])
                                                         for g in gpcs)]  # fmt: skip
    for mid, (base, attrs) in enumerate(searches, start=3):
        found = [(base, {attrs[0]: [b"[LDAP://cn=policy,cn=system]"]})]
        ldap_search(cap, conn, mid, base, 0, every, attrs, found)
    ldap_unbind(cap, conn, 3 + len(searches))


def admin_query(cap: Capture, s: Site, t: float) -> None:
    """An administrator's tool looks one account up: simple bind, `(sAMAccountName=jdoe)`, one entry, unbind."""
    cap.at(t)
    conn = TcpConn(s.adm01, s.dc1, 389, cap.rng)
    cap.add(*conn.handshake())
    ldap_simple_bind(cap, conn, 1, f"CN=Admin Ops,OU=Admins,{DOMAIN_DN}", b"S3rvice!Desk")
    found = [(f"CN=John Doe,OU=Staff,{DOMAIN_DN}", {"sAMAccountName": [b"jdoe"], "mail": [b"jdoe@corp.local"]})]
    ldap_search(cap, conn, 2, DOMAIN_DN, 2, eq("sAMAccountName", "jdoe"), ["sAMAccountName", "mail"], found)
    ldap_unbind(cap, conn, 3)


def dhcp_renew(cap: Capture, s: Site, t: float) -> None:
    """WS-050 renews its lease with the DHCP server (unicast REQUEST with its host name, ACK)."""
    cap.at(t)
    ws, srv = s.ws050, s.dc1
    xid = cap.rng.getrandbits(32)
    ident = [(61, b"\x01" + ws.mac), (12, b"WS-050"), (60, b"MSFT 5.0")]
    cap.add(udp_frame(ws, srv, 68, 67, dhcp_message(1, xid, ws.mac, [(53, b"\x03"), *ident, (55, bytes([1, 3, 6, 15]))],
                                                     ciaddr=ws.ip)))  # fmt: skip
    ack = [(53, b"\x05"), (54, srv.ip4), (51, (8 * 86400).to_bytes(4, "big")), (1, bytes([255, 255, 0, 0])),
           (3, bytes([10, 20, 0, 1])), (6, srv.ip4), (15, b"corp.local")]  # fmt: skip
    cap.add(udp_frame(srv, ws, 67, 68, dhcp_message(2, xid, ws.mac, ack, ciaddr=ws.ip, yiaddr=ws.ip)))


def backup_run(cap: Capture, s: Site, t: float) -> None:
    """The backup server's job: a full SMB session (NTLM success, tree connect, close) with each of 200 hosts."""
    for i, target in enumerate(s.backup_targets):
        cap.at(t + i * 0.5)
        smb_session(cap, TcpConn(s.bkp01, target, 445, cap.rng), "CORP", "svc_backup", "BKP01", [0], "C$")


def mistyped(cap: Capture, s: Site, t: float) -> None:
    """A user mistypes the password twice, then logs on (one SMB session, three SESSION_SETUP exchanges)."""
    logon(cap, s, s.ws061, s.fs01, "mlee", t, [LOGON_FAILURE, LOGON_FAILURE, 0])


def handful(s: Site) -> list[str]:
    """The six addresses a workstation resolves now and then."""
    return [s.dc1.ip, s.dc2.ip, s.fs01.ip, s.web01.ip, s.bkp01.ip, s.sql01.ip]


def history(cap: Capture, s: Site, start: float, quarters: int) -> dict[str, int]:
    """`quarters` quarter-hours of ordinary traffic from `start` (06:00 on a Monday); returns how many NTLM
    logons the laptop made (`laptop_logons`) and how often its name was resolved (`laptop_ptr`)."""
    rng = cap.rng
    made = {"laptop_logons": 0, "laptop_ptr": 0}
    users = [(s.laptop, "jsmith"), (s.vpn_users[0], "mjones"), (s.vpn_users[1], "akim")]
    for q in range(quarters):
        t = start + q * QUARTER
        hour = (6 + q // 4) % 24
        hmi_poll(cap, s, t + 1.0, 3, 2.0)
        if q in (0, 48):
            dhcp_renew(cap, s, t + 5.0)
        if 7 <= hour < 18 or q == 0:
            for k, (client, user) in enumerate(users):
                when = t + 30 + k * 60 + rng.random() * 20
                browse(cap, s, client, when, f"news/{q}-{k}.html")
                if q % 4 == k:
                    logon(cap, s, client, s.fs01, user, when + 10, [0])
                    made["laptop_logons"] += client is s.laptop
            reverse_lookup(cap, s, s.web01, [s.laptop.ip], t + 300)
            made["laptop_ptr"] += 1
            logon(cap, s, s.ws061, s.fs01, "mlee", t + 400, [0])
        if q % 6 == 1:
            gpo_lookups(cap, s, t + 500)
        if q in (2, 40):
            reverse_lookup(cap, s, s.ws050, handful(s), t + 600)
        if q == 12:
            mistyped(cap, s, t + 620)
        if q == 16:
            admin_query(cap, s, t + 640)
        if q == 76:  # 01:00: the nightly backup
            backup_run(cap, s, t + 60)
    return made


def lookalikes(cap: Capture, s: Site, t: float) -> dict[str, tuple[float, float]]:
    """Every benign look-alike once from `t` (the PTR handful three times); returns name -> (start, end)."""
    spans: dict[str, tuple[float, float]] = {}

    def run(name: str, start: float, fn: Callable[..., None], *args: object) -> None:
        fn(cap, s, *args)
        spans[name] = (start, cap.now)

    run("ptr_handful", t, _ptr_thrice, t)
    run("admin_ldap_query", t + 120, admin_query, t + 120)
    run("gpo_lookups", t + 180, gpo_lookups, t + 180)
    run("mistyped_password", t + 240, mistyped, t + 240)
    run("backup_fanout", t + 300, backup_run, t + 300)
    spans["backup_fanout"] = (t + 300, t + 300 + BACKUP_HOSTS * 0.5)
    return spans


def _ptr_thrice(cap: Capture, s: Site, t: float) -> None:
    for k in range(3):
        reverse_lookup(cap, s, s.ws050, handful(s), t + k * 30)
