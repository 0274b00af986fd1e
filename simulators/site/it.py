"""Corporate IT and the VPN pool: workstations, admin hosts, domain controllers, servers and remote workers.

On workdays each workstation arrives between 07:30 and 09:30: DHCP renewal with the first DC, group-policy LDAP
lookups (NTLM bind as its machine account), an SMB logon to the file server as its user; through the day, by the
office's diurnal level, it resolves names (the DC answers; external names too) and browses the intranet (and now
and then the DMZ web server), and opens an SMB session to the file server. Admin hosts run a directory tool (LDAP
simple bind, one account lookup) a few times a day. The intranet server resolves its clients' names (PTR). Remote
workers on the VPN pool, with static addresses behind the concentrator's MAC, log on to the file server with NTLM
(workstation = their laptop's name) and browse. At night the backup server opens an SMB session with every server
and workstation. Messages come from simulators/itgen (chain_site, chain_wire, dns_http).
"""

from __future__ import annotations

from random import Random

from simulators.itgen import chain_site as cs
from simulators.itgen.chain_site import DOMAIN_DN
from simulators.itgen.chain_wire import a_rdata, dns_ask, ldap_ntlm_bind, ldap_search, ldap_unbind, smb_session
from simulators.itgen.dns_http import dhcp_message
from simulators.itgen.smb_ldap_msgs import der
from simulators.mixgen.wire import Host, TcpConn, udp_frame
from simulators.site.capture import SiteCapture
from simulators.site.layout import Layout
from simulators.site.schedule import HOUR, Rhythm

__all__ = ["USERS", "ItSite"]

USERS = ("jdoe", "mlee", "rpatel", "sgarcia", "tnguyen", "lchen", "bmiller", "kwilson", "dlopez", "emartin",
         "fclark", "gwhite", "hyoung", "ilewis", "jwalker", "khall", "lallen", "mking", "nwright",
         "oscott")  # fmt: skip
_EXTERNAL = (("login.microsoftonline.com", "20.190.160.1"), ("www.office.com", "52.96.88.14"),
             ("ctldl.windowsupdate.com", "93.184.221.240"), ("www.google.com", "142.250.185.68"))  # fmt: skip


class ItSite:
    """Every IT and VPN host's day."""

    def __init__(self, layout: Layout, site: cs.Site, rhythm: Rhythm, rng: Random) -> None:
        self.layout, self.s, self.rhythm, self.rng = layout, site, rhythm, rng
        self.ws = layout.role("ws")
        self.users = {h.name: USERS[i % len(USERS)] for i, h in enumerate(self.ws)}
        self.admins = layout.role("admin")
        self.vpn = layout.role("vpn")
        self.vpn_users = {w.ip: w.user for w in layout.profile.vpn.workers}
        self.dmz = layout.role("dmz")
        self.dcs = layout.role("dc")
        self.planned: set[int] = set()
        self.events: list[tuple[float, int, str, Host]] = []
        self.serial = 0

    def _at(self, t: float, what: str, host: Host) -> None:
        self.serial += 1
        self.events.append((t, self.serial, what, host))

    def _plan_hour(self, t0: float) -> None:
        rng, r = self.rng, self.rhythm
        day = r.day_of(t0)
        hour = round((t0 - r.day_start(day)) / HOUR)
        level = r.office_level(t0 + 1800)
        if hour == 7 and r.is_workday(day):
            for h in self.ws:
                self._at(t0 + 1800 + rng.random() * 2 * HOUR, "arrive", h)
        for h in self.ws:
            for _ in range(4):
                if rng.random() < level * 0.7:
                    self._at(t0 + rng.random() * HOUR, "browse", h)
            if rng.random() < level * 0.3:
                self._at(t0 + rng.random() * HOUR, "files", h)
        for h in self.vpn:
            for _ in range(3):
                if rng.random() < level * 0.6:
                    self._at(t0 + rng.random() * HOUR, "browse", h)
            if rng.random() < level * 0.35:
                self._at(t0 + rng.random() * HOUR, "files", h)
        for h in self.admins:
            if rng.random() < level * 0.4:
                self._at(t0 + rng.random() * HOUR, "admin_tool", h)
        if level > 0.2:
            self._at(t0 + 300 + rng.random() * 600, "ptr", self.s.web01)
        backup = r.backup_time(day)
        if t0 <= backup < t0 + HOUR and self.layout.role("backup"):
            self._at(backup, "backup", self.layout.role("backup")[0])

    def run(self, cap: SiteCapture, t0: float, t1: float) -> None:
        """Every IT activity that starts in [t0, t1) (planned an hour at a time)."""
        k = int((t0 - self.rhythm.start) // HOUR)
        if k not in self.planned:
            self.planned.add(k)
            self._plan_hour(self.rhythm.start + k * HOUR)
        self.events.sort()
        now = [e for e in self.events if e[0] < t1]
        self.events = [e for e in self.events if e[0] >= t1]
        for t, _, what, host in now:
            getattr(self, "_" + what)(cap, max(t, t0), host)

    def _user(self, host: Host) -> str:
        return self.vpn_users.get(host.ip) or self.users.get(host.name, "svc_backup")

    def _arrive(self, cap: SiteCapture, t: float, h: Host) -> None:
        self._dhcp(cap, t, h)
        self._gpo(cap, t + 20 + self.rng.random() * 10, h)
        self._files(cap, t + 45 + self.rng.random() * 30, h)

    def _browse(self, cap: SiteCapture, t: float, h: Host) -> None:
        rng = self.rng
        if rng.random() < 0.5:
            cap.at(t - 2.0)
            name, ip = _EXTERNAL[rng.randrange(len(_EXTERNAL))]
            dns_ask(cap, h, self.s.dc1, name, 1, [a_rdata(ip)])
        if self.dmz and rng.random() < 0.2:
            self._http(cap, t, h, self.dmz[0], "www.corp.local")
        else:
            cs.browse(cap, self.s, h, t, f"docs/{rng.randrange(1, 400)}.html")

    def _http(self, cap: SiteCapture, t: float, h: Host, server: Host, name: str) -> None:
        cap.at(t)
        dns_ask(cap, h, self.s.dc1, name, 1, [a_rdata(server.ip)])
        conn = TcpConn(h, server, 80, cap.rng)
        cap.add(*conn.handshake())
        cap.send(conn, True, f"GET / HTTP/1.1\r\nHost: {name}\r\nUser-Agent: ".encode() + cs.CHROME + b"\r\n\r\n")
        body = b"<html><body>" + self.rng.randbytes(200).hex().encode() + b"</body></html>"
        cap.send(conn, False, b"HTTP/1.1 200 OK\r\nServer: Apache\r\nContent-Type: text/html\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\n\r\n" + body)  # fmt: skip
        cap.add(*conn.close())

    def _files(self, cap: SiteCapture, t: float, h: Host) -> None:
        cap.at(t)
        fs = self.s.fs01
        dns_ask(cap, h, self.s.dc1, f"{fs.name}.{self.layout.domain}", 1, [a_rdata(fs.ip)])
        smb_session(cap, TcpConn(h, fs, 445, cap.rng), "CORP", self._user(h), h.name.upper(), [0], "home")

    def _dhcp(self, cap: SiteCapture, t: float, h: Host) -> None:
        cap.at(t)
        srv = self.s.dc1
        xid = cap.rng.getrandbits(32)
        ident = [(61, b"\x01" + h.mac), (12, h.name.upper().encode()), (60, b"MSFT 5.0")]
        req = dhcp_message(1, xid, h.mac, [(53, b"\x03"), *ident, (55, bytes([1, 3, 6, 15]))], ciaddr=h.ip)
        cap.add(udp_frame(h, srv, 68, 67, req))
        ack = [(53, b"\x05"), (54, srv.ip4), (51, (8 * 86400).to_bytes(4, "big")), (1, bytes([255, 255, 252, 0])),
               (6, srv.ip4), (15, self.layout.domain.encode())]  # fmt: skip
        cap.add(udp_frame(srv, h, 67, 68, dhcp_message(2, xid, h.mac, ack, ciaddr=h.ip, yiaddr=h.ip)))

    def _gpo(self, cap: SiteCapture, t: float, h: Host) -> None:
        """Group-policy processing: NTLM bind as the machine account, base searches of its object and the domain."""
        cap.at(t)
        dc = self.dcs[self.ws.index(h) % len(self.dcs)] if h in self.ws else self.s.dc1
        conn = TcpConn(h, dc, 389, cap.rng)
        cap.add(*conn.handshake())
        me = h.name.upper()
        ldap_ntlm_bind(cap, conn, "CORP", me + "$", me)
        every = der(0x87, b"objectClass")
        searches = [(f"CN={me},OU=Workstations,{DOMAIN_DN}", ["distinguishedName", "gPLink"]),
                    (DOMAIN_DN, ["gPLink", "gPOptions"])]  # fmt: skip
        for mid, (base, attrs) in enumerate(searches, start=3):
            ldap_search(cap, conn, mid, base, 0, every, attrs, [(base, {attrs[0]: [b"[LDAP://cn=policy]"]})])
        ldap_unbind(cap, conn, 3 + len(searches))

    def _admin_tool(self, cap: SiteCapture, t: float, h: Host) -> None:
        s = self.s
        saved = s.adm01
        s.adm01 = h
        cs.admin_query(cap, s, t)
        s.adm01 = saved

    def _ptr(self, cap: SiteCapture, t: float, h: Host) -> None:
        ips = [w.ip for w in self.vpn] + [w.ip for w in self.ws[:3]]
        cs.reverse_lookup(cap, self.s, h, ips, t)

    def _backup(self, cap: SiteCapture, t: float, h: Host) -> None:
        targets = [x for x in self.layout.hosts.values() if x.role in ("dc", "file", "app", "db", "web", "ws", "admin")]
        for i, target in enumerate(targets):
            cap.at(t + i * 2.0)
            smb_session(cap, TcpConn(h, target, 445, cap.rng), "CORP", "svc_backup", h.name.upper(), [0], "C$")
