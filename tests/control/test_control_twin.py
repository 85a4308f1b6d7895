"""The controller against the real twin (``ccharness emulator`` subprocess, time scale 0.05).

Each test resets the twin, snapshots every trunk's full GET JSON, runs, and compares.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import threading
import time

import pytest

from harness.cli import main
from control_twinutil import (
    CCHARNESS, Admin, experiment, journal, run_cli, running_twin,
)

SHIPPED = ["genesys-trunk-failover", "cxone-health-failover", "codec-mismatch-failover",
           "license-ceiling", "sip-timer-switchover"]


def short(data):
    """Shorter waits for tests (the twin runs at time scale 0.05)."""
    data["convergence"]["timeout_seconds"] = 8
    data["recovery"]["timeout_seconds"] = 8


def run(tmp_path, twin, path, *extra):
    return main(["run", str(path), "--endpoints-file", twin["_path"],
                 "--runs-dir", str(tmp_path / "runs"), *extra])


def only_run_dir(tmp_path):
    dirs = list((tmp_path / "runs").iterdir())
    assert len(dirs) == 1
    return dirs[0]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_experiment_dry_runs_without_changing_anything(name, tmp_path, twin, admin, capsys):
    before = admin.snapshot()
    assert run(tmp_path, twin, experiment(tmp_path, name), "--dry-run") == 0
    out = capsys.readouterr().out
    assert "nothing has been changed" in out and "step 1" in out
    assert admin.snapshot() == before
    assert admin.ground_truth()["changes"] == []
    assert not (tmp_path / "runs").exists()


def test_genesys_failover_holds_and_every_trunk_is_restored(tmp_path, twin, admin):
    before = admin.snapshot()
    path = experiment(tmp_path, "genesys-trunk-failover", short)
    proc = run_cli(["-v", "run", str(path), "--endpoints-file", twin["_path"], "--runs-dir", "runs"],
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert admin.snapshot() == before
    run_dir = only_run_dir(tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["verdict"] == "held" and summary["exit_code"] == 0
    assert any(c["expect"] == "failover" and c["converged"] for c in summary["convergence"])
    assert any(r["expect"] == "failback" and r["converged"] for r in summary["recovery"])
    records = journal(run_dir / "journal.jsonl")
    # The original was journaled before the first call that changed the trunk.
    saved = next(i for i, r in enumerate(records) if r["type"] == "saved")
    first_patch = next(i for i, r in enumerate(records) if r["type"] == "call" and r["method"] == "PATCH")
    assert saved < first_patch
    transitions = [r["to"] for r in records if r["type"] == "transition"]
    assert transitions == ["baseline", "injecting", "converging", "injecting", "converging", "injecting",
                           "converging", "injecting", "converging", "holding", "rolling_back",
                           "recovering", "done"]
    # The secret (and the bearer token) never reach logs, journal or run files.
    secret = twin["client_secret"]
    for text in [proc.stdout, proc.stderr] + [p.read_text() for p in run_dir.iterdir() if p.is_file()]:
        assert secret not in text
        assert "Bearer" not in text


def test_breaking_the_twins_failover_breaks_the_hypothesis(tmp_path, twin, admin):
    admin.faults(blackholeTrunks=[admin.trunk_id("Secondary_Carrier_Trunk")])
    before = admin.snapshot()

    def edit(d):
        short(d)
        d["convergence"]["timeout_seconds"] = 4   # ~4x the scaled propagation delay
    path = experiment(tmp_path, "genesys-trunk-failover", edit)
    assert run(tmp_path, twin, path) == 1
    summary = json.loads((only_run_dir(tmp_path) / "summary.json").read_text())
    assert summary["verdict"] == "broken"
    assert any(c["expect"] == "failover" and c["converged"] is False for c in summary["convergence"])
    assert admin.snapshot() == before


def test_cxone_health_failover_holds_and_restores(tmp_path, twin, admin):
    before = admin.snapshot()
    assert run(tmp_path, twin, experiment(tmp_path, "cxone-health-failover", short)) == 0
    assert admin.snapshot() == before
    truth = admin.ground_truth()
    assert truth["failovers"] and truth["failbacks"]


def test_trunk_outside_blast_radius_is_refused_before_any_call(tmp_path, twin, admin, capsys):
    primary = admin.trunk_id("Primary_Carrier_Trunk")

    def edit(d):  # name the trunk by id, with a prefix its live name does not carry
        d["blast_radius"] = {"name_prefix": "Chaos_", "trunks": [primary]}
        d["convergence"].pop("queue")
        d.pop("window")
        for step in d["method"]["steps"]:
            step["trunk"] = primary
    before = admin.snapshot()
    assert run(tmp_path, twin, experiment(tmp_path, "genesys-trunk-failover", edit)) == 3
    assert "lacks a required prefix" in capsys.readouterr().err
    assert admin.ground_truth()["changes"] == []
    assert admin.snapshot() == before


def test_injection_window_in_the_past_refuses(tmp_path, twin, admin, capsys):
    def edit(d):
        d["window"] = {"start": "2020-01-01T00:00:00Z", "end": "2020-01-01T01:00:00Z"}
    assert run(tmp_path, twin, experiment(tmp_path, "genesys-trunk-failover", edit)) == 3
    assert "injection window" in capsys.readouterr().err
    assert admin.ground_truth()["changes"] == []


def test_thin_wfm_schedule_refuses(tmp_path, twin, admin, capsys):
    def edit(d):
        d["window"]["min_agents"] = 500
    assert run(tmp_path, twin, experiment(tmp_path, "genesys-trunk-failover", edit)) == 3
    assert "WFM schedule" in capsys.readouterr().err
    assert admin.ground_truth()["changes"] == []


def test_provisioning_failure_behind_a_200_is_caught(tmp_path, twin, admin):
    admin.faults(provisioningFailure=True)
    before = admin.snapshot()
    path = experiment(tmp_path, "genesys-trunk-failover", short)
    runs = tmp_path / "runs"
    cleared = threading.Event()

    def clear_when_caught():
        # Once the controller has recorded the failed convergence, the "platform" heals,
        # so the rollback can be verified.
        try:
            wait_journal_any(runs, lambda r: r.get("type") == "convergence" and r.get("converged") is False)
        finally:
            Admin(twin).faults(provisioningFailure=False)
            cleared.set()
    t = threading.Thread(target=clear_when_caught, daemon=True)
    t.start()
    code = run(tmp_path, twin, path)
    cleared.wait(30)
    run_dir = only_run_dir(tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    failed = [c for c in summary["convergence"] if c["converged"] is False]
    assert failed and "provisioningFailed" in failed[0]["evidence"]
    assert code == 1 and summary["verdict"] == "broken"
    assert admin.snapshot() == before


def wait_journal_any(runs, pred, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for j in runs.glob("*/journal.jsonl"):
            if any(pred(r) for r in journal(j)):
                return
        time.sleep(0.05)


@pytest.mark.slow
def test_429_storm_is_ridden_out(tmp_path, twin, admin):
    before = admin.snapshot()
    admin.faults(apiErrorRate=0.5, apiErrorCode=429)
    path = experiment(tmp_path, "cxone-health-failover", short)
    code = run(tmp_path, twin, path)
    admin.faults(apiErrorRate=0.0)
    assert code == 0
    records = journal(only_run_dir(tmp_path) / "journal.jsonl")
    assert sum(1 for r in records if r["type"] == "call" and r["status"] == 429) >= 3
    assert admin.snapshot() == before


def _start_run(tmp_path, twin, hold=60):
    def edit(d):
        short(d)
        d["method"]["hold_seconds"] = hold
    path = experiment(tmp_path, "genesys-trunk-failover", edit)
    runs = tmp_path / "runs"
    proc = subprocess.Popen(CCHARNESS + ["run", str(path), "--endpoints-file", twin["_path"],
                                         "--runs-dir", str(runs)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, runs


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_mid_fault_rolls_back_everything(sig, tmp_path, twin, admin):
    before = admin.snapshot()
    proc, runs = _start_run(tmp_path, twin)
    try:
        wait_journal_any(runs, lambda r: r.get("type") == "transition" and r.get("to") == "holding")
        assert admin.trunk("Primary_Carrier_Trunk")["status"] == "Inactive"   # the fault is in place
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 3, err[-2000:]
    assert admin.snapshot() == before
    records = journal(next(runs.glob("*/journal.jsonl")))
    assert any(r["type"] == "signal" and r["signal"] == sig.name for r in records)
    assert any(r["type"] == "resolved" for r in records)


@pytest.mark.slow
def test_sigkill_mid_fault_then_rollback_restores_everything(tmp_path, twin, admin):
    before = admin.snapshot()
    proc, runs = _start_run(tmp_path, twin)
    try:
        wait_journal_any(runs, lambda r: r.get("type") == "transition" and r.get("to") == "holding")
        proc.kill()
        proc.wait(10)
    finally:
        proc.kill()
    assert admin.snapshot() != before                     # the fault stayed in place
    journal_path = next(runs.glob("*/journal.jsonl"))
    # A new run refuses to start while that journal is unresolved.
    again = run_cli(["run", str(tmp_path / "genesys-trunk-failover.yaml"), "--endpoints-file",
                     twin["_path"], "--runs-dir", str(runs)], cwd=tmp_path)
    assert again.returncode == 3 and "ccharness rollback --journal" in again.stderr
    done = run_cli(["rollback", "--journal", str(journal_path), "--routing-timeout", "10"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert admin.snapshot() == before
    assert journal(journal_path)[-1]["type"] == "resolved"


def test_token_expiring_mid_run_is_renewed(tmp_path):
    import yaml
    from importlib import resources
    topo = yaml.safe_load(resources.files("harness.twin").joinpath("default_topology.yaml").read_text())
    topo["delays"]["tokenLifetime"] = 2
    topo_path = tmp_path / "short-tokens.yaml"
    topo_path.write_text(yaml.safe_dump(topo))
    with running_twin(tmp_path, topology=topo_path) as ep:
        a = Admin(ep)
        before = a.snapshot()
        path = experiment(tmp_path, "cxone-health-failover", short)
        assert main(["run", str(path), "--endpoints-file", ep["_path"], "--runs-dir", str(tmp_path / "runs")]) == 0
        a = Admin(ep)
        assert a.snapshot() == before
        records = journal(only_run_dir(tmp_path) / "journal.jsonl")
        assert sum(1 for r in records if r["type"] == "token") >= 2


@pytest.mark.slow
def test_unverifiable_rollback_exits_4_naming_the_trunk_then_rollback_resolves(tmp_path, twin, admin, capsys):
    before = admin.snapshot()
    admin.faults(provisioningFailure=True)       # every change, the restore too, fails behind a 200
    path = experiment(tmp_path, "genesys-trunk-failover", short)
    assert run(tmp_path, twin, path) == 4
    err = capsys.readouterr().err
    assert "STILL CHANGED: Primary_Carrier_Trunk" in err and "ccharness rollback --journal" in err
    run_dir = only_run_dir(tmp_path)
    assert json.loads((run_dir / "summary.json").read_text())["verdict"] == "rollback_failed"
    admin.faults(provisioningFailure=False)
    assert main(["rollback", "--journal", str(run_dir / "journal.jsonl"), "--routing-timeout", "8"]) == 0
    assert admin.snapshot() == before
    assert journal(run_dir / "journal.jsonl")[-1]["type"] == "resolved"


def test_dry_run_refuses_when_a_scope_is_missing(tmp_path, twin, admin, capsys):
    def edit(d):
        d["platform"]["credentials"]["scopes"] = ["view:telephony", "view:analytics"]
    assert run(tmp_path, twin, experiment(tmp_path, "genesys-trunk-failover", edit), "--dry-run") == 2
    assert "edit:telephony" in capsys.readouterr().err


def test_api_budget_spent_aborts_but_rollback_still_runs(tmp_path, twin, admin):
    before = admin.snapshot()

    def edit(d):
        short(d)
        d["platform"]["api_call_budget"] = 8
    assert run(tmp_path, twin, experiment(tmp_path, "genesys-trunk-failover", edit)) == 3
    summary = json.loads((only_run_dir(tmp_path) / "summary.json").read_text())
    assert summary["verdict"] == "aborted" and "budget" in summary["reason"]
    assert admin.snapshot() == before


@pytest.mark.slow
def test_codec_mismatch_with_the_locust_load_session_breaks_on_488(tmp_path, twin, admin):
    # find_spec, not import: importing Locust here would monkey-patch this pytest process.
    if importlib.util.find_spec("harness.load.session") is None:
        pytest.skip("this build has no load session")
    before = admin.snapshot()

    def edit(d):
        short(d)
        d["method"]["baseline_seconds"] = 2
        d["method"]["hold_seconds"] = 3
    path = experiment(tmp_path, "codec-mismatch-failover", edit)
    # Output to files, not pipes (the Locust workers and engines outlive a killed master
    # and would hold pipes open); on a timeout, SIGTERM first so the run rolls back and
    # reaps its workers.
    with open(tmp_path / "out.txt", "w") as out, open(tmp_path / "err.txt", "w") as err:
        proc = subprocess.Popen(CCHARNESS + ["run", str(path), "--endpoints-file", twin["_path"],
                                             "--runs-dir", "runs"], cwd=tmp_path, stdout=out, stderr=err)
        try:
            proc.wait(timeout=150)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            pytest.fail("the load run did not finish within 150 s")
    assert proc.returncode == 1, (tmp_path / "err.txt").read_text()[-3000:]
    summary = json.loads((only_run_dir(tmp_path) / "summary.json").read_text())
    assert summary["verdict"] == "broken"
    assert summary["calls_by_code"].get("488", 0) > 0
    during = {c["name"]: c for c in summary["hypothesis"] if c["phase"] == "during"}
    assert during["rate_488"]["ok"] is False
    assert admin.snapshot() == before
