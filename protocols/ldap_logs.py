"""Zeek's LDAP-side detail logs from ldap.jsonl rows: ldap_search, and ntlm for NTLM binds.

`log_rows(row)` takes one row of ldap.jsonl (the JSONL writer's event row) and returns:
- ldap_search (`ts uid id message_id scope deref_aliases base_object result_count result diagnostic_message
  filter attributes`, Zeek 6's columns): one row per search, from its searchResDone (which carries the request's
  fields and the entry count), or from the close-time notice of a search never finished (as Zeek's finalize hook
  logs pending searches). ts is the searchRequest's time.
- ntlm (Zeek's ntlm.log columns): one row per NTLM authentication inside a SASL GSS-SPNEGO or Sicily bind, from
  the bind response that ends it.
ldap.jsonl itself carries ldap.log's columns (message_id version opcode result diagnostic_message object
argument) on every message event, so no `ldap` detail row is made.
"""

from __future__ import annotations

from typing import Any

from protocols.smb_logs import NTLM_COLUMNS, zeek_row

__all__ = ["DETAIL_LOGS", "log_rows"]

DETAIL_LOGS = ("ldap_search", "ntlm")
_SEARCH = ("message_id", "scope", "deref_aliases", "base_object", "result_count", "result", "diagnostic_message",
           "filter", "attributes")  # fmt: skip


def _row(row: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    return zeek_row(row, row.get("request_ts", row.get("ts")), columns)


def log_rows(row: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Zeek's LDAP detail rows (log name, row) for one ldap.jsonl row; [] when Zeek writes none for it."""
    op = row.get("op")
    kind = row.get("kind")
    if op == "search_result_done" and (kind == "response" or kind == "exception"):
        return [("ldap_search", _row(row, _SEARCH))]
    if op == "search" and kind == "notice":
        return [("ldap_search", _row(row, _SEARCH))]
    if op == "bind" and kind != "request" and row.get("auth") == "ntlm" and ("success" in row or kind == "notice"):
        return [("ntlm", _row(row, NTLM_COLUMNS))]
    return []
