"""MetricsSession driven by the fixture's controller journal and records."""

import json
import time
from pathlib import Path

import httpx
import pytest

from harness.metrics.session import MetricsSession

FIX = Path(__file__).parent / "fixtures" / "failover_genesys"
P = "trunk-primary"


def rows(name):
    return [json.loads(l) for l in open(FIX / name)]


def test_journal_drives_phase_faults_and_api_series(tmp_path):
    with MetricsSession(tmp_path, trunks=[P, "trunk-secondary"], port=0) as s:
        value = lambda name, **labels: s.metrics.registry.get_sample_value(name, labels)  # noqa: E731
        journal = rows("journal.jsonl")
        upto_inject = [r for r in journal if r["at"] <= 1764770000.0 + 1]
        for rec in upto_inject:
            s.on_journal(rec)
        assert value("ccharness_experiment_phase", phase="converging") == 1
        assert value("ccharness_fault_active", trunk=P, fault="status") == 1
        s.recorder(rows("calls.jsonl"))
        assert value("ccharness_answer_mttr_seconds_sum") == pytest.approx(21.52)
        s.on_journal({"type": "call", "at": 1.0, "method": "PATCH",
                      "path": "/api/v2/telephony/phone/trunks/35ee59f4-0341-53b3-a1de-3cfad667fe77", "status": 200, "duration_s": 0.01})
        assert value("ccharness_api_requests_total",
                     endpoint="PATCH /api/v2/telephony/phone/trunks/{id}", code="200") == 1
        for rec in journal[len(upto_inject):]:
            s.on_journal(rec)
        assert value("ccharness_fault_active", trunk=P, fault="status") == 0
        assert value("ccharness_experiment_phase", phase="done") == 1
        scraped = httpx.get(s.server.url, timeout=5).text
        assert "ccharness_answer_mttr_seconds_count 1.0" in scraped
    assert "ccharness_experiment_phase{phase=\"done\"} 1.0" in (tmp_path / "metrics.prom").read_text()
    assert len((tmp_path / "calls.jsonl").read_text().splitlines()) == 120


def test_session_without_http_exporter(tmp_path):
    with MetricsSession(tmp_path, port=None) as s:
        assert s.server is None
        s.on_event({"type": "answer", "timestamp": 5.0, "viaFailover": True})
    assert (tmp_path / "metrics.prom").exists()


def test_analytics_watch_and_ground_truth_files(tmp_path):
    from harness.metrics.recorder import iter_jsonl
    calls = []

    def fetch(queue_id):
        calls.append(queue_id)
        return {"answered": len(calls), "as_of": 1.0}

    with MetricsSession(tmp_path, port=None) as s:
        s.watch_analytics(fetch, ["q1"], period_s=0.01)
        for _ in range(500):  # bounded wait for a few polls
            if len(calls) >= 3:
                break
            time.sleep(0.01)
        s.save_ground_truth({"changes": [], "failovers": []})
    polls = list(iter_jsonl(tmp_path / "analytics.jsonl"))
    assert len(polls) >= 3 and polls[0]["queueId"] == "q1" and polls[0]["asOf"] == 1.0
    assert json.loads((tmp_path / "ground_truth.json").read_text())["failovers"] == []
