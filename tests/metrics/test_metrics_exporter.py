"""The exporter's series on a fresh registry, fed with the fixture's records."""

import json
import pathlib

import httpx
import pytest
from prometheus_client import CollectorRegistry

from harness.errors import ConfigError
from harness.metrics.exporter import HarnessMetrics, endpoint_template, serve

FIX = pathlib.Path(__file__).parent / "fixtures" / "failover_genesys"
T = 1764770000.0
P, S = "trunk-primary", "trunk-secondary"


def records():
    return [json.loads(l) for l in open(FIX / "calls.jsonl")]


@pytest.fixture
def m():
    return HarnessMetrics(CollectorRegistry(), trunks=[P, S])


def value(m, name, **labels):
    return m.registry.get_sample_value(name, labels)


def test_responses_counted_by_code_outcome_and_effective_trunk(m):
    m.observe_records(records())
    assert value(m, "ccharness_sip_responses_total", code="200", outcome="answered", trunk=P) == 59
    assert value(m, "ccharness_sip_responses_total", code="200", outcome="answered", trunk=S) == 39
    assert value(m, "ccharness_sip_responses_total", code="408", outcome="408", trunk="none") == 2
    assert value(m, "ccharness_sip_responses_total", code="503", outcome="503", trunk=P) == 19


def test_setup_histogram_per_outcome(m):
    m.observe_records(records())
    assert value(m, "ccharness_call_setup_seconds_count", outcome="answered") == 98
    assert value(m, "ccharness_call_setup_seconds_bucket", outcome="408", le="16.0") == 0
    assert value(m, "ccharness_call_setup_seconds_bucket", outcome="408", le="32.0") == 2


def test_unknown_trunks_and_outcomes_are_bounded(m):
    m.observe_records([{"outcome": "weird", "code": 9999, "trunk": "someone-else"}])
    assert value(m, "ccharness_sip_responses_total", code="other", outcome="other", trunk="other") == 1


def test_license_rejections_need_the_licence_reason(m):
    m.observe_records([{"outcome": "403", "code": 403, "reason": "License Exceeded"},
                       {"outcome": "403", "code": 403, "reason": "Forbidden"}])
    assert value(m, "ccharness_license_rejections_total") == 1


def test_live_mttr_from_first_failover_answer_after_injection(m):
    m.set_fault(P, "degraded", True, at=T)
    assert value(m, "ccharness_fault_active", trunk=P, fault="degraded") == 1
    assert value(m, "ccharness_fault_recovered", trunk=P, fault="degraded") == 0
    m.observe_records(records())
    assert value(m, "ccharness_answer_mttr_seconds_count") == 1
    assert value(m, "ccharness_answer_mttr_seconds_sum") == pytest.approx(21.52)
    assert value(m, "ccharness_fault_recovered", trunk=P, fault="degraded") == 1
    m.set_fault(P, "degraded", False)
    assert value(m, "ccharness_fault_active", trunk=P, fault="degraded") == 0


def test_live_mttr_from_answer_event(m):
    m.set_fault(P, "degraded", True, at=T)
    m.observe_event({"type": "answer", "timestamp": T + 21.5, "entryTrunkId": P,
                     "trunkId": S, "viaFailover": True})
    assert value(m, "ccharness_answer_mttr_seconds_sum") == pytest.approx(21.5)


def test_fault_injection_needs_a_time(m):
    with pytest.raises(ConfigError):
        m.set_fault(P, "degraded", True)


def test_phase_is_one_hot(m):
    m.set_phase("injecting")
    assert value(m, "ccharness_experiment_phase", phase="injecting") == 1
    assert value(m, "ccharness_experiment_phase", phase="idle") == 0
    m.set_phase("no-such-phase")  # ignored, logged
    assert value(m, "ccharness_experiment_phase", phase="injecting") == 1


def test_active_calls_summed_over_workers(m):
    m.set_active_calls(3, worker="a")
    m.set_active_calls(4, worker="b")
    m.set_active_calls(1, worker="a")
    assert value(m, "ccharness_active_calls") == 5
    m.forget_worker("b")
    assert value(m, "ccharness_active_calls") == 1


@pytest.mark.parametrize("raw,template", [
    ("/api/v2/telephony/phone/trunks/3f2b8c1e-1d2a-4b7c-9e0f-123456789abc",
     "/api/v2/telephony/phone/trunks/{id}"),
    ("http://127.0.0.1:8080/api/v2.0/analytics/queues/42/realtime?x=1",
     "/api/v2.0/analytics/queues/{id}/realtime"),
    ("/oauth/token", "/oauth/token"),
])
def test_endpoint_templates(raw, template):
    assert endpoint_template(raw) == template


def test_api_series_with_bounded_endpoints(m):
    m.observe_api("/api/v2/telephony/phone/trunks/3f2b8c1e-1d2a-4b7c-9e0f-123456789abc", 200, 0.02)
    m.observe_api("/api/v2/telephony/phone/trunks/4f2b8c1e-1d2a-4b7c-9e0f-123456789abc", 429, 0.01)
    tmpl = "/api/v2/telephony/phone/trunks/{id}"
    assert value(m, "ccharness_api_requests_total", endpoint=tmpl, code="200") == 1
    assert value(m, "ccharness_api_requests_total", endpoint=tmpl, code="429") == 1
    assert value(m, "ccharness_api_request_seconds_count", endpoint=tmpl) == 2
    for i in range(100):
        m.observe_api(f"/made/up/path{i}x", 200, 0.01)
    names = {s.labels["endpoint"] for f in m.registry.collect()
             if f.name == "ccharness_api_requests" for s in f.samples}
    assert len(names) <= 33 and "other" in names


def test_adapter_on_call_hook_feeds_api_series(m):
    m.observe_api_call({"method": "PATCH", "path": "/api/v2/telephony/phone/trunks/"
                        "3f2b8c1e-1d2a-4b7c-9e0f-123456789abc", "status": 200, "duration_s": 0.03})
    m.observe_api_call({"method": "GET", "path": "/oauth/token", "status": None,
                        "error": "ConnectError", "duration_s": 1.0})
    assert value(m, "ccharness_api_requests_total",
                 endpoint="PATCH /api/v2/telephony/phone/trunks/{id}", code="200") == 1
    assert value(m, "ccharness_api_requests_total", endpoint="GET /oauth/token", code="error") == 1


def test_http_exporter_on_loopback(m):
    m.observe_records(records())
    with serve(m, port=0) as server:
        assert server.addr == "127.0.0.1"
        body = httpx.get(server.url, timeout=5).text
    assert 'ccharness_sip_responses_total{code="503",outcome="503",trunk="trunk-primary"} 19.0' in body


def test_busy_port_is_a_config_error(m):
    with serve(m, port=0) as server:
        with pytest.raises(ConfigError):
            serve(m, port=server.port)


def test_live_analytics_mttr_gauge(m):
    m.observe_analytics_polls([{"queueId": "qs", "answeredCalls": 0, "polled_at": T - 5, "asOf": T - 100}])
    m.set_fault(P, "degraded", True, at=T)
    m.observe_event({"type": "answer", "timestamp": T + 21.5, "entryTrunkId": P, "trunkId": S,
                     "queueId": "qs", "viaFailover": True})
    m.observe_analytics_polls([{"queueId": "qs", "answeredCalls": 0, "polled_at": T + 100, "asOf": T},
                               {"queueId": "qs", "answeredCalls": 3, "polled_at": T + 125, "asOf": T + 25}])
    assert value(m, "ccharness_analytics_mttr_seconds") == 125.0
    assert value(m, "ccharness_answer_mttr_seconds_sum") == pytest.approx(21.5)


def test_codes_of_interest_published_at_zero_per_known_trunk(m):
    """Before any call, the codes the dashboards and rules select exist, at zero."""
    for trunk in (P, S):
        for code, outcome in (("200", "answered"), ("408", "408"), ("487", "487"),
                              ("488", "488"), ("403", "403"), ("503", "503")):
            assert value(m, "ccharness_sip_responses_total", code=code, outcome=outcome,
                         trunk=trunk) == 0
    assert value(m, "ccharness_call_setup_seconds_count", outcome="answered") == 0
    assert value(m, "ccharness_sip_responses_total", code="408", outcome="408", trunk="other") is None


def test_api_error_codes_published_at_zero_once_an_endpoint_is_seen(m):
    m.observe_api("GET /api/v2/telephony/phone/trunks/8e8b79be-be7d-5e3a-b984-e175690340a1", 200, 0.01)
    ep = "GET /api/v2/telephony/phone/trunks/{id}"
    assert value(m, "ccharness_api_requests_total", endpoint=ep, code="200") == 1
    for code in ("429", "500", "503", "error"):
        assert value(m, "ccharness_api_requests_total", endpoint=ep, code=code) == 0
