"""LoadSession: a distributed Locust run on this machine, driven from Python.

    with LoadSession(["sip:svc@127.0.0.1:5060"], concurrent=200, hold="fixed:30",
                     duration=120, workers=2, out_dir="runs/x",
                     on_records=exporter.add) as s:
        s.start()                       # spawn `concurrent` SipCallers
        s.wait_until_steady(60)         # all calls up (workers' reports, every ~3 s)
        s.sink.subscribe(controller.on_calls)
        s.wait(s.duration)              # or do fault work here; returns early on SIGTERM
        s.stop()                        # users stop, calls get BYE/CANCEL, records drain
        print(s.summary())

The Locust master runs in THIS process (Environment + MasterRunner bound to
127.0.0.1; import this module before httpx/ssl: Locust monkey-patches gevent).
``workers`` local worker processes (``python -m locust -f harness/load/locustfile.py
--worker``) connect over loopback; each runs its own PJSUA2 engine processes (4
calls per process). Every record reaches ``self.sink`` (a CallSink: calls.jsonl in
``out_dir``, ``subscribe(fn(records))``) and ``on_records`` once; answer events (the
record as it stood at the answer, within ~1 s of it) reach ``on_answers`` and
``sink.subscribe_answers(fn)``, so MTTR watchers need not wait for the hold. ``api`` (dict:
base_url, token_url, client_id, client_secret, platform, trunk_id, queue_id, users)
adds that many ApiUsers. ``min_interval`` paces each caller: it starts a call at most
every that many seconds (default 1 s), so the whole load starts at most
``concurrent / min_interval`` calls a second however fast the far end refuses. Leaving the ``with`` block (normally, on an exception or
after SIGTERM) stops the run and reaps every child: workers, then their engines.
Bad input raises ConfigError/SipError before any process starts.

Binding. The master's worker port binds ``master_host`` (default 127.0.0.1) on
``master_port`` (default: a free port); no Locust web UI runs at all. For a real
deployment (docker-compose.yml) give ``master_host="0.0.0.0"``, a fixed ``master_port``,
``expect_workers=N`` (external ``locust -f locustfiles/sip_load.py --worker
--master-host HOST --master-port PORT`` processes to wait for, up to
``worker_timeout`` s) and ``local_workers=0`` (``workers`` is the older name of
``local_workers``). ``allow_remote``/``sip_bind`` become ``--sip-allow-remote``/
``--sip-bind`` for every worker (harness.load.settings): loopback unless asked.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ipaddress

import gevent
import gevent.event
import locust  # noqa: F401 - first: monkey-patches before anything imports ssl
from locust.env import Environment
from locust.event import Events
from locust.exception import RPCError

from harness.errors import ConfigError, SipError
from harness.load import locustfile, plugin, settings
from harness.load.sink import CallSink
from harness.load.users import ApiUser, SipCaller
from harness.sip.engine import CAPACITY
from harness.sip.profiles import parse_hold
from harness.sip.uri import parse_target, remote_allowed

log = logging.getLogger(__name__)

WORKER_CONNECT_TIMEOUT = 60.0
MAX_CONCURRENT = 1000   # 250 engine processes, about 3 GB PSS: a sane one-machine bound


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoadSession:
    def __init__(self, targets, concurrent: int, hold="fixed:30", duration: float = 60.0,
                 tag: str | None = None, workers: int = 2, out_dir: str | None = None,
                 codecs: str = "pcmu,pcma", api: dict | None = None, on_records=None,
                 tag_header: str = "X-Chaos-Test", dtmf: str = "", dtmf_method: str = "rfc2833",
                 ring_timeout: float = 60.0,
                 retry: bool = False, spawn_rate: float | None = None,
                 endpoints_file: str = "", master_port: int = 0, media: str = "null",
                 max_calls: int | None = None, on_answers=None,
                 min_interval: float = settings.DEFAULT_MIN_INTERVAL,
                 master_host: str = "127.0.0.1", expect_workers: int = 0,
                 local_workers: int | None = None, worker_timeout: float = WORKER_CONNECT_TIMEOUT,
                 allow_remote: bool | None = None, sip_bind: str = ""):
        self.targets = [targets] if isinstance(targets, str) else list(targets)
        allow = remote_allowed(allow_remote)
        for t in self.targets:
            parse_target(t, allow_remote=allow)
        self.local_workers = int(workers if local_workers is None else local_workers)
        self.expect_workers = int(expect_workers)
        self.master_host = _bind_address(master_host)
        self.worker_timeout = float(worker_timeout)
        workers = self.local_workers + self.expect_workers
        if self.local_workers < 0 or self.expect_workers < 0:
            raise ConfigError("worker counts cannot be negative", key="workers")
        if concurrent < 1 or workers < 1:
            raise ConfigError("need at least 1 concurrent call and 1 worker (local or expected)")
        if concurrent > MAX_CONCURRENT:
            raise ConfigError(f"{concurrent} concurrent calls is more than this machine should "
                              f"run ({MAX_CONCURRENT}: one engine process per 4 calls)",
                              key="concurrent")
        if duration <= 0:
            raise ConfigError("duration must be positive", key="duration")
        self.hold = parse_hold(hold)
        self.concurrent, self.duration, self.workers = int(concurrent), float(duration), int(workers)
        self.tag = tag or plugin.run_id()
        self.out_dir = Path(out_dir) if out_dir else None
        self.api = dict(api or {})
        self.spawn_rate = spawn_rate or max(1.0, min(float(concurrent), 100.0))
        self.master_port = master_port
        self._argv = self._locust_argv(codecs, hold, tag_header, dtmf, ring_timeout, retry,
                                       endpoints_file, media) + ["--sip-dtmf-method", dtmf_method]
        self._argv += ["--sip-min-interval", repr(float(min_interval))]
        if allow:
            self._argv += ["--sip-allow-remote"]
        if sip_bind:
            self._argv += ["--sip-bind", sip_bind]
        if max_calls:
            # --sip-max-calls bounds each worker; split the total between them.
            self._argv += ["--sip-max-calls", str(math.ceil(max_calls / self.workers))]
        self.options = self._parse(self._argv)
        settings.LoadSettings.from_options(self.options)       # validate before starting
        self.sink = CallSink(self._calls_path(), mode="w")
        if on_records is not None:
            self.sink.subscribe(on_records)
        if on_answers is not None:
            self.sink.subscribe_answers(on_answers)
        self.env = None
        self.stop_requested = gevent.event.Event()
        self._procs: list[subprocess.Popen] = []
        self._logs: list = []
        self.started_at = self.ended_at = None

    def _calls_path(self) -> str | None:
        if not self.out_dir:
            return None
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the output directory: {exc}",
                              path=str(self.out_dir)) from None
        return str(self.out_dir / "calls.jsonl")

    # -- options ----------------------------------------------------------------
    def _locust_argv(self, codecs, hold, tag_header, dtmf, ring_timeout, retry,
                     endpoints_file, media) -> list[str]:
        per_worker = math.ceil(self.concurrent / self.workers / CAPACITY)
        argv = ["-f", locustfile.__file__, "--headless",
                "--sip-target", ",".join(self.targets), "--sip-codecs", codecs,
                "--sip-hold", str(hold), "--sip-tag", self.tag, "--sip-tag-header", tag_header,
                "--sip-ring-timeout", str(ring_timeout), "--sip-engines", str(per_worker),
                "--sip-media", media]
        if dtmf:
            argv += ["--sip-dtmf", dtmf]
        if retry:
            argv += ["--sip-retry"]
        if endpoints_file:
            argv += ["--sip-endpoints-file", endpoints_file]
        api = self.api
        if api:
            argv += ["--api-base-url", api.get("base_url", ""), "--api-token-url",
                     api.get("token_url", ""), "--api-client-id", api.get("client_id", ""),
                     "--api-platform", api.get("platform", "genesys"),
                     "--api-trunk-id", api.get("trunk_id", ""),
                     "--api-queue-id", api.get("queue_id", "")]
        return argv

    def _parse(self, argv):
        from locust import argument_parser as ap  # noqa: PLC0415

        parser = ap.get_empty_argument_parser(add_help=False)
        ap.setup_parser_arguments(parser)
        settings.add_arguments(parser)
        parser._default_config_files = []
        ns = parser.parse_args(argv)
        if self.api.get("client_secret"):
            ns.api_client_secret = self.api["client_secret"]   # never on a command line
        return ns

    # -- lifecycle -------------------------------------------------------------
    def __enter__(self) -> "LoadSession":
        try:
            self._start_master()
            self._start_workers()
            self._await_workers()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _user_classes(self):
        classes = [type("SipCaller", (SipCaller,), {"fixed_count": self.concurrent,
                                                      "__module__": SipCaller.__module__})]
        if self.api:
            classes.append(type("ApiUser", (ApiUser,), {"fixed_count": int(self.api.get("users", 1)),
                                                         "__module__": ApiUser.__module__}))
        return classes

    def _start_master(self) -> None:
        self.env = Environment(user_classes=self._user_classes(), events=Events(),
                               parsed_options=self.options, host="")
        self.env.ccharness_sink = self.sink
        port = self.master_port or _free_tcp_port()
        try:
            self.env.create_master_runner(self.master_host, port)
        except RPCError as exc:
            raise ConfigError(f"cannot bind the Locust master to {self.master_host}:{port}: {exc} "
                              "(port in use?)", key="master-port") from None
        self.master_port = port
        plugin.install(self.env)
        self._signals = [gevent.signal_handler(sig, self._on_signal)
                         for sig in (signal.SIGTERM,)]

    def _on_signal(self) -> None:
        log.warning("SIGTERM: stopping the load run")
        self.stop_requested.set()

    def _start_workers(self) -> None:
        cmd = [sys.executable, "-m", "locust", "-f", locustfile.__file__, "--worker",
               "--master-host", self._local_master_host(), "--master-port", str(self.master_port),
               "--loglevel", "WARNING"]
        for i in range(self.local_workers):
            logf = self._log_file(i)
            self._logs.append(logf)
            self._procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                                                stderr=subprocess.STDOUT, start_new_session=True))

    def _local_master_host(self) -> str:
        """Where local workers reach the master: loopback when it listens everywhere."""
        if ipaddress.ip_address(self.master_host).is_unspecified:
            return "127.0.0.1" if ipaddress.ip_address(self.master_host).version == 4 else "::1"
        return self.master_host

    def _log_file(self, i: int):
        if self.out_dir:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            return open(self.out_dir / f"worker-{i}.log", "w+b")
        return tempfile.TemporaryFile()

    def _await_workers(self) -> None:
        timeout = WORKER_CONNECT_TIMEOUT if not self.expect_workers else self.worker_timeout
        if self.expect_workers:
            log.warning("waiting up to %.0f s for %d external load worker(s) on %s:%d",
                        timeout, self.expect_workers, self.master_host, self.master_port)
        deadline = time.time() + timeout
        while len(self.env.runner.clients.ready) < self.workers:
            dead = [p for p in self._procs if p.poll() is not None]
            if dead:
                raise SipError(f"a load worker exited during start-up: {self._tail(dead[0])}")
            if time.time() > deadline:
                raise SipError(f"only {len(self.env.runner.clients.ready)} of {self.workers} "
                               f"load workers connected within {timeout:.0f} s "
                               f"({self.expect_workers} external expected on "
                               f"{self.master_host}:{self.master_port})")
            gevent.sleep(0.1)

    def _tail(self, proc) -> str:
        f = self._logs[self._procs.index(proc)]
        f.flush()
        f.seek(0)
        lines = [ln for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
        return lines[-1] if lines else f"exit status {proc.returncode}"

    def start(self) -> None:
        """Spawn the callers (and API users) across the workers."""
        self.started_at = time.time()
        total = self.concurrent + (int(self.api.get("users", 1)) if self.api else 0)
        self.env.runner.start(total, spawn_rate=self.spawn_rate)

    @property
    def active_calls(self) -> int:
        return plugin.active_calls(self.env)

    def wait_until_steady(self, timeout: float) -> bool:
        """True once every caller has a call up (as the workers last reported)."""
        deadline = time.time() + timeout
        while time.time() < deadline and not self.stop_requested.is_set():
            if self.active_calls >= self.concurrent:
                return True
            self._check_workers()
            gevent.sleep(0.25)
        return self.active_calls >= self.concurrent

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; False if a stop was requested (SIGTERM) first."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.stop_requested.wait(min(1.0, max(0.0, deadline - time.time()))):
                return False
            self._check_workers()
        return True

    def _check_workers(self) -> None:
        dead = [p for p in self._procs if p.poll() is not None]
        if dead:
            raise SipError(f"a load worker died: {self._tail(dead[0])}")

    def stop(self, timeout: float = 15.0) -> None:
        """Stop all users; their calls end (BYE/CANCEL) and every record drains."""
        runner = self.env.runner
        if runner.state not in ("stopped", "ready"):
            runner.stop()
        deadline = time.time() + timeout
        while time.time() < deadline:
            states = [c.state for c in runner.clients.values()]
            if all(s in ("stopped", "ready", "missing") for s in states):
                break
            gevent.sleep(0.1)
        gevent.sleep(0.5)     # the final record batch precedes "client_stopped"; margin
        self.ended_at = time.time()

    def close(self) -> None:
        """Quit the workers and reap every child process; idempotent."""
        if self.env is not None and self.env.runner is not None:
            try:
                self.env.runner.quit()
            except Exception:  # noqa: BLE001 - reaping must go on
                log.exception("quitting the Locust master")
        for p in self._procs:
            _reap(p)
        self._procs.clear()
        for f in self._logs:
            f.close()
        self._logs.clear()
        self.sink.close()
        for h in getattr(self, "_signals", []):
            h.cancel()
        self._signals = []

    # -- results ---------------------------------------------------------------
    def summary(self) -> dict:
        s = self.sink
        stats = self.env.stats if self.env else None
        return {
            "tag": self.tag, "targets": self.targets, "concurrent": self.concurrent,
            "hold": {"kind": self.hold.kind, "mean_s": self.hold.mean}, "duration_s": self.duration,
            "workers": self.workers, "started_at": self.started_at, "ended_at": self.ended_at,
            "calls_total": s.total, "answer_events": s.answers_seen, "calls_by_outcome": dict(s.by_outcome),
            "calls_by_code": dict(s.by_code), "calls_by_worker": dict(s.by_worker),
            "license_rejections": s.by_outcome.get("403", 0),
            "setup_seconds": s.setup_percentiles(),
            "locust": {"requests": stats.total.num_requests if stats else 0,
                       "failures": stats.total.num_failures if stats else 0,
                       "by_name": {f"{k[1]} {k[0]}": v.num_requests
                                   for k, v in (stats.entries.items() if stats else [])}},
        }


def _bind_address(host: str) -> str:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"the Locust master's bind host must be an IP address, got {host!r}",
                          key="master-bind-host") from None
    return host


def _reap(p: subprocess.Popen) -> None:
    for sig, wait in ((None, 5.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if sig is not None and p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
        try:
            p.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
