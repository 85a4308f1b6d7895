"""A real Prometheus scrapes the real exporter during a short run; then every PromQL
expression of every dashboard panel, annotation and rule must return data.

Two runs: a real one (``ccharness demo --fast``: twin, Locust master and workers, PJSUA2
engines, a trunk failover) and a synthetic one fed straight into the exporter, which
also produces what a demo cannot (408/487/488, licence rejections, API errors), so the
alert conditions themselves are met at least once."""

import contextlib
import json
import re
import subprocess
import sys
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


@contextlib.contextmanager
def running_prometheus(prometheus_bin, tmp_path, target_port):
    """Base URL of a real Prometheus scraping 127.0.0.1:target_port every second."""
    port = free_tcp_port()
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "rule_files": [str(RULES)],
              "scrape_configs": [{"job_name": "ccharness",
                                  "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}]}
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
        yield base
    finally:
        proc.kill()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture
def prometheus(prometheus_bin, tmp_path):
    """(metrics, base URL of a real Prometheus scraping them every second)."""
    m = HarnessMetrics(CollectorRegistry(), trunks=[P, S])
    exporter = serve(m, port=0)
    try:
        with running_prometheus(prometheus_bin, tmp_path, exporter.port) as base:
            yield m, base
    finally:
        exporter.close()


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


def test_every_dashboard_and_rule_expression_returns_data_synthetic_run(prometheus):
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


# -- a real run ----------------------------------------------------------------------

DEMO_TIMEOUT_S = 300
# A top-level "<expr> <op> <number>" (alert conditions, annotation filters).
THRESHOLD = re.compile(r"^(?P<lhs>.*\S)\s*(?:>|<|==|>=|<=|!=)\s*-?[0-9.]+\s*$", re.S)


def query_at(base, expr, at):
    r = httpx.get(f"{base}/api/v1/query", params={"query": expr, "time": f"{at:.3f}"}, timeout=10)
    body = r.json()
    assert r.status_code == 200 and body["status"] == "success", (expr, body)
    return body["data"]["result"]


def has_data(base, expr, start, end, step=1.0):
    """True if an instant query at some time inside [start, end] returns a sample."""
    at = start
    while at <= end:
        if query_at(base, expr, at):
            return True
        at += step
    return False


def run_demo(tmp_path, metrics_port):
    """``ccharness demo --fast`` as a subprocess (everything on 127.0.0.1); (rc, log)."""
    exe = Path(sys.executable).with_name("ccharness")
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "harness.cli"]
    argv += ["demo", "--fast", "--metrics-port", str(metrics_port),
             "--out", str(tmp_path / "run"), "--runs-dir", str(tmp_path)]
    log_path = tmp_path / "demo.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
        try:
            rc = proc.wait(timeout=DEMO_TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.terminate()     # the demo rolls back and reaps its children on SIGTERM
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
    return rc, log_path.read_text()


def test_every_dashboard_and_rule_expression_returns_data_real_demo_run(prometheus_bin, tmp_path):
    """Alert conditions a healthy demo does not meet (408 share, licence ceiling, API
    errors) must still be evaluable: their left-hand side returns data (zeros)."""
    metrics_port = free_tcp_port()
    with running_prometheus(prometheus_bin, tmp_path, metrics_port) as base:
        start = time.time()
        rc, log = run_demo(tmp_path, metrics_port)
        end = time.time()
        assert rc in (0, 1), f"demo did not finish with a verdict (rc {rc}):\n{log[-3000:]}"
        assert (tmp_path / "run" / "summary.json").exists(), log[-3000:]
        assert query_range(base, "ccharness_sip_responses_total", start, end), "never scraped"
        answered = query_range(base, 'sum(ccharness_sip_responses_total{code="200"}) > 0', start, end)
        assert answered, "the scrapes show no answered call of the real run"
        exprs = list(dashboard_exprs()) + list(rule_exprs())
        empty, conditions_unmet = [], []
        for where, expr in exprs:
            if has_data(base, expr, start, end):
                continue
            m = THRESHOLD.match(expr.strip())
            if where.startswith("rule Ccharness") and m and has_data(base, m["lhs"], start, end):
                conditions_unmet.append(where)    # evaluable; the condition never held
                continue
            empty.append(f"{where}: {expr}")
    assert not empty, "expressions without data:\n" + "\n".join(empty)
    print("alert conditions not met by the demo (left-hand side had data):", conditions_unmet)
