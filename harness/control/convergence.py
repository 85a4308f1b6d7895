"""Is a change real? Evidence that the platform reflects it and routing took it.

A 200 is not success (the guide's Trap in section 4): after a change we re-read the
target (the platform reflects it), then wait for routing evidence, the event stream
first (``trunkConfigApplied`` whose ``fields`` carry the change; ``provisioningFailed``
ends the wait at once) and queue stats second (agents available, short wait: the
guide's convergence rule). Each outcome is a dict for the journal and the summary.
"""

from __future__ import annotations

import time
from typing import Callable

from harness.experiment.schema import Expect


def contains(fields: dict, body: dict) -> bool:
    """Every value in ``body`` (nested) equals the one in ``fields``."""
    for key, want in body.items():
        have = fields.get(key)
        if isinstance(want, dict):
            if not isinstance(have, dict) or not contains(have, want):
                return False
        elif isinstance(want, list) and isinstance(have, list):
            if list(want) != list(have):
                return False
        elif have != want:
            return False
    return True


def applied_event(trunk_id: str, body: dict) -> Callable[[dict], bool]:
    def match(e: dict) -> bool:
        if e.get("trunkId") != trunk_id:
            return False
        if e.get("type") == "provisioningFailed":
            return True
        return e.get("type") == "trunkConfigApplied" and contains(e.get("fields") or {}, body)
    return match


def wait_applied(feed, trunk_id: str, body: dict, since: float, timeout: float,
                 stop: Callable[[], bool] = lambda: False) -> dict:
    """Outcome of waiting for routing to take one trunk change."""
    started = time.time()
    if feed is None or not feed.connected.is_set() and not feed.events:
        return {"expect": Expect.CONFIG_APPLIED.value, "converged": None,
                "evidence": "no event stream"}
    event = feed.wait_for(applied_event(trunk_id, body), since=since, timeout=timeout, stop=stop)
    elapsed = round(time.time() - started, 3)
    if event is None:
        return {"expect": Expect.CONFIG_APPLIED.value, "converged": False, "elapsed_s": elapsed,
                "evidence": f"no trunkConfigApplied for trunk {trunk_id} within {timeout:.0f}s"}
    if event["type"] == "provisioningFailed":
        return {"expect": Expect.CONFIG_APPLIED.value, "converged": False, "elapsed_s": elapsed,
                "evidence": f"provisioningFailed for trunk {trunk_id} (the API had answered 200)",
                "event_at": event.get("timestamp")}
    return {"expect": Expect.CONFIG_APPLIED.value, "converged": True, "elapsed_s": elapsed,
            "event_at": event.get("timestamp"), "evidence": f"trunkConfigApplied {event.get('changeId')}"}


def wait_route_event(feed, kind: str, trunk_ids: set[str], since: float, timeout: float,
                     stop: Callable[[], bool] = lambda: False) -> dict:
    """``failover`` away from / ``failback`` to one of ``trunk_ids``."""
    key = "fromTrunkId" if kind == "failover" else "toTrunkId"
    started = time.time()
    if feed is None:
        return {"expect": kind, "converged": None, "evidence": "no event stream"}
    event = feed.wait_for(lambda e: e.get("type") == kind and e.get(key) in trunk_ids,
                          since=since, timeout=timeout, stop=stop)
    elapsed = round(time.time() - started, 3)
    if event is None:
        return {"expect": kind, "converged": False, "elapsed_s": elapsed,
                "evidence": f"no {kind} event within {timeout:.0f}s"}
    return {"expect": kind, "converged": True, "elapsed_s": elapsed, "event_at": event.get("timestamp"),
            "evidence": f"{kind} {event.get('fromTrunkId')} -> {event.get('toTrunkId')}"}


def wait_queue_healthy(read_queue: Callable[[], dict], timeout: float, poll_s: float,
                       sleep: Callable[[float], None] = time.sleep,
                       stop: Callable[[], bool] = lambda: False) -> dict:
    """The guide's rule: agents available and wait under 5 s (analytics lag behind)."""
    started = time.time()
    last = None
    while True:
        last = read_queue()
        if (last.get("agents") or 0) > 0 and (last.get("waiting_s") or 0) < 5:
            return {"expect": Expect.QUEUE_STATS.value, "converged": True,
                    "elapsed_s": round(time.time() - started, 3),
                    "evidence": f"agents {last.get('agents')}, wait {last.get('waiting_s')}s"}
        if time.time() - started >= timeout or stop():
            return {"expect": Expect.QUEUE_STATS.value, "converged": False,
                    "elapsed_s": round(time.time() - started, 3),
                    "evidence": f"queue still unhealthy: agents {last.get('agents')}, "
                                f"wait {last.get('waiting_s')}s"}
        sleep(poll_s)
