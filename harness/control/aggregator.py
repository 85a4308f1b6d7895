"""Sliding-window figures over per-call records (docs/CONTRACTS.md section 6).

``CallWindow.add(records)`` has the signature of a load-session sink subscriber, so
the controller can ``session.subscribe(window.add)``; API-only experiments simply add
nothing and every figure reads "not enough calls". Records are placed in time by
``ended_at``. Pure apart from a lock: ``figures(now)`` computes from what is held.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Figures:
    calls: int
    answered: int
    by_outcome: dict[str, int] = field(default_factory=dict)
    setup_seconds: tuple[float, ...] = ()

    def rate(self, outcome: str) -> float | None:
        return self.by_outcome.get(outcome, 0) / self.calls if self.calls else None

    @property
    def answer_ratio(self) -> float | None:
        return self.answered / self.calls if self.calls else None

    def setup_percentile(self, pct: float) -> float | None:
        if not self.setup_seconds:
            return None
        ordered = sorted(self.setup_seconds)
        rank = max(0, math.ceil(pct / 100.0 * len(ordered)) - 1)  # nearest-rank method
        return ordered[rank]


class CallWindow:
    def __init__(self, window_s: float, keep_all: bool = True):
        self.window_s = window_s
        self._recent: deque[dict] = deque()
        self._lock = threading.Lock()
        self.totals: Counter[str] = Counter()
        self.keep_all = keep_all
        self.all: list[dict] = []

    def add(self, records) -> None:
        """Sink subscriber: takes an iterable of record dicts (or one dict)."""
        if isinstance(records, dict):
            records = [records]
        with self._lock:
            for rec in records:
                self._recent.append(rec)
                self.totals[str(rec.get("code") if rec.get("outcome") != "answered" else 200)] += 1
                if self.keep_all:
                    self.all.append(rec)

    def figures(self, now: float, since: float | None = None) -> Figures:
        """Figures of calls that ended in (max(now - window, since), now]."""
        low = now - self.window_s if since is None else max(now - self.window_s, since)
        with self._lock:
            while self._recent and self._recent[0].get("ended_at", 0.0) < now - 3600:
                self._recent.popleft()
            chosen = [r for r in self._recent if low < r.get("ended_at", 0.0) <= now]
        outcomes = Counter(str(r.get("outcome", "other")) for r in chosen)
        setups = tuple(float(r["setup_seconds"]) for r in chosen if r.get("setup_seconds") is not None)
        return Figures(calls=len(chosen), answered=outcomes.get("answered", 0),
                       by_outcome=dict(outcomes), setup_seconds=setups)
