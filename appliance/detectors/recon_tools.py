"""Attack and recon tools by their signatures in HTTP: Nmap's service and NSE probes, scanners' user agents.

Signatures are exact facts about the tools, not guesses: Nmap's FourOhFourRequest probe asks for
`/nice ports,/Trinity.txt.bak` (percent-encoded on the wire), its NSE scripts for `/nmaplowercheck<N>` and
`/NmapUpperCheck<N>` and send `Nmap Scripting Engine` in the User-Agent; masscan, zgrab, Nikto, sqlmap, Nuclei,
gobuster, DirBuster, WPScan, ffuf, Hydra and OpenVAS name themselves in theirs. One alert per (source, tool) per
suppression interval; the explanation quotes the request.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import unquote

from appliance.detectors.base import AlertContext, Note, notes_of
from appliance.model import Flow, ProtocolEvent

# (tool, what to look for in the lower-cased, percent-decoded URI)
URI_SIGNATURES = (
    ("nmap", "/nice ports,/trinity.txt.bak"),
    ("nmap", "/nmaplowercheck"),
    ("nmap", "/nmapuppercheck"),
)
# (tool, what to look for in the lower-cased User-Agent, note)
AGENT_SIGNATURES = (
    ("nmap", "nmap scripting engine", "scanner_probe"),
    ("masscan", "masscan", "scanner_probe"),
    ("zgrab", "zgrab", "scanner_probe"),
    ("nikto", "nikto", "vulnerability_scanner"),
    ("sqlmap", "sqlmap", "vulnerability_scanner"),
    ("nuclei", "nuclei", "vulnerability_scanner"),
    ("gobuster", "gobuster", "vulnerability_scanner"),
    ("dirbuster", "dirbuster", "vulnerability_scanner"),
    ("wpscan", "wpscan", "vulnerability_scanner"),
    ("ffuf", "fuzz faster u fool", "vulnerability_scanner"),
    ("hydra", "(hydra)", "vulnerability_scanner"),
    ("openvas", "openvas", "vulnerability_scanner"),
)
MAX_QUOTED = 120


def match_request(uri: str, agent: str) -> tuple[str, str, str] | None:
    """(tool, note, what matched) for a request made by a known tool, else None."""
    low_uri = unquote(uri).lower()
    for tool, needle in URI_SIGNATURES:
        if needle in low_uri:
            return tool, "scanner_probe", f"URI {unquote(uri)[:MAX_QUOTED]!r}"
    low_agent = agent.lower()
    for tool, needle, note in AGENT_SIGNATURES:
        if needle in low_agent:
            return tool, note, f"User-Agent {agent[:MAX_QUOTED]!r}"
    return None


class ReconToolDetector:
    """HTTP requests that carry a scanner's or attack tool's signature."""

    name: ClassVar[str] = "recon_tools"
    notes: ClassVar[dict[str, Note]] = notes_of(
        Note("scanner_probe", "high", 70, ("T0846", "T1046"), "a network scanner's service or script probe"),
        Note("vulnerability_scanner", "high", 70, ("T0846", "T1595.002"), "a vulnerability or content scanner"),
    )
    event_protocols: ClassVar[frozenset[str]] = frozenset({"http"})
    wants_flows: ClassVar[bool] = False

    def on_event(self, ev: ProtocolEvent, ctx: AlertContext) -> None:
        """Check one HTTP request."""
        if ev.kind != "request":
            return
        f = ev.fields
        uri, agent = f.get("uri"), f.get("user_agent")
        found = match_request(uri if isinstance(uri, str) else "", agent if isinstance(agent, str) else "")
        if found is None:
            return
        tool, note, what = found
        method = f.get("method") if isinstance(f.get("method"), str) else "request"
        ctx.alert(
            self, note, ev.ts, ev.src, assets=(ev.src, ev.dst), uids=(ev.uid,) if ev.uid else (),
            key=f"{ev.src}/{tool}",
            explanation=f"{ev.src} sent an HTTP {method} to {ev.dst} with {tool}'s signature: {what}",
            details={"tool": tool, "uri": uri, "user_agent": agent, "host": f.get("host")},
        )  # fmt: skip

    def on_flow(self, flow: Flow, ctx: AlertContext) -> None:
        """Not used: the requests are events."""

    def on_tick(self, now: float, ctx: AlertContext) -> None:
        """No windows to close."""
