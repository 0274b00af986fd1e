"""Secrets and TLS of the sinks, read once at start: errors name the config key, never the secret."""

from __future__ import annotations

import ssl
from pathlib import Path

from appliance.export.sinks.base import SinkSetupError
from appliance.export.sinks.settings import TlsSettings
from appliance.secret_file import read_secret_file
from appliance.secret_file import why as _why


class _EncryptedKey(Exception):
    pass


def _no_passphrase() -> str:
    raise _EncryptedKey


def read_secret(path: Path, key: str) -> str:
    """The first line of a secret file (trailing newline removed); SinkSetupError names `key` if it cannot be used."""
    return read_secret_file(path, key, SinkSetupError, one_line=True)


def tls_context(tls: TlsSettings, key: str) -> ssl.SSLContext:
    """A client TLS context that verifies the receiver (unless told not to); `key` prefixes error messages."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the certificate and the host name
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.ca_file is None:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        try:
            ctx.load_verify_locations(cafile=str(tls.ca_file))
        except (OSError, ValueError, ssl.SSLError) as exc:
            raise SinkSetupError(f"{key}.ca_file: cannot use {tls.ca_file} as a CA file: {_why(exc)}") from None
    if tls.cert_file is not None:
        which = f"{key}.key_file" if tls.key_file is not None else f"{key}.cert_file"
        for name, path in ((f"{key}.cert_file", tls.cert_file), (f"{key}.key_file", tls.key_file)):
            if path is not None and not path.is_file():
                raise SinkSetupError(f"{name}: {path} is not a readable file")
        try:
            ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None, _no_passphrase)
        except _EncryptedKey:
            raise SinkSetupError(f"{which}: the key is encrypted; give an unencrypted key file") from None
        except (OSError, ValueError, ssl.SSLError) as exc:
            raise SinkSetupError(f"{which}: cannot use the client certificate and key: {_why(exc)}") from None
    if tls.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx
