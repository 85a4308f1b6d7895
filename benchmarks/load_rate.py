"""Benchmark 2: sustained call rate with 1-second holds.

    .venv/bin/python -m benchmarks.load_rate [--concurrent 120] [--hold 1]
                                             [--duration 30] [--workers 2]

CONCURRENT callers place calls back to back against ``sipp -sn uas``; the rate is
the number of calls that were sent (INVITE) in the window from steady state to the
end, per second, with the outcome mix and the CPU of the whole ccharness tree.
Goal (issue 3): 100 calls/s on this 2-core machine.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

from harness.load.session import LoadSession  # first: Locust patches gevent

from benchmarks.load_common import cpu_seconds, delta, machine_note, sipp_uas, tree


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--concurrent", type=int, default=120)
    ap.add_argument("--hold", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    print(machine_note())
    records = []
    with sipp_uas() as (uri, uas), LoadSession(
            [uri], concurrent=a.concurrent, hold=f"fixed:{a.hold}", duration=a.duration,
            workers=a.workers, on_records=records.extend) as s:
        s.start()
        s.wait_until_steady(60)
        procs = tree(exclude=[uas.pid])
        t0, c0 = time.time(), cpu_seconds(procs)
        time.sleep(a.duration)
        t1, used = time.time(), delta(c0, cpu_seconds(procs))
        s.stop()
    window = [r for r in records if t0 <= r["invite_at"] < t1]
    mix = Counter(r["outcome"] for r in window)
    print(f"window {t1 - t0:.1f} s: {len(window)} calls started = {len(window) / (t1 - t0):.1f} "
          f"calls/s (goal 100); outcomes {dict(mix)}")
    print(f"CPU of ccharness: {used:.1f} s = {used / (t1 - t0):.2f} cores")


if __name__ == "__main__":
    main()
