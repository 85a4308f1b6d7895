"""Polls the platform's batched queue analytics, for the analytics-based MTTR beside ours.

The guide's Edge Case 2: analytics lag the raw events by 90-120 s, so an MTTR read from
them is wrong. ccharness polls them anyway, during the run, to show the difference.
Each poll becomes one line of ``analytics.jsonl`` in the run directory:
``{"polled_at", "queueId", "answeredCalls", "offeredCalls", "asOf"}`` (epoch seconds),
which ``harness.metrics.mttr.analytics_mttr`` reads.
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


def poll_row(queue_id: str, figures: Mapping[str, Any], polled_at: float) -> dict[str, Any]:
    """One line of analytics.jsonl from ``PlatformAdapter.queue_realtime`` or a raw body."""
    answered = figures.get("answered", figures.get("answeredCalls"))
    offered = figures.get("offered", figures.get("offeredCalls"))
    as_of = figures.get("as_of", figures.get("asOf"))
    return {"polled_at": polled_at, "queueId": queue_id, "answeredCalls": answered,
            "offeredCalls": offered, "asOf": as_of if isinstance(as_of, (int, float)) else None}


class AnalyticsPoller:
    """Polls ``fetch(queue_id)`` for each queue every ``period_s`` in a daemon thread.

    Bounded: stops at ``stop()`` or after ``max_duration_s``. A failed poll is logged and
    skipped (the figure is informative; it must never stop the run).
    """

    def __init__(self, fetch: Callable[[str], Mapping[str, Any]], queue_ids: Iterable[str],
                 writer: JsonlWriter, *, period_s: float = 5.0, max_duration_s: float = 6 * 3600,
                 clock: Callable[[], float] = time.time):
        self._fetch, self._queues, self._writer = fetch, list(queue_ids), writer
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
