"""Network scans: address scans (RDP and SMB scans named as such), port scans and UDP enumeration, from failed or
unanswered connections of one source, so that a busy server's normal fan-out (answered connections) stays quiet.

A TCP attempt counts as failed when the responder sent no payload and the connection never got established
(Zeek conn states S0, REJ, RSTOS0, RSTRH, SH, SHR); a UDP flow counts when the responder never answered. The
thresholds and window are `detectors.scan` in the config (defaults from Zeek's scan policy).
"""

from __future__ import annotations

from typing import ClassVar

from appliance.detectors.base import AlertContext, Note, notes_of
from appliance.detectors.settings import ScanSettings
from appliance.detectors.windows import DistinctWindow
from appliance.model import Flow, ProtocolEvent

FAILED_STATES = frozenset({"S0", "REJ", "RSTOS0", "RSTRH", "SH", "SHR"})
# UDP services that never answer by design (syslog, SNMP traps, NetFlow/IPFIX/sFlow exports): silence is normal
ONE_WAY_UDP = frozenset({514, 162, 2055, 4739, 6343, 9995, 9996})
NAMED_PORTS = {3389: "rdp_scan", 445: "smb_scan", 139: "smb_scan"}
DISCOVERY = ("T0846", "T1046")  # ICS Remote System Discovery; Enterprise Network Service Discovery


def unicast(ip: str) -> bool:
    """False for broadcast-looking and multicast destinations (no single host could have answered)."""
    if ":" in ip:
        return not ip.lower().startswith("ff")
    first, _, rest = ip.partition(".")
    return first.isdigit() and int(first) < 224 and not rest.endswith(".255")


def failed_attempt(flow: Flow) -> bool:
    """A connection the responder did not accept: TCP never established, or UDP never answered (to a unicast
    address, on a service that answers)."""
    fid = flow.id
    if fid.proto == "tcp":
        return flow.conn_state in FAILED_STATES and flow.resp_bytes == 0
    if fid.proto == "udp":
        return (flow.resp_pkts == 0 and flow.orig_pkts > 0 and fid.resp_p not in ONE_WAY_UDP
                and unicast(fid.resp_h))  # fmt: skip
    return False


class ScanDetector:
    """Counts distinct failed targets per source in a sliding window of packet time."""

    name: ClassVar[str] = "scan"
    notes: ClassVar[dict[str, Note]] = notes_of(
        Note("address_scan", "medium", 50, DISCOVERY, "failed connections to many hosts on one port"),
        Note("rdp_scan", "high", 65, DISCOVERY, "failed RDP (3389) connections to many hosts"),
        Note("smb_scan", "high", 65, DISCOVERY, "failed SMB (445/139) connections to many hosts"),
        Note("port_scan", "medium", 50, DISCOVERY, "failed connections to many ports of one host"),
        Note("udp_enumeration", "medium", 45, DISCOVERY, "unanswered UDP datagrams to many host/port targets"),
    )
    event_protocols: ClassVar[frozenset[str]] = frozenset()
    wants_flows: ClassVar[bool] = True

    def __init__(self, settings: ScanSettings | None = None) -> None:
        s = self.settings = settings or ScanSettings()
        cap = max(s.address_scan_hosts, s.port_scan_ports, s.udp_targets) * 4
        self._hosts = DistinctWindow(s.window, s.max_sources, cap)  # (src, port) -> dst hosts
        self._ports = DistinctWindow(s.window, s.max_sources, cap)  # (src, dst) -> ports
        self._udp = DistinctWindow(s.window, s.max_sources, cap)  # src -> (dst, port)

    def on_event(self, ev: ProtocolEvent, ctx: AlertContext) -> None:
        """Scans are seen in connection records only."""

    def on_flow(self, flow: Flow, ctx: AlertContext) -> None:
        """Count a failed attempt; raise when a source crosses a threshold."""
        if not failed_attempt(flow):
            return
        fid = flow.id
        src, dst, port, ts, s = fid.orig_h, fid.resp_h, fid.resp_p, flow.ts, self.settings
        if fid.proto == "udp":
            n = self._udp.add(src, (dst, port), ts, fid.uid)
            if n >= s.udp_targets and ctx.fresh(self, "udp_enumeration", src, ts):
                targets = self._udp.items(src)
                hosts = sorted({h for h, _ in targets})
                ports = sorted({p for _, p in targets})
                ctx.alert(
                    self, "udp_enumeration", ts, src, assets=(src, *hosts[:20]), uids=self._udp.evidence(src),
                    explanation=(
                        f"{src} sent UDP datagrams that got no answer to {n} host/port targets "
                        f"({len(hosts)} hosts, ports {_list(ports)}) within {s.window:g} s "
                        f"(threshold {s.udp_targets})"
                    ),
                    details={"targets": n, "hosts": len(hosts), "ports": ports[:20]},
                )  # fmt: skip
            return
        n = self._hosts.add((src, port), dst, ts, fid.uid)
        note = NAMED_PORTS.get(port, "address_scan")
        if n >= s.address_scan_hosts and ctx.fresh(self, note, f"{src}/{port}", ts):
            hosts = self._hosts.items((src, port))
            ctx.alert(
                self, note, ts, src, assets=(src, *map(str, hosts[:20])), uids=self._hosts.evidence((src, port)),
                key=f"{src}/{port}",
                explanation=(
                    f"{src} made failed TCP connections to {n} hosts on port {port} within {s.window:g} s "
                    f"(threshold {s.address_scan_hosts} hosts; answered connections do not count)"
                ),
                details={"port": port, "hosts": n},
            )  # fmt: skip
        n = self._ports.add((src, dst), port, ts, fid.uid)
        if n >= s.port_scan_ports and ctx.fresh(self, "port_scan", f"{src}/{dst}", ts):
            ports = sorted(self._ports.items((src, dst)))
            ctx.alert(
                self, "port_scan", ts, src, assets=(src, dst), uids=self._ports.evidence((src, dst)),
                key=f"{src}/{dst}",
                explanation=(
                    f"{src} made failed TCP connections to {n} ports of {dst} ({_list(ports)}) within "
                    f"{s.window:g} s (threshold {s.port_scan_ports} ports)"
                ),
                details={"dst": dst, "ports": ports[:50]},
            )  # fmt: skip

    def on_tick(self, now: float, ctx: AlertContext) -> None:
        """Forget sources whose attempts all left the window."""
        for window in (self._hosts, self._ports, self._udp):
            window.expire(now)


def _list(values: list[int], limit: int = 10) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f", ... ({len(values)})" if len(values) > limit else "")
