"""Rules, Prometheus config and Grafana files: promtool checks and structure."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2] / "dashboards"
RULES = ROOT / "prometheus" / "rules"


def run(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.prometheus
def test_promtool_check_rules(promtool_bin):
    assert "SUCCESS" in run([promtool_bin, "check", "rules", str(RULES / "ccharness.rules.yml")])


@pytest.mark.prometheus
def test_promtool_test_rules(promtool_bin):
    assert "SUCCESS" in run([promtool_bin, "test", "rules", str(RULES / "ccharness.rules.test.yml")])


@pytest.mark.prometheus
def test_promtool_test_rules_can_fail(promtool_bin, tmp_path):
    # a wrong expectation must fail, or the rule tests prove nothing
    text = (RULES / "ccharness.rules.test.yml").read_text().replace(
        'summary: "Only 83.33% of calls answered"', 'summary: "Only 99% of calls answered"')
    (tmp_path / "ccharness.rules.yml").write_text((RULES / "ccharness.rules.yml").read_text())
    (tmp_path / "t.yml").write_text(text)
    proc = subprocess.run([promtool_bin, "test", "rules", str(tmp_path / "t.yml")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0


@pytest.mark.prometheus
def test_promtool_check_config(promtool_bin):
    run([promtool_bin, "check", "config", str(ROOT / "prometheus" / "prometheus.yml")])


def test_prometheus_scrapes_the_documented_exporter_port():
    cfg = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    targets = [t for job in cfg["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == ["127.0.0.1:9646"]


def test_dashboards_use_the_provisioned_datasource():
    ds = yaml.safe_load((ROOT / "grafana" / "provisioning" / "datasources" / "ccharness.yml").read_text())
    uid = ds["datasources"][0]["uid"]
    for path in (ROOT / "grafana" / "dashboards").glob("*.json"):
        dash = json.loads(path.read_text())
        ids = [p["id"] for p in dash["panels"]]
        assert len(ids) == len(set(ids)), path
        for p in dash["panels"]:
            assert p["targets"], p["title"]
            assert p["datasource"]["uid"] == uid
            assert all(t["datasource"]["uid"] == uid for t in p["targets"])
            assert "$" not in "".join(t["expr"] for t in p["targets"])  # no Grafana-only variables


def test_dashboard_json_is_the_generators_output():
    import runpy
    gen = runpy.run_path(str(ROOT / "grafana" / "make_dashboard.py"))
    on_disk = json.loads((ROOT / "grafana" / "dashboards" / "ccharness-run.json").read_text())
    assert on_disk == json.loads(json.dumps(gen["DASHBOARD"]))


def test_dashboard_covers_the_issue_panels():
    dash = json.loads((ROOT / "grafana" / "dashboards" / "ccharness-run.json").read_text())
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p["targets"])
    for series in ("ccharness_sip_responses_total", "ccharness_license_rejections_total",
                   "ccharness_answer_mttr_seconds", "ccharness_call_setup_seconds_bucket",
                   "ccharness_api_requests_total", "ccharness_api_request_seconds_bucket",
                   "ccharness_active_calls", "ccharness_fault_active", "ccharness_experiment_phase",
                   'code=~"408|487|488"'):
        assert series in exprs or series.split("_bucket")[0] in exprs, series
    assert any(a.get("expr") for a in dash["annotations"]["list"]), "fault annotations"


def test_compose_file_is_valid(tmp_path):
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose not installed (validates the file only; no engine needed)")
    run([compose, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"])
