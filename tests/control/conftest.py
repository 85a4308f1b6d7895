"""Fixtures shared by the controller tests that run against the real twin."""

from __future__ import annotations

import pytest

from control_twinutil import Admin, running_twin


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    """One `ccharness emulator` per test module (endpoints dict)."""
    with running_twin(tmp_path_factory.mktemp("twin")) as ep:
        yield ep


@pytest.fixture
def admin(twin):
    """An admin client on the module's twin, reset to its topology before each test."""
    a = Admin(twin)
    a.reset()
    yield a
    a.close()
