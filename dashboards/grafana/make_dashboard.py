"""Writes dashboards/ccharness-run.json (run once after editing; the JSON is committed).

Every PromQL expression here is run against a real Prometheus fed by the real exporter
in tests/metrics/test_prometheus_live.py: each must return data.
"""
import json
import pathlib

DS = {"type": "prometheus", "uid": "ccharness-prometheus"}
HERE = pathlib.Path(__file__).parent


def target(expr, legend, ref):
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref, "range": True}


def panel(pid, title, kind, exprs, pos, unit="short", description="", extra=None):
    p = {"id": pid, "title": title, "type": kind, "datasource": DS, "description": description,
         "gridPos": dict(zip("xywh", pos)),
         "targets": [target(e, l, chr(65 + i)) for i, (e, l) in enumerate(exprs)],
         "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
         "options": {"legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"]},
                     "tooltip": {"mode": "multi"}}}
    if extra:
        p.update(extra)
    return p


RATE = "[1m]"
PANELS = [
    panel(1, "Call outcomes by final SIP code", "timeseries",
          [(f"sum by (code) (rate(ccharness_sip_responses_total{RATE}))", "{{code}}")],
          (0, 0, 16, 9), "cps", "Final responses per second; fault windows are annotated."),
    panel(2, "Answer ratio", "stat", [("ccharness:answer_ratio:rate1m", "answered")],
          (16, 0, 8, 4), "percentunit"),
    panel(3, "Active calls", "stat", [("sum(ccharness_active_calls)", "active")], (16, 4, 8, 5)),
    panel(4, "408 / 487 / 488 share of calls", "timeseries",
          [('ccharness:sip_code_ratio:rate1m{code=~"408|487|488"}', "{{code}}")],
          (0, 9, 12, 8), "percentunit",
          "408: INVITE timer expiry during switchover; 487: requests terminated; 488: codec mismatch."),
    panel(5, "License rejections (403 License Exceeded)", "timeseries",
          [(f"sum(increase(ccharness_license_rejections_total{RATE}))", "rejections / min")],
          (12, 9, 12, 8), "short"),
    panel(6, "MTTR: raw answer events vs analytics", "stat",
          [("max(ccharness_answer_mttr_seconds_sum / ccharness_answer_mttr_seconds_count)", "MTTR (answer events)"),
           ("histogram_quantile(0.95, sum by (le) (ccharness_answer_mttr_seconds_bucket))", "MTTR p95"),
           ("max(ccharness_analytics_mttr_seconds > 0)", "from analytics (batched, lagged)")],
          (0, 17, 8, 8), "s",
          "Injection to first answer through the failover path, from raw events; beside it the "
          "figure the batched analytics endpoints give (the guide's Edge Case 2)."),
    panel(7, "Faults in place", "state-timeline",
          [("max by (trunk, fault) (ccharness_fault_active)", "{{fault}} on {{trunk}}"),
           ("max by (trunk, fault) (ccharness_fault_recovered)", "recovered: {{fault}} on {{trunk}}")],
          (8, 17, 8, 8)),
    panel(8, "Experiment phase", "state-timeline",
          [("ccharness_experiment_phase == 1", "{{phase}}")], (16, 17, 8, 8)),
    panel(9, "Call setup time percentiles", "timeseries",
          [(f"histogram_quantile({q}, sum by (le) (rate(ccharness_call_setup_seconds_bucket{RATE})))", f"p{int(q * 100)}")
           for q in (0.5, 0.95, 0.99)] + [("ccharness:call_setup_seconds:p95_1m", "p95 (recorded)")],
          (0, 25, 12, 8), "s", "INVITE to final response, all outcomes."),
    panel(10, "Answered call setup p95", "timeseries",
          [(f'histogram_quantile(0.95, sum by (le) (rate(ccharness_call_setup_seconds_bucket{{outcome="answered"}}{RATE})))', "answered p95")],
          (12, 25, 12, 8), "s"),
    panel(11, "Platform API requests by code", "timeseries",
          [("sum by (code) (ccharness:api_requests:rate1m)", "{{code}}"),
           (f'sum by (endpoint) (rate(ccharness_api_requests_total{{code=~"5..|429|error"}}{RATE}))', "errors {{endpoint}}")],
          (0, 33, 12, 8), "reqps"),
    panel(12, "Platform API latency", "timeseries",
          [(f"histogram_quantile(0.95, sum by (le, endpoint) (rate(ccharness_api_request_seconds_bucket{RATE})))", "p95 {{endpoint}}")],
          (12, 33, 12, 8), "s"),
]

DASHBOARD = {
    "uid": "ccharness-run", "title": "ccharness: load + fault run", "editable": True,
    "schemaVersion": 38, "version": 1, "refresh": "5s", "tags": ["ccharness"],
    "time": {"from": "now-30m", "to": "now"}, "timezone": "utc",
    "annotations": {"list": [
        {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
         "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
         "type": "dashboard"},
        {"datasource": DS, "enable": True, "iconColor": "red", "name": "Fault injected",
         "expr": "max by (trunk, fault) (ccharness_fault_active) > 0", "step": "5s",
         "titleFormat": "fault {{fault}}", "textFormat": "trunk {{trunk}}",
         "useValueForTime": False},
    ]},
    "panels": PANELS,
    "templating": {"list": []},
}

if __name__ == "__main__":
    out = HERE / "dashboards" / "ccharness-run.json"
    out.write_text(json.dumps(DASHBOARD, indent=2) + "\n")
    print(out)
