"""Fixtures for the twin's model and API tests (helpers live in twin_support.py)."""

from __future__ import annotations

import pytest

from twin_support import FIXTURES, Harness


@pytest.fixture
def twin() -> Harness:
    return Harness(FIXTURES / "unit.yaml")
