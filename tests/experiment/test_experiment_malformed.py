"""Each malformed experiment under fixtures/bad gives exit 2 and names file, line and key.

The first line of each fixture states what the message must contain:
``# expect: line=N key=K message=TEXT`` (key may be empty when no key applies).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import ExperimentError
from harness.experiment.loader import load_experiment

BAD = sorted((Path(__file__).parent / "fixtures" / "bad").glob("*.yaml"))


def expectation(path: Path) -> tuple[int, str, str]:
    m = re.match(r"# expect: line=(\d+) key=(.*?) message=(.+)", path.read_text().splitlines()[0])
    assert m, f"{path.name} lacks its expectation header"
    return int(m.group(1)), m.group(2), m.group(3).strip()


def test_there_are_at_least_15_kinds():
    assert len(BAD) >= 15


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_malformed_experiment_names_file_line_and_key(path, capsys):
    line, key, message = expectation(path)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, "one line, no traceback"
    assert f"{path}:{line}: " in err
    if key:
        assert f":{line}: {key}: " in err
    assert message in err


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_error_object_carries_location(path):
    line, key, _ = expectation(path)
    with pytest.raises(ExperimentError) as info:
        load_experiment(path)
    assert info.value.path == str(path)
    assert info.value.line == line
    assert info.value.key == (key or None)
    assert info.value.exit_code == 2


def test_missing_file_is_exit_2(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml" in capsys.readouterr().err
