"""summary.json (docs/CONTRACTS.md section 7) from a finished Controller.

The controller fills the verdict, exit code, hypothesis checks, convergence and
recovery outcomes, calls by final code, and (on the twin) the ground-truth MTTR. The
metrics/report hook may add or refine ``mttr``, ``report`` and the rest.
"""

from __future__ import annotations

import json

from collections import Counter

from harness.control.hypothesis import worst_per_name


def mttr_seconds(ctl) -> float | None:
    """Injection to the first answer through the failover path (event stream first)."""
    injected = ctl.outcome.injected_at
    if injected is None:
        return None
    try:
        from harness.metrics.mttr import mttr_from_events, mttr_from_records
    except ImportError:  # metrics part not installed: a minimal stand-in
        events = ctl.feed.events if ctl.feed else []
        hits = [e["timestamp"] - injected for e in events
                if e.get("type") == "answer" and e.get("viaFailover") and e.get("timestamp", 0) >= injected]
        return min(hits) if hits else None
    tag = ctl.exp.load.tag if ctl.exp.load else None
    value = mttr_from_events(list(ctl.feed.events) if ctl.feed else [], injected, tag)
    if value is None and ctl.window.all:
        value = mttr_from_records(list(ctl.window.all), injected, tag)
    return value


def build_summary(ctl, started: float) -> dict:
    import time
    from harness.control.controller import EXIT_FOR_VERDICT
    out = ctl.outcome
    codes = Counter()
    for rec in ctl.window.all:
        codes[str(200 if rec.get("outcome") == "answered" else rec.get("code"))] += 1
    mttr_s = mttr_seconds(ctl)
    summary = {
        "verdict": out.verdict,
        "exit_code": EXIT_FOR_VERDICT[out.verdict],
        "reason": out.reason,
        "experiment": ctl.exp.name,
        "experiment_file": ctl.exp.path,
        "platform": ctl.exp.platform.name.value,
        "api": ctl.exp.platform.api.value,
        "started_at": started,
        "injected_at": out.injected_at,
        "ended_at": time.time(),
        "calls_by_code": dict(codes),
        "license_rejections": codes.get("403", 0),
        "mttr": {"detect_s": None, "converge_s": None, "mttr_s": mttr_s, "recover_s": None,
                 "analytics_mttr_s": None},
        "hypothesis": [c.to_json() for c in worst_per_name(out.checks)],
        "convergence": out.convergence,
        "recovery": out.recovery,
        "remaining_changes": out.remaining,
        "api_calls": ctl.adapter.client.calls,
        "journal": "journal.jsonl",
        "report": "report.html",
    }
    if ctl.adapter.is_twin:
        summary["ground_truth"] = _ground_truth(ctl, mttr_s)
    return summary


def _ground_truth(ctl, mttr_s):
    try:
        truth = ctl.adapter.ground_truth()
        from harness.metrics.mttr import compare_ground_truth, ground_truth_mttr
    except Exception:  # informative only
        return {"mttr_s": None, "difference_s": None}
    # The report recomputes the comparison from this file with the injection time the
    # journal gives (a stepped fault is timed from its first step, as MTTR is).
    from harness.metrics.recorder import write_atomic
    write_atomic(ctl.run_dir / "ground_truth.json", json.dumps(truth, indent=1) + "\n")
    changed = ctl.plan.changed_trunks
    return compare_ground_truth(mttr_s, ground_truth_mttr(truth, changed[0] if changed else None))
