"""The master's call sink: every record of the run, from every worker, once.

``CallSink.add(records)`` appends them to ``calls.jsonl`` (when a path is given),
keeps the tallies the summary needs, and calls each subscriber with the batch
(``subscribe(fn)``: the Prometheus exporter and the fault controller use this), and
passes answer events to ``subscribe_answers(fn)`` subscribers. A subscriber that
raises is logged and kept; it never breaks the sink.
"""

from __future__ import annotations

import json
import math
import logging
import threading
from collections import Counter
from typing import Callable, Iterable

log = logging.getLogger(__name__)


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def _notify(subs: list, batch: list[dict]) -> None:
    for fn in list(subs):
        try:
            fn(batch)
        except Exception:  # noqa: BLE001 - one bad subscriber must not stop the run
            log.exception("call-record subscriber %r failed", fn)


class CallSink:
    def __init__(self, path: str | None = None, mode: str = "a"):
        self.path = path
        self._file = open(path, mode, encoding="utf-8") if path else None
        self._subs: list[Callable[[list[dict]], None]] = []
        self._answer_subs: list[Callable[[list[dict]], None]] = []
        self.answers_seen = 0
        self._lock = threading.Lock()
        self.by_outcome: Counter = Counter()
        self.by_code: Counter = Counter()
        self.by_worker: Counter = Counter()
        self.setup_answered: list[float] = []
        self.total = 0

    def subscribe(self, fn: Callable[[list[dict]], None]) -> Callable[[], None]:
        """Call ``fn(records)`` for every batch from now on; returns an unsubscribe."""
        self._subs.append(fn)
        return lambda: self._subs.remove(fn) if fn in self._subs else None

    def subscribe_answers(self, fn: Callable[[list[dict]], None]) -> Callable[[], None]:
        """Call ``fn(events)`` with answer events (the record at the answer, within
        about a second of it); each call's full record still follows via subscribe()."""
        self._answer_subs.append(fn)
        return lambda: self._answer_subs.remove(fn) if fn in self._answer_subs else None

    def add_answers(self, events: Iterable[dict]) -> None:
        batch = list(events)
        self.answers_seen += len(batch)
        _notify(self._answer_subs, batch)

    def add(self, records: Iterable[dict]) -> None:
        batch = list(records)
        if not batch:
            return
        with self._lock:
            for r in batch:
                self._tally(r)
                if self._file:
                    self._file.write(json.dumps(r, separators=(",", ":")) + "\n")
            if self._file:
                self._file.flush()
        _notify(self._subs, batch)

    def _tally(self, r: dict) -> None:
        self.total += 1
        self.by_outcome[r.get("outcome", "other")] += 1
        self.by_code[str(r.get("code", 0))] += 1
        self.by_worker[r.get("worker", "?")] += 1
        if r.get("outcome") == "answered":
            self.setup_answered.append(float(r.get("setup_seconds", 0.0)))

    def setup_percentiles(self) -> dict:
        s = sorted(self.setup_answered)
        return {f"p{p}": percentile(s, p) for p in (50, 90, 95, 99)} | {"max": s[-1] if s else None}

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None
