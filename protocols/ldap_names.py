"""LDAP name tables (RFC 4511): protocolOps, result codes (RFC names and Zeek's texts), search scopes and alias
dereferencing (Zeek's texts), extended operation OIDs, op classes.
"""

from __future__ import annotations

import re

__all__ = [
    "DEREF_ALIASES",
    "EXTENDED_NAMES",
    "OK_RESULTS",
    "OP_CLASSES",
    "PROTOCOL_OPS",
    "RESULT_NAMES",
    "SCOPES",
    "result_text",
]

# application tag number -> (RFC 4511 protocolOp name, op, is a request)
PROTOCOL_OPS: dict[int, tuple[str, str, bool]] = {
    0: ("bindRequest", "bind", True), 1: ("bindResponse", "bind", False), 2: ("unbindRequest", "unbind", True),
    3: ("searchRequest", "search", True), 4: ("searchResEntry", "search_result_entry", False),
    5: ("searchResDone", "search_result_done", False), 6: ("modifyRequest", "modify", True),
    7: ("modifyResponse", "modify", False), 8: ("addRequest", "add", True), 9: ("addResponse", "add", False),
    10: ("delRequest", "delete", True), 11: ("delResponse", "delete", False), 12: ("modDNRequest", "modify_dn", True),
    13: ("modDNResponse", "modify_dn", False), 14: ("compareRequest", "compare", True),
    15: ("compareResponse", "compare", False), 16: ("abandonRequest", "abandon", True),
    19: ("searchResRef", "search_result_reference", False), 23: ("extendedReq", "extended", True),
    24: ("extendedResp", "extended", False), 25: ("intermediateResponse", "intermediate", False),
}  # fmt: skip

RESULT_NAMES: dict[int, str] = {
    0: "success", 1: "operationsError", 2: "protocolError", 3: "timeLimitExceeded", 4: "sizeLimitExceeded",
    5: "compareFalse", 6: "compareTrue", 7: "authMethodNotSupported", 8: "strongerAuthRequired", 10: "referral",
    11: "adminLimitExceeded", 12: "unavailableCriticalExtension", 13: "confidentialityRequired",
    14: "saslBindInProgress", 16: "noSuchAttribute", 17: "undefinedAttributeType", 18: "inappropriateMatching",
    19: "constraintViolation", 20: "attributeOrValueExists", 21: "invalidAttributeSyntax", 32: "noSuchObject",
    33: "aliasProblem", 34: "invalidDNSyntax", 36: "aliasDereferencingProblem", 48: "inappropriateAuthentication",
    49: "invalidCredentials", 50: "insufficientAccessRights", 51: "busy", 52: "unavailable",
    53: "unwillingToPerform", 54: "loopDetect", 64: "namingViolation", 65: "objectClassViolation",
    66: "notAllowedOnNonLeaf", 67: "notAllowedOnRDN", 68: "entryAlreadyExists", 69: "objectClassModsProhibited",
    71: "affectsMultipleDSAs", 80: "other", 118: "canceled", 119: "noSuchOperation", 120: "tooLate",
    121: "cannotCancel", 122: "assertionFailed", 123: "authorizationDenied",
}  # fmt: skip
_ZEEK_TEXT = {9: "partial results", 14: "SASL bind in progress", 34: "invalid DN syntax", 66: "not allowed on non-leaf",
              67: "not allowed on RDN", 71: "affects multiple DSAs"}  # fmt: skip
OK_RESULTS = frozenset({0, 5, 6, 10, 14})  # success, compareFalse/True, referral, saslBindInProgress
SCOPES = {0: "base", 1: "single", 2: "tree"}
DEREF_ALIASES = {0: "never", 1: "searching", 2: "finding", 3: "always"}
EXTENDED_NAMES = {
    "1.3.6.1.4.1.1466.20037": "StartTLS", "1.3.6.1.4.1.4203.1.11.3": "whoami",
    "1.3.6.1.4.1.4203.1.11.1": "passwdModify", "1.3.6.1.1.8": "cancel",
    "1.3.6.1.4.1.1466.20036": "noticeOfDisconnection", "1.2.840.113556.1.4.1781": "fastBind",
}  # fmt: skip
STARTTLS = "1.3.6.1.4.1.1466.20037"

OP_CLASSES: dict[str, str] = {
    "bind": "auth", "unbind": "auth", "search": "read", "search_result_done": "read", "modify": "write",
    "add": "write", "delete": "write", "modify_dn": "write", "compare": "read", "abandon": "other",
    "extended": "command", "intermediate": "other", "sasl_wrapped": "other",
}  # fmt: skip

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


def _zeek(code: int) -> str:
    if code in _ZEEK_TEXT:
        return _ZEEK_TEXT[code]
    name = RESULT_NAMES.get(code)
    return _CAMEL.sub(" ", name).lower() if name is not None else "unknown"


_TEXTS = {code: _zeek(code) for code in (*RESULT_NAMES, *_ZEEK_TEXT)}


def result_text(code: int) -> str:
    """Zeek's ldap.log text of a result code (`invalid credentials`), `unknown` for unknown codes (as Zeek)."""
    return _TEXTS.get(code, "unknown")
