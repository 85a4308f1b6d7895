"""``ccharness load``: tagged SIP load without faults, distributed on this machine.

A Locust master in this process and ``--workers`` local worker processes over
loopback; progress lines while it runs; at the end a table of calls by outcome
and setup-time percentiles, and summary.json (plus calls.jsonl and worker logs)
in ``--out``. Exit 0 when calls were answered, 1 when none was, 2 on bad input.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from harness.errors import EXIT_HYPOTHESIS_BROKEN, EXIT_OK

PROGRESS_SECONDS = 5.0


def configure_parser(p) -> None:
    p.add_argument("--target", action="append", required=True, metavar="SIP_URI",
                   help="SIP URI to call (repeat, or comma-separate, for failover order)")
    p.add_argument("--concurrent", type=int, default=10, help="concurrent calls (default 10)")
    p.add_argument("--hold", default="30", help="hold after answer: seconds or fixed:S, "
                   "uniform:A:B, exp:MEAN, normal:MEAN:SD (default 30)")
    p.add_argument("--duration", type=float, default=60.0,
                   help="run time in seconds (default 60)")
    p.add_argument("--out", default=None, help="run directory (default runs/load-<time>)")
    p.add_argument("--workers", type=int, default=2,
                   help="local Locust worker processes (default 2)")
    p.add_argument("--tag", default=None, help="tag value (default: a fresh run id)")
    p.add_argument("--tag-header", default="X-Chaos-Test", help="tag header name")
    p.add_argument("--codecs", default="pcmu,pcma",
                   help="codec offer, best first (pcmu,pcma,g722,...)")
    p.add_argument("--dtmf", default="", help="DTMF digits to send once answered")
    p.add_argument("--dtmf-method", default="rfc2833", choices=["rfc2833", "info"],
                   help="DTMF as RTP events (RFC 4733) or SIP INFO")
    p.add_argument("--ring-timeout", type=float, default=60.0, help="CANCEL unanswered calls after S")
    p.add_argument("--retry", action="store_true", help="on 503/408 try the next --target")
    p.add_argument("--max-calls", type=int, default=None,
                   help="stop placing calls after this many (split across workers)")
    p.add_argument("--endpoints-file", default="", help="twin endpoints JSON (trunk ids)")
    p.add_argument("--master-port", type=int, default=0,
                   help="Locust master port on --master-bind-host (default: a free port)")
    p.add_argument("--master-bind-host", default="127.0.0.1", metavar="ADDR",
                   help="address the Locust master's worker port binds (default 127.0.0.1; "
                   "another only for external workers in a real deployment)")
    p.add_argument("--expect-workers", type=int, default=0, metavar="N",
                   help="external `locust --worker` processes to wait for, besides --workers")
    p.add_argument("--min-interval", type=float, default=1.0, metavar="S",
                   help="seconds between one caller's call starts, at least (default 1)")
    p.add_argument("--spawn-rate", type=float, default=None, help="callers started per second")


def run(args) -> int:
    from harness.load.preflight import check_reachable  # noqa: PLC0415
    from harness.load.session import LoadSession  # noqa: PLC0415 - imports locust first

    targets = [t.strip() for item in args.target for t in item.split(",") if t.strip()]
    for t in targets:
        check_reachable(t)
    out = Path(args.out or time.strftime("runs/load-%Y%m%dT%H%M%S"))
    session = LoadSession(targets, concurrent=args.concurrent, hold=args.hold,
                          duration=args.duration, tag=args.tag, workers=args.workers,
                          out_dir=str(out), codecs=args.codecs, tag_header=args.tag_header,
                          dtmf=args.dtmf, dtmf_method=args.dtmf_method,
                          ring_timeout=args.ring_timeout, retry=args.retry,
                          spawn_rate=args.spawn_rate, endpoints_file=args.endpoints_file,
                          master_port=args.master_port, max_calls=args.max_calls,
                          min_interval=args.min_interval, master_host=args.master_bind_host,
                          expect_workers=args.expect_workers)
    logging.getLogger("locust").setLevel(logging.WARNING)
    with session:
        print(f"load: {args.concurrent} calls to {', '.join(targets)} for {args.duration:g} s, "
              f"{args.workers} workers, tag {session.tag}", flush=True)
        session.start()
        _progress(session)
        session.stop()
        summary = _summary(session)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(render_table(summary))
    print(f"summary: {out / 'summary.json'}")
    return summary["exit_code"]


def _progress(session) -> None:
    t0 = time.time()
    while True:
        left = session.duration - (time.time() - t0)
        if left <= 0 or not session.wait(min(PROGRESS_SECONDS, left)):
            break
        s = session.sink
        outcomes = " ".join(f"{k}={v}" for k, v in sorted(s.by_outcome.items())) or "-"
        print(f"[{time.time() - t0:5.0f}s] active {session.active_calls:4d}  ended {s.total:6d}  "
              f"{outcomes}", flush=True)


def _summary(session) -> dict:
    load = session.summary()
    answered = load["calls_by_outcome"].get("answered", 0)
    held = answered > 0
    return {
        "verdict": "held" if held else "broken",
        "exit_code": EXIT_OK if held else EXIT_HYPOTHESIS_BROKEN,
        "experiment": None, "platform": None,
        "started_at": load["started_at"], "ended_at": load["ended_at"],
        "calls_by_code": load["calls_by_code"],
        "license_rejections": load["license_rejections"],
        "mttr": None, "ground_truth": None,
        "hypothesis": [{"name": "calls are answered", "held": held,
                        "detail": f"{answered} of {load['calls_total']} answered"}],
        "journal": None, "report": None, "load": load,
    }


def render_table(summary: dict) -> str:
    load = summary["load"]
    total = load["calls_total"] or 1
    lines = [f"{'outcome':<10}{'calls':>8}{'share':>9}"]
    order = ["answered", "408", "487", "488", "403", "503", "other"]
    for k in order:
        n = load["calls_by_outcome"].get(k, 0)
        if n:
            lines.append(f"{k:<10}{n:>8}{100 * n / total:>8.1f}%")
    lines.append(f"{'total':<10}{load['calls_total']:>8}")
    pct = load["setup_seconds"]
    ms = "  ".join(f"{k} {v * 1000:.1f} ms" if v is not None else f"{k} -" for k, v in pct.items())
    lines.append(f"setup time (answered): {ms}")
    return "\n".join(lines)

