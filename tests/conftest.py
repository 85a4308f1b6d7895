"""Shared fixtures.

Real peers (SIPp, Prometheus, Chromium) are found on PATH. Outside CI a test that
needs a missing one is skipped; with CI=true it fails, because CI installs them and
a silent skip would hide a broken install step.
"""

from __future__ import annotations

import os
import shutil
import socket

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(name: str) -> str:
    """Path of ``name`` on PATH; skip (locally) or fail (CI) when it is missing."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed (apt-get install -y sip-tester prometheus chromium docker-compose)"
    if IN_CI:
        pytest.fail(message + "; CI must have it", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def sipp_bin() -> str:
    return require_tool("sipp")


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    return require_tool("prometheus")


@pytest.fixture(scope="session")
def promtool_bin() -> str:
    return require_tool("promtool")


@pytest.fixture(scope="session")
def chromium_bin() -> str:
    return require_tool("chromium")


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port that is free on 127.0.0.1 right now (for UDP by default)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
