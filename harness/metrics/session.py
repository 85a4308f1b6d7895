"""One object for the master to wire measurements into a run.

    session = MetricsSession(run_dir, trunks=[t["id"] for t in endpoints["trunks"]], port=9646)
    load.subscribe(session.recorder)           # per-call record batches from the workers
    journal listener -> session.on_journal     # phases, faults, API calls, from journal records
    event feed on_event -> session.on_event    # live MTTR from answer events
    ...
    session.watch_analytics(adapter.queue_realtime, [queue ids])   # analytics.jsonl
    session.save_ground_truth(twin ground-truth body)                 # ground_truth.json
    session.close()                             # last metrics.prom; then report.build.rebuild

``on_journal`` reads the controller's journal records (harness/control/journal.py): a
``transition`` sets the phase, a ``change`` while injecting marks its fault active
(live MTTR starts), a ``restored`` target or the ``done``/``aborted`` state clears it,
and a ``call`` feeds the API series. So the controller needs no metrics calls of its own.
A daemon ticker flushes metrics.prom (and the soak report) periodically.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry

from harness.metrics.analytics import ANALYTICS_FILE, AnalyticsPoller
from harness.metrics.exporter import DEFAULT_ADDR, DEFAULT_PORT, ExporterServer, HarnessMetrics
from harness.metrics.recorder import JsonlWriter, RunRecorder, write_atomic
from harness.report.timeline import fault_name

_INJECTING = ("injecting", "converging", "holding")


class MetricsSession:
    def __init__(self, run_dir: str | Path, *, trunks: Iterable[str] = (), port: int | None = DEFAULT_PORT,
                 addr: str = DEFAULT_ADDR, registry: CollectorRegistry | None = None,
                 flush_every_s: float = 5.0, soak_report_every_s: float | None = None,
                 report: Callable[[Path], Any] | None = None, write_events: bool = False):
        """``port=None``: no HTTP exporter (metrics.prom only). ``write_events``: also store
        events to events.jsonl (off when the controller already writes that file)."""
        self.metrics = HarnessMetrics(registry or CollectorRegistry(), trunks=trunks)
        self.recorder = RunRecorder(run_dir, self.metrics, flush_every_s=flush_every_s,
                                    report_every_s=soak_report_every_s, report=report)
        self.server = ExporterServer(self.metrics.registry, port, addr) if port is not None else None
        self._write_events = write_events
        self.run_dir = Path(run_dir)
        self._poller: AnalyticsPoller | None = None
        self._polls: JsonlWriter | None = None
        self._state = "idle"
        self._active: dict[str, str] = {}   # target -> fault name
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick_loop, name="metrics-ticker", daemon=True)
        self._ticker.start()

    def on_journal(self, record: Mapping[str, Any]) -> None:
        """A journal record as the controller writes it (``type``, ``at``, ...)."""
        kind = record.get("type")
        if kind == "transition" and record.get("to"):
            self._on_transition(str(record["to"]))
        elif kind == "change" and self._state in _INJECTING:
            self._on_change(record)
        elif kind == "restored" and record.get("target"):
            self._clear(str(record["target"]))
        elif kind == "call":
            self.metrics.observe_api_call(record)

    def watch_analytics(self, fetch: Callable[[str], Mapping[str, Any]], queue_ids: Iterable[str],
                        period_s: float = 5.0, max_duration_s: float = 6 * 3600) -> None:
        """Poll the batched queue analytics into analytics.jsonl until ``close`` (for the
        analytics-based MTTR shown beside ours). Use a client whose calls do not eat the
        controller's API budget: 12 polls a minute per queue at the default period."""
        if self._poller is not None:
            return
        self._polls = JsonlWriter(self.run_dir / ANALYTICS_FILE)
        self._poller = AnalyticsPoller(fetch, queue_ids, self._polls, period_s=period_s,
                                       max_duration_s=max_duration_s,
                                       on_rows=self.metrics.observe_analytics_polls).start()

    def save_ground_truth(self, truth: Mapping[str, Any]) -> None:
        """The twin's ``GET /twin/v1/ground-truth`` body, for the report's comparison."""
        write_atomic(self.run_dir / "ground_truth.json", json.dumps(truth, indent=1) + "\n")

    def on_event(self, event: Mapping[str, Any]) -> None:
        if self._write_events:
            self.recorder.on_events([event])
        else:
            self.metrics.observe_event(event)

    def _on_transition(self, state: str) -> None:
        self._state = state
        self.metrics.set_phase(state)
        if state in ("done", "aborted"):
            for target in list(self._active):
                self._clear(target)

    def _on_change(self, record: Mapping[str, Any]) -> None:
        target = str(record.get("target") or "")
        trunk = target.split(":", 1)[1] if target.startswith("trunk:") else None
        fault = fault_name(record.get("body"), None)
        with self._lock:
            if target in self._active:
                return  # a later step on the same target: the first one started the clock
            self._active[target] = fault
        self.metrics.set_fault(trunk, fault, True, at=float(record.get("at") or 0.0))

    def _clear(self, target: str) -> None:
        with self._lock:
            fault = self._active.pop(target, None)
        if fault is not None:
            trunk = target.split(":", 1)[1] if target.startswith("trunk:") else None
            self.metrics.set_fault(trunk, fault, False)

    def _tick_loop(self) -> None:
        while not self._stop.wait(1.0):
            self.recorder.tick()

    def close(self) -> None:
        """Stop the ticker and the HTTP exporter; write the last metrics.prom."""
        self._stop.set()
        self._ticker.join(timeout=5)
        if self._poller is not None:
            self._poller.stop()
            self._polls.close()
        self.recorder.close()
        if self.server is not None:
            self.server.close()

    def __enter__(self) -> "MetricsSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
