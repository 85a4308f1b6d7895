"""Guards that refuse to inject: the injection window and the WFM schedule.

The guide: inject only in an agreed window, and cross-reference the WFM schedule so
simulated degradation never lands on a thinly staffed queue. Both raise GuardError
(exit 3) before any change.
"""

from __future__ import annotations

from datetime import datetime, timezone

from harness.errors import GuardError
from harness.experiment.schema import Window


def check_window(window: Window, now: float, planned_s: float) -> None:
    """Refuse unless [now, now + planned_s] lies inside the window."""
    start_ts = window.start.timestamp() if window.start else None
    end_ts = window.end.timestamp() if window.end else None
    if start_ts is not None and now < start_ts:
        raise GuardError(f"outside the injection window: it opens at {window.start.isoformat()}")
    if end_ts is not None and now + planned_s > end_ts:
        raise GuardError(f"outside the injection window: it closes at {window.end.isoformat()}, "
                         f"before the planned end (+{planned_s:.0f}s)")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(round(ts), timezone.utc).isoformat().replace("+00:00", "Z")


def scheduled_minimum(intervals: list[dict], start: float, end: float) -> int | None:
    """The fewest agents scheduled in any interval overlapping [start, end]."""
    counts = []
    for iv in intervals:
        s, e = _ts(iv.get("start")), _ts(iv.get("end"))
        if s is None or e is None or (e > start and s < end):
            counts.append(int(iv.get("agentsScheduled", 0)))
    return min(counts) if counts else None


def check_wfm(intervals: list[dict], start: float, end: float, min_agents: int, queue: str) -> int:
    fewest = scheduled_minimum(intervals, start, end)
    if fewest is None:
        raise GuardError(f"the WFM schedule of queue {queue} has no interval covering the run; refusing to inject")
    if fewest < min_agents:
        raise GuardError(f"the WFM schedule of queue {queue} shows {fewest} agents in the run window, "
                         f"fewer than min_agents {min_agents}; refusing to inject")
    return fewest


def _ts(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
