"""How long `ccharness report` takes on a large run directory (streaming, flat memory).

Writes N synthetic per-call records (plus one answer event per answered call and a
journal with one injection) into a temp run directory, then times
``harness.report.build.rebuild`` and reports its peak RSS growth.

    .venv/bin/python benchmarks/metrics_report.py --calls 200000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import psutil

from harness.report.build import rebuild


def write_run(run_dir: Path, calls: int, rate: float = 100.0) -> None:
    rng = random.Random(1)
    t0 = 1_764_770_000.0
    inject = t0 + calls / rate / 2
    with open(run_dir / "calls.jsonl", "w") as c, open(run_dir / "events.jsonl", "w") as e:
        for i in range(calls):
            at = t0 + i / rate
            fault = inject <= at < inject + 20
            outcome, code = ("408", 408) if fault and rng.random() < 0.5 else ("answered", 200)
            trunk = "S" if at >= inject + 15 else "P"
            setup = 32.0 if code == 408 else rng.uniform(0.05, 1.0)
            rec = {"call_id": f"c{i}", "tag": "bench", "entry_trunk": "P", "trunk": trunk,
                   "outcome": outcome, "code": code, "reason": "", "invite_at": at,
                   "answered_at": at + setup if code == 200 else None, "ended_at": at + setup,
                   "setup_seconds": setup, "worker": "w:1"}
            c.write(json.dumps(rec) + "\n")
            if code == 200:
                e.write(json.dumps({"type": "answer", "timestamp": at + setup, "callId": f"c{i}",
                                    "tag": "bench", "entryTrunkId": "P", "trunkId": trunk,
                                    "queueId": "Q", "viaFailover": trunk != "P"}) + "\n")
    journal = [{"type": "start", "at": t0}, {"type": "transition", "at": inject - 1, "to": "injecting"},
               {"type": "change", "at": inject, "target": "trunk:P", "body": {"status": "Inactive"}},
               {"type": "transition", "at": inject + 30, "to": "rolling_back"}]
    (run_dir / "journal.jsonl").write_text("".join(json.dumps(j) + "\n" for j in journal))
    (run_dir / "summary.json").write_text(json.dumps({"verdict": "held", "experiment": "bench"}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200_000)
    args = ap.parse_args(argv)
    proc = psutil.Process(os.getpid())
    with tempfile.TemporaryDirectory(prefix="ccharness-report-") as tmp:
        run_dir = Path(tmp)
        write_run(run_dir, args.calls)
        size = (run_dir / "calls.jsonl").stat().st_size / 2**20
        before = proc.memory_info().rss
        start = time.perf_counter()
        summary = rebuild(run_dir)
        took = time.perf_counter() - start
        after = proc.memory_info().rss
        print(f"metrics_report: {args.calls} calls ({size:.0f} MiB calls.jsonl): rebuild {took:.1f} s, "
              f"{args.calls / took:,.0f} calls/s, RSS +{(after - before) / 2**20:.1f} MiB; "
              f"MTTR {summary['mttr']['mttr_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
