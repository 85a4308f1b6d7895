"""Benchmark 3: CPU-seconds per 1,000 calls: ccharness vs a bare PJSUA2 loop vs SIPp.

    .venv/bin/python -m benchmarks.load_cpu_per_call [--calls 1000] [--hold 1]
                                                     [--concurrent 40] [--workers 2]

All three call the same ``sipp -sn uas`` in one run, one after the other, holding
each call HOLD seconds at CONCURRENT calls at a time:
- ccharness: LoadSession (Locust master here + workers + PJSUA2 engine processes);
  CPU of the whole tree over the steady window, divided by the calls it finished;
- bare PJSUA2: CONCURRENT/4 processes of benchmarks.load_bare_loop, each reporting
  the CPU its loop used (process start-up excluded, as for ccharness);
- SIPp: ``sipp -sn uac -l CONCURRENT -d HOLD -m CALLS``, its whole CPU (rusage).
SIPp sends no RTP here while both PJSUA2 loops do (null audio device), so SIPp is
the signalling-only ceiling. Goal (issue 3): ccharness within 1.25x of bare PJSUA2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time

from harness.load.session import LoadSession  # first: Locust patches gevent

from benchmarks.load_common import cpu_seconds, delta, machine_note, sipp_uas, tree


def rusage_cpu(proc: subprocess.Popen) -> float:
    _, _, ru = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return ru.ru_utime + ru.ru_stime


def ccharness(uri, sipp_pid, calls, hold, concurrent, workers) -> tuple[int, float]:
    duration = calls * hold / concurrent
    with LoadSession([uri], concurrent=concurrent, hold=f"fixed:{hold}", duration=duration,
                     workers=workers) as s:
        s.start()
        s.wait_until_steady(60)
        procs = tree(exclude=[sipp_pid])
        n0, c0, t0 = s.sink.total, cpu_seconds(procs), time.time()
        while s.sink.total - n0 < calls and time.time() - t0 < duration * 3 + 30:
            time.sleep(0.2)
        used, done = delta(c0, cpu_seconds(procs)), s.sink.total - n0
        s.stop()
    return done, used


def bare(uri, calls, hold, concurrent) -> tuple[int, float]:
    n = max(1, concurrent // 4)
    per = math.ceil(calls / n)
    procs = [subprocess.Popen([sys.executable, "-m", "benchmarks.load_bare_loop", uri, str(per),
                               str(hold)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True) for _ in range(n)]
    done = used = 0.0
    for p in procs:
        out, _ = p.communicate(timeout=per * hold * 3 + 60)
        # PJSIP's start-up log lines share stdout; the result is the JSON line.
        r = json.loads(next(ln for ln in out.splitlines() if ln.startswith('{"calls"')))
        done += r["calls"]
        used += r["cpu_s"]
    return int(done), used


def sipp_uac(uri, calls, hold, concurrent) -> tuple[int, float]:
    host_port = uri.split("@", 1)[1]
    p = subprocess.Popen([shutil.which("sipp"), "-sn", "uac", host_port, "-i", "127.0.0.1",
                          "-p", "0", "-l", str(concurrent), "-r", str(concurrent),
                          "-d", str(int(hold * 1000)), "-m", str(calls), "-nostdin"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return calls, rusage_cpu(p)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--hold", type=float, default=1.0)
    ap.add_argument("--concurrent", type=int, default=40)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    print(machine_note())
    rows = {}
    with sipp_uas() as (uri, uas):
        rows["ccharness"] = ccharness(uri, uas.pid, a.calls, a.hold, a.concurrent, a.workers)
        rows["bare PJSUA2"] = bare(uri, a.calls, a.hold, a.concurrent)
        rows["sipp -sn uac"] = sipp_uac(uri, a.calls, a.hold, a.concurrent)
    per = {k: 1000 * used / max(1, done) for k, (done, used) in rows.items()}
    print(f"{'caller':<14}{'calls':>7}{'CPU s':>9}{'CPU s / 1000 calls':>21}")
    for k, (done, used) in rows.items():
        print(f"{k:<14}{done:>7}{used:>9.2f}{per[k]:>21.2f}")
    print(f"ccharness / bare PJSUA2 = {per['ccharness'] / per['bare PJSUA2']:.2f}x (goal <= 1.25x)")


if __name__ == "__main__":
    main()
