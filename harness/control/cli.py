"""``ccharness run EXPERIMENT.yaml [--out DIR] [--dry-run]``.

Order of business: validate the file; refuse to start while a journal in the runs
directory is unresolved; resolve targets and check scopes, blast radius, window and
WFM (all read-only); with ``--dry-run`` print the plan and stop; otherwise run the
controller and exit with the verdict's code (0 held, 1 broken, 3 aborted, 4 rollback
failed: the message names what is still changed and how to undo it).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from harness.control.journal import unresolved_journals
from harness.errors import ConfigError, GuardError
from harness.experiment.loader import load_experiment

# The rest (httpx and everything over it) is imported in run(): an experiment with load
# runs a Locust master in this process, and Locust must monkey-patch gevent before
# ssl/httpx are imported.


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", help="experiment YAML file")
    parser.add_argument("--out", metavar="DIR", help="run directory (default RUNS_DIR/<time>-<name>)")
    parser.add_argument("--dry-run", action="store_true",
                        help="resolve targets, check scopes and blast radius, print the plan; change nothing")
    parser.add_argument("--endpoints-file", metavar="PATH",
                        help="the twin's endpoints file (overrides platform.endpoints_file)")
    parser.add_argument("--metrics-port", type=int, metavar="N",
                        help="serve live Prometheus metrics on --metrics-host:N during the run (default: off)")
    parser.add_argument("--metrics-host", metavar="ADDR", default="127.0.0.1",
                        help="address the metrics exporter binds (default 127.0.0.1; e.g. 0.0.0.0 "
                        "only in a real deployment, for a Prometheus in another container)")
    parser.add_argument("--runs-dir", metavar="DIR",
                        help="where runs and their journals live (default: the experiment's runs_dir or ./runs)")
    add_load_options(parser)


def add_load_options(parser: argparse.ArgumentParser) -> None:
    """Where the Locust master listens and which workers it waits for; loopback by default."""
    g = parser.add_argument_group("distributed load (real deployments)")
    g.add_argument("--master-bind-host", metavar="ADDR", default=None,
                   help="address the Locust master's worker port binds (default 127.0.0.1)")
    g.add_argument("--master-port", type=int, metavar="N", default=None,
                   help="the Locust master's worker port (default: a free port)")
    g.add_argument("--expect-workers", type=int, metavar="N", default=None,
                   help="external `locust --worker` processes to wait for (default 0)")
    g.add_argument("--local-workers", type=int, metavar="N", default=None,
                   help="local worker processes to spawn (default 2)")


def load_options(args: argparse.Namespace) -> dict:
    """open_load's deployment keywords from ``args`` (only those given), validated."""
    opts = {"master_host": getattr(args, "master_bind_host", None),
            "master_port": getattr(args, "master_port", None),
            "expect_workers": getattr(args, "expect_workers", None),
            "local_workers": getattr(args, "local_workers", None)}
    port = opts["master_port"]
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(f"--master-port must be 1..65535, got {port}", key="master-port")
    for key in ("expect_workers", "local_workers"):
        if opts[key] is not None and opts[key] < 0:
            raise ConfigError(f"--{key.replace('_', '-')} cannot be negative", key=key)
    return {k: v for k, v in opts.items() if v is not None}


def run(args: argparse.Namespace) -> int:
    exp = load_experiment(args.experiment)
    if exp.load and not args.dry_run:
        from harness.control.loadlink import session_class
        session_class()   # imports Locust first (gevent monkey-patching)
    if args.dry_run:
        return dry_run(exp, args.endpoints_file)
    runs_dir = Path(args.runs_dir or exp.runs_dir or "runs")
    refuse_unresolved(runs_dir, Path(args.out).parent if args.out else None)
    run_dir = Path(args.out) if args.out else runs_dir / run_name(exp.name)
    summary = execute(exp, args.endpoints_file, run_dir, metrics_port=args.metrics_port,
                      metrics_host=args.metrics_host, load_options=load_options(args))
    return report(summary, run_dir, exit_codes())


def exit_codes() -> dict:
    from harness.control.controller import EXIT_FOR_VERDICT
    return EXIT_FOR_VERDICT


def dry_run(exp, endpoints_file: str | None) -> int:
    from harness.control.plan import prepare, render_plan
    from harness.control.targets import Resolver
    from harness.platforms.adapter import open_adapter
    from harness.platforms.credentials import connection_for
    conn = connection_for(exp.platform, endpoints_file)
    with open_adapter(conn) as adapter:
        start = time.time()
        plan = prepare(exp, adapter, Resolver.from_endpoints(conn.endpoints_file), now=start)
        print(render_plan(plan, adapter.endpoints["update_trunk"].method, start))
        print(f"dry run: {adapter.client.calls} read-only API call(s), no change made")
    return 0


def execute(exp, endpoints_file: str | None, run_dir: Path, *, metrics_port: int | None = None,
            observers=None, metrics_host: str = "127.0.0.1", load_options: dict | None = None) -> dict:
    """Run ``exp`` into ``run_dir`` and return its summary (the controller's, merged by
    the report hook). ``metrics_host`` is the exporter's bind address; ``load_options``
    are open_load's deployment keywords (master_host, master_port, expect_workers,
    local_workers; see ``load_options``). ``observers`` (optional) gets ``on_journal(record)``,
    ``on_event(event)``, ``on_records(records)`` and ``on_load(session)`` calls: the
    demo's progress lines use them."""
    from harness.control.controller import Controller
    from harness.control.plan import prepare
    from harness.control.targets import Resolver
    from harness.platforms.adapter import open_adapter
    from harness.platforms.credentials import connection_for
    conn = connection_for(exp.platform, endpoints_file)
    resolver = Resolver.from_endpoints(conn.endpoints_file)
    with open_adapter(conn) as adapter, open_adapter(conn) as analytics_adapter:
        plan = prepare(exp, adapter, resolver, now=time.time())
        load = make_load(exp, plan, conn, run_dir, load_options) if exp.load else None
        metrics = metrics_session(run_dir, plan, load, metrics_port, resolver, host=metrics_host)
        queues = sorted({q for q in (plan.queue_id, plan.recovery_queue_id) if q})
        if metrics is not None and queues:
            # Its own client: analytics polls must not eat the experiment's API budget.
            metrics.watch_analytics(analytics_adapter.queue_realtime, queues)
        if observers is not None and load is not None:
            load.subscribe(observers.on_records)
            observers.on_load(load.session)
        ctl = Controller(plan, adapter, run_dir, load=load, on_finish=finish_hook(metrics),
                         on_journal=_fan_out("on_journal", metrics, observers),
                         on_event=_fan_out("on_event", metrics, observers))
        return ctl.run()


def _fan_out(name: str, *targets):
    """One callback that calls ``name`` on every target that has it (None skipped)."""
    fns = [getattr(t, name) for t in targets if t is not None and hasattr(t, name)]
    if not fns:
        return None

    def call(item) -> None:
        for fn in fns:
            fn(item)
    return call


def refuse_unresolved(*dirs: Path | None) -> None:
    pending = [p for d in dirs if d is not None for p in unresolved_journals(d)]
    if pending:
        cmds = "; ".join(f"ccharness rollback --journal {p}" for p in pending)
        raise GuardError(f"unresolved run journal(s) may mean a fault is still in place; resolve first: {cmds}")


def run_name(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:60] or "run"
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{slug}"


def make_load(exp, plan, conn, run_dir: Path, options: dict | None = None):
    from harness.control.loadlink import open_load
    return open_load(exp, plan, conn, run_dir, **(options or {}))


def metrics_session(run_dir: Path, plan, load, port: int | None, resolver=None,
                    host: str = "127.0.0.1"):
    """The metrics part's session (journal/event/record observers). Every trunk of the
    topology is a label value, so calls carried by a failover target are not 'other'."""
    from harness.metrics.session import MetricsSession
    trunks = set(plan.live) | set(getattr(resolver, "trunks", {}).values())
    session = MetricsSession(run_dir, trunks=sorted(trunks), port=port, addr=host)
    if load is not None:
        load.subscribe(session.recorder)
    return session


def finish_hook(metrics=None):
    """The metrics/report hook, called with (run_dir, summary) after the controller has
    written summary.json and closed the journal: close the metrics session (last
    metrics.prom), then ``harness.report.build.rebuild`` merges MTTR, calls and ground
    truth into summary.json and writes report.html and junit.xml."""
    try:
        from harness.report.build import rebuild
    except ImportError:
        rebuild = None

    def finish(run_dir: Path, summary: dict):
        if metrics is not None:
            metrics.close()
        return rebuild(run_dir) if rebuild else summary
    return finish


def report(summary: dict, run_dir: Path, exit_for_verdict: dict, prog: str = "ccharness run") -> int:
    verdict = summary["verdict"]
    line = f"{prog}: {verdict}"
    if summary.get("reason"):
        line += f" ({summary['reason']})"
    print(line + f"; run directory {run_dir}")
    for item in summary.get("remaining_changes", []):
        print(f"STILL CHANGED: {item['name']} ({item['target']}): {item['problem']}; undo: {item['undo']}",
              file=sys.stderr)
    return exit_for_verdict[verdict]
