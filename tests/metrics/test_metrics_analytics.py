"""AnalyticsPoller writes one analytics.jsonl row per queue and poll."""

import time

from harness.errors import PlatformError
from harness.metrics.analytics import AnalyticsPoller, poll_row
from harness.metrics.recorder import JsonlWriter, iter_jsonl


def test_row_from_adapter_figures_and_from_raw_body():
    raw = {"queueId": "q", "answeredCalls": 5, "answeredViaFailover": 2, "offeredCalls": 6,
           "asOf": 10.0}
    adapter = {"waiting_s": 1, "agents": 2, "answered": 5, "offered": 6, "as_of": 10.0,
               "raw": raw}
    assert poll_row("q", adapter, 11.0) == poll_row("q", raw, 11.0) == {
        "polled_at": 11.0, "queueId": "q", "answeredCalls": 5, "answeredViaFailover": 2,
        "offeredCalls": 6, "asOf": 10.0}


def test_row_of_a_platform_without_the_failover_count():
    adapter = {"answered": 5, "offered": 6, "as_of": 10.0, "raw": {"answeredCalls": 5}}
    assert poll_row("q", adapter, 11.0)["answeredViaFailover"] is None


def test_failed_polls_are_skipped_not_raised(tmp_path):
    def fetch(queue_id):
        if queue_id == "bad":
            raise PlatformError("503", status=503)
        return {"answeredCalls": 3}

    with JsonlWriter(tmp_path / "analytics.jsonl") as w:
        AnalyticsPoller(fetch, ["good", "bad"], w, clock=lambda: 5.0).poll_once()
    rows = list(iter_jsonl(tmp_path / "analytics.jsonl"))
    assert [r["queueId"] for r in rows] == ["good"]


def test_thread_polls_until_stopped(tmp_path):
    with JsonlWriter(tmp_path / "analytics.jsonl") as w:
        poller = AnalyticsPoller(lambda q: {"answeredCalls": 1}, ["q"], w, period_s=0.01).start()
        for _ in range(1000):  # bounded wait for three polls
            if w.count >= 3:
                break
            time.sleep(0.01)
        poller.stop()
    assert len(list(iter_jsonl(tmp_path / "analytics.jsonl"))) >= 3


def fixture_rows(name):
    import json
    import pathlib
    path = pathlib.Path(__file__).parent / "fixtures" / "failover_genesys" / name
    return [json.loads(line) for line in open(path)]


def test_live_figure_equals_the_report_figure_on_the_fixture():
    from harness.metrics.analytics import LiveAnalyticsMttr
    from harness.metrics.mttr import analytics_mttr
    T = 1764770000.0
    polls = fixture_rows("analytics.jsonl")
    live = LiveAnalyticsMttr()
    results = [live.poll(r) for r in polls if r["polled_at"] < T]
    live.start(T)
    live.failover_queue("queue-secondary")      # first failover answer at T+21.5
    results += [live.poll(r) for r in polls if r["polled_at"] >= T]
    assert [r for r in results if r is not None] == [125.0]
    assert live.result == analytics_mttr(polls, T, "queue-secondary")


def test_live_figure_when_the_queue_is_learnt_after_the_rise():
    from harness.metrics.analytics import LiveAnalyticsMttr
    live = LiveAnalyticsMttr()
    live.poll({"queueId": "q", "answeredCalls": 4, "polled_at": 99.0, "asOf": 90.0})
    live.start(100.0)
    assert live.poll({"queueId": "q", "answeredCalls": 4, "polled_at": 105.0, "asOf": 95.0}) is None
    assert live.poll({"queueId": "q", "answeredCalls": 6, "polled_at": 110.0, "asOf": 101.0}) is None
    assert live.failover_queue("q") == 10.0
    assert not live.pending


def test_live_figure_counts_failover_answers_like_the_report():
    from harness.metrics.analytics import LiveAnalyticsMttr
    from harness.metrics.mttr import analytics_mttr
    from test_metrics_mttr import T, demo_situation
    _, polls = demo_situation(lag=10.0)
    live = LiveAnalyticsMttr()
    for row in polls:
        if row["polled_at"] < T:
            live.poll(row)
    live.start(T)
    live.failover_queue("q")
    results = [live.poll(r) for r in polls if r["polled_at"] >= T]
    assert [r for r in results if r is not None] == [35.0]
    assert live.result == analytics_mttr(polls, T, "q")
