"""The live IT servers on loopback, protocol puppets on real sockets in one asyncio loop on a thread of their own.

- DNS (UDP, on dc1): PTR and A answers from the plan's zone, NXDOMAIN for the rest.
- HTTP (web01): 200 with a small page for `/` and `/index.html` and `/news/...`, 404 for anything else; HTTP/1.1
  answers with Content-Length, then the server closes.
- SMB2 (dc1, dc2, fs01, app01, sql01): NEGOTIATE, the NTLM CHALLENGE, then success or STATUS_LOGON_FAILURE by
  checking the NTLMv2-shaped proof (simulators.live_it.wire) against the server's local accounts (domain `.` or the
  server's name) or the domain's; TREE_CONNECT and LOGOFF; STATUS_NOT_SUPPORTED for anything else. Canned messages
  built with simulators/itgen's builders: a protocol puppet, not an SMB implementation.
- LDAP (dc2): simple bind checked against the domain's accounts, searches evaluated over the canned directory with
  the simple paged results control (the cookie is the next offset), unbind closes.

`ItServers` starts them all (`start()` returns once every socket is bound) and `stop()` cancels every task, closes
every socket and joins the thread: nothing survives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from random import Random
from types import TracebackType
from typing import cast

from simulators.itgen.chain_wire import LOGON_FAILURE, MORE_PROCESSING
from simulators.itgen.dns_http import dns_message, wire_name
from simulators.itgen.smb_ldap_msgs import (
    KRB_OID,
    NTLM_OID,
    entry,
    ldap_msg,
    ldap_result,
    nbss,
    negotiate_resp,
    ntlm_challenge,
    session_resp,
    smb2,
    spnego_init,
    spnego_resp,
    tree_resp,
)
from simulators.live_it import wire
from simulators.live_it.plan import DNS_DOMAIN, DOMAIN, ItPlan, Server, directory

NOT_SUPPORTED = 0xC00000BB
INVALID_PARAMETER = 0xC000000D
LDAP_OPS_ANSWERED = {0x66: 0x67, 0x68: 0x69, 0x4A: 0x6B, 0x6C: 0x6D, 0x6E: 0x6F, 0x77: 0x78}  # request -> response
BATCH = 50  # LDAP entries per write

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _smb_error(mid: int, cmd: int, status: int, sid: int = 0) -> bytes:
    return nbss(smb2(cmd, mid, struct.pack("<HBBI", 9, 0, 0, 0) + b"\x00", resp=True, status=status, sid=sid))


class ItServers:
    """Every IT server of a plan, running on a thread; a context manager (start on enter, stop on exit)."""

    def __init__(self, plan: ItPlan | None = None, seed: int = 1) -> None:
        self.plan = plan or ItPlan()
        self.tally: Counter[str] = Counter()  # what the servers answered, e.g. "smb logon ok sql01"
        self._rng = Random(seed)
        self._directory = directory()
        self._names = self.plan.names()
        self._forward = self.plan.forward()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    def start(self, timeout: float = 10.0) -> None:
        """Bind every server and serve on a thread; raises what binding raised (an address in use, say)."""
        self._thread = threading.Thread(target=self._run, name="live-it-servers", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the IT servers did not start")
        if self._error is not None:
            self._thread.join(timeout)
            raise self._error

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel every task, close every socket, join the thread."""
        loop, stopping, thread = self._loop, self._stopping, self._thread
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stopping.set)
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                raise RuntimeError("the IT servers' thread did not end")
        self._thread = None

    @property
    def running(self) -> bool:
        """Whether the servers' thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> ItServers:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start() when binding failed
            self._error = self._error or exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        p, plan = self.plan.ports, self.plan
        servers: list[asyncio.base_events.Server] = []
        transports: list[asyncio.BaseTransport] = []
        try:
            transport, _ = await self._loop.create_datagram_endpoint(
                lambda: _Dns(self), local_addr=(plan.dc1.address, p.dns)
            )
            transports.append(transport)
            transports += await self._sinks()
            listen = [(plan.web01.address, p.http, self._tracked(self._http))]
            listen += [(s.address, p.smb, self._tracked(self._smb_for(s))) for s in plan.smb_servers]
            listen.append((plan.dc2.address, p.ldap, self._tracked(self._ldap)))
            for host, port, handler in listen:
                servers.append(await asyncio.start_server(handler, host, port, reuse_address=True))
        except BaseException as exc:
            self._error = exc
        self._ready.set()
        try:
            if self._error is None:
                await self._stopping.wait()
        finally:
            for server in servers:
                server.close()
            for endpoint in transports:
                endpoint.close()
            for writer in list(self._writers):
                writer.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for server in servers:
                await server.wait_closed()

    async def _sinks(self) -> list[asyncio.BaseTransport]:
        """Silent UDP sockets on the UDP scan's targets: their datagrams get no answer (no ICMP port unreachable
        either, as from a host that drops them). A port that cannot be bound (not root, or taken) is skipped."""
        assert self._loop is not None
        out: list[asyncio.BaseTransport] = []
        for ip in self.plan.scan_targets(self.plan.udp_hosts, 32):
            for port in self.plan.udp_ports:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind((ip, port))
                except OSError:
                    sock.close()
                    self.tally["udp sink not bound"] += 1
                    continue
                transport, _ = await self._loop.create_datagram_endpoint(lambda: _Sink(self), sock=sock)
                out.append(transport)
        return out

    def _tracked(self, handler: Handler) -> Handler:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            self._writers.add(writer)
            try:
                await handler(reader, writer)
            except (asyncio.IncompleteReadError, ConnectionError, ValueError, IndexError, asyncio.LimitOverrunError):
                pass  # the peer went away or sent what a puppet does not read: drop the connection
            except asyncio.CancelledError:
                pass  # stop(): end quietly (a cancelled handler task would be logged as an error by asyncio)
            finally:
                self._writers.discard(writer)
                self._tasks.discard(task)
                writer.close()

        return run

    def dns_answer(self, query: bytes) -> bytes | None:
        """The answer to a DNS query: PTR and A from the zone, NXDOMAIN for the rest; None for a non-query."""
        got = wire.dns_question(query)
        if got is None:
            return None
        tid, name, qtype = got
        answers: list[tuple[str, int, int, bytes]] = []
        if qtype == 12:
            ip = wire.ptr_address(name)
            known = self._names.get(ip or "")
            if known:
                answers.append((name, 12, 300, wire_name(known)))
        elif qtype == 1 and name.lower() in self._forward:
            answers.append((name, 1, 300, bytes(int(x) for x in self._forward[name.lower()].split("."))))
        self.tally[f"dns {'answer' if answers else 'nxdomain'}"] += 1
        return dns_message(tid, 0x8580 | (0 if answers else 3), [(name, qtype)], answers)

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        parts = head.split(b"\r\n", 1)[0].split(b" ")
        path = parts[1] if len(parts) > 1 else b"/"
        ok = path in (b"/", b"/index.html") or path.startswith(b"/news/")
        status = b"200 OK" if ok else b"404 Not Found"
        body = b"<html><body><h1>" + (b"Intranet" if ok else b"Not Found") + b"</h1></body></html>"
        self.tally[f"http {status[:3].decode()}"] += 1
        writer.write(b"HTTP/1.1 " + status + b"\r\nServer: nginx\r\nContent-Type: text/html\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)  # fmt: skip
        await writer.drain()

    def _smb_for(self, server: Server) -> Handler:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._smb(server, reader, writer)

        return serve

    async def _smb(self, server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        challenge, sid = b"", 0x4000_0000_0000_0001 + self._rng.getrandbits(24)
        nb = server.name.upper()
        while True:
            head = await reader.readexactly(4)
            msg = await reader.readexactly(int.from_bytes(head[1:], "big"))
            parsed = wire.smb2_header(msg)
            if parsed is None:
                return
            cmd, _status, mid, _sid = parsed
            if cmd == 0:
                out = nbss(smb2(0, mid, negotiate_resp(0x311, spnego_init([KRB_OID, NTLM_OID], None)), resp=True))
            elif cmd == 1:
                kind, ntlm = wire.ntlm_message(wire.security_blob(msg))
                if kind == 1:
                    chal = ntlm_challenge(self._rng, DOMAIN, nb, DOMAIN, server.fqdn, DNS_DOMAIN, DNS_DOMAIN)
                    challenge = wire.challenge_of(chal)
                    out = nbss(smb2(1, mid, session_resp(spnego_resp(1, NTLM_OID, chal)), resp=True,
                                    status=MORE_PROCESSING, sid=sid))  # fmt: skip
                elif kind == 3 and challenge:
                    domain = wire.auth_fields(ntlm)[0]
                    local = domain in (".", "") or domain.upper() == nb
                    accounts = dict(server.local_accounts if local else self.plan.domain_accounts)
                    ok = wire.verify(ntlm, challenge, accounts)
                    self.tally[f"smb logon {'ok' if ok else 'failed'} {server.name}"] += 1
                    if ok:
                        out = nbss(smb2(1, mid, session_resp(spnego_resp(0, None, None)), resp=True, sid=sid))
                    else:
                        out = _smb_error(mid, 1, LOGON_FAILURE, sid)
                else:
                    out = _smb_error(mid, 1, INVALID_PARAMETER, sid)
            elif cmd == 3:
                path = msg[wire.H2.size + 8 :].decode("utf-16-le", errors="replace")
                out = nbss(smb2(3, mid, tree_resp(2 if path.upper().endswith("IPC$") else 1), resp=True, sid=sid,
                                tid=1))  # fmt: skip
            elif cmd == 2:
                out = nbss(smb2(2, mid, struct.pack("<HH", 4, 0), resp=True, sid=sid))
            else:
                out = _smb_error(mid, cmd, NOT_SUPPORTED, sid)
            writer.write(out)
            await writer.drain()

    async def _ldap(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buf = b""
        while True:
            got = wire.read_element(buf)
            if got is None:
                data = await reader.read(65536)
                if not data:
                    return
                buf += data
                continue
            _tag, content, end = got
            buf = buf[end:]
            mid, op, body, controls = wire.ldap_message(content)
            if op == 0x42:  # unbind
                return
            if op == 0x60:
                writer.write(ldap_msg(mid, 0x61, self._bind_result(body)))
            elif op == 0x63:
                await self._search(writer, mid, body, controls)
            elif op in LDAP_OPS_ANSWERED:
                writer.write(ldap_msg(mid, LDAP_OPS_ANSWERED[op], ldap_result(53, "read-only puppet")))
            await writer.drain()

    def _bind_result(self, body: bytes) -> bytes:
        parts = list(wire.elements(body))
        name = parts[1][1].decode(errors="replace") if len(parts) > 1 else ""
        password = parts[2][1].decode(errors="replace") if len(parts) > 2 and parts[2][0] == 0x80 else None
        user = name.split("@", 1)[0].split(",", 1)[0].removeprefix("CN=").lower()
        ok = password is not None and dict(self.plan.domain_accounts).get(user) == password
        self.tally[f"ldap bind {'ok' if ok else 'failed'}"] += 1
        if ok:
            return ldap_result(0)
        return ldap_result(49, "80090308: LdapErr: DSID-0C090439, comment: AcceptSecurityContext error, data 52e")

    async def _search(self, writer: asyncio.StreamWriter, mid: int, body: bytes,
                      controls: list[wire.Element]) -> None:  # fmt: skip
        _base, flt, attrs = wire.search_fields(body)
        found = [(dn, a) for dn, a in self._directory if wire.matches(flt, a)]
        paged = wire.paged_value(controls)
        done_controls = b""
        if paged is not None:
            size, cookie = paged
            start = int(cookie or b"0")
            page = found[start : start + size]
            more = start + size < len(found)
            done_controls = wire.paged_response(0, str(start + size).encode() if more else b"")
        else:
            page = found
        wanted = {a.lower() for a in attrs}
        for i in range(0, len(page), BATCH):
            writer.write(b"".join(
                ldap_msg(mid, 0x64, entry(dn, {k: [v.encode() for v in vs] for k, vs in a.items()
                                               if not wanted or "*" in wanted or k.lower() in wanted}))
                for dn, a in page[i : i + BATCH]))  # fmt: skip
            await writer.drain()
        self.tally["ldap entries"] += len(page)
        writer.write(ldap_msg(mid, 0x65, ldap_result(0), done_controls))


class _Sink(asyncio.DatagramProtocol):
    """A UDP port that reads and never answers."""

    def __init__(self, servers: ItServers) -> None:
        self.servers = servers

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        """Count it, say nothing."""
        self.servers.tally["udp unanswered"] += 1


class _Dns(asyncio.DatagramProtocol):
    """The DNS responder's protocol: answer every query it can read."""

    def __init__(self, servers: ItServers) -> None:
        self.servers = servers
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to answer on."""
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        """Answer a query; ignore anything else."""
        try:
            answer = self.servers.dns_answer(data)
        except (ValueError, IndexError, UnicodeError):
            answer = None
        if answer is not None and self.transport is not None:
            self.transport.sendto(answer, addr)


def describe(plan: ItPlan) -> list[str]:
    """What runs where, one line per server (for the command line and the demo)."""
    p = plan.ports
    smb = ", ".join(f"{s.name} {s.address}" for s in plan.smb_servers)
    return [
        f"DNS   {plan.dc1.address}:{p.dns}/udp (dc1; PTR and A from the corp.local zone, NXDOMAIN otherwise)",
        f"HTTP  {plan.web01.address}:{p.http} (web01, the intranet)",
        f"SMB2  port {p.smb}: {smb} (NTLM logons checked against the accounts)",
        f"LDAP  {plan.dc2.address}:{p.ldap} (dc2; {len(directory())} directory entries, paged searches)",
        f"UDP   {plan.udp_hosts} silent hosts in 127.20.32.0/24 on ports {', '.join(map(str, plan.udp_ports))}",
        f"VPN   {plan.vpn}: LAPTOP-JSMITH while learning, DESKTOP-7QK2M1 in the intrusion",
    ]
