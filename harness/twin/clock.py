"""Timers for the twin: gevent in production, a manual fake clock in unit tests."""

from __future__ import annotations

import heapq
import itertools
import time
from typing import Callable


class GeventScheduler:
    """``Scheduler`` on the gevent hub (libev timers; no greenlet per timer)."""

    def __init__(self) -> None:
        import gevent  # imported here so the model can be used without gevent

        self._loop = gevent.get_hub().loop

    def now(self) -> float:
        return time.time()

    def call_later(self, delay: float, fn: Callable[[], None]) -> "_GeventTimer":
        timer = self._loop.timer(max(0.0, delay))
        handle = _GeventTimer(timer)
        timer.start(handle._fire, fn)
        return handle


class _GeventTimer:
    __slots__ = ("_timer",)

    def __init__(self, timer) -> None:
        self._timer = timer

    def _fire(self, fn: Callable[[], None]) -> None:
        self._timer.close()
        fn()

    def cancel(self) -> None:
        self._timer.stop()
        self._timer.close()


class FakeScheduler:
    """A clock that moves only when told: ``advance(seconds)`` runs due timers in order."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._heap: list[tuple[float, int, "_FakeTimer"]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, fn: Callable[[], None]) -> "_FakeTimer":
        handle = _FakeTimer(fn)
        heapq.heappush(self._heap, (self._now + max(0.0, delay), next(self._seq), handle))
        return handle

    def advance(self, seconds: float) -> None:
        until = self._now + seconds
        while self._heap and self._heap[0][0] <= until:
            when, _, handle = heapq.heappop(self._heap)
            self._now = max(self._now, when)
            if not handle.cancelled:
                handle.fn()
        self._now = until


class _FakeTimer:
    __slots__ = ("fn", "cancelled")

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
