"""What happened when, read from the controller's journal (harness/control/journal.py).

The journal's records carry ``type`` and ``at``. The injection is the first ``change``
sent while the controller was ``injecting`` (written just before the request, so a
few ms before the platform's ``requestedAt``); the rollback begins at the transition
to ``rolling_back``. Targets are ``trunk:ID`` or ``twin_faults``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping


@dataclass(frozen=True)
class Injection:
    at: float
    target: str
    trunk_id: str | None
    fault: str


@dataclass(frozen=True)
class Timeline:
    started_at: float | None = None
    ended_at: float | None = None
    injections: tuple[Injection, ...] = ()
    rollback_at: float | None = None
    phases: tuple[tuple[float, str], ...] = field(default_factory=tuple)

    @property
    def injected_at(self) -> float | None:
        return self.injections[0].at if self.injections else None

    @property
    def trunk_id(self) -> str | None:
        """The first injected trunk: the one whose failover MTTR measures."""
        return next((i.trunk_id for i in self.injections if i.trunk_id), None)


def fault_name(body: Mapping[str, Any] | None, step: str | None = None) -> str:
    """A short, bounded description of a change: its step name, else its top-level keys."""
    if step:
        return str(step)[:60]
    if not body:
        return "change"
    return ",".join(sorted(str(k) for k in body))[:60]


def read_timeline(records: Iterable[Mapping[str, Any]]) -> Timeline:
    """The run's timeline from journal records (any order of arrival; sorted by ``at``)."""
    state = "idle"
    started = ended = rollback = None
    injections: list[Injection] = []
    phases: list[tuple[float, str]] = []
    for rec in sorted(records, key=lambda r: r.get("at") or 0.0):
        at, kind = rec.get("at"), rec.get("type")
        if at is None:
            continue
        started = at if started is None else min(started, at)
        ended = at if ended is None else max(ended, at)
        if kind == "transition" and rec.get("to"):
            state = str(rec["to"])
            phases.append((float(at), state))
            if state == "rolling_back" and rollback is None:
                rollback = float(at)
        elif kind == "change" and state in ("injecting", "converging", "holding"):
            target = str(rec.get("target") or "")
            trunk = target.split(":", 1)[1] if target.startswith("trunk:") else None
            injections.append(Injection(float(at), target, trunk,
                                        fault_name(rec.get("body"), rec.get("step"))))
    return Timeline(started, ended, tuple(injections), rollback, tuple(phases))
