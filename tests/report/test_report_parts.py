"""Timeline from the journal; streaming aggregation of calls."""

import random

import pytest

from harness.report.aggregate import LogHistogram, aggregate
from harness.report.timeline import read_timeline


def test_injection_is_first_change_while_injecting_not_the_rollback():
    tl = read_timeline([
        {"type": "start", "at": 1.0},
        {"type": "transition", "at": 2.0, "from": "idle", "to": "baseline"},
        {"type": "change", "at": 2.5, "target": "trunk:T", "body": {"x": 1}},  # not injecting yet
        {"type": "transition", "at": 3.0, "from": "baseline", "to": "injecting"},
        {"type": "change", "at": 3.1, "target": "trunk:T", "body": {"status": "Degraded"}},
        {"type": "change", "at": 3.2, "target": "twin_faults", "body": {"licenseCeiling": {}},
         "step": "license ceiling"},
        {"type": "transition", "at": 9.0, "from": "holding", "to": "rolling_back"},
        {"type": "change", "at": 9.1, "target": "trunk:T", "body": {"status": "Active"}},
        {"type": "resolved", "at": 10.0},
    ])
    assert tl.injected_at == 3.1 and tl.trunk_id == "T" and tl.rollback_at == 9.0
    assert [(i.target, i.fault) for i in tl.injections] == [("trunk:T", "status"),
                                                            ("twin_faults", "license ceiling")]
    assert (tl.started_at, tl.ended_at) == (1.0, 10.0)


def test_no_injection_in_a_journal_without_changes():
    tl = read_timeline([{"type": "start", "at": 1.0}])
    assert tl.injected_at is None and tl.trunk_id is None


def test_log_histogram_percentiles_within_two_percent():
    rng = random.Random(3)
    values = [rng.lognormvariate(-1, 1) for _ in range(5000)]
    hist = LogHistogram()
    for v in values:
        hist.add(v)
    ordered = sorted(values)
    for pct in (50, 90, 95, 99):
        exact = ordered[-(-pct * len(values) // 100) - 1]
        assert hist.percentile(pct) == pytest.approx(exact, rel=0.02)


def test_series_buckets_counts_per_code_without_losing_calls():
    recs = [{"outcome": "answered", "code": 200, "invite_at": 1000.0 + i, "setup_seconds": 0.5}
            for i in range(2000)]
    recs += [{"outcome": "408", "code": 408, "invite_at": 1500.0, "setup_seconds": 32.0}]
    stats = aggregate(recs)
    series = stats.series(max_points=100)
    assert series["step"] == 20
    assert sum(series["codes"]["200"]) == 2000 and sum(series["codes"]["408"]) == 1
    assert len(series["codes"]["200"]) <= 100
    assert stats.calls_by_code() == {"200": 2000, "408": 1}


def test_license_rejections_counted():
    stats = aggregate([{"outcome": "403", "code": 403, "reason": "License Exceeded"},
                       {"outcome": "403", "code": 403, "reason": "Forbidden"}])
    assert stats.license_rejections == 1 and stats.calls_by_code() == {"403": 2}


def test_outcomes_from_events_count_answers_rejections_and_drops():
    from harness.report.aggregate import outcomes_from_events
    stats = outcomes_from_events([
        {"type": "answer", "timestamp": 10.2}, {"type": "callRouting", "timestamp": 10.5, "decision": "queued"},
        {"type": "callRouting", "timestamp": 11.0, "decision": "rejected:503"},
        {"type": "callRouting", "timestamp": 11.5, "decision": "dropped"},
        {"type": "failover", "timestamp": 12.0}])
    assert stats.calls_by_code() == {"200": 1, "503": 1, "dropped": 1}
    assert stats.series()["codes"]["503"] == [0, 1]
