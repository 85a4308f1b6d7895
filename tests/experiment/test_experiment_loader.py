"""Valid experiments load into frozen typed objects; ramps expand; shipped files validate."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness.cli import main
from harness.experiment.loader import load_experiment
from harness.experiment.schema import Api, Expect, FaultKind, PlatformName

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "experiments").glob("*.yaml"))
MINIMAL = Path(__file__).parent / "fixtures" / "good" / "minimal.yaml"


def test_minimal_loads_into_frozen_typed_objects():
    exp = load_experiment(MINIMAL)
    assert exp.platform.name is PlatformName.GENESYS and exp.platform.api is Api.GENESYS
    assert exp.method.steps[0].kind is FaultKind.TRUNK
    assert exp.convergence.expect == (Expect.CONFIG_APPLIED,)
    assert exp.load is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        exp.name = "other"  # type: ignore[misc]


def test_credentials_hold_where_the_secret_is_not_the_secret():
    creds = load_experiment(MINIMAL).platform.credentials
    assert creds.client_secret_env == "CCH_SECRET"
    assert not hasattr(creds, "client_secret")


def test_shipped_experiments_exist_for_each_scenario():
    names = {p.stem for p in SHIPPED}
    assert {"genesys-trunk-failover", "cxone-health-failover", "codec-mismatch-failover",
            "license-ceiling", "sip-timer-switchover"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_experiment_validates(path, capsys):
    assert main(["validate", str(path)]) == 0
    assert "valid" in capsys.readouterr().out


def test_ramp_expands_into_steps_in_time_order():
    exp = load_experiment(ROOT / "experiments" / "cxone-health-failover.yaml")
    ramp = [s for s in exp.method.steps if s.note.startswith("ramp")]
    assert [s.body["healthScore"] for s in ramp] == [78, 62, 45]
    assert [s.at_s for s in ramp] == [0.0, 1.0, 2.0]


def test_nested_ramp_field(tmp_path):
    text = MINIMAL.read_text().replace(
        "set: {status: Degraded}",
        "ramp: {field: capacity.throttlePercentage, from: 100, to: 10, steps: 3, every_seconds: 2}")
    path = tmp_path / "ramp.yaml"
    path.write_text(text)
    steps = load_experiment(path).method.steps
    assert [s.body for s in steps] == [{"capacity": {"throttlePercentage": 70.0}},
                                       {"capacity": {"throttlePercentage": 40.0}},
                                       {"capacity": {"throttlePercentage": 10.0}}]
    assert [s.at_s for s in steps] == [0.0, 2.0, 4.0]


def test_prefix_may_be_a_list(tmp_path):
    text = MINIMAL.read_text().replace("name_prefix: Chaos_", "name_prefix: [Chaos_, DR_]")
    path = tmp_path / "p.yaml"
    path.write_text(text)
    assert load_experiment(path).blast_radius.name_prefixes == ("Chaos_", "DR_")
