"""``ccharness report RUN_DIR``: rebuild report.html, junit.xml and summary.json's derived fields."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import EXIT_OK, ConfigError
from harness.report.build import REPORT_FILE, rebuild


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (holds calls.jsonl, "
                        "events.jsonl, journal.jsonl, summary.json)")
    parser.add_argument("--window", type=float, default=5.0, metavar="SECONDS",
                        help="answer-ratio window for the time to recover (default 5)")
    parser.add_argument("--band", type=float, default=0.05,
                        help="how far below the baseline answer ratio still counts as recovered "
                             "(default 0.05)")
    parser.add_argument("--baseline", type=float, default=60.0, metavar="SECONDS",
                        help="baseline span before the injection (default 60)")


def run(args: argparse.Namespace) -> int:
    """Rebuild the report; exit 0 (the run's own verdict stays in summary.json)."""
    run_dir = Path(args.run_dir)
    if not args.window > 0 or not args.baseline > 0:
        raise ConfigError("--window and --baseline must be positive seconds")
    if not 0 <= args.band < 1:
        raise ConfigError(f"--band must be in [0, 1), got {args.band}")
    summary = rebuild(run_dir, window_s=args.window, band=args.band, baseline_s=args.baseline)
    mttr = summary.get("mttr") or {}
    print(f"{run_dir / REPORT_FILE}: verdict {summary.get('verdict') or 'n/a'}, "
          f"MTTR {mttr.get('mttr_s')} s (analytics {mttr.get('analytics_mttr_s')} s), "
          f"{sum((summary.get('calls_by_code') or {}).values())} calls")
    return EXIT_OK
