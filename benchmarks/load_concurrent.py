"""Benchmark 1: N concurrent calls held H seconds; summed PSS and CPU of ccharness.

    .venv/bin/python -m benchmarks.load_concurrent [--concurrent 200] [--hold 30]
                                                   [--workers 2] [--media null|none]

Peer: ``sipp -sn uas`` on loopback (its own CPU is not counted). ccharness = this
process (the Locust master) + the Locust workers + their PJSUA2 engine processes.
PSS is summed over that tree once all calls are up; CPU is measured over the held
window (from steady to the first hang-ups) and given in cores (1.0 = one core).
Goals (issue 3): under 2 GB PSS and under one core.
"""

from __future__ import annotations

import argparse
import time

from harness.load.session import LoadSession  # first: Locust patches gevent

from benchmarks.load_common import cpu_seconds, delta, machine_note, pss_bytes, sipp_uas, tree


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--concurrent", type=int, default=200)
    ap.add_argument("--hold", type=float, default=30.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--media", default="null", choices=["null", "none"])
    a = ap.parse_args()
    print(machine_note())
    with sipp_uas() as (uri, sipp), LoadSession(
            [uri], concurrent=a.concurrent, hold=f"fixed:{a.hold}", duration=a.hold * 3,
            workers=a.workers, spawn_rate=min(100, a.concurrent), media=a.media) as s:
        procs = tree(exclude=[sipp.pid])
        print(f"processes before start: {len(procs)} (master and {a.workers} workers)")
        s.start()
        t0 = time.time()
        steady = s.wait_until_steady(60)
        t_steady = time.time()
        procs = tree(exclude=[sipp.pid])
        c0 = cpu_seconds(procs)
        pss = pss_bytes(procs)
        window = max(1.0, a.hold - (t_steady - t0) - 1.0)
        time.sleep(window)
        used = delta(c0, cpu_seconds(procs))
        active = s.active_calls
        s.stop()
        summary = s.summary()
    print(f"steady: {steady} after {t_steady - t0:.1f} s; active calls at end of window {active}")
    print(f"PSS total: {pss / 2**20:.0f} MiB over {len(procs)} processes "
          f"({pss / 2**20 / max(1, len(procs)):.1f} MiB each)")
    print(f"CPU while {a.concurrent} calls held: {used:.2f} s over {window:.1f} s "
          f"= {used / window:.2f} cores")
    print(f"calls: {summary['calls_total']} by outcome {summary['calls_by_outcome']}; "
          f"setup p50 {1000 * (summary['setup_seconds']['p50'] or 0):.1f} ms "
          f"p99 {1000 * (summary['setup_seconds']['p99'] or 0):.1f} ms")


if __name__ == "__main__":
    main()
