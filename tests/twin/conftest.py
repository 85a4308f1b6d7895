"""Fixtures for the twin's model and API tests (helpers live in twin_support.py)."""

from __future__ import annotations

import pytest

from twin_support import E2E_SCALE, FIXTURES, Api, Harness, emulator


@pytest.fixture
def twin() -> Harness:
    return Harness(FIXTURES / "unit.yaml")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """One `ccharness emulator` on fixtures/e2e.yaml at E2E_SCALE per test module."""
    with emulator(tmp_path_factory.mktemp("e2e"), FIXTURES / "e2e.yaml", E2E_SCALE) as (endpoints, _):
        yield endpoints


@pytest.fixture
def api(live):
    """An admin API client on the module's twin, reset before each test."""
    client = Api(live)
    assert client.request("POST", "/twin/v1/reset").status_code == 200
    yield client
    client.close()
