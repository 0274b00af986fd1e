"""Zeek's SMB-side logs from smb.jsonl rows: ntlm, smb_mapping and smb_files.

`log_rows(row)` takes one row of smb.jsonl (the JSONL writer's event row: base columns and the event's fields,
nested ones dotted) and returns the rows Zeek would write for it, in Zeek's column order, unset columns left out:
- ntlm (`ts uid id username hostname domainname server_nb_computer_name server_dns_computer_name
  server_tree_name success`): one row per NTLM authentication, from the SESSION_SETUP response that ends it
  (`auth` ntlm and `success` set), or from the close-time notice of an AUTHENTICATE never answered (no success).
  ts is the AUTHENTICATE's time.
- smb_mapping (`ts uid id path service native_file_system share_type`): one row per successful tree connect
  (SMB2 TREE_CONNECT, SMB1 TREE_CONNECT_ANDX), ts the request's.
- smb_files (`ts uid id action path name size times.modified times.accessed times.created times.changed`): one
  SMB::FILE_OPEN row per successful CREATE (path is the tree's path, as in Zeek), ts the response's.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DETAIL_LOGS", "NTLM_COLUMNS", "log_rows", "zeek_row"]

Row = dict[str, Any]
DETAIL_LOGS = ("ntlm", "smb_mapping", "smb_files")
_ID = ("uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p")
NTLM_COLUMNS = ("username", "hostname", "domainname", "server_nb_computer_name", "server_dns_computer_name",
         "server_tree_name", "success")  # fmt: skip
_MAPPING = ("path", "service", "native_file_system", "share_type")
_FILES = ("path", "name", "size", "times.modified", "times.accessed", "times.created", "times.changed")


def zeek_row(row: Row, ts: Any, columns: tuple[str, ...], extra: dict[str, Any] | None = None) -> Row:
    """A Zeek detail row: ts, the connection id, `extra`, then `columns` from an event row (unset ones left out)."""
    out: Row = {"ts": ts}
    for key in _ID:
        value = row.get(key)
        if value is not None:
            out[key] = value
    if extra:
        out.update(extra)
    for key in columns:
        value = row.get(key)
        if value is not None:
            out[key] = value
    return out


def log_rows(row: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Zeek's SMB detail rows (log name, row) for one smb.jsonl row; [] when Zeek writes none for it."""
    op = row.get("op")
    kind = row.get("kind")
    if kind == "request" or kind == "weird":
        return []
    if op == "session_setup" or op == "session_setup_andx":
        if row.get("auth") != "ntlm" or ("success" not in row and kind != "notice"):
            return []
        return [("ntlm", zeek_row(row, row.get("request_ts", row.get("ts")), NTLM_COLUMNS))]
    if kind != "response":
        return []
    if op == "tree_connect" or op == "tree_connect_andx":
        if row.get("status") != "STATUS_SUCCESS" or "path" not in row:
            return []
        return [("smb_mapping", zeek_row(row, row.get("request_ts", row.get("ts")), _MAPPING))]
    if op == "create" and row.get("status") == "STATUS_SUCCESS":
        out = zeek_row(row, row.get("ts"), (), {"action": "SMB::FILE_OPEN"})
        tree = row.get("tree")
        if tree is not None:
            out["path"] = tree
        for key in _FILES[1:]:
            value = row.get(key)
            if value is not None:
                out[key] = value
        return [("smb_files", out)]
    return []
