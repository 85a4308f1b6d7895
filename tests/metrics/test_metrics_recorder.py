"""RunRecorder streams records to disk and keeps only counters."""

import json

from prometheus_client import CollectorRegistry

from harness.metrics.exporter import HarnessMetrics
from harness.metrics.recorder import RunRecorder, iter_jsonl


def make(tmp_path, **kw):
    return RunRecorder(tmp_path, HarnessMetrics(CollectorRegistry(), trunks=["t1"]), **kw)


def test_batches_are_appended_as_json_lines_and_counted(tmp_path):
    rec = make(tmp_path)
    rec([{"call_id": "a", "outcome": "answered", "code": 200, "trunk": "t1", "setup_seconds": 0.1}])
    rec([{"call_id": "b", "outcome": "408", "code": 408, "trunk": None, "setup_seconds": 32.0}])
    rec.close()
    rows = list(iter_jsonl(tmp_path / "calls.jsonl"))
    assert [r["call_id"] for r in rows] == ["a", "b"]
    prom = (tmp_path / "metrics.prom").read_text()
    assert 'ccharness_sip_responses_total{code="408",outcome="408",trunk="none"} 1.0' in prom


def test_torn_last_line_is_skipped(tmp_path):
    path = tmp_path / "calls.jsonl"
    path.write_text(json.dumps({"call_id": "a"}) + "\n" + '{"call_id": "b", "outc')
    assert [r["call_id"] for r in iter_jsonl(path)] == ["a"]


def test_tick_flushes_metrics_and_soak_report_when_due(tmp_path):
    now = [1000.0]
    built = []
    rec = make(tmp_path, flush_every_s=5, report_every_s=60, report=built.append,
               clock=lambda: now[0])
    rec.tick(1001.0)
    assert not (tmp_path / "metrics.prom").exists() and built == []
    rec.tick(1006.0)
    assert (tmp_path / "metrics.prom").exists() and built == []
    rec.tick(1061.0)
    assert built == [tmp_path]
    rec.close()


def test_events_are_stored_and_feed_live_mttr(tmp_path):
    rec = make(tmp_path)
    rec.metrics.set_fault("t1", "degraded", True, at=100.0)
    rec.on_events([{"type": "answer", "timestamp": 112.5, "entryTrunkId": "t1",
                    "trunkId": "t2", "viaFailover": True}])
    rec.close()
    assert len(list(iter_jsonl(tmp_path / "events.jsonl"))) == 1
    assert rec.metrics.registry.get_sample_value("ccharness_answer_mttr_seconds_sum") == 12.5
