"""Soak check of the master-side measurement path: sink -> exporter -> disk.

Drives a MetricsSession as the controller wires it (HTTP exporter on a free port,
ticker flushing metrics.prom, soak report rebuilt every ``--report-every`` seconds):
per-call records in batches into ``session.recorder`` (as the load side's master sink
does), journal records (phases, an injection, API calls), answer events and analytics
polls; scrapes the exporter over HTTP once a second (as Prometheus would). Prints RSS
after the first minute and at the end; goal: growth under 10% after the first minute.

Records are SYNTHETIC (realistic mix of outcomes, trunks and setup times) unless the
load side's records are fed some other way; the output says so.

    .venv/bin/python benchmarks/metrics_soak.py --duration 600 --rate 100
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time

import httpx
import psutil

from harness.metrics.session import MetricsSession

TRUNKS = ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"]
MIX = [("answered", 200, "OK", 0.85), ("408", 408, "Request Timeout", 0.05),
       ("487", 487, "Request Terminated", 0.04), ("488", 488, "Not Acceptable Here", 0.02),
       ("403", 403, "License Exceeded", 0.03), ("503", 503, "Service Unavailable", 0.01)]


def synthetic_batch(rng: random.Random, n: int, seq: int, now: float) -> list[dict]:
    out = []
    for i in range(n):
        outcome, code, reason, _ = rng.choices(MIX, weights=[m[3] for m in MIX])[0]
        setup = 32.0 if code == 408 else rng.uniform(0.05, 1.5)
        invite = now - setup
        entry = TRUNKS[0]
        trunk = rng.choice(TRUNKS) if outcome == "answered" else entry
        out.append({"call_id": f"soak-{seq + i}", "tag": "soak", "target": "sip:chaos@127.0.0.1:5070",
                    "entry_trunk": entry, "trunk": trunk, "outcome": outcome, "code": code,
                    "reason": reason, "invite_at": invite, "first_18x_at": invite + 0.02,
                    "answered_at": now if outcome == "answered" else None, "bye_at": None,
                    "ended_at": now, "setup_seconds": setup, "worker": f"w{i % 4}:{1000 + i % 4}"})
    return out


def report_hook():
    try:
        from harness.report.build import rebuild
    except ImportError:
        return None
    return rebuild


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    ap.add_argument("--rate", type=float, default=100.0, help="records per second (default 100)")
    ap.add_argument("--report-every", type=float, default=60.0, help="soak report period, s")
    ap.add_argument("--out", help="run directory (default: a temp dir, removed after)")
    args = ap.parse_args(argv)
    proc = psutil.Process(os.getpid())
    tmp = None if args.out else tempfile.TemporaryDirectory(prefix="ccharness-soak-")
    run_dir = args.out or tmp.name
    hook = report_hook()
    session = MetricsSession(run_dir, trunks=TRUNKS, port=0, flush_every_s=5,
                             soak_report_every_s=args.report_every if hook else None, report=hook)
    print(f"metrics_soak: SYNTHETIC records at {args.rate:.0f}/s for {args.duration:.0f} s "
          f"(the load side's sink is not wired in this benchmark), scraped over HTTP each second, "
          f"report rebuild {'every %.0f s' % args.report_every if hook else 'not available'}",
          flush=True)
    rng = random.Random(7)
    start = time.time()
    seq, rss_1min, samples = 0, None, []
    tick = 0.5
    session.on_journal({"type": "transition", "at": start, "to": "baseline"})
    session.on_journal({"type": "transition", "at": start, "to": "injecting"})
    session.on_journal({"type": "change", "at": start, "target": f"trunk:{TRUNKS[0]}",
                        "body": {"status": "Inactive"}})
    http = httpx.Client(timeout=5)
    while (elapsed := time.time() - start) < args.duration:
        now = time.time()
        n = rng.randint(int(args.rate * tick * 0.5), int(args.rate * tick * 1.5))
        batch = synthetic_batch(rng, n, seq, now)
        session.recorder(batch)
        seq += n
        for rec in batch:
            if rec["outcome"] == "answered":
                session.on_event({"type": "answer", "timestamp": now, "entryTrunkId": rec["entry_trunk"],
                                  "trunkId": rec["trunk"], "queueId": "q", "viaFailover": rec["trunk"] != rec["entry_trunk"]})
        session.metrics.set_active_calls(rng.randint(10, 40), worker="w0")
        session.on_journal({"type": "call", "at": now, "method": "GET", "status": 200, "duration_s": 0.01,
                            "path": f"/api/v2/analytics/queues/{TRUNKS[1]}/realtime"})
        session.metrics.observe_analytics_polls([{"queueId": "q", "answeredCalls": seq, "polled_at": now,
                                                  "asOf": now - 100}])
        if int(elapsed * 2) % 2 == 0:
            http.get(session.server.url)  # one scrape a second
        if rss_1min is None and elapsed >= 60:
            rss_1min = proc.memory_info().rss
            print(f"metrics_soak: rss at 1 min {rss_1min / 2**20:.1f} MiB, {seq} records", flush=True)
        if int(elapsed) % 60 == 0 and (not samples or int(elapsed) != samples[-1][0]):
            samples.append((int(elapsed), proc.memory_info().rss))
        time.sleep(tick)
    http.close()
    session.close()
    rss_end = proc.memory_info().rss
    base = rss_1min or samples[0][1]
    growth = (rss_end - base) / base * 100
    print(f"metrics_soak: rss at end {rss_end / 2**20:.1f} MiB after {time.time() - start:.0f} s, "
          f"{seq} records, growth after first minute {growth:+.1f}% "
          f"({'OK' if growth < 10 else 'OVER'} goal <10%)")
    print("metrics_soak: rss per minute (MiB): "
          + " ".join(f"{t // 60}m={r / 2**20:.1f}" for t, r in samples))
    if tmp:
        tmp.cleanup()
    return 0 if growth < 10 else 1


if __name__ == "__main__":
    sys.exit(main())
