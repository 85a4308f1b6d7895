"""Soak check of the master-side measurement path: sink -> exporter -> disk.

Drives a MetricsSession as the controller wires it (HTTP exporter on a free port,
ticker flushing metrics.prom, soak report rebuilt every ``--report-every`` seconds):
per-call records in batches into ``session.recorder`` (as the load side's master sink
does), journal records (phases, an injection, API calls), answer events and analytics
polls; scrapes the exporter over HTTP once a second (as Prometheus would). Prints RSS
after the first minute and at the end; goal: growth under 10% after the first minute.

Default (``--real``): a REAL load. ``ccharness emulator`` (the twin, default topology)
runs as a subprocess; a LoadSession (Locust master in THIS process, local workers with
PJSUA2 engines) keeps ``--concurrent`` calls of ``--hold`` s up against the twin's
Primary_Carrier_Trunk; the load sink feeds ``MetricsSession.recorder`` as the controller
wires it. ``--synthetic``: the older mode, generated records at ``--rate`` per second.

    .venv/bin/python benchmarks/metrics_soak.py --duration 600 --concurrent 20 --hold 2
    .venv/bin/python benchmarks/metrics_soak.py --synthetic --duration 600 --rate 100
"""

from __future__ import annotations

# First: Locust monkey-patches gevent (and so ssl, threading, time.sleep) on import.
import harness.load.session  # noqa: F401,I001

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--real", dest="real", action="store_true", default=True,
                      help="real load against the twin (default)")
    mode.add_argument("--synthetic", dest="real", action="store_false",
                      help="generated records instead of a real load")
    ap.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    ap.add_argument("--rate", type=float, default=100.0, help="synthetic records per second (default 100)")
    ap.add_argument("--concurrent", type=int, default=20, help="real: concurrent calls (default 20)")
    ap.add_argument("--hold", type=float, default=2.0, help="real: call hold, s (default 2)")
    ap.add_argument("--workers", type=int, default=2, help="real: local Locust workers (default 2)")
    ap.add_argument("--report-every", type=float, default=60.0, help="soak report period, s")
    ap.add_argument("--out", help="run directory (default: a temp dir, removed after)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    tmp = None if args.out else tempfile.TemporaryDirectory(prefix="ccharness-soak-")
    run_dir = args.out or tmp.name
    try:
        return real_soak(args, run_dir) if args.real else synthetic_soak(args, run_dir)
    finally:
        if tmp:
            tmp.cleanup()


class RssProbe:
    """RSS of this (the master) process at 1 min, each minute and at the end."""

    def __init__(self, start: float):
        self.proc, self.start = psutil.Process(os.getpid()), start
        self.rss_1min, self.samples = None, []

    def sample(self, note: str = "") -> None:
        elapsed = time.time() - self.start
        if self.rss_1min is None and elapsed >= 60:
            self.rss_1min = self.proc.memory_info().rss
            print(f"metrics_soak: rss at 1 min {self.rss_1min / 2**20:.1f} MiB{note}", flush=True)
        if not self.samples or int(elapsed) // 60 > self.samples[-1][0] // 60:
            self.samples.append((int(elapsed), self.proc.memory_info().rss))

    def verdict(self, note: str) -> int:
        rss_end = self.proc.memory_info().rss
        base = self.rss_1min or self.samples[0][1]
        growth = (rss_end - base) / base * 100
        print(f"metrics_soak: rss at end {rss_end / 2**20:.1f} MiB after {time.time() - self.start:.0f} s, "
              f"{note}, growth after first minute {growth:+.1f}% "
              f"({'OK' if growth < 10 else 'OVER'} goal <10%)")
        print("metrics_soak: rss per minute (MiB): "
              + " ".join(f"{t // 60}m={r / 2**20:.1f}" for t, r in self.samples), flush=True)
        return 0 if growth < 10 else 1


def start_twin(run_dir: str):
    """``ccharness emulator`` as a subprocess; (process, endpoints dict)."""
    ep = Path(run_dir) / "endpoints.json"
    exe = Path(sys.executable).with_name("ccharness")
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "harness.cli"]
    log = open(Path(run_dir) / "twin.log", "w")
    proc = subprocess.Popen(argv + ["emulator", "--endpoints-file", str(ep)],
                            stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.time() + 30
    while time.time() < deadline and proc.poll() is None:
        if ep.exists():
            try:
                return proc, json.loads(ep.read_text())
            except json.JSONDecodeError:
                pass      # still being written
        time.sleep(0.2)
    stop_twin(proc)
    raise SystemExit(f"metrics_soak: the twin did not start; see {run_dir}/twin.log")


def stop_twin(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def real_soak(args, run_dir: str) -> int:
    from harness.load.session import LoadSession

    twin, ep = start_twin(run_dir)
    try:
        trunks = {t["name"]: t for t in ep["trunks"]}
        target = trunks["Primary_Carrier_Trunk"]["sip_uri"]
        hook = report_hook()
        metrics = MetricsSession(run_dir, trunks=sorted(t["id"] for t in ep["trunks"]), port=0,
                                 flush_every_s=5, report=hook,
                                 soak_report_every_s=args.report_every if hook else None)
        print(f"metrics_soak: REAL load, {args.concurrent} concurrent calls held {args.hold:g} s "
              f"against the twin's {target} for {args.duration:.0f} s, {args.workers} workers; "
              f"exporter scraped over HTTP each second", flush=True)
        try:
            with LoadSession([target], concurrent=args.concurrent, hold=f"fixed:{args.hold:g}",
                             duration=args.duration, workers=args.workers,
                             out_dir=str(Path(run_dir) / "load"),
                             endpoints_file=str(Path(run_dir) / "endpoints.json")) as load:
                load.sink.subscribe(metrics.recorder)
                return soak_loop(args, load, metrics)
        finally:
            metrics.close()
    finally:
        stop_twin(twin)


def soak_loop(args, load, metrics) -> int:
    start = time.time()
    probe = RssProbe(start)
    counts = {"records": 0}
    load.sink.subscribe(lambda recs: counts.__setitem__("records", counts["records"] + len(recs)))
    metrics.on_journal({"type": "transition", "at": start, "to": "baseline"})
    load.start()
    http = httpx.Client(timeout=5)
    scrapes = 0
    try:
        while time.time() - start < args.duration:
            if not load.wait(min(1.0, args.duration - (time.time() - start))):
                break           # SIGTERM
            metrics.metrics.set_active_calls(load.active_calls, worker="master")
            http.get(metrics.server.url)
            scrapes += 1
            probe.sample(f", {counts['records']} records")
        load.stop()
    finally:
        http.close()
    return probe.verdict(f"{counts['records']} call records, {scrapes} scrapes")


def synthetic_soak(args, run_dir: str) -> int:
    proc = psutil.Process(os.getpid())
    hook = report_hook()
    session = MetricsSession(run_dir, trunks=TRUNKS, port=0, flush_every_s=5,
                             soak_report_every_s=args.report_every if hook else None, report=hook)
    print(f"metrics_soak: SYNTHETIC records at {args.rate:.0f}/s for {args.duration:.0f} s "
          f"(the default --real mode runs a real load), scraped over HTTP each second, "
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
    return 0 if growth < 10 else 1


if __name__ == "__main__":
    sys.exit(main())
