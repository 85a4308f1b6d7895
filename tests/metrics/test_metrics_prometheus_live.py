"""A real Prometheus scrapes the real exporter during a short (synthetic) run; then every
PromQL expression of every dashboard panel, annotation and rule must return data."""

import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry

from harness.metrics.exporter import HarnessMetrics, serve
from metrics_nethelpers import free_tcp_port

ROOT = Path(__file__).parents[2]
DASHBOARDS = ROOT / "dashboards" / "grafana" / "dashboards"
RULES = ROOT / "dashboards" / "prometheus" / "rules" / "ccharness.rules.yml"
P, S = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]


def dashboard_exprs():
    for path in sorted(DASHBOARDS.glob("*.json")):
        dash = json.loads(path.read_text())
        for panel in dash["panels"]:
            for t in panel.get("targets", []):
                yield f"{path.name} panel {panel['title']!r}", t["expr"]
        for ann in dash.get("annotations", {}).get("list", []):
            if ann.get("expr"):
                yield f"{path.name} annotation {ann['name']!r}", ann["expr"]


def rule_exprs():
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            yield f"rule {rule.get('record') or rule.get('alert')}", rule["expr"]


def call(i, outcome, code, reason, trunk, setup, now, entry=P):
    return {"call_id": f"c{i}", "tag": "live", "entry_trunk": entry, "trunk": trunk,
            "outcome": outcome, "code": code, "reason": reason, "invite_at": now - setup,
            "answered_at": now if outcome == "answered" else None, "ended_at": now,
            "setup_seconds": setup, "worker": "w:1"}


def synthetic_run(m: HarnessMetrics, step_s: float = 0.25):
    """Baseline, injection with every kind of failure, failover answers, rollback."""
    i = 0

    def feed(seconds, batch, api_code):
        nonlocal i
        end = time.time() + seconds
        while time.time() < end:
            now = time.time()
            recs = [call(i + k, *spec, now) for k, spec in enumerate(batch)]
            i += len(recs)
            m.observe_records(recs)
            m.set_active_calls(len(recs) * 3, worker="w:1")
            m.observe_api_call({"method": "GET", "path": f"/api/v2/telephony/phone/trunks/{P}",
                                "status": api_code, "duration_s": 0.02})
            time.sleep(step_s)

    ok = ("answered", 200, "OK", P, 0.3)
    m.set_phase("baseline")
    m.observe_analytics_polls([{"queueId": "q-secondary", "answeredCalls": 0,
                                "polled_at": time.time(), "asOf": time.time() - 100}])
    feed(4, [ok, ok, ok], 200)
    m.set_phase("injecting")
    m.set_fault(P, "degraded", True, at=time.time())
    m.set_phase("converging")
    feed(5, [ok, ("408", 408, "Request Timeout", None, 32.0), ("487", 487, "Request Terminated", P, 2.0),
             ("488", 488, "Not Acceptable Here", S, 0.1), ("403", 403, "License Exceeded", S, 0.05),
             ("503", 503, "Service Unavailable", P, 0.1)], 503)
    m.set_phase("holding")
    injected = time.time() - 5
    m.observe_event({"type": "answer", "timestamp": time.time(), "entryTrunkId": P, "trunkId": S,
                     "queueId": "q-secondary", "viaFailover": True})
    m.observe_analytics_polls([{"queueId": "q-secondary", "answeredCalls": 2,
                                "polled_at": time.time(), "asOf": injected + 1}])
    feed(4, [("answered", 200, "OK", S, 0.4)] * 3, 429)
    m.set_phase("rolling_back")
    m.set_fault(P, "degraded", False)
    feed(2, [ok, ok], 200)
    m.set_phase("done")


@pytest.fixture
def prometheus(prometheus_bin, tmp_path):
    """(metrics, base URL of a real Prometheus scraping them every second)."""
    m = HarnessMetrics(CollectorRegistry(), trunks=[P, S])
    exporter = serve(m, port=0)
    port = free_tcp_port()
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "rule_files": [str(RULES)],
              "scrape_configs": [{"job_name": "ccharness",
                                  "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}]}]}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = open(tmp_path / "prometheus.log", "w")
    proc = subprocess.Popen([prometheus_bin, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{base}/-/ready", timeout=1).status_code == 200, 30,
                 "Prometheus did not become ready")
        yield m, base
    finally:
        proc.kill()
        proc.wait(timeout=10)
        exporter.close()
        log.close()


def wait_for(predicate, seconds, message):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if predicate():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise AssertionError(message)


def query_range(base, expr, start, end):
    r = httpx.get(f"{base}/api/v1/query_range",
                  params={"query": expr, "start": start, "end": end, "step": "1"}, timeout=10)
    body = r.json()
    assert r.status_code == 200 and body["status"] == "success", (expr, body)
    return body["data"]["result"]


def test_every_dashboard_and_rule_expression_returns_data(prometheus):
    m, base = prometheus
    start = time.time()
    synthetic_run(m)
    # the last phase must have been scraped and the rules evaluated on it
    wait_for(lambda: query_range(base, 'ccharness_experiment_phase{phase="done"} == 1',
                                 start, time.time()), 15, "final phase never scraped")
    time.sleep(2)
    end = time.time()
    exprs = list(dashboard_exprs()) + list(rule_exprs())
    assert len(exprs) >= 25
    empty = [f"{where}: {expr}" for where, expr in exprs if not query_range(base, expr, start, end)]
    assert not empty, "expressions without data:\n" + "\n".join(empty)
