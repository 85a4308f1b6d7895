"""The master-side path for per-call records: sink -> exporter -> disk.

``RunRecorder`` is what the load side's master sink calls (``sink.subscribe(recorder)``)
with each batch of records from the workers. It streams every record to
``calls.jsonl`` as a JSON line (never holding the run's records in RAM, so soak runs of
hours keep memory flat), feeds the exporter, and keeps only counters. ``tick()`` (call
it from any periodic greenlet or the controller's loop) writes ``metrics.prom`` and, in
soak mode, rebuilds the report every ``report_every_s``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

from harness.errors import ConfigError

if TYPE_CHECKING:  # the exporter imports the analytics module, which imports this one
    from harness.metrics.exporter import HarnessMetrics

log = logging.getLogger(__name__)

CALLS_FILE = "calls.jsonl"
EVENTS_FILE = "events.jsonl"
METRICS_FILE = "metrics.prom"


class JsonlWriter:
    """Appends JSON lines to a file, one flush per batch; thread-safe."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        self._lock = threading.Lock()
        self.count = 0

    def write_many(self, rows: Iterable[Mapping[str, Any]]) -> int:
        lines = [json.dumps(row, separators=(",", ":"), default=str) + "\n" for row in rows]
        with self._lock:
            self._fh.writelines(lines)
            self._fh.flush()
            self.count += len(lines)
        return len(lines)

    def close(self) -> None:
        with self._lock:
            if not self._fh.closed:
                self._fh.close()

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Rows of a JSON-lines file, streamed; blank lines and a torn last line are skipped.

    A run killed mid-write leaves a partial last line; the rest of the file is still good.
    A missing file yields nothing.
    """
    try:
        fh = open(path, encoding="utf-8")
    except FileNotFoundError:
        return
    with fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s:%d: skipping a line that is not JSON", path, lineno)
                continue
            if isinstance(row, dict):
                yield row


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Write through a temp file and rename, so readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


class RunRecorder:
    """Subscriber of the master sink: ``recorder(records)`` per batch."""

    def __init__(self, run_dir: str | os.PathLike[str], metrics: HarnessMetrics, *,
                 flush_every_s: float = 5.0, report_every_s: float | None = None,
                 report: Callable[[Path], Any] | None = None, clock: Callable[[], float] = time.time):
        self.run_dir = Path(run_dir)
        self.metrics = metrics
        self.calls = JsonlWriter(self.run_dir / CALLS_FILE)
        self.events = JsonlWriter(self.run_dir / EVENTS_FILE)
        self._flush_every, self._report_every = flush_every_s, report_every_s
        self._report, self._clock = report, clock
        self._last_flush = self._last_report = clock()

    def __call__(self, records: list[Mapping[str, Any]]) -> None:
        self.calls.write_many(records)
        self.metrics.observe_records(records)

    def on_events(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Platform events (CONTRACTS section 3) to ``events.jsonl`` and the live MTTR."""
        events = list(events)
        self.events.write_many(events)
        for ev in events:
            self.metrics.observe_event(ev)

    def tick(self, now: float | None = None) -> None:
        """Periodic work: metrics.prom every ``flush_every_s``; the soak report when due."""
        now = self._clock() if now is None else now
        if now - self._last_flush >= self._flush_every:
            self.flush_metrics()
            self._last_flush = now
        if self._report and self._report_every and now - self._last_report >= self._report_every:
            self._last_report = now
            self._report(self.run_dir)

    def flush_metrics(self) -> None:
        write_atomic(self.run_dir / METRICS_FILE, self.metrics.exposition())

    def close(self) -> None:
        """Final flush of metrics.prom; the files stay on disk for the report."""
        self.flush_metrics()
        self.calls.close()
        self.events.close()

    def __enter__(self) -> "RunRecorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
