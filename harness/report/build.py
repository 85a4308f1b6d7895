"""Builds a run's report files from its run directory.

``rebuild(run_dir)`` is the report hook: the fault controller calls it at the end of a
run (after writing summary.json and closing the journal), ``ccharness report RUN_DIR``
calls it later, and soak runs call it periodically (RunRecorder ``report=``). It
merges the derived fields into summary.json (keeping the controller's keys), and
rewrites junit.xml and report.html. ``metrics.prom`` is written by the RunRecorder
(``finalize`` writes it too when given the live metrics).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.metrics.exporter import HarnessMetrics
from harness.metrics.recorder import METRICS_FILE, write_atomic
from harness.report.derive import SUMMARY_FILE, Derived, derive
from harness.report.html import render_html
from harness.report.junit import build_junit

JUNIT_FILE = "junit.xml"
REPORT_FILE = "report.html"


def read_summary(run_dir: Path) -> dict[str, Any]:
    path = run_dir / SUMMARY_FILE
    if not path.exists():
        return {}
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"unreadable summary: {exc}", path=str(path)) from exc
    if not isinstance(summary, dict):
        raise ConfigError("summary is not a JSON object", path=str(path))
    return summary


def rebuild(run_dir: str | Path, **derive_options: Any) -> dict[str, Any]:
    """Rewrite summary.json's derived fields, junit.xml and report.html; return the summary."""
    run_dir = Path(run_dir)
    derived: Derived = derive(run_dir, **derive_options)
    summary = read_summary(run_dir)
    summary.update(derived.summary_fields(summary))
    for key, value in (("started_at", derived.timeline.started_at),
                       ("ended_at", derived.timeline.ended_at)):
        if summary.get(key) is None and value is not None:
            summary[key] = value
    try:
        write_atomic(run_dir / SUMMARY_FILE, json.dumps(summary, indent=2, default=str) + "\n")
        write_atomic(run_dir / JUNIT_FILE, build_junit(summary))
        write_atomic(run_dir / REPORT_FILE, render_html(summary, derived))
    except OSError as exc:
        raise ConfigError(f"cannot write the report: {exc.strerror or exc}", path=str(run_dir)) from exc
    return summary


def finalize(run_dir: str | Path, metrics: HarnessMetrics | None = None, **derive_options: Any) -> dict[str, Any]:
    """End of run: the last exposition to metrics.prom, then ``rebuild``."""
    run_dir = Path(run_dir)
    if metrics is not None:
        write_atomic(run_dir / METRICS_FILE, metrics.exposition())
    return rebuild(run_dir, **derive_options)
