"""Prepare a run without changing anything: resolve targets, check scopes, the blast
radius, the injection window and the WFM schedule, and lay out the timeline.

``prepare`` is what ``--dry-run`` runs in full and what a real run runs first; every
refusal happens here, before the first mutating call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from harness.control.guards import check_wfm, check_window, iso
from harness.control.targets import (
    Resolver, check_blast_radius, referenced_trunks, resolve_body,
)
from harness.errors import AuthError
from harness.experiment.schema import Experiment, FaultKind


@dataclass(frozen=True)
class PlannedStep:
    index: int
    at_s: float
    kind: FaultKind
    trunk_id: str | None
    trunk_name: str | None
    body: dict
    note: str = ""

    def describe(self, method: str) -> str:
        import json
        what = (f"{method} trunk {self.trunk_name} ({self.trunk_id})" if self.kind is FaultKind.TRUNK
                else "PUT twin faults")
        note = f"  [{self.note}]" if self.note else ""
        return f"{what} {json.dumps(self.body, sort_keys=True)}{note}"


@dataclass
class Plan:
    exp: Experiment
    resolver: Resolver
    steps: list[PlannedStep]
    live: dict[str, dict]                 # trunk id -> GET body before the run
    queue_id: str | None
    recovery_queue_id: str | None
    entry_trunk_id: str | None
    scopes_needed: set[str]
    scopes_granted: frozenset[str]
    wfm_agents: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def planned_s(self) -> float:
        m = self.exp.method
        last = max((s.at_s for s in m.steps), default=0.0)
        return m.baseline_s + last + self.exp.convergence.timeout_s + m.hold_s

    @property
    def changed_trunks(self) -> list[str]:
        out: list[str] = []
        for s in self.steps:
            if s.trunk_id and s.trunk_id not in out:
                out.append(s.trunk_id)
        return out


def required_ops(exp: Experiment) -> list[str]:
    ops = ["get_trunk", "update_trunk", "events"]
    if exp.convergence.queue or exp.recovery.queue:
        ops.append("queue_realtime")
    if exp.window.wfm_queue:
        ops.append("schedules")
    if any(s.kind is FaultKind.TWIN_FAULTS for s in exp.method.steps):
        ops += ["get_faults", "put_faults"]
    return ops


def prepare(exp: Experiment, adapter, resolver: Resolver, now: float | None = None) -> Plan:
    now = time.time() if now is None else now
    ops = required_ops(exp)
    needed = adapter.required_scopes(ops)
    granted = adapter.granted_scopes()
    _check_scopes(needed, granted, ops, adapter)
    trunk_ids = referenced_trunks(exp, resolver)
    live = {tid: adapter.get_trunk(tid) for tid in trunk_ids}   # read-only
    check_blast_radius(exp, resolver, live)
    steps = [PlannedStep(i + 1, s.at_s, s.kind, resolver.trunk(s.target) if s.target else None,
                         None, resolve_body(s.body, resolver), s.note)
             for i, s in enumerate(exp.method.steps)]
    steps = [PlannedStep(s.index, s.at_s, s.kind, s.trunk_id,
                         live[s.trunk_id].get("name") if s.trunk_id else None, s.body, s.note)
             for s in steps]
    plan = Plan(exp, resolver, steps, live,
                queue_id=resolver.queue(exp.convergence.queue) if exp.convergence.queue else None,
                recovery_queue_id=resolver.queue(exp.recovery.queue) if exp.recovery.queue else None,
                entry_trunk_id=resolver.trunk(exp.load.target) if exp.load else None,
                scopes_needed=needed, scopes_granted=granted)
    check_window(exp.window, now, plan.planned_s)
    if exp.window.wfm_queue:
        qid = resolver.queue(exp.window.wfm_queue)
        intervals = adapter.schedules(qid, iso(now), iso(now + plan.planned_s))
        plan.wfm_agents = check_wfm(intervals, now, now + plan.planned_s, exp.window.min_agents,
                                    exp.window.wfm_queue)
    return plan


def _check_scopes(needed: set[str], granted: frozenset[str], ops: list[str], adapter) -> None:
    if not granted:
        return  # the platform did not say which scopes it granted; calls will tell
    # An operation passes when its scope is granted; the twin's event stream and WFM
    # routes accept either dialect's scope, so check per operation.
    missing = sorted({adapter.endpoints[op].scope for op in ops
                      if op in adapter.endpoints and adapter.endpoints[op].scope not in granted})
    if missing:
        raise AuthError(f"the token lacks scope(s) {', '.join(missing)} needed by this experiment")


def render_plan(plan: Plan, method: str, start: float) -> str:
    exp = plan.exp
    out = [f"plan for experiment {exp.name!r} ({exp.platform.name.value}/{exp.platform.api.value}), "
           f"{'with load' if exp.load else 'API-only'}; nothing has been changed",
           f"  scopes needed: {', '.join(sorted(plan.scopes_needed))} "
           f"({'granted' if plan.scopes_granted else 'not reported by the platform'})",
           f"  blast radius: name prefixes {', '.join(exp.blast_radius.name_prefixes)}; targets:"]
    for tid, body in plan.live.items():
        out.append(f"    {body.get('name')} ({tid}): now {_summary(body)}")
    if plan.wfm_agents is not None:
        out.append(f"  WFM: at least {plan.wfm_agents} agents scheduled (minimum {exp.window.min_agents})")
    t0 = start
    if exp.load:
        out.append(f"  {iso(t0)}  load to {exp.load.target}: {exp.load.concurrent} concurrent, "
                   f"hold {exp.load.hold_s:g}s; the schedule starts once the load holds its target")
    out.append(f"  {iso(t0)}  t+0s baseline for {exp.method.baseline_s:g}s")
    inject = t0 + exp.method.baseline_s
    for s in plan.steps:
        out.append(f"  {iso(inject + s.at_s)}  t+{exp.method.baseline_s + s.at_s:g}s step {s.index}: "
                   f"{s.describe(method)}")
    expects = ", ".join(e.value for e in exp.convergence.expect)
    last = inject + max((s.at_s for s in plan.steps), default=0.0)
    out.append(f"  each step: re-read, then wait up to {exp.convergence.timeout_s:g}s for {expects}")
    out.append(f"  {iso(last)}  hold {exp.method.hold_s:g}s (after convergence)")
    order = ", ".join(plan.live[t].get("name", t) for t in reversed(plan.changed_trunks))
    out.append(f"  then roll back (LIFO: {order or 'twin faults'}), verify, recover up to "
               f"{exp.recovery.timeout_s:g}s expecting {', '.join(e.value for e in exp.recovery.expect)}")
    out.append(f"  planned end by about {iso(start + plan.planned_s + exp.recovery.timeout_s)}")
    return "\n".join(out)


def _summary(body: dict) -> str:
    keys = ("status", "healthScore", "failoverTrunkId", "capacity", "routing", "codecs")
    return ", ".join(f"{k}={body[k]}" for k in keys if k in body)
