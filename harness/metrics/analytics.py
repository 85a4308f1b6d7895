"""Polls the platform's batched queue analytics, for the analytics-based MTTR beside ours.

The guide's Edge Case 2: analytics lag the raw events by 90-120 s, so an MTTR read from
them is wrong. ccharness polls them anyway, during the run, to show the difference.
Each poll becomes one line of ``analytics.jsonl`` in the run directory:
``{"polled_at", "queueId", "answeredCalls", "answeredViaFailover", "offeredCalls", "asOf"}``
(epoch seconds; ``answeredViaFailover`` is the twin's count of answers through a failover
path, None on real platforms), which ``harness.metrics.mttr.analytics_mttr`` reads.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Iterable, Mapping

from harness.errors import HarnessError
from harness.metrics.recorder import JsonlWriter

log = logging.getLogger(__name__)

ANALYTICS_FILE = "analytics.jsonl"


class LiveAnalyticsMttr:
    """The analytics-based MTTR while the run goes on, one poll at a time.

    The same rule as ``harness.metrics.mttr.analytics_mttr``: after the injection, the
    first poll whose ``answeredViaFailover`` (``answeredCalls`` when the platform lacks it)
    for the failover queue exceeds the figure whose data predates the injection. The
    failover queue is learnt from the first answer through the failover path
    (``failover_queue``), which may come before or after the rise.
    Pure: no I/O, no clock.
    """

    def __init__(self) -> None:
        self._last: dict[str, float] = {}        # queue -> latest figure seen
        self._at: float | None = None
        self._baseline: dict[str, float] = {}
        self._first_rise: dict[str, float] = {}  # queue -> first poll time above baseline
        self._queue: str | None = None
        self.result: float | None = None

    @property
    def pending(self) -> bool:
        return self._at is not None and self.result is None

    def start(self, injected_at: float) -> None:
        self._at, self.result, self._queue = injected_at, None, None
        self._baseline, self._first_rise = dict(self._last), {}

    def failover_queue(self, queue_id: str | None) -> float | None:
        if self.pending and self._queue is None and queue_id:
            self._queue = queue_id
            return self._settle()
        return None

    def poll(self, row: Mapping[str, Any]) -> float | None:
        """Feed one analytics.jsonl row; returns the figure once it is known."""
        queue, answered, polled_at = row.get("queueId"), _figure(row), row.get("polled_at")
        if queue is None or answered is None or polled_at is None:
            return None
        answered, polled_at = float(answered), float(polled_at)
        self._last[queue] = answered
        if not self.pending:
            return None
        as_of = row.get("asOf")
        data_at = polled_at if as_of is None else float(as_of)
        if data_at < self._at:
            self._baseline[queue] = max(self._baseline.get(queue, 0.0), answered)
        if polled_at >= self._at and answered > self._baseline.get(queue, 0.0):
            self._first_rise.setdefault(queue, polled_at)
        return self._settle()

    def _settle(self) -> float | None:
        rise = self._first_rise.get(self._queue) if self._queue else None
        if rise is not None and self.result is None:
            self.result = rise - self._at
            return self.result
        return None


def _figure(row: Mapping[str, Any]) -> Any:
    """The answers counted: through the failover path when the platform tells them apart."""
    via = row.get("answeredViaFailover")
    return row.get("answeredCalls") if via is None else via


def poll_row(queue_id: str, figures: Mapping[str, Any], polled_at: float) -> dict[str, Any]:
    """One line of analytics.jsonl from ``PlatformAdapter.queue_realtime`` or a raw body."""
    answered = figures.get("answered", figures.get("answeredCalls"))
    # The adapter keeps only the fields every platform has; the twin's extra one is in "raw".
    via = figures.get("answeredViaFailover", (figures.get("raw") or {}).get("answeredViaFailover"))
    offered = figures.get("offered", figures.get("offeredCalls"))
    as_of = figures.get("as_of", figures.get("asOf"))
    return {"polled_at": polled_at, "queueId": queue_id, "answeredCalls": answered,
            "answeredViaFailover": via, "offeredCalls": offered,
            "asOf": as_of if isinstance(as_of, (int, float)) else None}


class AnalyticsPoller:
    """Polls ``fetch(queue_id)`` for each queue every ``period_s`` in a daemon thread.

    Bounded: stops at ``stop()`` or after ``max_duration_s``. A failed poll is logged and
    skipped (the figure is informative; it must never stop the run).
    """

    def __init__(self, fetch: Callable[[str], Mapping[str, Any]], queue_ids: Iterable[str],
                 writer: JsonlWriter, *, period_s: float = 5.0, max_duration_s: float = 6 * 3600,
                 clock: Callable[[], float] = time.time,
                 on_rows: Callable[[list[dict[str, Any]]], None] | None = None):
        self._fetch, self._queues, self._writer = fetch, list(queue_ids), writer
        self._on_rows = on_rows
        self._period, self._max, self._clock = period_s, max_duration_s, clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> list[dict[str, Any]]:
        rows = []
        for queue_id in self._queues:
            try:
                figures = self._fetch(queue_id)
            except HarnessError as exc:
                log.warning("analytics poll of queue %s failed: %s", queue_id, exc)
                continue
            rows.append(poll_row(queue_id, figures, self._clock()))
        self._writer.write_many(rows)
        if self._on_rows is not None:
            self._on_rows(rows)
        return rows

    def start(self) -> "AnalyticsPoller":
        self._thread = threading.Thread(target=self._loop, name="analytics-poller", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        deadline = self._clock() + self._max
        while not self._stop.is_set() and self._clock() < deadline:
            self.poll_once()
            self._stop.wait(self._period)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self._period + 5)

    def __enter__(self) -> "AnalyticsPoller":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
