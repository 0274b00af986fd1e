"""Decoder dispatch end to end through `otwatch replay`: Modbus found on another port, TLS on 502 refused.

The behaviour of Zeek's `modbus-and-non-modbus-p502` test: a non-Modbus stream on TCP/502 is a protocol violation,
is reported, and is no longer decoded as Modbus; Modbus on a port nobody claims is still found by probing.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

from tests.capture.pcapbuild import MAC_A, MAC_B, eth, ipv4, tcp, write_pcap

CLIENT, SERVER = "10.1.0.5", "10.2.0.9"
SYN, ACK, PSH = 0x02, 0x10, 0x08

# A TLS 1.2 ClientHello record header and the start of its handshake body.
TLS_HELLO = bytes.fromhex("16030100a5010000a10303") + bytes(32) + b"\x00\x00\x02\x13\x01\x01\x00"
MODBUS_READ = struct.pack("!HHHBBHH", 7, 0, 6, 1, 3, 100, 2)  # FC3, 2 registers from 100
MODBUS_REPLY = struct.pack("!HHHBBB", 7, 0, 7, 1, 3, 4) + struct.pack("!HH", 215, 216)


def session(sport: int, dport: int, request: bytes, reply: bytes, t0: int) -> list[tuple[int, int, bytes, int]]:
    """A handshake, one request and one reply with ACKs, as pcap records."""
    frames = []

    def add(t: int, src: str, dst: str, sp: int, dp: int, seq: int, ack: int, flags: int, data: bytes = b"") -> None:
        mac_src, mac_dst = (MAC_A, MAC_B) if src == CLIENT else (MAC_B, MAC_A)
        frame = eth(0x0800, ipv4(src, dst, 6, tcp(sp, dp, seq, ack, flags, data)), src=mac_src, dst=mac_dst)
        frames.append((t0, t * 1000, frame, len(frame)))

    c, s = 1000, 5000
    add(1, CLIENT, SERVER, sport, dport, c, 0, SYN)
    add(2, SERVER, CLIENT, dport, sport, s, c + 1, SYN | ACK)
    add(3, CLIENT, SERVER, sport, dport, c + 1, s + 1, ACK)
    add(4, CLIENT, SERVER, sport, dport, c + 1, s + 1, PSH | ACK, request)
    add(5, SERVER, CLIENT, dport, sport, s + 1, c + 1 + len(request), PSH | ACK, reply)
    add(6, CLIENT, SERVER, sport, dport, c + 1 + len(request), s + 1 + len(reply), ACK)
    return frames


def replay(tmp_path: Path, records: list[tuple[int, int, bytes, int]]) -> Path:
    """Write the records as a pcap and run the real `otwatch replay` on it; return the log directory."""
    pcap = write_pcap(tmp_path / "dispatch.pcap", records)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "appliance", "replay", str(pcap), "--out", str(out), "--state", str(tmp_path / "s")]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    return out


def rows(out: Path, log: str) -> list[dict]:
    """The rows of one JSONL log."""
    path = out / f"{log}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_tls_on_502_is_a_protocol_violation_and_modbus_on_5020_is_found(tmp_path: Path) -> None:
    records = session(40001, 502, TLS_HELLO, b"\x15\x03\x03\x00\x02\x02\x28", 1_700_000_000)
    records += session(40002, 5020, MODBUS_READ, MODBUS_REPLY, 1_700_000_010)
    out = replay(tmp_path, records)

    conns = {c["id.resp_p"]: c for c in rows(out, "conn")}
    assert conns[502]["conn_state"] == conns[5020]["conn_state"] == "S1"  # established, no FIN in the capture
    assert "service" not in conns[502]  # never confirmed as Modbus
    assert conns[5020]["service"] == "modbus"

    weird = rows(out, "weird")
    violations = [w for w in weird if w["name"] == "modbus_protocol_violation"]
    assert len(violations) == 1 and violations[0]["id.resp_p"] == 502

    modbus = rows(out, "modbus")
    assert all(r["id.resp_p"] == 5020 for r in modbus)
    request, response = modbus
    assert (request["func"], request["address"], request["quantity"]) == ("READ_HOLDING_REGISTERS", 100, 2)
    assert (response["kind"], response["response_values"]) == ("response", [215, 216])
