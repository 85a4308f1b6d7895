"""The fault controller: baseline, inject in steps, verify convergence, hold, roll back.

``Controller.run()`` drives the state machine of ``harness.control.states`` and always
rolls back in ``finally``: on success, a broken hypothesis, a guardrail, an exception,
SIGINT or SIGTERM (the signal only sets a flag; every wait polls it, so a signal never
lands in the middle of a journal write or a restore). Each target's original
configuration is journaled before the call that changes it. Figures come from a
``CallWindow`` fed by the load session's record sink (or by nothing for API-only
experiments). At the end the controller writes summary.json and calls ``on_finish(run_dir,
summary)`` (the metrics/report hook), whose failures never change the verdict.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from harness.control.aggregator import CallWindow
from harness.control.convergence import wait_applied, wait_queue_healthy, wait_route_event, contains
from harness.control.hypothesis import (
    Check, GuardrailMonitor, evaluate, mttr_check,
)
from harness.control.journal import Journal
from harness.control.plan import Plan
from harness.control.rollback import Restorer, Saved, saved_faults, saved_trunk
from harness.control.states import State, StateMachine
from harness.errors import (
    EXIT_ABORTED, EXIT_HYPOTHESIS_BROKEN, EXIT_OK, EXIT_ROLLBACK_FAILED, GuardError, HarnessError,
)
from harness.experiment.schema import Expect, FaultKind

log = logging.getLogger(__name__)


class Abort(Exception):
    """Stop injecting and roll back: a guardrail, a signal or an error."""

    def __init__(self, reason: str, kind: str):
        super().__init__(reason)
        self.reason, self.kind = reason, kind


class Broken(Exception):
    """The hypothesis broke (or a change never converged): roll back, verdict broken."""


@dataclass
class Outcome:
    verdict: str = "held"
    reason: str = ""
    checks: list[Check] = field(default_factory=list)
    convergence: list[dict] = field(default_factory=list)
    recovery: list[dict] = field(default_factory=list)
    remaining: list[dict] = field(default_factory=list)
    injected_at: float | None = None
    failover_seen: bool = False


class Controller:
    def __init__(self, plan: Plan, adapter, run_dir: Path, *, load=None,
                 on_finish: Callable[[Path, dict], dict | None] | None = None,
                 install_signals: bool = True,
                 restore_attempts: int = 4, on_journal: Callable[[dict], None] | None = None,
                 on_event: Callable[[dict], None] | None = None):
        self.plan, self.exp, self.adapter = plan, plan.exp, adapter
        self.run_dir = Path(run_dir)
        self.load, self.on_finish = load, on_finish
        self.install_signals = install_signals
        self.on_journal, self.on_event = on_journal, on_event   # observers (metrics)
        self.restore_attempts = restore_attempts
        self.window = CallWindow(self.exp.hypothesis.window_s)
        self.guardrails = GuardrailMonitor(self.exp.guardrails, self.exp.hypothesis.min_calls,
                                           self.exp.hypothesis.setup_percentile)
        self.stack: list[Saved] = []
        self.outcome = Outcome()
        self._interrupt = threading.Event()
        self._signal_name: str | None = None
        self._rolling_back = False
        self.journal: Journal | None = None
        self.feed = None
        self._events_file = None
        self._after_since: float | None = None

    # -- entry point ----------------------------------------------------------------
    def run(self) -> dict:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(self.run_dir / "journal.jsonl", listener=self.on_journal)
        self.adapter.client.on_call = lambda c: self.journal.write("call", **c)
        self.adapter.tokens.on_fetch = lambda info: self.journal.write("token", **info)
        self.sm = StateMachine(lambda old, new, why: self.journal.write(
            "transition", **{"from": old.value, "to": new.value, "why": why}))
        started = time.time()
        self.journal.write("start", experiment=self.exp.name, path=self.exp.path,
                           run_id=self.run_dir.name, connection=self.adapter.conn.to_json(),
                           targets={t: b.get("name") for t, b in self.plan.live.items()})
        previous = self._install_signals()
        try:
            self._open_feed()
            self._execute()
        finally:
            try:
                self._finish_rollback()
            except Exception as exc:  # never leave without saying what may still be changed
                log.exception("rollback failed unexpectedly")
                self.outcome.remaining = [
                    {"target": s.target, "name": s.name, "problem": f"rollback crashed: {exc!r}",
                     "undo": f"ccharness rollback --journal {self.run_dir / 'journal.jsonl'}"}
                    for s in reversed(self.stack)]
                self.outcome.verdict = "rollback_failed" if self.stack else self.outcome.verdict
            self._restore_signals(previous)
            summary = self._summary(started)
            self._close()
            summary = self._finish_hook(summary)
        return summary

    # -- the phases -----------------------------------------------------------------
    def _execute(self) -> None:
        try:
            self.sm.go(State.BASELINE, "load ready" if self.load else "API-only")
            self._start_load()
            self._observe(self.exp.method.baseline_s, "before")
            if any(c.ok is False for c in self.outcome.checks):
                raise Broken("the steady state did not hold before the fault")
            self.sm.go(State.INJECTING)
            self._inject_all()
            self.sm.go(State.HOLDING, "converged")
            self._observe(self.exp.method.hold_s, "during")
        except Broken as exc:
            self._set("broken", str(exc))
        except Abort as exc:
            self._set("aborted", exc.reason)
        except GuardError as exc:
            self._set("aborted", str(exc))
        except HarnessError as exc:
            self._set("aborted", f"error: {exc}")
        except Exception as exc:  # rollback must still run; report the bug honestly
            log.exception("controller failed")
            self._set("aborted", f"internal error: {type(exc).__name__}: {exc}")

    def _inject_all(self) -> None:
        inject_start = time.time()
        self.outcome.injected_at = inject_start
        for step in self.plan.steps:
            wait = inject_start + step.at_s - time.time()
            if wait > 0:
                self._observe(wait, "during")
            if self.sm.state is State.CONVERGING:
                self.sm.go(State.INJECTING, f"step {step.index}")
            self._apply(step)
            self.sm.go(State.CONVERGING, f"step {step.index}")
            self._converge_step(step)
        self._converge_routing(inject_start)

    def _apply(self, step) -> None:
        self._check_interrupt()
        if step.kind is FaultKind.TRUNK:
            target = f"trunk:{step.trunk_id}"
            if not any(s.target == target for s in self.stack):
                original = self.adapter.get_trunk(step.trunk_id)
                self._save(saved_trunk(self.adapter.conn.api, step.trunk_id, original))
            self.journal.write("change", target=target, body=step.body, step=step.index, note=step.note)
            self._sent_at = time.time()
            self.adapter.update_trunk(step.trunk_id, step.body)
        else:
            if not any(s.target == "twin_faults" for s in self.stack):
                self._save(saved_faults(self.adapter.get_faults()))
            self.journal.write("change", target="twin_faults", body=step.body, step=step.index, note=step.note)
            self._sent_at = time.time()
            self.adapter.put_faults(step.body)

    def _save(self, saved: Saved) -> None:
        # Written (and fsync'd) before the call that changes the target.
        self.journal.write("saved", **saved.to_json())
        self.stack.append(saved)

    def _converge_step(self, step) -> None:
        conv = self.exp.convergence
        if step.kind is FaultKind.TWIN_FAULTS:
            now = self.adapter.get_faults()
            ok = contains(now, step.body)
            self._record({"step": step.index, "expect": "reflected", "converged": ok,
                          "evidence": "GET /twin/v1/faults shows the change" if ok else f"GET shows {now}"})
            return
        current = self.adapter.get_trunk(step.trunk_id)
        reflected = contains(current, step.body)
        self._record({"step": step.index, "expect": "reflected", "converged": reflected,
                      "evidence": "GET shows the change" if reflected else "GET does not show the change"})
        if Expect.CONFIG_APPLIED in conv.expect:
            result = wait_applied(self.feed, step.trunk_id, step.body, self._sent_at - 0.05,
                                  conv.timeout_s, stop=self._interrupted)
            self._check_interrupt()
            if result["converged"] is None and self.plan.queue_id:
                result = self._queue_result(conv)
            self._record({"step": step.index, **result})

    def _converge_routing(self, since: float) -> None:
        conv = self.exp.convergence
        changed = set(self.plan.changed_trunks) or set(self.plan.live)
        if Expect.FAILOVER in conv.expect:
            result = wait_route_event(self.feed, "failover", changed, since, conv.timeout_s,
                                      stop=self._interrupted)
            self._check_interrupt()
            self.outcome.failover_seen = bool(result.get("converged"))
            self._record({"step": "all", **result})
        if Expect.QUEUE_STATS in conv.expect:
            self._record({"step": "all", **self._queue_result(conv)})

    def _queue_result(self, conv) -> dict:
        qid = self.plan.queue_id
        return wait_queue_healthy(lambda: self.adapter.queue_realtime(qid), conv.timeout_s, conv.poll_s,
                                  sleep=self._sleep, stop=self._interrupted)

    def _record(self, result: dict) -> None:
        self.journal.write("convergence", **result)
        self.outcome.convergence.append(result)
        if result.get("converged") is False:
            raise Broken(f"did not converge: {result.get('evidence')}")

    # -- observing ------------------------------------------------------------------
    def _observe(self, seconds: float, phase: str) -> None:
        """Wait ``seconds``, checking the hypothesis and guardrails every interval."""
        deadline = time.time() + seconds
        interval = self.exp.hypothesis.check_interval_s
        since = self._phase_start(phase)
        while True:
            self._check_interrupt()
            now = time.time()
            if self.load is not None:
                # Only calls that ended in this phase: a window straddling the injection
                # would credit the fault with calls answered before it.
                figures = self.window.figures(now, since=since)
                self.outcome.checks.extend(evaluate(self.exp.hypothesis, figures, phase))
                if phase == "during":
                    rule = self.guardrails.observe(figures)
                    if rule is not None:
                        bound = f">= {rule.min}" if rule.min is not None else f"<= {rule.max}"
                        raise Abort(f"guardrail {rule.metric.value} {bound} breached "
                                    f"{rule.consecutive} checks in a row", "guardrail")
            if now >= deadline:
                return
            self._sleep(min(interval, deadline - now))

    def _phase_start(self, phase: str) -> float | None:
        if phase == "during":
            return self.outcome.injected_at
        return self._after_since if phase == "after" else None

    def _sleep(self, seconds: float) -> None:
        self._interrupt.wait(max(0.0, seconds))

    def _interrupted(self) -> bool:
        """A signal reached us, or the load session caught one (it installs its own
        SIGTERM handler on the Locust master)."""
        if self._interrupt.is_set():
            return True
        check = getattr(self.load, "interrupted", None)
        if check is not None and check():
            self._signal_name = self._signal_name or "SIGTERM (via the load session)"
            self._interrupt.set()
            if self.journal:
                self.journal.write("signal", signal=self._signal_name, rolling_back=self._rolling_back)
            return True
        return False

    def _check_interrupt(self) -> None:
        if self._interrupted() and not self._rolling_back:
            raise Abort(f"interrupted by {self._signal_name}", "signal")

    # -- rollback and recovery ------------------------------------------------------
    def _finish_rollback(self) -> None:
        self._rolling_back = True   # from here on a signal is noted, not obeyed
        if self.sm.state in (State.IDLE, State.BASELINE) and not self.stack:
            self.sm.go(State.ABORTED, self.outcome.reason or "nothing injected")
            self.journal.write("resolved", why="nothing was changed")
            self._stop_load()
            return
        self.sm.go(State.ROLLING_BACK, self.outcome.reason or "hold complete")
        rollback_at = time.time()
        restorer = Restorer(self.adapter, self.journal, self.feed, attempts=self.restore_attempts,
                            routing_timeout_s=self.exp.recovery.timeout_s,
                            journal_path=str(self.run_dir / "journal.jsonl"),
                            queue_check=self._recovery_queue_check())
        self.outcome.remaining = restorer.restore_all(self.stack)
        if self.outcome.remaining:
            self.outcome.verdict = "rollback_failed"
            self.sm.go(State.ABORTED, "rollback could not be verified")
            self._stop_load()
            return
        self.journal.write("resolved", why="every target restored and verified")
        self.sm.go(State.RECOVERING)
        self._recover(rollback_at)
        self._stop_load()
        self._judge()
        self.sm.go(State.DONE if self.outcome.verdict in ("held", "broken") else State.ABORTED,
                   self.outcome.verdict)

    def _recovery_queue_check(self):
        qid = self.plan.recovery_queue_id or self.plan.queue_id
        if qid is None:
            return None
        rec = self.exp.recovery
        return lambda: wait_queue_healthy(lambda: self.adapter.queue_realtime(qid), rec.timeout_s, rec.poll_s)

    def _recover(self, since: float) -> None:
        rec = self.exp.recovery
        try:
            if Expect.FAILBACK in rec.expect and self.outcome.failover_seen:
                self._recovery(wait_route_event(self.feed, "failback", set(self.plan.changed_trunks),
                                                since, rec.timeout_s))
            if Expect.QUEUE_STATS in rec.expect and self.plan.recovery_queue_id:
                qid = self.plan.recovery_queue_id
                self._recovery(wait_queue_healthy(lambda: self.adapter.queue_realtime(qid),
                                                  rec.timeout_s, rec.poll_s))
            if self.load is not None and self.outcome.verdict == "held":
                self._observe_after()
        except HarnessError as exc:
            self._recovery({"expect": "recovery", "converged": False, "evidence": str(exc)})

    def _judge(self) -> None:
        """MTTR against its ceiling, then any failed check breaks the hypothesis."""
        from harness.control.summary import mttr_seconds
        if self.outcome.injected_at is not None:
            mttr_s = mttr_seconds(self)
            detail = "no load: not measured" if self.load is None else "first answer via failover"
            check = mttr_check(self.exp.hypothesis, mttr_s, "no load" if self.load is None else detail)
            if check is not None:
                self.outcome.checks.append(check)
                self.journal.write("check", **check.to_json())
        self._require_measured("during")
        failed = [c for c in self.outcome.checks if c.ok is False]
        if failed:
            first = failed[0]
            self._set("broken", f"{first.name} {first.phase}: {first.value} vs {first.bound} {first.limit}")

    def _require_measured(self, phase: str) -> None:
        """Under load, a fault during which too few calls completed is not a held
        hypothesis: callers hanging without a final response is a failure to see."""
        if self.load is None or self.outcome.injected_at is None:
            return
        checks = [c for c in self.outcome.checks if c.phase == phase]
        if checks and all(c.ok is None for c in checks):
            check = Check("calls_completed", phase, False, None, float(self.exp.hypothesis.min_calls),
                          "min", "fewer than min_calls calls completed in any window during the "
                          "fault: calls may be hanging without a final response")
            self.outcome.checks.append(check)
            self.journal.write("check", **check.to_json())

    def _observe_after(self) -> None:
        self._after_since = time.time()
        end = self._after_since + self.exp.hypothesis.window_s
        while time.time() < end:
            time.sleep(min(self.exp.hypothesis.check_interval_s, max(0.0, end - time.time())))
        figures = self.window.figures(time.time(), since=self._after_since)
        self.outcome.checks.extend(evaluate(self.exp.hypothesis, figures, "after"))

    def _recovery(self, result: dict) -> None:
        self.journal.write("recovery", **result)
        self.outcome.recovery.append(result)
        if result.get("converged") is False and self.outcome.verdict == "held":
            self._set("broken", f"did not recover: {result.get('evidence')}")

    # -- load, feed, signals --------------------------------------------------------
    def _start_load(self) -> None:
        if self.load is None:
            return
        self.load.subscribe(self.window.add)
        self.load.start()
        ready = self.load.wait_until_holding(self.exp.load.ready_timeout_s, stop=self._interrupted)
        self._check_interrupt()
        if not ready:
            raise Abort(f"the load did not reach {self.exp.load.concurrent} concurrent calls within "
                        f"{self.exp.load.ready_timeout_s:g}s; nothing injected", "load")
        self.journal.write("load_ready", concurrent=self.exp.load.concurrent)

    def _stop_load(self) -> None:
        if self.load is not None:
            try:
                self.load.stop()
            except Exception:  # the verdict and rollback matter more than a clean stop
                log.exception("stopping the load failed")

    def _open_feed(self) -> None:
        self._events_file = open(self.run_dir / "events.jsonl", "a", encoding="utf-8")

        def on_event(event: dict) -> None:
            f = self._events_file
            try:
                if f is not None and not f.closed:
                    f.write(json.dumps(event, sort_keys=True) + "\n")
                    f.flush()
            except ValueError:  # closed between the check and the write, at the very end
                return
            if self.on_event is not None:
                try:
                    self.on_event(event)
                except Exception:
                    log.exception("event observer failed")
        self.feed = self.adapter.event_feed(on_event=on_event)
        self.feed.__enter__()
        if not self.feed.wait_connected(5.0):
            log.warning("event stream not connected; convergence falls back to queue stats")

    def _install_signals(self):
        if not self.install_signals or threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum, frame):
            self._signal_name = signal.Signals(signum).name
            self._interrupt.set()
            if self.journal:
                self.journal.write("signal", signal=self._signal_name, rolling_back=self._rolling_back)
        return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def _restore_signals(previous) -> None:
        for sig, old in (previous or {}).items():
            signal.signal(sig, old)

    def _set(self, verdict: str, reason: str) -> None:
        """Keep the gravest verdict: rollback_failed > aborted > broken > held."""
        if SEVERITY[verdict] > SEVERITY[self.outcome.verdict]:
            self.outcome.verdict, self.outcome.reason = verdict, reason
        self.journal.write("outcome", verdict=self.outcome.verdict, reason=reason)

    def _close(self) -> None:
        if self.feed is not None:
            self.feed.close()
        if self._events_file is not None:
            self._events_file.close()
        if self.journal is not None:
            self.journal.close()

    # -- summary --------------------------------------------------------------------
    def _summary(self, started: float) -> dict:
        from harness.control.summary import build_summary
        summary = build_summary(self, started)
        path = self.run_dir / "summary.json"
        path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return summary

    def _finish_hook(self, summary: dict) -> dict:
        """After summary.json is written and the journal closed: the metrics/report hook."""
        if self.on_finish is None:
            return summary
        try:
            updated = self.on_finish(self.run_dir, summary)
        except Exception:
            log.exception("the run's finish hook (metrics/report) failed; the verdict stands")
            return summary
        if isinstance(updated, dict):
            # The hook may add figures; the verdict and exit code stay the controller's.
            updated.update(verdict=summary["verdict"], exit_code=summary["exit_code"])
            return updated
        return summary


SEVERITY = {"held": 0, "broken": 1, "aborted": 2, "rollback_failed": 3}
EXIT_FOR_VERDICT = {"held": EXIT_OK, "broken": EXIT_HYPOTHESIS_BROKEN, "aborted": EXIT_ABORTED,
                    "rollback_failed": EXIT_ROLLBACK_FAILED}
