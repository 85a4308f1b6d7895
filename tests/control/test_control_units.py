"""Unit tests of the controller's pure parts: states, journal, figures, guards, rollback."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from harness.control.aggregator import CallWindow
from harness.control.guards import check_window, check_wfm
from harness.control.hypothesis import GuardrailMonitor, evaluate
from harness.control.journal import Journal, is_unresolved, read_journal, unresolved_journals
from harness.control.rollback import Restorer, differences, saved_trunk
from harness.control.states import TRANSITIONS, State, StateMachine
from harness.errors import GuardError, PlatformError
from harness.experiment.schema import Guardrail, Hypothesis, Metric, Window


def rec(outcome, ended_at, setup=0.5, code=None):
    codes = {"answered": 200, "408": 408, "487": 487, "488": 488, "403": 403}
    return {"outcome": outcome, "code": code or codes.get(outcome, 500), "ended_at": ended_at,
            "setup_seconds": setup}


def test_every_state_is_in_the_table_and_final_states_have_no_exit():
    assert set(TRANSITIONS) == set(State)
    assert not TRANSITIONS[State.DONE] and not TRANSITIONS[State.ABORTED]
    for state in State:
        if state not in (State.DONE, State.ABORTED, State.IDLE):
            assert State.ROLLING_BACK in TRANSITIONS[state] or state in (State.ROLLING_BACK, State.RECOVERING)


def test_state_machine_refuses_illegal_transition_and_reports_legal_ones():
    seen = []
    sm = StateMachine(lambda old, new, why: seen.append((old.value, new.value)))
    sm.go(State.BASELINE)
    with pytest.raises(RuntimeError):
        sm.go(State.HOLDING)
    sm.go(State.INJECTING)
    assert seen == [("idle", "baseline"), ("baseline", "injecting")]


def test_journal_is_append_only_and_survives_a_torn_last_line(tmp_path):
    path = tmp_path / "run1" / "journal.jsonl"
    with Journal(path) as j:
        j.write("start", experiment="x")
        j.write("saved", target="trunk:1", original={"status": "Active"})
    with open(path, "a") as f:
        f.write('{"type": "change", "tar')       # killed mid-write
    records = read_journal(path)
    assert [r["type"] for r in records] == ["start", "saved"]
    assert is_unresolved(records)
    assert list(unresolved_journals(tmp_path)) == [path]
    with Journal(path) as j:
        j.write("resolved")
    assert not is_unresolved(read_journal(path))


def test_window_figures_rates_and_percentile():
    w = CallWindow(window_s=10)
    w.add([rec("answered", 100 + i, setup=0.1 * (i + 1)) for i in range(8)])
    w.add([rec("488", 105), rec("403", 106)])
    w.add(rec("answered", 50))                    # outside the window
    fig = w.figures(now=109.5)
    assert fig.calls == 10 and fig.answered == 8
    assert fig.answer_ratio == pytest.approx(0.8)
    assert fig.rate("488") == pytest.approx(0.1) and fig.rate("403") == pytest.approx(0.1)
    assert fig.setup_percentile(50) == pytest.approx(0.5)


def test_hypothesis_checks_and_not_measured_without_calls():
    h = Hypothesis(min_calls=5, answer_ratio_min=0.9, rate_488_max=0.0)
    w = CallWindow(10)
    assert all(c.ok is None for c in evaluate(h, w.figures(100), "before"))
    w.add([rec("answered", 91 + i) for i in range(9)] + [rec("488", 99)])
    checks = {c.name: c for c in evaluate(h, w.figures(100), "during")}
    assert checks["answer_ratio"].ok is True
    assert checks["rate_488"].ok is False and checks["rate_488"].value == pytest.approx(0.1)


def test_guardrail_needs_consecutive_breaches():
    g = GuardrailMonitor((Guardrail(Metric.RATE_403, None, 0.2, consecutive=3),), min_calls=1)
    bad, good = CallWindow(10), CallWindow(10)
    bad.add([rec("403", 100), rec("answered", 100)])
    good.add([rec("answered", 100)])
    assert g.observe(bad.figures(100)) is None
    assert g.observe(bad.figures(100)) is None
    assert g.observe(good.figures(100)) is None     # streak broken
    assert g.observe(bad.figures(100)) is None
    assert g.observe(bad.figures(100)) is None
    assert g.observe(bad.figures(100)).metric is Metric.RATE_403


def test_injection_window_refuses_outside():
    past = Window(start=datetime(2020, 1, 1, tzinfo=timezone.utc), end=datetime(2020, 1, 2, tzinfo=timezone.utc))
    with pytest.raises(GuardError, match="closes"):
        check_window(past, now=datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp(), planned_s=10)
    future = Window(start=datetime(2099, 1, 1, tzinfo=timezone.utc))
    with pytest.raises(GuardError, match="opens"):
        check_window(future, now=0.0, planned_s=10)
    check_window(Window(), now=0.0, planned_s=10)


def test_wfm_refuses_thin_schedule():
    intervals = [{"start": 0, "end": 100, "agentsScheduled": 10}, {"start": 100, "end": 200, "agentsScheduled": 2}]
    assert check_wfm(intervals, 10, 90, 5, "Q") == 10
    with pytest.raises(GuardError, match="2 agents"):
        check_wfm(intervals, 10, 150, 5, "Q")


class FakeTrunks:
    """A platform whose trunk update fails ``fail`` times, then works."""

    def __init__(self, current, fail=0):
        self.current, self.fail = dict(current), fail
        self.updates = []
        self.endpoints = {"update_trunk": type("E", (), {"method": "PATCH", "path": "/t/{id}"})()}
        self.conn = type("C", (), {"base_url": "http://x"})()

    def update_trunk(self, trunk_id, body, essential=False):
        assert essential, "rollback calls must not be starved by the API budget"
        self.updates.append(body)
        if self.fail:
            self.fail -= 1
            raise PlatformError("503", status=503, retryable=True)
        self.current.update(body)
        self.current["version"] = self.current.get("version", 1) + 1

    def get_trunk(self, trunk_id, essential=False):
        return dict(self.current)


ORIGINAL = {"id": "t1", "name": "Chaos_T", "status": "Active", "capacity": {"throttlePercentage": 100},
            "version": 1}


def test_restore_retries_then_verifies_by_rereading(tmp_path):
    platform = FakeTrunks({**ORIGINAL, "status": "Inactive", "version": 3}, fail=2)
    with Journal(tmp_path / "j.jsonl") as j:
        remaining = Restorer(platform, j, None, attempts=4, sleep=lambda s: None).restore_all(
            [saved_trunk("genesys", "t1", ORIGINAL)])
    assert remaining == []
    assert differences(ORIGINAL, platform.current) == []
    types = [r["type"] for r in read_journal(tmp_path / "j.jsonl")]
    assert types.count("rollback_retry") == 2 and types[-1] == "restored"


def test_failed_restore_names_target_and_how_to_undo(tmp_path):
    platform = FakeTrunks({**ORIGINAL, "status": "Inactive"}, fail=99)
    remaining = Restorer(platform, None, None, attempts=2, sleep=lambda s: None,
                         journal_path="runs/x/journal.jsonl").restore_all([saved_trunk("genesys", "t1", ORIGINAL)])
    assert len(remaining) == 1
    assert remaining[0]["name"] == "Chaos_T"
    assert "ccharness rollback --journal runs/x/journal.jsonl" in remaining[0]["undo"]
    assert "PATCH http://x/t/t1" in remaining[0]["undo"]


def test_rollback_stack_is_lifo(tmp_path):
    order = []

    class Recording(FakeTrunks):
        def update_trunk(self, trunk_id, body, essential=False):
            order.append(trunk_id)
            super().update_trunk(trunk_id, body, essential)
    platform = Recording(ORIGINAL)
    stack = [saved_trunk("genesys", t, ORIGINAL) for t in ("a", "b", "c")]
    Restorer(platform, None, None, sleep=lambda s: None).restore_all(stack)
    assert order == ["c", "b", "a"]


def test_without_an_event_stream_rollback_is_verified_by_queue_stats():
    platform = FakeTrunks({**ORIGINAL, "status": "Inactive"})
    answers = iter([{"converged": False, "evidence": "wait 40s"}, {"converged": True, "evidence": "ok"}])
    remaining = Restorer(platform, None, None, attempts=3, sleep=lambda s: None,
                         queue_check=lambda: next(answers)).restore_all([saved_trunk("genesys", "t1", ORIGINAL)])
    assert remaining == [] and len(platform.updates) == 2
