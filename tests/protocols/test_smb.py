"""The SMB decoder on the seeded SMB/LDAP scenario: events, NTLM summaries, trees and files, tshark agreement,
the Zeek detail rows, the real pipeline, and malformed or split input."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from random import Random

import pytest

from appliance.capture.dissect import Dissector
from appliance.capture.pcapfile import PcapReader
from appliance.config import Config
from appliance.export.jsonl import JsonlLogs
from appliance.flows import FlowTable
from appliance.pipeline import Pipeline
from protocols.base import FlowId, ProtocolEvent
from protocols.ldap import LdapDecoder
from protocols.smb import DECODE_CAP, SmbDecoder
from protocols.smb_logs import log_rows
from simulators.itgen.smb_ldap import write_pcap
from simulators.itgen.smb_ldap_msgs import nbss, ntlm_auth, smb2, spnego_resp

FLOW = FlowId("CsMb1", "10.8.0.23", 50000, "10.40.1.5", 445, "tcp")


@pytest.fixture(scope="module")
def pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("smb") / "smb_ldap.pcap"
    write_pcap(path, seed=11)
    return path


class Replay:
    """A capture through a FlowTable with the SMB and LDAP decoders: events by frame number."""

    def __init__(self, path: Path) -> None:
        self.frames: dict[int, list[ProtocolEvent]] = defaultdict(list)
        self.events: list[ProtocolEvent] = []
        frame = 0

        def on_event(ev: ProtocolEvent) -> None:
            self.frames[frame].append(ev)
            self.events.append(ev)

        table = FlowTable([SmbDecoder, LdapDecoder], on_event, lambda f: None)
        dissector = Dissector()
        with PcapReader(path) as reader:
            for frame, (linktype, ts, data, wire_len) in enumerate(reader, 1):  # noqa: B007 (on_event reads it)
                pkt = dissector.dissect(linktype, ts, data, wire_len)
                if pkt is not None:
                    table.process(pkt)
        frame = 0
        table.flush()
        assert table.decoder_errors == 0

    def smb(self) -> list[ProtocolEvent]:
        """The SMB events."""
        return [e for e in self.events if e.protocol == "smb"]


@pytest.fixture(scope="module")
def replay(pcap: Path) -> Replay:
    return Replay(pcap)


def test_no_weirds_and_every_message_decoded(replay: Replay) -> None:
    smb = replay.smb()
    assert [e for e in smb if e.kind == "weird"] == []
    ops = [e.op for e in smb if e.kind == "request"]
    for op in ("negotiate", "session_setup", "tree_connect", "create", "write", "read", "close", "ioctl", "echo",
               "tree_disconnect", "logoff", "session_setup_andx", "tree_connect_andx", "session_request"):
        assert op in ops, op
    unmatched = [e for e in smb if e.kind in ("response", "exception") and e.fields.get("matched") is False]
    assert unmatched == []


def test_ntlm_summaries_pair_the_outcome_by_message_id(replay: Replay) -> None:
    ends = [e for e in replay.smb() if e.fields.get("auth") == "ntlm" and "success" in e.fields]
    got = [(e.fields.get("username"), e.fields.get("domainname"), e.fields.get("hostname"), e.fields["success"],
            e.fields["status"]) for e in ends]  # fmt: skip
    assert got == [
        ("jdoe", "CORP", "DESKTOP-X9K2Q", True, "STATUS_SUCCESS"),
        ("admin", ".", "WIN-BRUTE", False, "STATUS_LOGON_FAILURE"),
        ("admin", ".", "WIN-BRUTE", False, "STATUS_LOGON_FAILURE"),
        ("administrator", ".", "WIN-BRUTE", False, "STATUS_LOGON_FAILURE"),
        ("svc_backup", ".", "WIN-BRUTE", False, "STATUS_ACCOUNT_LOCKED_OUT"),
        ("", "", "", True, "STATUS_SUCCESS"),
        ("guest", "CORP", None, False, "STATUS_LOGON_FAILURE"),
        ("administrator", "CORP", None, True, "STATUS_SUCCESS"),
    ]
    first = ends[0].fields
    assert (first["server_nb_computer_name"], first["server_dns_computer_name"], first["server_tree_name"]) == (
        "DC1", "dc1.corp.local", "corp.local")
    assert ends[1].fields["server_nb_computer_name"] == "DC2"
    assert ends[1].kind == "exception" and ends[0].kind == "response"
    null = ends[5].fields
    assert null["anonymous"] is True and null["is_null"] is True
    for e in replay.smb():  # never a response byte, never a password
        assert not any(isinstance(v, bytes) for v in e.fields.values())


def test_negotiation_kerberos_smb1_and_netbios(replay: Replay) -> None:
    smb = replay.smb()
    neg = [e.fields for e in smb if e.op == "negotiate"]
    assert neg[0]["dialects"] == ["2.0.2", "2.1", "3.0", "3.0.2", "3.1.1"] and neg[1]["dialect"] == "3.1.1"
    smb1 = [f for f in neg if f["version"] == "SMB1" and "dialects" in f]
    assert smb1[0]["dialects"][-3:] == ["NT LM 0.12", "SMB 2.002", "SMB 2.???"]
    chosen = [f for f in neg if f.get("dialect") in ("2.???", "NT LM 0.12")]
    assert [f["dialect"] for f in chosen] == ["2.???", "NT LM 0.12"]
    assert chosen[1]["server_domain"] == "CORP" and chosen[1]["server_name"] == "DC2"
    krb = [e.fields for e in smb if e.fields.get("auth") == "kerberos" and "success" in e.fields]
    assert len(krb) == 1 and krb[0]["success"] is True
    req = next(e.fields for e in smb if e.op == "session_request" and e.kind == "request")
    assert (req["called_name"], req["calling_name"], req["called_suffix"]) == ("DC1", "WS-050", 0x20)
    andx = next(e.fields for e in smb if e.op == "session_setup_andx" and e.kind == "response")
    assert andx["native_os"] == "Windows Server 2019"


def test_trees_files_compounds_and_encryption(replay: Replay) -> None:
    smb = replay.smb()
    trees = [(e.fields["path"], e.fields.get("share_type"), e.fields["status"]) for e in smb
             if e.op.startswith("tree_connect") and e.kind != "request"]  # fmt: skip
    assert trees == [("\\\\DC1\\IPC$", "PIPE", "STATUS_SUCCESS"), ("\\\\DC1\\ADMIN$", "DISK", "STATUS_SUCCESS"),
                     ("\\\\DC1\\C$", None, "STATUS_ACCESS_DENIED"), ("\\\\10.40.1.6\\IPC$", "PIPE",
                                                                     "STATUS_SUCCESS")]  # fmt: skip
    write = next(e.fields for e in smb if e.op == "write" and e.kind == "request")
    assert (write["length"], write["name"], write["tree"]) == (70000, "Temp\\svc.exe", "\\\\DC1\\ADMIN$")
    sid = 0x100000000041
    compound = [e for e in smb if e.fields.get("message_id") in (9, 10, 11) and e.fields.get("session_id") == sid]
    assert [(e.op, e.kind, e.fields.get("name")) for e in compound] == [
        ("create", "request", "Windows\\win.ini"), ("read", "request", "Windows\\win.ini"),
        ("close", "request", "Windows\\win.ini"), ("create", "response", "Windows\\win.ini"),
        ("read", "response", "Windows\\win.ini"), ("close", "response", "Windows\\win.ini")]  # fmt: skip
    assert compound[4].fields["length"] == 92
    notices = [e.fields for e in smb if e.op == "encrypted"]
    assert notices == [{"first_seen": True, "session_id": 0x100000000041},
                       {"messages": 3, "orig_messages": 2, "resp_messages": 1}]  # fmt: skip


def _tshark(pcap: Path, fields: list[str]) -> list[dict[str, str]]:
    exe = shutil.which("tshark")
    assert exe, "tshark is missing: `make test` installs it (Debian package tshark)"
    args = [exe, "-r", str(pcap), "-Y", "smb2 || smb", "-T", "fields", "-E", "occurrence=a", "-E", "separator=\t",
            "-e", "frame.number"]  # fmt: skip
    for f in fields:
        args += ["-e", f]
    text = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return [dict(zip(["frame.number", *fields], line.split("\t"), strict=True)) for line in text.splitlines()]


def test_smb2_fields_agree_with_tshark(pcap: Path, replay: Replay) -> None:
    fields = ["ip.src", "tcp.srcport", "smb2.cmd", "smb2.nt_status", "smb2.msg_id", "smb2.sesid", "smb2.tree",
              "ntlmssp.auth.username", "ntlmssp.auth.domain", "ntlmssp.auth.hostname", "smb.cmd",
              "smb.mid"]  # fmt: skip
    ours: dict[tuple[str, int, str, int, int], list[ProtocolEvent]] = defaultdict(list)
    for e in replay.smb():
        if e.kind in ("request", "response", "exception") and "version" in e.fields:
            assert e.flow is not None
            sport = e.flow.orig_p if e.is_orig else e.flow.resp_p
            code = SMB2_CODES.get(e.fields["command"], -1) if e.fields["version"] == "SMB2" else -2
            ours[(e.src, sport, e.fields["version"], e.fields["message_id"], code)].append(e)
    compared = trees = 0
    for row in _tshark(pcap, fields):
        src, sport = row["ip.src"], int(row["tcp.srcport"])
        cmds = [int(c) for c in row["smb2.cmd"].split(",") if c]
        mids = [int(m) for m in row["smb2.msg_id"].split(",") if m]
        sids = row["smb2.sesid"].split(",")
        statuses = [int(s, 16) for s in row["smb2.nt_status"].split(",") if s]
        for i, (cmd, mid) in enumerate(zip(cmds, mids, strict=True)):
            events = ours[(src, sport, "SMB2", mid, cmd)]
            assert events, row
            e = events.pop(0)
            if sids[i] and sids[i] != "0xffffffffffffffff":
                assert e.fields["session_id"] == int(sids[i], 16), row
            if statuses:
                assert STATUS_CODES[e.fields["status"]] == statuses[i], row
            compared += 1
            if row["smb2.tree"] and len(cmds) == 1:
                assert row["smb2.tree"] in (e.fields.get("path"), e.fields.get("tree")), row
                trees += 1
        if row["ntlmssp.auth.username"]:
            auth = next(e.fields for e in replay.frames[int(row["frame.number"])]
                        if e.fields.get("ntlm_message") == "AUTHENTICATE")  # fmt: skip
            assert auth["username"] == row["ntlmssp.auth.username"].replace("NULL", "")
            assert auth["domainname"] == row["ntlmssp.auth.domain"].replace("NULL", "")
            assert auth["hostname"] == row["ntlmssp.auth.hostname"].replace("NULL", "")
        for mid in (int(m) for m in row["smb.mid"].split(",") if m):
            assert ours[(src, sport, "SMB1", mid, -2)].pop(0).fields["message_id"] == mid
            compared += 1
    assert (compared, trees) == (76, 13)  # messages and single-message frames with a tree: all agree
    assert [k for k, v in ours.items() if v] == []  # every message tshark saw, and no more


SMB2_CODES = {"NEGOTIATE": 0, "SESSION_SETUP": 1, "LOGOFF": 2, "TREE_CONNECT": 3, "TREE_DISCONNECT": 4, "CREATE": 5,
              "CLOSE": 6, "READ": 8, "WRITE": 9, "IOCTL": 11, "ECHO": 13}  # fmt: skip
STATUS_CODES = {"STATUS_SUCCESS": 0, "STATUS_MORE_PROCESSING_REQUIRED": 0xC0000016, "STATUS_ACCESS_DENIED": 0xC0000022,
                "STATUS_LOGON_FAILURE": 0xC000006D, "STATUS_ACCOUNT_LOCKED_OUT": 0xC0000234}  # fmt: skip


def test_zeek_rows_and_the_real_pipeline(pcap: Path, tmp_path: Path) -> None:
    pipeline = Pipeline(Config(), None)
    logs = JsonlLogs(tmp_path, detail_logs={"smb": SmbDecoder.log_rows, "ldap": LdapDecoder.log_rows})
    pipeline.logs = logs
    pipeline.flows = FlowTable([SmbDecoder, LdapDecoder], pipeline._on_event, pipeline._on_flow)
    with PcapReader(pcap) as reader:
        pipeline.run(reader)
    pipeline.finish()
    ntlm = [json.loads(x) for x in (tmp_path / "ntlm.jsonl").read_text().splitlines()]
    assert [(r.get("username"), r.get("success")) for r in ntlm][:3] == [("jdoe", True), ("admin", False),
                                                                          ("admin", False)]  # fmt: skip
    assert list(ntlm[0]) == ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "username", "hostname",
                             "domainname", "server_nb_computer_name", "server_dns_computer_name", "server_tree_name",
                             "success"]  # fmt: skip
    assert ntlm[-1]["username"] == "jdoe" and ntlm[-1]["id.resp_p"] == 389  # the LDAP GSS-SPNEGO bind
    mapping = [json.loads(x) for x in (tmp_path / "smb_mapping.jsonl").read_text().splitlines()]
    assert [(r["path"], r["share_type"]) for r in mapping] == [("\\\\DC1\\IPC$", "PIPE"), ("\\\\DC1\\ADMIN$", "DISK"),
                                                               ("\\\\10.40.1.6\\IPC$", "PIPE")]  # fmt: skip
    files = [json.loads(x) for x in (tmp_path / "smb_files.jsonl").read_text().splitlines()]
    assert [(r["action"], r["path"], r["name"], r["size"]) for r in files] == [
        ("SMB::FILE_OPEN", "\\\\DC1\\ADMIN$", "Temp\\svc.exe", 0), ("SMB::FILE_OPEN", "\\\\DC1\\ADMIN$",
                                                                   "Windows\\win.ini", 92)]  # fmt: skip
    assert "times.modified" in files[0]
    assert pipeline.stats.events[("smb", "session_setup", "exception")] == 4
    assert log_rows({"op": "session_setup", "kind": "request", "auth": "ntlm"}) == []


def _streams(pcap: Path) -> list[tuple[bool, bytes]]:
    """The payloads of the first SMB connection, in order, as (from client, bytes)."""
    out: list[tuple[bool, bytes]] = []
    dissector = Dissector()
    with PcapReader(pcap) as reader:
        for linktype, ts, data, wire_len in reader:
            pkt = dissector.dissect(linktype, ts, data, wire_len)
            if pkt is None or not pkt.payload or 445 not in (pkt.sport, pkt.dport):
                continue
            if out and pkt.sport != 445 and pkt.sport != FIRST_PORT[0] and pkt.dport != FIRST_PORT[0]:
                break
            FIRST_PORT[0] = FIRST_PORT[0] or pkt.sport
            out.append((pkt.dport == 445, bytes(pkt.payload)))
    return out


FIRST_PORT = [0]


def _run(chunks: list[tuple[bool, bytes]]) -> list[ProtocolEvent]:
    dec = SmbDecoder(FLOW)
    out: list[ProtocolEvent] = []
    for i, (c, data) in enumerate(chunks):
        out += dec.feed(data, c, float(i))
    return out + dec.close(1e6)


def test_byte_by_byte_feeding_gives_the_same_events(pcap: Path) -> None:
    FIRST_PORT[0] = 0
    chunks = _streams(pcap)
    whole = _run(chunks)
    tiny = _run([(c, data[i : i + 1]) for c, data in chunks for i in range(len(data))])
    assert [(e.op, e.kind, e.fields.get("message_id")) for e in tiny] == [
        (e.op, e.kind, e.fields.get("message_id")) for e in whole]  # fmt: skip
    assert len(whole) > 30


def test_malformed_input_gives_weirds_not_exceptions(pcap: Path) -> None:
    FIRST_PORT[0] = 0
    chunks = _streams(pcap)
    rng = Random(5)
    for _ in range(300):
        mutated = []
        for c, data in chunks:
            b = bytearray(data)
            for _ in range(rng.randrange(4)):
                if b:
                    b[rng.randrange(len(b))] = rng.randrange(256)
            if rng.random() < 0.1:
                b = b[: rng.randrange(len(b) + 1)]
            mutated.append((c, bytes(b)))
        _run(mutated)  # must not raise
    short = nbss(smb2(1, 7, b"\x19\x00"))  # a SESSION_SETUP request cut after its structure size
    ev = _run([(True, short)])
    assert [e.op for e in ev] == ["smb2_truncated_body", "session_setup"]
    bad = _run([(True, b"\x00\x00\x00\x08\xfeSMB\x99" + b"x" * 3)])
    assert [e.op for e in bad] == ["smb2_truncated_header"]
    junk = _run([(True, b"GET / HTTP/1.1\r\n\r\n")])
    assert [e.op for e in junk] == ["smb_invalid_nbss_type"]


def test_oversized_message_is_skipped_not_buffered() -> None:
    token = spnego_resp(None, None, ntlm_auth(Random(1), "D", "u", "h"))
    big = nbss(smb2(9, 3, b"\x31\x00" + b"\x00" * 46 + b"z" * (DECODE_CAP * 2)))
    after = nbss(smb2(1, 4, b"\x19\x00\x00\x01" + b"\x00" * 8 + (88).to_bytes(2, "little") +
                      len(token).to_bytes(2, "little") + b"\x00" * 8 + token))  # fmt: skip
    dec = SmbDecoder(FLOW)
    events = []
    for i in range(0, len(big + after), 1460):
        events += dec.feed((big + after)[i : i + 1460], True, 1.0)
    assert max(len(b) for b in dec._buf) <= DECODE_CAP + 4
    assert [e.op for e in events] == ["write", "session_setup"]
    assert events[1].fields["username"] == "u"
