"""Filter `otwatch_bcrypt_users`: bcrypt hashes for web-config.yml that stay the same while the passwords do.

A new hash gets a random salt, so hashing again on every run would rewrite web-config.yml and restart the service
each time. Instead the hash already on the box is kept when its password still matches it (bcrypt.checkpw); only a
new user or a changed password gets a new hash. Runs on the controller and needs the `bcrypt` package there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

BCRYPT_MAX_BYTES = 72


def _bcrypt() -> Any:
    try:
        import bcrypt
    except ImportError as exc:
        raise AnsibleFilterError(
            "otwatch_bcrypt_users needs the Python package `bcrypt` on the controller "
            "(pip install bcrypt, in the environment that runs ansible-playbook)"
        ) from exc
    return bcrypt


def _still_valid(bcrypt: Any, password: bytes, previous: object) -> bool:
    """True when `previous` is a bcrypt hash of `password`."""
    if not isinstance(previous, str) or not previous.startswith(("$2a$", "$2b$", "$2y$")):
        return False
    try:
        return bool(bcrypt.checkpw(password, previous.encode()))
    except ValueError:  # not a well-formed hash: make a new one
        return False


def otwatch_bcrypt_users(users: Mapping[str, Any], previous: Mapping[str, Any] | None = None, rounds: int = 12) -> dict:
    """Map each user to a bcrypt hash of its password, keeping the previous hash while it still matches."""
    if not isinstance(users, Mapping):
        raise AnsibleFilterError(f"otwatch_web_basic_auth_users must be a mapping of user to password, not {users!r}")
    bcrypt = _bcrypt()
    previous = previous if isinstance(previous, Mapping) else {}
    hashed: dict[str, str] = {}
    for user, password in users.items():
        secret = str(password).encode()
        if not secret or len(secret) > BCRYPT_MAX_BYTES:
            raise AnsibleFilterError(
                f"otwatch_web_basic_auth_users.{user}: the password must be 1 to {BCRYPT_MAX_BYTES} bytes (bcrypt)"
            )
        old = previous.get(str(user))
        if _still_valid(bcrypt, secret, old):
            hashed[str(user)] = str(old)
        else:
            hashed[str(user)] = bcrypt.hashpw(secret, bcrypt.gensalt(rounds=int(rounds))).decode()
    return hashed


class FilterModule:
    """The otwatch role's filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        """Name to function."""
        return {"otwatch_bcrypt_users": otwatch_bcrypt_users}
