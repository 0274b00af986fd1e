"""Secret files (passwords, tokens) read once at start, and error text that names the cause, never the secret."""

from __future__ import annotations

from pathlib import Path


def why(exc: BaseException) -> str:
    """What went wrong, in a few words: the OS error's text, else the exception's."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def read_secret_file(path: Path, key: str, error: type[Exception], *, one_line: bool = False) -> str:
    """The text of a secret file (trailing newline removed); `error` naming the config `key` if it cannot be used:
    unreadable, not UTF-8, empty, or (with `one_line`) more than one line."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error(f"{key}: cannot read {path}: {why(exc)}") from None
    try:
        secret = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise error(f"{key}: {path} is not UTF-8 text") from None
    if not secret:
        raise error(f"{key}: {path} is empty")
    if one_line and ("\n" in secret or "\r" in secret):
        raise error(f"{key}: {path} holds more than one line")
    return secret
