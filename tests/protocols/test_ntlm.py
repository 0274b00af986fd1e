"""NTLMSSP and SPNEGO parsing: the three messages, names only (never response bytes), truncation, bad blobs."""

from __future__ import annotations

from random import Random

from protocols.ntlm import flag_names, parse_ntlmssp
from protocols.ntlm_gss import parse_security_blob
from simulators.itgen.smb_ldap_msgs import (
    KRB_OID,
    NTLM_OID,
    der,
    ntlm_auth,
    ntlm_challenge,
    ntlm_negotiate,
    spnego_init,
    spnego_resp,
)


def test_three_messages_in_spnego() -> None:
    rng = Random(2)
    neg = parse_security_blob(*_whole(spnego_init([NTLM_OID, KRB_OID], ntlm_negotiate())))
    assert (neg["mechanism"], neg["mech_types"], neg["ntlm_message"]) == ("ntlmssp", ["ntlmssp", "kerberos"],
                                                                          "NEGOTIATE")  # fmt: skip
    assert {"NEGOTIATE_SIGN", "NEGOTIATE_KEY_EXCH"} <= set(neg["negotiate_flags"])
    assert neg["client_os_version"] == "10.0.19041"
    chal = parse_security_blob(*_whole(spnego_resp(1, NTLM_OID, ntlm_challenge(rng, "CORP", "DC1", "CORP",
                                                                              "dc1.c.l", "c.l", "c.l"))))
    assert (chal["neg_state"], chal["target_name"], chal["server_nb_computer_name"], chal["server_dns_computer_name"],
            chal["server_tree_name"], chal["server_os_version"]) == ("accept-incomplete", "CORP", "DC1", "dc1.c.l",
                                                                     "c.l", "10.0.17763")  # fmt: skip
    raw = ntlm_auth(rng, "CORP", "jdoe", "WS1", nt_len=24)
    auth = parse_ntlmssp(raw, 0, len(raw))
    assert (auth["username"], auth["domainname"], auth["hostname"], auth["ntlm_version"], auth["mic_present"]) == (
        "jdoe", "CORP", "WS1", "v1", True)
    assert all(not isinstance(v, bytes) for v in auth.values())


def test_truncation_and_garbage_never_raise() -> None:
    rng = Random(4)
    raw = ntlm_auth(rng, "CORP", "jdoe", "WS1")
    for cut in range(len(raw)):
        f = parse_ntlmssp(raw, 0, cut)
        assert "ntlm_error" in f or cut >= 88
    blob = spnego_init([NTLM_OID], raw)
    for cut in range(len(blob)):
        parse_security_blob(blob, 0, cut)
    for _ in range(300):
        b = bytearray(blob)
        b[rng.randrange(len(b))] = rng.randrange(256)
        parse_security_blob(bytes(b), 0, len(b))
    assert "spnego_error" in parse_security_blob(b"\x42\x00", 0, 2)
    assert parse_security_blob(der(0x60, der(0x06, KRB_OID) + b"\x01\x00"), 0, 15)["mechanism"] == "kerberos"
    assert flag_names(0x1 | 0x4000) == ["NEGOTIATE_UNICODE", "0x00004000"]


def _whole(b: bytes) -> tuple[bytes, int, int]:
    return b, 0, len(b)
