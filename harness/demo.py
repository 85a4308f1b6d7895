"""``ccharness demo``: the main job in one command, on the embedded platform twin.

Theory of operation: start the twin (``ccharness emulator``) in its own process
group, so that a Ctrl-C in the terminal reaches this process (which rolls back) but
not the twin (which must stay up to be rolled back); run the bundled experiment for
the chosen platform through the same controller as ``ccharness run`` (Locust master
in this process, local worker processes over loopback, fault controller, metrics
exporter); print a progress line every few seconds and a summary table at the end;
stop the twin; exit with the verdict's code (0 held, 1 broken, 3 aborted, 4 rollback
not verified).

``--endpoints-file`` uses a twin that is already running instead (the demo then
leaves it running), which is how the tests compare the twin's trunks before and after.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness.errors import ConfigError

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"
DEMO_EXPERIMENTS = {"genesys": "demo-genesys.yaml", "cxone": "demo-cxone.yaml"}
FAST_TIME_SCALE = 0.1
DEFAULT_METRICS_PORT = 9646
TWIN_START_TIMEOUT = 30.0


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--platform", choices=sorted(DEMO_EXPERIMENTS), default="genesys",
                        help="which bundled experiment: Genesys trunk failover (default) or "
                             "CXone health-score failover")
    parser.add_argument("--fast", action="store_true",
                        help=f"run the twin's delays (and the demo's own schedule) at x{FAST_TIME_SCALE}: "
                             "a run of about a minute")
    parser.add_argument("--time-scale", type=float, metavar="X",
                        help="the twin's delay multiplier (default 1.0, or "
                             f"{FAST_TIME_SCALE} with --fast)")
    parser.add_argument("--experiment", metavar="FILE",
                        help="run this experiment instead of the bundled one (platform: twin)")
    parser.add_argument("--out", metavar="DIR", help="run directory (default runs/<time>-demo-...)")
    parser.add_argument("--runs-dir", metavar="DIR", default="runs",
                        help="where runs and journals live (default ./runs)")
    parser.add_argument("--metrics-port", type=int, default=DEFAULT_METRICS_PORT, metavar="N",
                        help=f"live Prometheus exporter on 127.0.0.1:N (default {DEFAULT_METRICS_PORT}; 0 = off)")
    parser.add_argument("--metrics-host", metavar="ADDR", default="127.0.0.1",
                        help="address the metrics exporter binds (default 127.0.0.1)")
    parser.add_argument("--endpoints-file", metavar="PATH",
                        help="use a twin that is already running (its endpoints file) instead of "
                             "starting one")
    parser.add_argument("--progress-every", type=float, default=3.0, metavar="S",
                        help="seconds between progress lines (default 3)")


def run(args: argparse.Namespace) -> int:
    # Locust must monkey-patch gevent before httpx/ssl are imported.
    from harness.control.loadlink import session_class
    session_class()
    from harness.control import cli as run_cli
    from harness.experiment.loader import load_experiment

    time_scale = args.time_scale or (FAST_TIME_SCALE if args.fast else 1.0)
    if time_scale <= 0:
        raise ConfigError(f"--time-scale must be > 0, got {time_scale}")
    if not 0 <= args.metrics_port <= 65535:
        raise ConfigError(f"--metrics-port must be 0..65535, got {args.metrics_port}")
    experiment = Path(args.experiment) if args.experiment else EXPERIMENTS / DEMO_EXPERIMENTS[args.platform]
    exp = load_experiment(str(experiment))
    if time_scale < 1.0:
        exp = scale_method(exp, time_scale)
    runs_dir = Path(args.runs_dir)
    run_dir = Path(args.out) if args.out else runs_dir / run_cli.run_name(f"demo-{args.platform}")
    run_cli.refuse_unresolved(runs_dir, run_dir.parent)
    run_dir.mkdir(parents=True, exist_ok=True)

    twin = None
    endpoints_file = args.endpoints_file
    if endpoints_file is None:
        twin = TwinProcess(run_dir, time_scale)
        endpoints_file = str(twin.start())
    try:
        print(f"ccharness demo: {exp.name} on the twin (time scale {time_scale:g}), "
              f"run directory {run_dir}", flush=True)
        if args.metrics_port:
            print(f"ccharness demo: Prometheus metrics on http://{args.metrics_host}:{args.metrics_port}/metrics",
                  flush=True)
        progress = Progress(time.time(), args.progress_every)
        summary = run_cli.execute(exp, endpoints_file, run_dir, metrics_port=args.metrics_port or None,
                                  metrics_host=args.metrics_host, observers=progress)
        progress.stop()
    finally:
        if twin is not None:
            twin.stop()
    print_summary(summary, run_dir)
    return run_cli.report(summary, run_dir, run_cli.exit_codes(), prog="ccharness demo")


MIN_PHASE_S = 5.0   # a baseline or hold shorter than this measures too few calls
MIN_STEP_FACTOR = 0.25  # steps stay far enough apart to outlast the twin's propagation jitter


def scale_method(exp, factor: float):
    """The experiment with its own schedule (baseline, step times, hold) scaled like the
    twin's delays, so a fast twin makes a fast demo. Baseline and hold keep at least
    MIN_PHASE_S so the hypothesis still sees enough calls; steps are scaled no further
    than MIN_STEP_FACTOR, so each keeps a window of its own; timeouts are left alone."""
    import dataclasses

    m = exp.method
    method = dataclasses.replace(
        m, baseline_s=max(MIN_PHASE_S, m.baseline_s * factor), hold_s=max(MIN_PHASE_S, m.hold_s * factor),
        steps=tuple(dataclasses.replace(step, at_s=step.at_s * max(factor, MIN_STEP_FACTOR))
                    for step in m.steps))
    return dataclasses.replace(exp, method=method)


class TwinProcess:
    """``ccharness emulator`` as a child in its own session (Ctrl-C does not reach it)."""

    def __init__(self, run_dir: Path, time_scale: float):
        self.run_dir = run_dir
        self.time_scale = time_scale
        self.endpoints = run_dir / "twin-endpoints.json"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Path:
        log = open(self.run_dir / "twin.log", "wb")
        cmd = [sys.executable, "-m", "harness.cli", "emulator", "--endpoints-file", str(self.endpoints),
               "--time-scale", repr(self.time_scale)]
        # stdout carries the endpoints JSON (with the demo client's secret): not logged.
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + TWIN_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.endpoints.exists():
                return self.endpoints
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        tail = (self.run_dir / "twin.log").read_text(errors="replace")[-600:]
        raise ConfigError(f"the twin did not start (see {self.run_dir / 'twin.log'}): {tail.strip()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


class Progress:
    """Live progress: phase, elapsed time, calls up, answer ratio, 408/487/488/403 counts.

    Fed by the controller's journal (phase), the record sink (finished calls) and the
    load session (calls up); prints one line every ``every`` seconds from a greenlet.
    """

    WATCHED = ("408", "487", "488", "403", "503")

    def __init__(self, started: float, every: float):
        import gevent

        self.started, self.every = started, every
        self.phase = "starting"
        self.calls = 0
        self.answered = 0
        self.codes = dict.fromkeys(self.WATCHED, 0)
        self.recent: list[tuple[float, bool]] = []
        self.load = None
        self._greenlet = gevent.spawn(self._loop) if every > 0 else None

    # observers ---------------------------------------------------------------------
    def on_journal(self, record: dict) -> None:
        if record.get("type") == "transition":
            self.phase = record.get("to", self.phase)
            self.print_line()

    def on_records(self, records: list[dict]) -> None:
        now = time.time()
        for r in records:
            self.calls += 1
            ok = r.get("outcome") == "answered"
            self.answered += ok
            code = str(r.get("code"))
            if code in self.codes:
                self.codes[code] += 1
            self.recent.append((now, ok))
        cut = now - 10
        self.recent = [x for x in self.recent if x[0] >= cut]

    def on_load(self, load) -> None:
        self.load = load

    # output ------------------------------------------------------------------------
    def line(self) -> str:
        up = "-"
        if self.load is not None:
            try:
                up = str(self.load.active_calls)
            except Exception:  # the session may be stopping
                up = "-"
        ratio = (sum(ok for _, ok in self.recent) / len(self.recent)) if self.recent else None
        ratio_s = f"{ratio:.2f}" if ratio is not None else "n/a"
        codes = " ".join(f"{c}={n}" for c, n in self.codes.items())
        return (f"[{time.time() - self.started:6.1f}s] phase={self.phase:<12} calls up={up:>3} "
                f"done={self.calls:<5} answer ratio (10 s)={ratio_s:<5} {codes}")

    def print_line(self) -> None:
        print(self.line(), flush=True)

    def _loop(self) -> None:
        import gevent

        while True:
            gevent.sleep(self.every)
            self.print_line()

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None


def print_summary(summary: dict, run_dir: Path) -> None:
    """The closing table: verdict, MTTR and its parts, calls by SIP code, where the report is."""
    mttr = summary.get("mttr") or {}
    truth = summary.get("ground_truth") or {}
    rows = [("verdict", summary.get("verdict", "?") + (f" ({summary['reason']})" if summary.get("reason") else ""))]
    for key, label in (("detect_s", "time to detect"), ("converge_s", "time to converge"),
                       ("mttr_s", "MTTR (first answer via failover)"), ("recover_s", "time to recover"),
                       ("analytics_mttr_s", "MTTR from batched analytics")):
        rows.append((label, _seconds(mttr.get(key), missing="not seen during the run")))
    if truth:
        rows.append(("twin ground truth MTTR", _seconds(truth.get("mttr_s"))))
        diff = truth.get("difference_s")
        rows.append(("difference to ground truth", f"{diff * 1000:.0f} ms" if diff is not None else "n/a"))
    codes = summary.get("calls_by_code") or {}
    rows.append(("calls by SIP code", ", ".join(f"{c}: {n}" for c, n in sorted(codes.items())) or "none"))
    rows.append(("license rejections (403)", str(summary.get("license_rejections", codes.get("403", 0)))))
    for name in ("report.html", "summary.json", "journal.jsonl", "junit.xml", "metrics.prom"):
        if (run_dir / name).exists():
            rows.append((name, str(run_dir / name)))
    width = max(len(k) for k, _ in rows)
    print()
    print("ccharness demo: summary")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    sys.stdout.flush()


def _seconds(value, missing: str = "n/a") -> str:
    return f"{value:.3f} s" if isinstance(value, (int, float)) else missing
