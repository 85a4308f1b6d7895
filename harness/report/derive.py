"""The summary's derived fields, computed from the files of a run directory.

Reads (CONTRACTS section 7): ``calls.jsonl`` (per-call records), ``events.jsonl``
(platform events), ``journal.jsonl`` (controller), and when present
``analytics.jsonl`` (analytics polls) and ``ground_truth.json`` (the twin's
``GET /twin/v1/ground-truth`` body). Every file is streamed; none is held whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from harness.errors import ConfigError
from harness.metrics import mttr as m
from harness.metrics.analytics import ANALYTICS_FILE
from harness.metrics.recorder import CALLS_FILE, EVENTS_FILE, iter_jsonl
from harness.report.aggregate import CallStats, aggregate, outcomes_from_events
from harness.report.timeline import Timeline, read_timeline

JOURNAL_FILE = "journal.jsonl"
GROUND_TRUTH_FILE = "ground_truth.json"
SUMMARY_FILE = "summary.json"


@dataclass
class Derived:
    timeline: Timeline
    stats: CallStats
    mttr: m.MttrResult
    ground_truth: dict[str, Any] | None
    extra: dict[str, Any]

    has_calls: bool = True
    plot_stats: CallStats | None = None   # outcomes over time when there are no call records

    def summary_fields(self, existing: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The keys this part owns in summary.json (CONTRACTS section 7), merged over
        ``existing`` (the controller's): a figure the files cannot give (no calls.jsonl,
        no ground_truth.json, an MTTR part without data) keeps the controller's value.
        """
        existing = existing or {}
        out: dict[str, Any] = {"measurements": self.extra, "journal": JOURNAL_FILE,
                               "report": "report.html"}
        if self.has_calls or "calls_by_code" not in existing:
            out["calls_by_code"] = self.stats.calls_by_code()
            out["license_rejections"] = self.stats.license_rejections
        old_mttr = existing.get("mttr") or {}
        mttr = {k: (v if v is not None else old_mttr.get(k)) for k, v in self.mttr.as_dict().items()}
        out["mttr"] = mttr
        truth = self.ground_truth or existing.get("ground_truth")
        if truth is not None:
            out["ground_truth"] = m.compare_ground_truth(mttr["mttr_s"], truth.get("mttr_s"))
        return out


def check_run_dir(run_dir: Path) -> None:
    if not run_dir.is_dir():
        raise ConfigError("not a directory", path=str(run_dir))
    if not any((run_dir / f).exists() for f in (CALLS_FILE, JOURNAL_FILE, SUMMARY_FILE)):
        raise ConfigError(f"not a run directory (no {CALLS_FILE}, {JOURNAL_FILE} or "
                          f"{SUMMARY_FILE})", path=str(run_dir))


def derive(run_dir: str | Path, *, window_s: float = 5.0, band: float = 0.05,
           baseline_s: float = 60.0) -> Derived:
    """Compute every derived figure of the run in ``run_dir``."""
    run_dir = Path(run_dir)
    check_run_dir(run_dir)
    timeline = read_timeline(iter_jsonl(run_dir / JOURNAL_FILE))
    stats = aggregate(iter_jsonl(run_dir / CALLS_FILE), timeline.injected_at, window_s)
    has_calls = stats.calls > 0   # an API-only run leaves an empty calls.jsonl
    tag = _run_tag(run_dir / CALLS_FILE)
    extra: dict[str, Any] = {
        "calls": stats.calls, "tag": tag, "injected_at": timeline.injected_at,
        "rollback_at": timeline.rollback_at, "trunk_id": timeline.trunk_id,
        "setup_seconds": stats.setup_percentiles(),
    }
    result = _mttr(run_dir, timeline, stats, tag, extra, window_s=window_s, band=band,
                   baseline_s=baseline_s)
    truth = _ground_truth(run_dir, timeline, result.mttr_s, extra)
    derived = Derived(timeline, stats, result, truth, extra, has_calls)
    if not has_calls:
        # the plot still shows what the platform did, from its events
        derived.plot_stats = outcomes_from_events(iter_jsonl(run_dir / EVENTS_FILE))
        extra["outcomes_source"] = "platform events"
    return derived


def _run_tag(calls: Path) -> str | None:
    """The run's tag: the tag header value of its first record (all share it)."""
    return next((r.get("tag") for r in iter_jsonl(calls)), None)


def _mttr(run_dir: Path, tl: Timeline, stats: CallStats, tag: str | None, extra: dict[str, Any], *,
          window_s: float, band: float, baseline_s: float) -> m.MttrResult:
    t0 = tl.injected_at
    if t0 is None:
        extra["mttr_source"] = None
        return m.MttrResult(None, None, None, None, None)
    # Call records were read once (``stats``); events are smaller and read per figure.
    events = lambda: iter_jsonl(run_dir / EVENTS_FILE)  # noqa: E731
    answer = m.failover_answer_event(events(), t0, tag)
    if answer is not None:
        mttr_s, source = float(answer["timestamp"]) - t0, "answer events"
    else:
        mttr_s, source = m.mttr_from_records(iter_jsonl(run_dir / CALLS_FILE), t0, tag), "call records"
    extra["mttr_source"] = source if mttr_s is not None else None
    queue_id = answer.get("queueId") if answer else None
    extra["analytics_queue_id"] = queue_id
    return m.MttrResult(
        detect_s=_first_known(lambda: stats.detect_s, lambda: m.time_to_detect_events(events(), t0)),
        converge_s=m.time_to_converge(events(), t0, tl.trunk_id),
        mttr_s=mttr_s,
        recover_s=m.recover_from_windows(stats.ratio_windows(), baseline_s=baseline_s,
                                         window_s=window_s, band=band),
        analytics_mttr_s=m.analytics_mttr(iter_jsonl(run_dir / ANALYTICS_FILE), t0, queue_id),
    )


def _first_known(*figures):
    """The first figure (computed lazily) that is not None."""
    for figure in figures:
        value = figure()
        if value is not None:
            return value
    return None


def _ground_truth(run_dir: Path, tl: Timeline, mttr_s: float | None,
                  extra: dict[str, Any]) -> dict[str, Any] | None:
    path = run_dir / GROUND_TRUTH_FILE
    if not path.exists():
        return None
    try:
        truth = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"unreadable ground truth: {exc}", path=str(path)) from exc
    extra["ground_truth_broken_cdrs"] = truth.get("brokenCdrs")
    return m.compare_ground_truth(mttr_s, m.ground_truth_mttr(truth, tl.trunk_id, tl.injected_at))
