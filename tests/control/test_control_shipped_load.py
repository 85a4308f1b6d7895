"""The shipped load experiments, run through the controller with real SIP calls into the
twin (a minimal UDP caller behind the load seam; the Locust load session plugs into the
same seam). Each verdict must match the twin's configuration: the experiment's fault
produces the SIP outcome it is about, and the hypothesis breaks on exactly that rate.
"""

from __future__ import annotations

import pytest

from control_sipcaller import SipCallerLoad
from control_twinutil import experiment
from harness.control.controller import Controller
from harness.control.plan import prepare
from harness.control.targets import Resolver
from harness.experiment.loader import load_experiment
from harness.platforms.adapter import open_adapter
from harness.platforms.credentials import connection_for


def quick(d):
    d["method"]["baseline_seconds"] = 1.5
    d["method"]["hold_seconds"] = 3      # > the callers' INVITE timeout + the window
    d["hypothesis"]["window_seconds"] = 2
    d["hypothesis"]["check_interval_seconds"] = 0.5   # guardrails (10 checks) stay armed but untripped
    d["convergence"]["timeout_seconds"] = 8
    d["recovery"]["timeout_seconds"] = 8


def run_with_calls(tmp_path, twin, name):
    exp = load_experiment(experiment(tmp_path, name, quick))
    conn = connection_for(exp.platform, twin["_path"])
    entry = next(t for t in twin["trunks"] if t["name"] == exp.load.target)
    load = SipCallerLoad(entry["sip_uri"], concurrent=exp.load.concurrent, hold_s=0.5,
                         tag=exp.load.tag, entry_trunk=entry["id"], max_seconds=60, invite_timeout_s=1.0)
    with open_adapter(conn) as adapter:
        plan = prepare(exp, adapter, Resolver.from_endpoints(conn.endpoints_file))
        summary = Controller(plan, adapter, tmp_path / "run", load=load, install_signals=False).run()
    return summary, load


@pytest.mark.slow
@pytest.mark.parametrize("name,rate", [("codec-mismatch-failover", "rate_488"),
                                       ("license-ceiling", "rate_403"),
                                       ("sip-timer-switchover", "rate_408")])
def test_shipped_experiment_breaks_on_the_outcome_it_injects(name, rate, tmp_path, twin, admin):
    before = admin.snapshot()
    faults_before = admin.faults()
    summary, load = run_with_calls(tmp_path, twin, name)
    assert summary["verdict"] == "broken", summary["reason"]
    checks = {(c["name"], c["phase"]): c for c in summary["hypothesis"]}
    assert checks[(rate, "before")]["ok"] is True        # the steady state held before the fault
    assert checks[(rate, "during")]["ok"] is False       # ... and broke on this rate during it
    code = rate.removeprefix("rate_")
    assert summary["calls_by_code"].get(code, 0) > 0
    assert admin.snapshot() == before and admin.faults() == faults_before
