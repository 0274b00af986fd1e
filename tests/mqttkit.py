"""Shared helpers of the broker tests (no tests here): a throwaway PKI, mosquitto on 127.0.0.1, paho "cameras".

The PKI (a CA, a server certificate for 127.0.0.1, a client certificate, EC P-256, valid two days) is made with the
openssl CLI. mosquitto runs in the foreground on free ports with a plain listener (anonymous) and a TLS listener
(client certificate and USER/PASSWORD from a file made by `mosquitto_passwd`), `log_dest topic` and
`sys_interval 1`; it is stopped by its PID. Waits poll with deadlines; nothing sleeps a fixed time.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.test_run_live import can_connect, free_port
from tests.test_run_live import wait_for as _wait_for

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
ROOT = Path(__file__).resolve().parents[1]
for _tool in (MOSQUITTO, MOSQUITTO_PASSWD, OPENSSL):
    assert Path(_tool).exists(), f"{_tool} is missing: `make test` installs mosquitto (and openssl comes with Debian)"
USER, PASSWORD = "otwatch", "Br0ker-s3cret!"
WAIT = 15.0
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01" + bytes(range(256)) * 8 + b"\xff\xd9"


def wait_for(condition: Callable[[], bool], what: str, limit: float = WAIT) -> None:
    """Poll a condition until it holds (bounded; the broker tests' own default limit)."""
    _wait_for(condition, what, limit)


@dataclass(frozen=True)
class Pki:
    """A throwaway CA with a server certificate for 127.0.0.1 and a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_key_encrypted: Path  # the client key under the passphrase "x"


def _openssl(folder: Path, *args: str) -> None:
    subprocess.run([OPENSSL, *args], cwd=folder, check=True, capture_output=True, timeout=30)


def make_pki(folder: Path) -> Pki:
    """Make the CA and both certificates with the openssl CLI (EC P-256 keys, valid two days)."""
    folder.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(folder, "req", "-x509", "-new", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=otwatch test CA")  # fmt: skip
    for name, serial, ext in [
        ("server", "2", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
        ("client", "3", "extendedKeyUsage=clientAuth\n"),
    ]:
        (folder / f"{name}.ext").write_text("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n" + ext)
        _openssl(folder, "req", "-new", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        _openssl(folder, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial",
                 serial, "-days", "2", "-out", f"{name}.pem", "-extfile", f"{name}.ext")  # fmt: skip
    _openssl(folder, "pkey", "-in", "client.key", "-aes256", "-passout", "pass:x", "-out", "client-enc.key")
    return Pki(folder / "ca.pem", folder / "server.pem", folder / "server.key", folder / "client.pem",
               folder / "client.key", folder / "client-enc.key")  # fmt: skip


def password_file(folder: Path) -> Path:
    """A mosquitto password file with USER/PASSWORD, made by mosquitto_passwd."""
    path = folder / "passwd"
    subprocess.run([MOSQUITTO_PASSWD, "-c", "-b", str(path), USER, PASSWORD], check=True, capture_output=True)
    return path


class Mosquitto:
    """mosquitto on 127.0.0.1: `plain` (anonymous) and `tls` (client certificate and USER/PASSWORD) listeners."""

    def __init__(self, folder: Path, pki: Pki) -> None:
        self.folder = folder
        self.plain, self.tls = free_port(), free_port()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            "per_listener_settings true\nuser root\n"
            "log_dest topic\n"
            f"log_dest file {folder / 'mosquitto.log'}\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\nlog_type subscribe\n"
            "sys_interval 1\n"
            f"listener {self.plain} 127.0.0.1\nallow_anonymous true\n"
            f"listener {self.tls} 127.0.0.1\nallow_anonymous false\npassword_file {password_file(folder)}\n"
            f"cafile {pki.ca}\ncertfile {pki.server_cert}\nkeyfile {pki.server_key}\nrequire_certificate true\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start in the foreground and wait until both listeners accept connections."""
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)  # fmt: skip
        proc = self.proc
        wait_for(lambda: proc.poll() is None and can_connect(self.plain) and can_connect(self.tls), "mosquitto")

    def kill(self) -> None:
        """SIGKILL, as a crash: no goodbye to anyone."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=WAIT)

    def stop(self) -> None:
        """Stop it if it still runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=WAIT)


class Camera:
    """A paho-mqtt client bound to its own loopback address (the broker sees it come from there)."""

    def __init__(self, client_id: str, address: str, port: int, *, v5: bool = False, username: str | None = None,
                 will: tuple[str, bytes] | None = None) -> None:  # fmt: skip
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)  # fmt: skip
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.messages: list[tuple[str, bytes]] = []
        self.seen = threading.Condition()
        self.client.on_connect = lambda *a: self.connected.set()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        if username:
            self.client.username_pw_set(username)
        if will:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.client.connect("127.0.0.1", port, keepalive=60, bind_address=address)
        self.client.loop_start()
        assert self.connected.wait(WAIT), f"{client_id} could not connect"

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.seen:
            self.messages.append((msg.topic, bytes(msg.payload)))
            self.seen.notify_all()

    def subscribe(self, topic: str) -> None:
        """Subscribe with QoS 1 and wait for the SUBACK."""
        self.subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self.subscribed.wait(WAIT), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish with QoS 1 and wait for the broker's PUBACK."""
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(WAIT)

    def wait_message(self, wanted: Callable[[str, bytes], bool], what: str) -> None:
        """Wait (bounded) for a message matching `wanted`."""
        with self.seen:
            assert self.seen.wait_for(lambda: any(wanted(t, p) for t, p in self.messages), WAIT), what

    def leave(self) -> None:
        """Disconnect cleanly (DISCONNECT: no will)."""
        self.client.disconnect()
        self.client.loop_stop()

    def die(self) -> None:
        """Drop the TCP connection without DISCONNECT: the broker publishes the will."""
        self.client.loop_stop()
        sock = self.client.socket()
        assert isinstance(sock, socket.socket)
        sock.close()
