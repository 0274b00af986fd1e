"""Fixtures of the sink tests: the repository root on sys.path (for `tests.*` helpers), a PKI, mosquitto."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:  # this folder has no __init__.py (as tests/export): the root is not added for us
    sys.path.insert(0, str(ROOT))

from tests.mqttkit import Mosquitto, Pki, make_pki  # noqa: E402


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def mosquitto(tmp_path: Path, pki: Pki) -> Iterator[Mosquitto]:
    """mosquitto on 127.0.0.1 (a plain anonymous listener, a TLS listener with client certificate and password)."""
    broker = Mosquitto(tmp_path, pki)
    broker.start()
    yield broker
    broker.stop()
