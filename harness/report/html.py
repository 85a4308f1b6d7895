"""report.html: one self-contained page (no external assets) with the run's story.

The figures are embedded as JSON and drawn on canvases by inline JavaScript; the page
checks its own plots and sets ``#render-status[data-ok]`` to ``yes`` when each canvas
has ink, so a headless browser can verify it (tests/report/test_html_chromium.py).
"""

from __future__ import annotations

import html
import json
import time
from importlib import resources
from typing import Any, Mapping

from harness.report.derive import Derived
from harness.report.junit import check_detail, check_name, check_passed, checks_of

VERDICT_HEAD = {
    "held": "The contact centre survived: the steady-state hypothesis held.",
    "broken": "The contact centre did not survive the fault: the hypothesis broke.",
    "aborted": "The run was aborted by a guard before the experiment finished.",
    "rollback_failed": "Rollback could not be verified: a fault may still be in place.",
}


def _s(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1f} s"


def verdict_words(summary: Mapping[str, Any], d: Derived) -> list[str]:
    """The verdict and the recovery story in plain sentences."""
    verdict = summary.get("verdict")
    words = [VERDICT_HEAD.get(verdict, "No verdict was recorded for this run.")]
    failed = [check_name(c) for _, c in checks_of(summary) if check_passed(c) is False]
    if failed:
        words.append("Failed checks: " + "; ".join(str(n) for n in failed) + ".")
    if summary.get("reason"):
        words.append(f"Reason: {summary['reason']}.")
    for item in summary.get("remaining_changes") or []:
        words.append(f"STILL CHANGED: {item.get('name')} ({item.get('target')}): "
                     f"{item.get('problem')}; undo: {item.get('undo')}")
    if verdict == "rollback_failed":
        words.append("Undo what remains with `ccharness rollback --journal journal.jsonl`.")
    words.extend(_recovery_words(d))
    return words


def _recovery_words(d: Derived) -> list[str]:
    mt, calls = d.mttr, d.stats.calls
    if d.timeline.injected_at is None:
        return [f"No fault was injected; {calls} calls were placed."]
    out = []
    seen = calls or (d.plot_stats.calls if d.plot_stats else 0)
    if mt.mttr_s is None and not seen:
        out.append(f"No calls were placed during this run (API-only): MTTR was not measured; "
                   f"routing converged after {_s(mt.converge_s)}.")
    elif mt.mttr_s is None:
        out.append("No call was answered through the failover path after the injection: "
                   "the contact centre did not recover within the run.")
    else:
        out.append(f"Calls were answered through the failover path {_s(mt.mttr_s)} after the "
                   f"injection (MTTR, from {d.extra.get('mttr_source')}); the first failure "
                   f"showed after {_s(mt.detect_s)}, routing converged after {_s(mt.converge_s)}, "
                   f"and the answer ratio was back in its baseline band after {_s(mt.recover_s)}.")
    if mt.analytics_mttr_s is not None and mt.mttr_s is not None:
        out.append(f"The batched analytics endpoints showed the recovery only after "
                   f"{_s(mt.analytics_mttr_s)}, {mt.analytics_mttr_s - mt.mttr_s:.1f} s late: an MTTR "
                   "read from analytics would be wrong by that much.")
    gt = d.ground_truth
    if gt and gt.get("mttr_s") is not None:
        out.append(f"The twin's ground truth MTTR is {_s(gt['mttr_s'])}; ours differs by "
                   f"{(gt.get('difference_s') or 0) * 1000:.0f} ms.")
    rej = d.stats.license_rejections
    if rej:
        out.append(f"{rej} calls were refused with 403 License Exceeded: the licence ceiling was reached.")
    return out


def report_data(summary: Mapping[str, Any], d: Derived) -> dict[str, Any]:
    checks = [{"kind": kind, "name": check_name(c), "passed": check_passed(c),
               "detail": check_detail(c)} for kind, c in checks_of(summary)]
    started = summary.get("started_at") or d.timeline.started_at
    meta = (f"experiment {summary.get('experiment') or 'n/a'} on {summary.get('platform') or 'n/a'}; "
            f"{d.stats.calls} calls")
    if started:
        meta += "; started " + time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started))
    return {
        "verdict": summary.get("verdict"), "verdict_words": verdict_words(summary, d),
        "meta": meta, "series": (d.plot_stats or d.stats).series(),
        "series_source": "platform events (no call records)" if d.plot_stats else "call records", "injected_at": d.timeline.injected_at,
        "rollback_at": d.timeline.rollback_at, "mttr": d.mttr.as_dict(),
        "ground_truth": d.ground_truth, "setup_seconds": d.stats.setup_percentiles(),
        "calls_by_code": d.stats.calls_by_code(), "license_rejections": d.stats.license_rejections,
        "checks": checks,
    }


def render_html(summary: Mapping[str, Any], d: Derived) -> str:
    template = resources.files("harness.report").joinpath("report_template.html").read_text("utf-8")
    data = json.dumps(report_data(summary, d), separators=(",", ":"))
    # Inside <script>, only "</" can end the element early; escape it.
    data = data.replace("</", "<\\/")
    title = html.escape(str(summary.get("experiment") or "run report"))
    return template.replace("__TITLE__", title).replace("__DATA__", data)
