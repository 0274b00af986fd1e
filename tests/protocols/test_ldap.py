"""The LDAP decoder: the seeded scenario's messages, pairing, search counts, opaque SASL/TLS traffic, tshark
agreement, ldap_search rows, filter rendering, BER bounds and malformed input."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from random import Random

import pytest
from test_smb import Replay

from protocols.base import FlowId, ProtocolEvent
from protocols.ber import BerError, oid_text, tlv
from protocols.ldap import LdapDecoder
from protocols.ldap_filter import render_filter
from protocols.ldap_logs import log_rows
from simulators.itgen.smb_ldap import write_pcap
from simulators.itgen.smb_ldap_msgs import der, eq, ldap_msg, ostr, search_req

FLOW = FlowId("CLdAp1", "10.8.0.23", 50001, "10.40.1.6", 389, "tcp")


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Replay]:
    path = tmp_path_factory.mktemp("ldap") / "smb_ldap.pcap"
    write_pcap(path, seed=11)
    return path, Replay(path)


def _ldap(replay: Replay) -> list[ProtocolEvent]:
    return [e for e in replay.events if e.protocol == "ldap"]


def test_every_operation_and_its_pairing(replay: tuple[Path, Replay]) -> None:
    events = _ldap(replay[1])
    assert [e for e in events if e.kind == "weird"] == []
    first = events[0].flow
    assert first is not None
    main = [(e.op, e.kind, e.fields["message_id"]) for e in events if e.flow and e.flow.orig_p == first.orig_p]
    assert main == [
        ("bind", "request", 1), ("bind", "response", 1), ("search", "request", 2),
        ("search_result_done", "response", 2), ("search", "request", 3), ("search_result_done", "response", 3),
        ("search", "request", 4), ("search", "request", 5), ("search_result_done", "response", 4),
        ("search_result_done", "response", 5), ("modify", "request", 6), ("modify", "exception", 6),
        ("add", "request", 7), ("add", "response", 7), ("delete", "request", 8), ("delete", "response", 8),
        ("modify_dn", "request", 9), ("modify_dn", "response", 9), ("compare", "request", 10),
        ("compare", "response", 10), ("extended", "request", 12), ("extended", "response", 12),
        ("abandon", "request", 11), ("bind", "request", 13), ("bind", "exception", 13), ("unbind", "request", 14),
    ]  # fmt: skip
    bind = events[0].fields
    assert (bind["opcode"], bind["object"], bind["argument"], bind["password_present"]) == (
        "bind simple", "CN=John Doe,OU=Staff,DC=corp,DC=local", "REDACTED", True)
    assert not any("Winter2024" in str(v) for e in events for v in e.fields.values())
    done = [e.fields for e in events if e.op == "search_result_done"]
    assert [(d["result_count"], d["filter"]) for d in done[:2]] == [
        (3, "(&(objectClass=user)(adminCount=1))"), (5, "(|(sAMAccountName=adm*)(servicePrincipalName=*))")]
    assert done[0]["entry_dns"][0] == "CN=adm0,OU=Admins,DC=corp,DC=local"
    assert done[0]["entry_attributes"] == ["sAMAccountName", "memberOf"]
    paged = next(e.fields for e in events if e.op == "search" and e.fields["message_id"] == 3)
    assert paged["controls"] == ["1.2.840.113556.1.4.319"] and paged["size_limit"] == 1000
    failed = next(e.fields for e in events if e.kind == "exception" and e.op == "bind")
    assert (failed["result"], failed["result_name"], failed["result_code"]) == (
        "invalid credentials", "invalidCredentials", 49)
    assert "data 52e" in failed["diagnostic_message"]
    ext = next(e.fields for e in events if e.op == "extended" and e.kind == "request")
    assert ext["object"] == "1.3.6.1.4.1.4203.1.11.3 (whoami)"


def test_opaque_sasl_and_tls_layers_are_one_notice_each(replay: tuple[Path, Replay]) -> None:
    events = _ldap(replay[1])
    notices = [(e.op, e.fields.get("mechanism"), e.fields.get("first_seen", False)) for e in events
               if e.kind == "notice"]  # fmt: skip
    assert notices == [("tls", "StartTLS", True), ("sasl_wrapped", "GSS-SPNEGO", True), ("tls", "StartTLS", False),
                       ("sasl_wrapped", "GSS-SPNEGO", False)]  # fmt: skip
    ntlm = next(e.fields for e in events if e.op == "bind" and e.fields.get("auth") == "ntlm")
    assert (ntlm["username"], ntlm["hostname"], ntlm["success"], ntlm["server_nb_computer_name"]) == (
        "jdoe", "DESKTOP-X9K2Q", True, "DC2")
    anon = next(e.fields for e in events if e.op == "bind" and e.fields.get("anonymous"))
    assert anon["object"] == "" and "argument" not in anon
    gc = [e for e in events if e.flow and e.flow.resp_p == 3268]
    assert [e.op for e in gc] == ["search", "search_result_done"]


def test_ldap_search_rows() -> None:
    row = {"ts": 2.0, "uid": "C1", "id.orig_h": "a", "id.orig_p": 1, "id.resp_h": "b", "id.resp_p": 389,
           "op": "search_result_done", "kind": "response", "request_ts": 1.0, "message_id": 2, "scope": "tree",
           "deref_aliases": "never", "base_object": "DC=x", "result_count": 3, "result": "success",
           "filter": "(a=b)", "attributes": ["cn"], "protocol_op": "searchResDone"}  # fmt: skip
    ((name, out),) = log_rows(row)
    assert name == "ldap_search"
    assert list(out) == ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "message_id", "scope",
                         "deref_aliases", "base_object", "result_count", "result", "filter", "attributes"]  # fmt: skip
    assert out["ts"] == 1.0
    assert log_rows({**row, "op": "search", "kind": "request"}) == []


def test_fields_agree_with_tshark(replay: tuple[Path, Replay]) -> None:
    exe = shutil.which("tshark")
    assert exe, "tshark is missing: `make test` installs it (Debian package tshark)"
    path, rep = replay
    fields = ["ldap.messageID", "ldap.protocolOp", "ldap.resultCode", "ldap.baseObject"]
    args = [exe, "-r", str(path), "-Y", "ldap", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|", "-e",
            "frame.number"]
    for f in fields:
        args += ["-e", f]
    text = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    compared = 0
    for line in text.splitlines():
        frame, mids, ops, codes, bases = (line.split("\t") + [""] * 5)[:5]
        ours = [e for e in rep.frames[int(frame)] if e.protocol == "ldap" and e.kind in ("request", "response",
                                                                                          "exception")]  # fmt: skip
        if not mids:
            continue  # a SASL-wrapped buffer: tshark has no message id, we have a notice
        both = zip(mids.split("|"), ops.split("|"), strict=True)
        pairs = [(int(m), int(o)) for m, o in both if int(o) not in (4, 19)]
        assert [(e.fields["message_id"], OPS[e.fields["protocol_op"]]) for e in ours] == pairs, frame
        got_codes = [e.fields["result_code"] for e in ours if "result_code" in e.fields]
        want = [int(c) for c in codes.split("|") if c]
        assert got_codes == want[len(want) - len(got_codes):], frame
        got_bases = [e.fields["base_object"] for e in ours if e.kind == "request" and "base_object" in e.fields]
        assert [b for b in got_bases if b] == [b for b in bases.split("|") if b][: len([b for b in got_bases if b])]
        compared += len(pairs)
    assert compared == 36  # every LDAP message but the entries (counted into their search)


OPS = {"bindRequest": 0, "bindResponse": 1, "unbindRequest": 2, "searchRequest": 3, "searchResDone": 5,
       "modifyRequest": 6, "modifyResponse": 7, "addRequest": 8, "addResponse": 9, "delRequest": 10,
       "delResponse": 11, "modDNRequest": 12, "modDNResponse": 13, "compareRequest": 14, "compareResponse": 15,
       "abandonRequest": 16, "extendedReq": 23, "extendedResp": 24}  # fmt: skip


def test_filter_rendering_escapes_and_every_choice() -> None:
    cases = [
        (der(0xA0, eq("objectClass", "user") + eq("adminCount", "1")), "(&(objectClass=user)(adminCount=1))"),
        (eq("cn", "a*b(c)\\d"), "(cn=a\\2ab\\28c\\29\\5cd)"),
        (eq("objectGUID", b"\xff\x00"), "(objectGUID=\\ff\\00)"),
        (der(0xA4, ostr("cn") + der(0x30, der(0x80, b"a") + der(0x81, b"b") + der(0x82, b"c"))), "(cn=a*b*c)"),
        (der(0xA4, ostr("cn") + der(0x30, der(0x81, b"mid"))), "(cn=*mid*)"),
        (der(0xA6, ostr("x") + ostr("5")) + b"", "(x<=5)"),
        (der(0xA8, ostr("x") + ostr("y")), "(x~=y)"),
        (der(0xA9, der(0x82, b"cn") + der(0x83, b"v") + der(0x84, b"\xff")), "(cn:dn:=v)"),
    ]
    for raw, text in cases:
        assert render_filter(raw, 0, len(raw)) == (text, len(raw))
    deep = eq("a", "b")
    for _ in range(40):
        deep = der(0xA2, deep)
    with pytest.raises(BerError):
        render_filter(deep, 0, len(deep))


def test_ber_bounds() -> None:
    assert tlv(b"\x04\x82\x00\x02ab", 0, 6) == (4, 4, 6)
    for bad in (b"\x04\x80ab", b"\x1f\x01a", b"\x04\x85\x00\x00\x00\x00\x01", b"\x04\x05ab"):
        with pytest.raises(BerError):
            tlv(bad, 0, len(bad))
    assert oid_text(bytes.fromhex("2b0601050502")) == "1.3.6.1.5.5.2"


def _feed(chunks: list[bytes], client: bool = True) -> list[ProtocolEvent]:
    dec = LdapDecoder(FLOW)
    out: list[ProtocolEvent] = []
    for i, c in enumerate(chunks):
        out += dec.feed(c, client, float(i))
    return out + dec.close(99.0)


def test_split_batched_and_malformed_messages() -> None:
    search = ldap_msg(2, 0x63, search_req("DC=x", 2, eq("cn", "a"), ["cn"]))
    unbind = ldap_msg(3, 0x42, b"")
    stream = search + unbind
    one = _feed([stream])
    split = _feed([stream[i : i + 1] for i in range(len(stream))])
    assert [(e.op, e.kind) for e in one] == [(e.op, e.kind) for e in split] == [
        ("search", "request"), ("unbind", "request"), ("search", "notice")]
    bad = ldap_msg(4, 0x63, ostr("DC=x") + der(0x0A, b"\x02"))  # a searchRequest cut short
    assert [e.op for e in _feed([bad, unbind])] == ["ldap_malformed_message", "unbind"]
    assert [e.op for e in _feed([b"GET / HTTP/1.1\r\n"])] == ["ldap_invalid_message"]
    assert [e.op for e in _feed([ldap_msg(5, 0x71, b"")])] == ["ldap_unknown_op"]
    rng = Random(3)
    done = ldap_msg(2, 0x65, der(0x0A, b"\x00") + ostr("") + ostr(""))
    base = search + ldap_msg(2, 0x64, b"\x04\x01a\x30\x00") + done
    for _ in range(500):
        b = bytearray(base)
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        _feed([bytes(b)])
        _feed([bytes(b)], client=False)
    assert LdapDecoder.probe(search, True) and not LdapDecoder.probe(b"\x30\x03\x02\x01\x01", True)
