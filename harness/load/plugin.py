"""Wiring ccharness into a Locust Environment: ``install(environment)``.

Called from the locustfile's ``events.init`` listener (so plain ``locust -f`` works)
and by LoadSession. By runner type:
- master / local: a CallSink at ``environment.ccharness_sink`` (kept if the caller
  put one there first), fed by the workers' ``ccharness_calls`` messages;
- worker / local: a WorkerContext at ``environment.ccharness`` holding the engine
  pool (started lazily in this process only, never on the master) and the batcher.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field

from locust.runners import LocalRunner, MasterRunner, WorkerRunner

from harness.load.reporting import ANSWERS_MESSAGE, MESSAGE, RecordBatcher, fire_call
from harness.load.settings import LoadSettings
from harness.load.sink import CallSink

log = logging.getLogger(__name__)

STOP_DRAIN_SECONDS = 5.0
ACTIVE_KEY = "ccharness_active_calls"


@dataclass
class WorkerContext:
    environment: object
    batcher: RecordBatcher
    pool: object = None          # harness.sip.pool.EnginePool, created on first use
    settings: LoadSettings | None = None
    users: int = 0
    started: int = 0
    extra: dict = field(default_factory=dict)

    def load_settings(self) -> LoadSettings:
        if self.settings is None:
            self.settings = LoadSettings.from_options(self.environment.parsed_options)
        return self.settings

    def engines(self, calls: int):
        """The process's engine pool, grown to hold ``calls`` concurrent calls."""
        if self.pool is None:
            from harness.sip.engine import EngineConfig  # noqa: PLC0415
            from harness.sip.pool import EnginePool  # noqa: PLC0415

            s = self.load_settings()
            self.pool = EnginePool(0, EngineConfig(codecs=s.codecs, media=s.media))
            self.pool.on_orphan = self._orphan
            self.pool.on_answer = self.batcher.add_answer
        # --sip-engines processes up front, in one zygote; more only if users outgrow them.
        want = int(getattr(self.environment.parsed_options, "sip_engines", 0) or 0)
        calls = max(calls, want * self.pool.config_capacity)
        self.pool.ensure_capacity(calls)
        return self.pool

    def _orphan(self, record: dict) -> None:
        """A call cut short by the test stopping: still reported, still recorded."""
        fire_call(self.environment, record)
        self.batcher.add(record)

    def close(self) -> None:
        self.batcher.stop()
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        self.batcher.flush()


def run_id() -> str:
    return time.strftime("ccharness-%Y%m%dT%H%M%S-") + uuid.uuid4().hex[:6]


def install(environment) -> None:
    runner = environment.runner
    opts = environment.parsed_options
    if opts is not None and not getattr(opts, "sip_tag", ""):
        opts.sip_tag = run_id()       # custom options travel to the workers with spawn
    if isinstance(runner, (MasterRunner, LocalRunner)):
        _install_sink(environment, runner)
    if isinstance(runner, (WorkerRunner, LocalRunner)):
        _install_worker(environment, runner)


def _install_sink(environment, runner) -> None:
    sink = getattr(environment, "ccharness_sink", None)
    if sink is None:
        path = getattr(environment.parsed_options, "calls_out", "") or None
        sink = CallSink(path)
        environment.ccharness_sink = sink
    if isinstance(runner, MasterRunner):
        runner.register_message(MESSAGE, lambda msg, **_kw: sink.add(msg.data))
        runner.register_message(ANSWERS_MESSAGE, lambda msg, **_kw: sink.add_answers(msg.data))
        active = environment.ccharness_active = {}

        @environment.events.worker_report.add_listener
        def _report(client_id, data, **_kw):
            if ACTIVE_KEY in data:
                active[client_id] = data[ACTIVE_KEY]


def _install_worker(environment, runner) -> None:
    local = isinstance(runner, LocalRunner)
    sink = environment.ccharness_sink if local else None
    batcher = RecordBatcher(environment, sink.add if sink else None,
                            sink.add_answers if sink else None)
    ctx = WorkerContext(environment, batcher)
    environment.ccharness = ctx
    events = environment.events

    @events.test_start.add_listener
    def _start(**_kw):
        ctx.batcher.start()

    @events.test_stop.add_listener
    def _stop(**_kw):
        # Users were killed: their calls are being hung up; wait for the records.
        if ctx.pool is not None:
            ctx.pool.wait_idle(STOP_DRAIN_SECONDS)
        ctx.batcher.flush()
        # Locust's worker sends no stats report on "stop" (only every 3 s and on quit),
        # so the last calls would be missing from the master's stats: send one now,
        # before the worker's "client_stopped" (same ordered socket).
        send_stats = getattr(runner, "_send_stats", None)
        if not local and send_stats is not None:
            send_stats()

    @events.quitting.add_listener
    def _quit(**_kw):
        ctx.close()

    @events.report_to_master.add_listener
    def _report(data, **_kw):
        data[ACTIVE_KEY] = ctx.pool.active if ctx.pool is not None else 0


def active_calls(environment) -> int:
    """Calls in flight across the run (master: from the workers' last reports)."""
    ctx = getattr(environment, "ccharness", None)
    if ctx is not None:
        return ctx.pool.active if ctx.pool is not None else 0
    return sum(getattr(environment, "ccharness_active", {}).values())
