"""One streaming pass over calls.jsonl into the small figures a report needs.

Nothing per call is kept: counts by SIP code, counts per second per code (for the
outcomes-over-time plot), and log-bucketed setup-time histograms per outcome whose
percentiles are within 2% of the exact ones. A soak run of hours stays a few MB.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from harness.metrics.exporter import code_label, is_license_rejection
from harness.metrics.mttr import ANSWERED, final_response_at, window_index

# Log buckets of ratio 1.02 from 1 ms: a bucket's mean is within 2% of any value in it.
_RATIO = 1.02
_FLOOR = 0.001
PERCENTILES = (50, 90, 95, 99)


class LogHistogram:
    """Counts and sums of values in log buckets; ``percentile`` by nearest rank.

    The answer is the mean of the values in the rank's bucket: exact when they are equal
    (e.g. every 408 at Timer B's 32 s), within 2% otherwise.
    """

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.sums: Counter[int] = Counter()
        self.n = 0

    def add(self, value: float) -> None:
        idx = 0 if value <= _FLOOR else int(math.log(value / _FLOOR, _RATIO)) + 1
        self.counts[idx] += 1
        self.sums[idx] += value
        self.n += 1

    def percentile(self, pct: float) -> float | None:
        if not self.n:
            return None
        rank = max(1, math.ceil(pct / 100.0 * self.n))
        seen = 0
        for idx in sorted(self.counts):
            seen += self.counts[idx]
            if seen >= rank:
                return self.sums[idx] / self.counts[idx]
        return None  # pragma: no cover - rank <= n always ends the loop


@dataclass
class CallStats:
    calls: int = 0
    license_rejections: int = 0
    by_code: Counter = field(default_factory=Counter)
    per_second: dict[int, Counter] = field(default_factory=dict)
    setup: dict[str, LogHistogram] = field(default_factory=dict)
    first_at: float | None = None
    last_at: float | None = None
    # With an injection time, the MTTR figures that need call records are folded into the
    # same pass: the first failure after it, and answer-ratio windows around it.
    injected_at: float | None = None
    window_s: float = 5.0
    detect_at: float | None = None
    windows: dict[int, list[int]] = field(default_factory=dict)

    def add(self, rec: Mapping[str, Any]) -> None:
        self.calls += 1
        code = "200" if rec.get("outcome") == "answered" else code_label(rec.get("code"))
        self.by_code[code] += 1
        self.license_rejections += is_license_rejection(rec)
        at = final_response_at(rec)
        if at is not None:
            self.per_second.setdefault(int(at), Counter())[code] += 1
            self.first_at = at if self.first_at is None else min(self.first_at, at)
            self.last_at = at if self.last_at is None else max(self.last_at, at)
        setup = rec.get("setup_seconds")
        if setup is not None:
            outcome = str(rec.get("outcome") or "other")
            self.setup.setdefault(outcome, LogHistogram()).add(float(setup))
            self.setup.setdefault("all", LogHistogram()).add(float(setup))
        if self.injected_at is not None:
            self._add_mttr_parts(rec, at)

    def _add_mttr_parts(self, rec: Mapping[str, Any], final_at: float | None) -> None:
        answered = rec.get("outcome") == ANSWERED
        if not answered and final_at is not None and final_at >= self.injected_at:
            self.detect_at = final_at if self.detect_at is None else min(self.detect_at, final_at)
        invite_at = rec.get("invite_at")
        if invite_at is not None:
            slot = self.windows.setdefault(window_index(float(invite_at), self.injected_at, self.window_s), [0, 0])
            slot[0] += answered
            slot[1] += 1

    @property
    def detect_s(self) -> float | None:
        return None if self.detect_at is None or self.injected_at is None else self.detect_at - self.injected_at

    def ratio_windows(self) -> dict[int, tuple[int, int]]:
        return {k: (v[0], v[1]) for k, v in self.windows.items()}

    def calls_by_code(self) -> dict[str, int]:
        return {code: self.by_code[code] for code in sorted(self.by_code)}

    def setup_percentiles(self) -> dict[str, dict[str, float | None]]:
        """``{"answered": {"p50": s, ...}, "all": {...}}`` in seconds, rounded to ms."""
        out = {}
        for outcome, hist in sorted(self.setup.items()):
            out[outcome] = {f"p{p}": _round(hist.percentile(p)) for p in PERCENTILES}
            out[outcome]["count"] = hist.n
        return out

    def series(self, max_points: int = 400) -> dict[str, Any]:
        """Counts per code in equal time buckets (at most ``max_points``) for plotting."""
        if not self.per_second:
            return {"start": None, "step": 1, "codes": {}}
        start, end = min(self.per_second), max(self.per_second)
        step = max(1, math.ceil((end - start + 1) / max_points))
        size = (end - start) // step + 1
        codes: dict[str, list[int]] = {c: [0] * size for c in sorted(self.by_code)}
        for sec, counts in self.per_second.items():
            for code, n in counts.items():
                codes[code][(sec - start) // step] += n
        return {"start": start, "step": step, "codes": codes}


def outcomes_from_events(events: Iterable[Mapping[str, Any]]) -> CallStats:
    """Outcome counts over time from platform events, for runs without call records
    (API-only experiments beside other traffic, SIPp): an ``answer`` counts as 200, a
    ``callRouting`` decision ``rejected:<code>`` as that code, ``dropped`` as ``dropped``.
    """
    stats = CallStats()
    for ev in events:
        kind, decision, at = ev.get("type"), str(ev.get("decision") or ""), ev.get("timestamp")
        if kind == "answer":
            code = "200"
        elif kind == "callRouting" and decision.startswith("rejected:"):
            code = decision.split(":", 1)[1]
        elif kind == "callRouting" and decision == "dropped":
            code = "dropped"
        else:
            continue
        if at is None:
            continue
        stats.calls += 1
        stats.by_code[code] += 1
        stats.per_second.setdefault(int(at), Counter())[code] += 1
    return stats


def aggregate(records: Iterable[Mapping[str, Any]], injected_at: float | None = None,
              window_s: float = 5.0) -> CallStats:
    stats = CallStats(injected_at=injected_at, window_s=window_s)
    for rec in records:
        stats.add(rec)
    return stats


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)
