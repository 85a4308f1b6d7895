"""Undo what an experiment changed: a LIFO stack of saved originals, verified.

``Saved`` is a target's original configuration, journaled before the first call
that changes it. ``Restorer.restore_all`` walks the stack last-in-first-out; for each
target it sends the restore body (essential: outside the API budget), re-reads the
target and compares it with the original, then watches routing take it (a
``trunkConfigApplied`` event for the trunk; ``provisioningFailed`` means "send again").
Each target is retried with exponential backoff. What cannot be verified is returned
as ``remaining`` with a command that undoes it by hand.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Callable

from harness.control.journal import Journal
from harness.errors import PlatformError

log = logging.getLogger(__name__)

# Fields a trunk update may carry, per dialect (docs/CONTRACTS.md section 2).
WRITABLE = {
    "genesys": ("status", "routing", "capacity", "codecs", "inviteTimeout", "mediaServerPoolId"),
    "cxone": ("status", "healthScore", "failoverTrunkId", "mediaServerPoolId", "codecs", "inviteTimeout"),
}
# Fields that legitimately differ after a faithful restore.
VOLATILE = ("version", "selfUri", "dateModified", "modifiedBy")


@dataclass(frozen=True)
class Saved:
    target: str          # "trunk:<id>" or "twin_faults"
    kind: str            # "trunk" | "twin_faults"
    id: str | None
    name: str | None
    original: dict
    restore: dict

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "Saved":
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__})


def saved_trunk(api: str, trunk_id: str, original: dict) -> Saved:
    restore = {k: original[k] for k in WRITABLE[api] if k in original}
    return Saved(f"trunk:{trunk_id}", "trunk", trunk_id, original.get("name"), original, restore)


def saved_faults(original: dict) -> Saved:
    return Saved("twin_faults", "twin_faults", None, "twin faults", original, dict(original))


def differences(original: dict, current: dict) -> list[str]:
    keys = (set(original) | set(current)) - set(VOLATILE)
    return sorted(k for k in keys if original.get(k) != current.get(k))


def how_to_undo(saved: Saved, adapter, journal_path: str | None) -> str:
    if saved.kind == "trunk":
        ep = adapter.endpoints["update_trunk"]
        manual = f"{ep.method} {adapter.conn.base_url}{ep.path.format(id=saved.id)} {json.dumps(saved.restore)}"
    else:
        manual = f"PUT {adapter.conn.base_url}/twin/v1/faults {json.dumps(saved.restore)}"
    again = f"ccharness rollback --journal {journal_path}; or by hand: " if journal_path else "by hand: "
    return again + manual


class Restorer:
    def __init__(self, adapter, journal: Journal | None, feed=None, *, attempts: int = 4,
                 backoff_s: float = 0.5, routing_timeout_s: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep, journal_path: str | None = None,
                 queue_check: Callable[[], dict] | None = None):
        """``queue_check()`` (queue stats, see convergence.wait_queue_healthy) verifies
        routing when there is no event stream: events first, queue stats second."""
        self.adapter, self.journal, self.feed = adapter, journal, feed
        self.queue_check = queue_check
        self.attempts, self.backoff_s = attempts, backoff_s
        self.routing_timeout_s, self.sleep = routing_timeout_s, sleep
        self.journal_path = journal_path

    def restore_all(self, stack: list[Saved]) -> list[dict]:
        """Restore every saved target, newest first; return what is still changed."""
        remaining = []
        for saved in reversed(stack):
            problem = self.restore_one(saved)
            if problem:
                remaining.append(problem)
        return remaining

    def restore_one(self, saved: Saved) -> dict | None:
        last = "not attempted"
        for attempt in range(1, self.attempts + 1):
            last = self._attempt(saved)
            if last is None:
                self._write("restored", target=saved.target, name=saved.name, attempt=attempt)
                return None
            log.warning("rollback of %s (attempt %d) not verified: %s", saved.target, attempt, last)
            self._write("rollback_retry", target=saved.target, attempt=attempt, problem=last)
            if attempt < self.attempts:
                self.sleep(self.backoff_s * 2 ** (attempt - 1))
        problem = {"target": saved.target, "name": saved.name, "problem": last,
                   "undo": how_to_undo(saved, self.adapter, self.journal_path)}
        self._write("rollback_failed", **problem)
        return problem

    def _attempt(self, saved: Saved) -> str | None:
        sent_at = time.time()
        try:
            if saved.kind == "trunk":
                self.adapter.update_trunk(saved.id, saved.restore, essential=True)
                current = self.adapter.get_trunk(saved.id, essential=True)
            else:
                self.adapter.put_faults(saved.restore, essential=True)
                current = self.adapter.get_faults(essential=True)
        except PlatformError as exc:
            return f"restore call failed: {exc}"
        diff = differences(saved.original, current)
        if diff:
            return f"re-read differs from the original in {', '.join(diff)}"
        if saved.kind != "trunk":
            return None
        if self.feed is not None and self.feed.connected.is_set():
            return self._routing_took(saved.id, saved.restore, sent_at)
        if self.queue_check is not None:
            result = self.queue_check()
            return None if result.get("converged") else f"queue stats did not recover: {result.get('evidence')}"
        return None

    def _routing_took(self, trunk_id: str, body: dict, since: float) -> str | None:
        from harness.control.convergence import applied_event
        event = self.feed.wait_for(applied_event(trunk_id, body), since=since,
                                   timeout=self.routing_timeout_s)
        if event is None:
            return f"routing did not apply the restore within {self.routing_timeout_s:.0f}s"
        if event["type"] == "provisioningFailed":
            return "the platform answered 200 but provisioning of the restore failed"
        return None

    def _write(self, type: str, **fields) -> None:
        if self.journal:
            self.journal.write(type, **fields)
