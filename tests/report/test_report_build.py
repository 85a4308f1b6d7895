"""rebuild / ccharness report on the failover_genesys fixture run directory."""

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import main
from harness.report.build import rebuild

FIX = Path(__file__).parents[1] / "metrics" / "fixtures" / "failover_genesys"


@pytest.fixture
def run_dir(tmp_path):
    for f in FIX.iterdir():
        shutil.copy(f, tmp_path)
    return tmp_path


def test_summary_gets_derived_fields_and_keeps_the_controllers(run_dir):
    rebuild(run_dir)
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["verdict"] == "held" and s["experiment"] == "trunk-failover-genesys"
    assert s["calls_by_code"] == {"200": 98, "408": 2, "487": 1, "503": 19}
    assert s["license_rejections"] == 0
    assert s["mttr"] == {"detect_s": 2.1, "converge_s": 20.0, "mttr_s": 21.5,
                         "recover_s": 25.0, "analytics_mttr_s": 125.0}
    assert s["ground_truth"] == {"mttr_s": 21.45, "difference_s": 0.05}  # from ground_truth.json
    m = s["measurements"]
    assert m["mttr_source"] == "answer events" and m["trunk_id"] == "trunk-primary"
    assert m["setup_seconds"]["408"]["p99"] == 32.0
    assert s["journal"] == "journal.jsonl" and s["report"] == "report.html"


def test_mttr_falls_back_to_records_without_events(run_dir):
    (run_dir / "events.jsonl").unlink()
    s = rebuild(run_dir)
    assert s["mttr"]["mttr_s"] == 21.52
    assert s["mttr"]["converge_s"] is None
    assert s["measurements"]["mttr_source"] == "call records"


def test_outcome_plot_falls_back_to_events_without_records(run_dir):
    from harness.report.derive import derive
    (run_dir / "calls.jsonl").unlink()
    d = derive(run_dir)
    assert d.plot_stats.calls_by_code() == {"200": 41}  # the fixture's answer events
    assert d.extra["outcomes_source"] == "platform events"
    rebuild(run_dir)
    assert "platform events (no call records)" in (run_dir / "report.html").read_text()


def test_api_only_run_says_mttr_was_not_measured(run_dir):
    (run_dir / "calls.jsonl").write_text("")  # the recorder leaves an empty file
    (run_dir / "events.jsonl").write_text(json.dumps(
        {"type": "failover", "timestamp": 1764770020.0, "fromTrunkId": "trunk-primary"}) + "\n")
    s = rebuild(run_dir)
    assert s["mttr"]["converge_s"] == 20.0
    page = (run_dir / "report.html").read_text()
    assert "No calls were placed during this run (API-only)" in page


def test_rebuild_is_idempotent(run_dir):
    first = rebuild(run_dir)
    second = rebuild(run_dir)
    assert first == second


def test_junit_has_a_case_per_check_and_the_run(run_dir):
    rebuild(run_dir)
    suite = ET.parse(run_dir / "junit.xml").getroot().find("testsuite")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert list(cases) == ["answer_ratio (before)", "rate_408 (during)", "answer_ratio (after)",
                           "failover", "run completed and rolled back"]
    assert suite.get("failures") == "0" and suite.get("skipped") == "1"
    assert cases["answer_ratio (after)"].find("skipped") is not None  # ok None: not measured
    assert cases["answer_ratio (before)"].find("system-out").text == "value=0.983 min 0.9; 60 calls"


def test_junit_marks_failed_checks_and_broken_runs(run_dir):
    s = json.loads((run_dir / "summary.json").read_text())
    s.update(verdict="rollback_failed", reason="trunk still Degraded",
             remaining_changes=[{"name": "Primary", "target": "trunk:P", "problem": "status Degraded",
                                 "undo": "PATCH status Active"}])
    s["hypothesis"][1]["ok"] = False
    s["guardrails"] = [{"name": "408 ratio", "ok": False, "value": 0.7, "expected": "<= 0.5"}]
    (run_dir / "summary.json").write_text(json.dumps(s))
    rebuild(run_dir)
    suite = ET.parse(run_dir / "junit.xml").getroot().find("testsuite")
    failed = [c.get("name") for c in suite.findall("testcase") if c.find("failure") is not None]
    assert failed == ["rate_408 (during)", "408 ratio", "run completed and rolled back"]
    guard = [c for c in suite.findall("testcase") if c.get("name") == "408 ratio"][0]
    assert guard.find("failure").text == "value=0.7; expected=<= 0.5"
    page = (run_dir / "report.html").read_text()
    assert "Rollback could not be verified" in page and "STILL CHANGED: Primary" in page


def test_controller_figures_survive_when_files_are_missing(run_dir):
    (run_dir / "calls.jsonl").unlink()
    (run_dir / "events.jsonl").unlink()
    (run_dir / "ground_truth.json").unlink()
    s = rebuild(run_dir)
    assert s["calls_by_code"] == {"200": 98, "408": 2, "487": 1, "503": 19}
    assert s["mttr"]["mttr_s"] == 21.51  # the controller's, nothing to recompute it from
    assert s["ground_truth"] == {"mttr_s": 21.46, "difference_s": 0.05}


def test_junit_case_names_are_unique(run_dir):
    s = json.loads((run_dir / "summary.json").read_text())
    s["convergence"] = [{"expect": "reflected", "converged": True, "step": 1},
                        {"expect": "reflected", "converged": True, "step": 2},
                        {"expect": "failover", "converged": False, "evidence": "no event in 40 s"},
                        {"expect": "failover", "converged": True}]
    (run_dir / "summary.json").write_text(json.dumps(s))
    rebuild(run_dir)
    suite = ET.parse(run_dir / "junit.xml").getroot().find("testsuite")
    names = [c.get("name") for c in suite.findall("testcase") if c.get("classname") == "ccharness.convergence"]
    assert names == ["reflected (step 1)", "reflected (step 2)", "failover", "failover #2"]
    assert suite.get("failures") == "1"


def test_cli_rebuilds_report(run_dir, capsys):
    (run_dir / "summary.json").unlink()
    assert main(["report", str(run_dir)]) == 0
    assert "MTTR 21.5 s (analytics 125.0 s)" in capsys.readouterr().out
    for name in ("summary.json", "junit.xml", "report.html"):
        assert (run_dir / name).stat().st_size > 0
    # without the controller's summary there is no verdict, and CI must not go green
    suite = ET.parse(run_dir / "junit.xml").getroot().find("testsuite")
    assert suite.get("failures") == "1"


def test_cli_refuses_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a run directory" in err and "Traceback" not in err
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_cli_refuses_a_corrupt_summary(run_dir, capsys):
    (run_dir / "summary.json").write_text("{not json")
    assert main(["report", str(run_dir)]) == 2
    assert "unreadable summary" in capsys.readouterr().err


@pytest.mark.parametrize("opts", [["--window", "0"], ["--band", "1.5"], ["--baseline", "-3"]])
def test_cli_refuses_bad_options(run_dir, capsys, opts):
    assert main(["report", str(run_dir), *opts]) == 2
    assert "must be" in capsys.readouterr().err
