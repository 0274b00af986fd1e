"""The `ansible` marker: `pytest -m ansible` selects the role's tests (they also run in the default suite)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker so that `-m ansible` works under --strict-markers too."""
    config.addinivalue_line("markers", "ansible: the Ansible role and playbooks, tested on a debootstrap Debian root")
