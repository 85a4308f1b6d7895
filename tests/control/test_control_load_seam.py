"""The controller with a load attached, through the load seam (subscribe / start /
wait_until_holding / stop), against the real twin. The load is a fake that emits
per-call records (CONTRACTS.md section 6); the platform side is real.
"""

from __future__ import annotations

import json
import threading
import time


from control_twinutil import experiment
from harness.control.controller import EXIT_FOR_VERDICT, Controller
from harness.control.plan import prepare
from harness.control.targets import Resolver
from harness.experiment.loader import load_experiment
from harness.platforms.adapter import open_adapter
from harness.platforms.credentials import connection_for


class FakeLoad:
    """Emits 5 records every 0.1 s; ``outcome()`` decides each one's outcome."""

    def __init__(self, outcome, holds: bool = True):
        self.outcome, self.holds = outcome, holds
        self.sinks, self.started, self.stopped = [], False, False
        self._stop = threading.Event()

    def subscribe(self, fn):
        self.sinks.append(fn)

    def start(self):
        self.started = True
        threading.Thread(target=self._run, daemon=True).start()

    def wait_until_holding(self, timeout, stop=lambda: False):
        if not self.holds:
            time.sleep(min(timeout, 0.2))
            return False
        return True

    def stop(self):
        self.stopped = True
        self._stop.set()

    def _run(self):
        n = 0
        while not self._stop.wait(0.1):
            now = time.time()
            batch = []
            for _ in range(5):
                n += 1
                out = self.outcome()
                code = 200 if out == "answered" else int(out)
                batch.append({"call_id": f"c{n}", "tag": "t", "outcome": out, "code": code,
                              "invite_at": now - 0.2, "ended_at": now, "setup_seconds": 0.2})
            for sink in self.sinks:
                sink(batch)


def edit(d):
    d["load"] = {"target": "Primary_Carrier_Trunk", "concurrent": 4, "hold_seconds": 1,
                 "duration_seconds": 60, "ready_timeout_seconds": 2}
    d["hypothesis"] = {"window_seconds": 1, "min_calls": 5, "answer_ratio_min": 0.9,
                       "rate_403_max": 0.0, "rate_488_max": 0.0, "check_interval_seconds": 0.2}
    d["convergence"]["timeout_seconds"] = 8
    d["recovery"]["timeout_seconds"] = 8
    d["method"]["hold_seconds"] = 1.5
    d.pop("window")


def controller(tmp_path, twin, load, guardrails=None):
    def full(d):
        edit(d)
        d["guardrails"] = guardrails or []
    exp = load_experiment(experiment(tmp_path, "genesys-trunk-failover", full))
    conn = connection_for(exp.platform, twin["_path"])
    adapter = open_adapter(conn)
    plan = prepare(exp, adapter, Resolver.from_endpoints(conn.endpoints_file))
    ctl = Controller(plan, adapter, tmp_path / "run", load=load, install_signals=False)
    return ctl, adapter


def during_fault(ctl_box, bad):
    def outcome():
        ctl = ctl_box[0]
        faulted = ctl.outcome.injected_at is not None and not ctl._rolling_back
        return bad if faulted else "answered"
    return outcome


def test_held_with_load_checks_before_during_and_after(tmp_path, twin, admin):
    before = admin.snapshot()
    load = FakeLoad(lambda: "answered")
    ctl, adapter = controller(tmp_path, twin, load)
    with adapter:
        summary = ctl.run()
    assert summary["verdict"] == "held" and EXIT_FOR_VERDICT["held"] == 0
    phases = {(c["name"], c["phase"]): c["ok"] for c in summary["hypothesis"]}
    for phase in ("before", "during", "after"):
        assert phases[("answer_ratio", phase)] is True
    assert load.started and load.stopped
    records = [json.loads(line) for line in (tmp_path / "run" / "journal.jsonl").read_text().splitlines()]
    ready = next(i for i, r in enumerate(records) if r["type"] == "load_ready")
    first_change = next(i for i, r in enumerate(records) if r["type"] == "change")
    assert ready < first_change          # the fault schedule follows the load
    assert admin.snapshot() == before


def test_guardrail_aborts_and_rolls_back(tmp_path, twin, admin):
    before = admin.snapshot()
    box = []
    load = FakeLoad(during_fault(box, "403"))
    ctl, adapter = controller(tmp_path, twin, load,
                              guardrails=[{"metric": "rate_403", "max": 0.2, "consecutive": 3}])
    box.append(ctl)
    with adapter:
        summary = ctl.run()
    assert summary["verdict"] == "aborted" and summary["exit_code"] == 3
    assert "guardrail rate_403" in summary["reason"]
    assert admin.snapshot() == before


def test_hypothesis_breaks_on_488s_during_the_fault(tmp_path, twin, admin):
    before = admin.snapshot()
    box = []
    ctl, adapter = controller(tmp_path, twin, FakeLoad(during_fault(box, "488")))
    box.append(ctl)
    with adapter:
        summary = ctl.run()
    assert summary["verdict"] == "broken" and summary["exit_code"] == 1
    failed = [c for c in summary["hypothesis"] if c["ok"] is False]
    assert any(c["name"] == "rate_488" and c["phase"] == "during" for c in failed)
    assert admin.snapshot() == before


def test_no_injection_until_the_load_holds(tmp_path, twin, admin):
    ctl, adapter = controller(tmp_path, twin, FakeLoad(lambda: "answered", holds=False))
    with adapter:
        summary = ctl.run()
    assert summary["verdict"] == "aborted" and "did not reach" in summary["reason"]
    assert admin.ground_truth()["changes"] == []
