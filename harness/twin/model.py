"""The twin's routing model: sans-I/O, driven by a Scheduler, talking to CallLegs.

Theory of operation
-------------------
Configuration: each trunk has an *API* view (changed at once by PATCH/PUT, what GET
returns) and a *routed* view (what routing uses). A change reaches the routed view
after propagation: Genesys after a random 15-25 s per change (kept in request order per
trunk); CXone at the next edge-proxy refresh (every 10 s). With the provisioning-failure
fault on, a change is accepted by the API but never reaches routing.

Health and failover: Genesys runs a periodic health check; a trunk that is not healthy
in the routed view (Degraded, Inactive, routing disabled, or blackholed) fails over to the
healthy trunk of its group with the lowest failoverPriority (a Degraded trunk with no
healthy peer keeps throttling); it fails back at the first check that sees it healthy. CXone polls the routed healthScore (0 when Inactive or
blackholed); after ``cxoneLowPolls`` consecutive polls below the threshold the trunk
fails over to its failoverTrunkId, and fails back after as many polls at or above it.
Calls enter by the trunk whose listener got the INVITE (entry trunk) and are carried by
the failover target while a failover is active (effective trunk).

An INVITE goes through ``_ROUTE_STEPS`` in order; the first step that decides ends
routing: blackhole -> drop; effective trunk out of service -> drop (CXone: exception
TRUNK_UNAVAILABLE when the failover target is the one out of service); capacity or
Degraded throttle -> 503; no common codec -> 488 (RFC 3261 21.4.26); media pool unknown ->
drop, unavailable -> drop (CXone: MEDIA_SERVER_TIMEOUT); added latency (entry-to-effective
zone latency, zones taken from the media pool when it names one, plus cross-region media)
above the effective trunk's inviteTimeout -> 408 after inviteTimeout; then the flow (Genesys queue stats -> fallback queue or
callback; CXone exception -> Fallback_Support_Queue or the maintenance IVR); license
ceiling -> 403 License Exceeded (callbacks hold no license); then the queue.

Queues: free agents ring (180) and answer after ringTime (plus cross-region or zone
latency); an agent stays busy until the caller's BYE or handleTime, when the twin sends
BYE. Calls wait when no agent is free.

Every decision is an event (CONTRACTS.md section 3) passed to ``emit``; ground truth
(section 4) is kept here. Delays from the topology are multiplied by ``time_scale``; SIP
timers (inviteTimeout) and network latencies are not.
"""

from __future__ import annotations

import collections
import functools
import logging
import random
from dataclasses import dataclass, field
from typing import Any, Callable

from harness.twin.legs import CallLeg, Scheduler
from harness.twin.topology import Queue, Topology, Trunk, stable_id
from harness.twin.trunks import TrunkConfig, UpdateError, parse_update, render


log = logging.getLogger(__name__)


def _guarded(method):
    """A bug in the model must not take the SIP side's reader down: log it, and answer
    the INVITE 500 rather than leave the caller hanging (RFC 3261 21.5.1)."""
    @functools.wraps(method)
    def wrapper(self, leg, *args):
        try:
            return method(self, leg, *args)
        except Exception:
            log.exception("twin model failed in %s", method.__name__)
            self.internal_errors += 1
            call = self.calls.get(id(leg))
            if call is not None:
                self._release(call)
            if method.__name__ == "on_invite":
                leg.reject(500, "Server Internal Error")
            return None
    return wrapper


class ModelError(Exception):
    """A request the model refuses; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Change:
    change_id: str
    trunk_id: str
    platform: str
    body: dict
    changes: dict
    requested_at: float
    applied_at: float | None = None
    provisioning_failed: bool = False
    done: bool = False              # reached routing, or failed to

    def to_json(self) -> dict:
        return {"changeId": self.change_id, "trunkId": self.trunk_id, "platform": self.platform,
                "body": self.body, "requestedAt": self.requested_at, "appliedAt": self.applied_at,
                "provisioningFailed": self.provisioning_failed}


@dataclass
class Call:
    leg: CallLeg
    call_id: str
    tag: str | None
    platform: str
    entry_id: str
    trunk_id: str
    queue_id: str | None = None
    codec: str = "PCMU"
    state: str = "routing"          # routing, waiting, ringing, answered, ended
    agent_id: str | None = None
    holds_license: bool = False
    counted_on_trunk: bool = False
    extra_latency: float = 0.0      # seconds added before answer (cross-region, zone)
    dtmf_relayed: bool = True
    queued_at: float = 0.0
    timers: list = field(default_factory=list)

    @property
    def via_failover(self) -> bool:
        return self.trunk_id != self.entry_id


@dataclass
class QueueState:
    queue: Queue
    free: collections.deque
    waiting: collections.deque = field(default_factory=collections.deque)
    busy: dict = field(default_factory=dict)      # agent id -> Call
    offered: int = 0
    answered: int = 0
    answered_via_failover: int = 0   # answers of calls carried into this queue by a failover
    total_wait: float = 0.0

    def stats(self, now: float) -> dict:
        oldest = self.waiting[0].queued_at if self.waiting else now   # FIFO: first is oldest
        return {"waitTime": round(now - oldest, 3), "availableAgents": len(self.free),
                "answeredCalls": self.answered, "answeredViaFailover": self.answered_via_failover,
                "offeredCalls": self.offered,
                "avgWait": round(self.total_wait / self.answered, 3) if self.answered else 0.0,
                "agentCount": len(self.free) + len(self.busy)}


# RFC 3261 21: reason phrases for the configurable capacity/throttle rejection code.
REASONS = {403: "Forbidden", 480: "Temporarily Unavailable", 486: "Busy Here",
           488: "Not Acceptable Here", 500: "Server Internal Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Server Time-out", 600: "Busy Everywhere",
           603: "Decline"}

DEFAULT_FAULTS = {"provisioningFailure": False, "apiLatencyMs": 0, "apiErrorRate": 0.0,
                  "apiErrorCode": 503, "blackholeTrunks": [], "licenseCeiling": {},
                  "unavailablePools": []}


class TwinModel:
    """The routing model (implements ``CallRouter``). Single-threaded: call it on one hub."""

    def __init__(self, topology: Topology, scheduler: Scheduler, emit: Callable[[dict], None],
                 *, time_scale: float = 1.0, seed: int | None = None):
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.topo, self.clock, self.emit = topology, scheduler, emit
        self.time_scale = time_scale
        self._seed = seed
        self._generation = 0
        self._periodic: list = []
        self.internal_errors = 0
        self._init_state()

    # ------------------------------------------------------------ lifecycle

    def _init_state(self) -> None:
        self.rng = random.Random(self._seed)
        self.api: dict[str, TrunkConfig] = {}
        self.routed: dict[str, TrunkConfig] = {}
        self.version: dict[str, int] = {}
        for t in self.topo.trunks:
            self.api[t.id] = self.routed[t.id] = TrunkConfig.from_trunk(t)
            self.version[t.id] = 1
        self.changes: list[Change] = []
        self._cxone_pending: list[Change] = []
        self._last_apply_at: dict[str, float] = {}
        self.failover: dict[str, str] = {}          # entry trunk -> target trunk
        self.failovers: list[dict] = []
        self.failbacks: list[dict] = []
        self._low_polls: dict[str, int] = collections.defaultdict(int)
        self._high_polls: dict[str, int] = collections.defaultdict(int)
        self.broken_cdrs = 0
        self.faults: dict[str, Any] = {k: (list(v) if isinstance(v, list) else
                                           dict(v) if isinstance(v, dict) else v)
                                       for k, v in DEFAULT_FAULTS.items()}
        self.calls: dict[int, Call] = {}
        self.trunk_active: dict[str, int] = collections.defaultdict(int)
        self.sessions: dict[str, int] = collections.defaultdict(int)
        self._throttle_acc: dict[str, float] = collections.defaultdict(float)
        self.queues = {q.id: QueueState(q, collections.deque(
            stable_id(q.platform, "agent", f"{q.name}/{i + 1}") for i in range(q.agents)))
            for q in self.topo.queues}
        self.analytics: dict[str, list[tuple[float, dict]]] = {}
        self.started_at = self.clock.now()
        self._change_seq = 0

    def start(self) -> None:
        """Start the periodic jobs: health checks, edge refresh, analytics batches."""
        d = self.topo.delays
        self._snapshot_analytics(lag=0.0)
        self._every(d.genesys_health_check_interval, self._genesys_health_check)
        self._every(d.cxone_edge_refresh, self._cxone_edge_refresh)
        self._every(d.cxone_health_poll_interval, self._cxone_health_poll)
        self._every(d.analytics_batch, self._snapshot_analytics)

    def stop(self) -> None:
        self._generation += 1
        for handle in self._periodic:
            handle.cancel()
        self._periodic.clear()
        for call in list(self.calls.values()):
            self._cancel_timers(call)

    def reset(self) -> None:
        """Back to the topology as loaded: calls up are hung up (not counted as broken)."""
        calls = list(self.calls.values())
        self.stop()
        for call in calls:
            call.leg.hangup("reset")
        self._init_state()
        self.start()

    def scaled(self, seconds: float) -> float:
        return seconds * self.time_scale

    def _later(self, delay: float, fn: Callable[[], None]):
        gen = self._generation

        def run() -> None:
            if gen == self._generation:
                self._safely(fn)
        return self.clock.call_later(delay, run)

    def _safely(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:
            log.exception("twin model timer failed")
            self.internal_errors += 1

    def _every(self, interval: float, fn: Callable[[], None]) -> None:
        period = self.scaled(interval)
        gen = self._generation

        def tick() -> None:
            if gen != self._generation:
                return
            self._periodic.append(self.clock.call_later(period, tick))
            if len(self._periodic) > 64:
                del self._periodic[:-16]
            self._safely(fn)
        self._periodic.append(self.clock.call_later(period, tick))

    def _event(self, type_: str, platform: str, **fields: Any) -> None:
        self.emit({"type": type_, "timestamp": self.clock.now(), "platform": platform, **fields})

    # ------------------------------------------------------------ configuration API

    def trunk_view(self, platform: str, trunk_id: str) -> dict:
        trunk = self._trunk_of(platform, trunk_id)
        return render(platform, trunk.id, self.api[trunk.id], self.version[trunk.id])

    def update_trunk(self, platform: str, trunk_id: str, body: Any) -> dict:
        """PATCH (Genesys) / PUT (CXone): the API view changes now, routing later."""
        trunk = self._trunk_of(platform, trunk_id)
        try:
            changes = parse_update(platform, trunk.id, body)
        except UpdateError as exc:
            raise ModelError(400, str(exc)) from None
        target = changes.get("failover_trunk_id")
        if target and self.topo.trunk(target) is None:
            # Accept a trunk name too (the guide's examples use names); store the id.
            named = next((t.id for t in self.topo.trunks if t.name == target and t.platform == platform), None)
            if named:
                changes["failover_trunk_id"] = named
        self.api[trunk.id] = self.api[trunk.id].updated(changes)
        self.version[trunk.id] += 1
        self._change_seq += 1
        change = Change(stable_id(platform, "change", f"{trunk.id}/{self._change_seq}"),
                        trunk.id, platform, body, changes, self.clock.now(),
                        provisioning_failed=bool(self.faults["provisioningFailure"]))
        self.changes.append(change)
        if platform == "genesys":
            self._schedule_genesys_apply(change)
        else:   # CXone changes wait for the next edge refresh (_cxone_edge_refresh)
            self._cxone_pending.append(change)
        return self.trunk_view(platform, trunk.id)

    def _trunk_of(self, platform: str, trunk_id: str) -> Trunk:
        trunk = self.topo.trunk(trunk_id)
        if trunk is None or trunk.platform != platform:
            raise ModelError(404, f"no {platform} trunk {trunk_id}")
        return trunk

    def _schedule_genesys_apply(self, change: Change) -> None:
        lo, hi = self.topo.delays.genesys_propagation
        at = self.clock.now() + self.scaled(self.rng.uniform(lo, hi))
        # The message bus delivers a trunk's changes in order.
        at = max(at, self._last_apply_at.get(change.trunk_id, 0.0))
        self._last_apply_at[change.trunk_id] = at
        self._later(at - self.clock.now(), lambda: self._apply(change))

    def _cxone_edge_refresh(self) -> None:
        pending, self._cxone_pending = self._cxone_pending, []
        for change in pending:
            self._apply(change)

    def _apply(self, change: Change) -> None:
        change.done = True
        if change.provisioning_failed:
            self._event("provisioningFailed", change.platform, trunkId=change.trunk_id,
                        changeId=change.change_id)
            return
        before = self.routed[change.trunk_id]
        after = before.updated(change.changes)
        self.routed[change.trunk_id] = after
        change.applied_at = self.clock.now()
        self._event("trunkConfigApplied", change.platform, trunkId=change.trunk_id,
                    changeId=change.change_id,
                    fields=render(change.platform, change.trunk_id, after, self.version[change.trunk_id]))
        if before.in_service and not after.in_service:
            self._remove_abruptly(change.trunk_id)

    def _remove_abruptly(self, trunk_id: str) -> None:
        """Calls carried by a trunk that left service: ringing -> 487, answered -> BYE."""
        for call in [c for c in self.calls.values() if c.trunk_id == trunk_id]:
            self.broken_cdrs += 1
            if call.leg.state == "proceeding":
                # 487 with the twin's headers (CONTRACTS 5); hangup() would send it bare.
                call.leg.reject(487, "Request Terminated", self._headers(call))
            else:
                call.leg.hangup("trunkRemoved")
            self._end(call, "trunkRemoved")

    # ------------------------------------------------------------ health and failover

    def _usable(self, trunk_id: str) -> bool:
        return self.routed[trunk_id].in_service and trunk_id not in self.faults["blackholeTrunks"]

    def _genesys_healthy(self, trunk_id: str) -> bool:
        """What the Genesys health check calls healthy: usable and not Degraded."""
        return self._usable(trunk_id) and self.routed[trunk_id].status == "Active"

    def _genesys_health_check(self) -> None:
        for t in self.topo.trunks:
            if t.platform != "genesys":
                continue
            healthy = self._genesys_healthy(t.id)
            current = self.failover.get(t.id)
            if healthy and current:
                self._failback(t, current)
            elif not healthy and (current is None or not self._genesys_healthy(current)):
                target = self._genesys_target(t)
                if target and target != current:
                    self._failover(t, target)

    def _genesys_target(self, trunk: Trunk) -> str | None:
        peers = [p for p in self.topo.trunks if p.platform == "genesys" and p.group == trunk.group
                 and p.id != trunk.id and self._genesys_healthy(p.id)]
        peers.sort(key=lambda p: (self.routed[p.id].failover_priority, p.name))
        return peers[0].id if peers else None

    def _cxone_score(self, trunk_id: str) -> float:
        return self.routed[trunk_id].health_score if self._usable(trunk_id) else 0.0

    def _cxone_health_poll(self) -> None:
        d = self.topo.delays
        for t in self.topo.trunks:
            if t.platform != "cxone":
                continue
            low = self._cxone_score(t.id) < d.cxone_health_threshold
            self._low_polls[t.id] = self._low_polls[t.id] + 1 if low else 0
            self._high_polls[t.id] = 0 if low else self._high_polls[t.id] + 1
            target = self.routed[t.id].failover_trunk_id
            current = self.failover.get(t.id)
            if low and current is None and target and self._low_polls[t.id] >= d.cxone_low_polls:
                if self.topo.trunk(target) is not None:
                    self._failover(t, target)
            elif not low and current and self._high_polls[t.id] >= d.cxone_low_polls:
                self._failback(t, current)

    def _failover(self, trunk: Trunk, target: str) -> None:
        self.failover[trunk.id] = target
        now = self.clock.now()
        self.failovers.append({"fromTrunkId": trunk.id, "toTrunkId": target, "at": now,
                               "firstAnswerAt": None, "firstAnswerCallId": None,
                               "firstAnswerTag": None})
        self._event("failover", trunk.platform, fromTrunkId=trunk.id, toTrunkId=target)

    def _failback(self, trunk: Trunk, current: str) -> None:
        del self.failover[trunk.id]
        self.failbacks.append({"fromTrunkId": current, "toTrunkId": trunk.id, "at": self.clock.now()})
        self._event("failback", trunk.platform, fromTrunkId=current, toTrunkId=trunk.id)

    def options_status(self, trunk_id: str) -> tuple[int, str]:
        trunk = self.topo.trunk(trunk_id)
        if trunk is None:
            return 404, "Not Found"
        if not self._usable(trunk_id):
            return 503, "Service Unavailable"
        if trunk.platform == "cxone" and self._cxone_score(trunk_id) < self.topo.delays.cxone_health_threshold:
            return 503, "Service Unavailable"
        return 200, "OK"

    # ------------------------------------------------------------ INVITE routing

    @_guarded
    def on_invite(self, leg: CallLeg) -> None:
        info = leg.info
        entry = self.topo.trunk(info.trunk_id)
        if entry is None:
            leg.reject(404, "Not Found")
            return
        call = Call(leg=leg, call_id=info.call_id, tag=info.header(self.topo.tag_header),
                    platform=entry.platform, entry_id=entry.id,
                    trunk_id=self.failover.get(entry.id, entry.id))
        call.queue_id = self.topo.trunk(call.trunk_id).queue_id
        self.calls[id(leg)] = call
        for step in _ROUTE_STEPS:
            if step(self, call):
                return

    def _route_event(self, call: Call, decision: str, exception: str | None = None) -> None:
        fields = dict(callId=call.call_id, tag=call.tag, entryTrunkId=call.entry_id,
                      trunkId=call.trunk_id, queueId=call.queue_id, decision=decision)
        if call.platform == "cxone":
            fields["exceptionType"] = exception
        self._event("callRouting", call.platform, **fields)

    def _headers(self, call: Call) -> dict[str, str]:
        return {"X-Twin-Trunk": call.trunk_id, "X-Twin-Queue": call.queue_id or ""}

    def _reject(self, call: Call, code: int, reason: str) -> bool:
        self._route_event(call, f"rejected:{code}")
        call.leg.reject(code, reason, self._headers(call))
        self._forget(call)
        return True

    def _drop(self, call: Call, exception: str | None = None) -> bool:
        self._route_event(call, "dropped", exception)
        call.leg.drop()
        self._forget(call)
        return True

    def _step_blackhole(self, call: Call) -> bool:
        if call.entry_id in self.faults["blackholeTrunks"]:
            return self._drop(call)
        return False

    def _step_in_service(self, call: Call) -> bool:
        if self._usable(call.trunk_id):
            return False
        if call.platform == "cxone" and call.via_failover:
            return self._exception(call, "TRUNK_UNAVAILABLE")
        return self._drop(call)

    def _step_capacity(self, call: Call) -> bool:
        cfg = self.routed[call.trunk_id]
        code = self.topo.reject_code
        if self.trunk_active[call.trunk_id] >= cfg.max_concurrent_calls or (
                cfg.status == "Degraded" and not self._throttle_admits(call.trunk_id, cfg.throttle_percentage)):
            return self._reject(call, code, REASONS.get(code, "Service Unavailable"))
        return False

    def _throttle_admits(self, trunk_id: str, percentage: float) -> bool:
        # Deterministic error diffusion: exactly `percentage` % of attempts pass over time.
        self._throttle_acc[trunk_id] += percentage
        if self._throttle_acc[trunk_id] >= 100.0:
            self._throttle_acc[trunk_id] -= 100.0
            return True
        return False

    def _step_codec(self, call: Call) -> bool:
        supported = self.routed[call.trunk_id].codecs
        common = [c for c in call.leg.info.offered_codecs if c.upper() in supported]
        if not common:
            return self._reject(call, 488, "Not Acceptable Here")
        call.codec = common[0]
        return False

    def _step_media_pool(self, call: Call) -> bool:
        pool = self.topo.pool(self.routed[call.trunk_id].media_server_pool_id)
        if pool is None:
            return self._drop(call, "MEDIA_POOL_MISMATCH")
        if not pool.available or pool.id in self.faults["unavailablePools"]:
            if call.platform == "cxone":
                return self._exception(call, "MEDIA_SERVER_TIMEOUT")
            return self._drop(call, "MEDIA_SERVER_TIMEOUT")
        queue = self.topo.queue(call.queue_id)
        if queue is not None and queue.region != pool.region:
            lo, hi = self.topo.delays.cross_region_latency_ms
            call.extra_latency += self.rng.uniform(lo, hi) / 1000.0
            call.dtmf_relayed = False
        return False

    def _zone_of(self, trunk_id: str) -> str:
        """A trunk's latency zone: its media pool's zone when the pool names one."""
        pool = self.topo.pool(self.routed[trunk_id].media_server_pool_id)
        if pool is not None and pool.latency_zone:
            return pool.latency_zone
        return self.topo.trunk(trunk_id).latency_zone

    def _step_zone(self, call: Call) -> bool:
        zones = self._zone_of(call.entry_id), self._zone_of(call.trunk_id)
        call.extra_latency += self.topo.delays.zone_latency(*zones) / 1000.0
        timeout = self.routed[call.trunk_id].invite_timeout
        # Edge Case 1: the platform's INVITE timer expires before the far trunk answers.
        if call.extra_latency > timeout:
            self._route_event(call, "rejected:408")
            self._forget(call)
            call.timers.append(self._later(timeout, lambda: call.leg.reject(
                408, "Request Timeout", self._headers(call))))
            return True
        return False

    def _step_flow(self, call: Call) -> bool:
        if call.platform != "genesys":
            if self.topo.queue(call.queue_id) is None:
                return self._exception(call, "NO_QUEUE")
            return False
        qs = self.queues.get(call.queue_id)
        if qs is None:
            return self._drop(call, "NO_QUEUE")
        flow, stats = self.topo.genesys_flow, qs.stats(self.clock.now())
        if stats["waitTime"] > self.scaled(flow.max_wait_time) or stats["availableAgents"] <= flow.min_available_agents:
            if qs.queue.fallback_queue_id:
                call.queue_id = qs.queue.fallback_queue_id
                return self._admit(call, "fallback")
            if qs.queue.callback:
                return self._callback(call)
        return False

    def _step_queue(self, call: Call) -> bool:
        return self._admit(call, "queued")

    def _exception(self, call: Call, exception: str) -> bool:
        """CXone Studio exception handler: fallback queue or the maintenance IVR."""
        flow = self.topo.cxone_flow
        if exception in flow.fallback_exceptions and flow.fallback_queue_id:
            call.queue_id = flow.fallback_queue_id
            return self._admit(call, "fallback", exception)
        ivr = self.topo.ivr(flow.ivr_id)
        if ivr is None:
            return self._drop(call, exception)
        call.queue_id = ivr.id
        if not self._take_license(call):
            return self._reject(call, 403, "License Exceeded")
        self._route_event(call, "ivr", exception)
        self._answer_and_end(call, self.scaled(ivr.duration), "ivr")
        return True

    def _callback(self, call: Call) -> bool:
        # Callbacks hold no concurrent-session license (the guide's Edge Case 3 advice).
        self._route_event(call, "callback")
        self._answer_and_end(call, self.scaled(2.0), "callback")
        return True

    def _answer_and_end(self, call: Call, duration: float, reason: str) -> None:
        self._count_on_trunk(call)
        call.state = "answered"
        call.leg.answer(call.codec, self._headers(call))
        call.timers.append(self._later(duration, lambda: self._hangup(call, reason)))

    def _take_license(self, call: Call) -> bool:
        ceiling = self._license_ceiling(call.platform)
        if ceiling is not None and self.sessions[call.platform] >= ceiling:
            return False
        call.holds_license = True
        self.sessions[call.platform] += 1
        return True

    def _license_ceiling(self, platform: str) -> int | None:
        tier = self.topo.platform_tiers.get(platform)
        override = self.faults["licenseCeiling"].get(tier) if tier else None
        return override if override is not None else self.topo.license_ceiling(platform)

    def _count_on_trunk(self, call: Call) -> None:
        if not call.counted_on_trunk:
            call.counted_on_trunk = True
            self.trunk_active[call.trunk_id] += 1

    def _admit(self, call: Call, decision: str, exception: str | None = None) -> bool:
        if not self._take_license(call):
            return self._reject(call, 403, "License Exceeded")
        qs = self.queues.get(call.queue_id)
        if qs is None:
            return self._drop(call, exception or "NO_QUEUE")
        self._route_event(call, decision, exception)
        self._count_on_trunk(call)
        qs.offered += 1
        call.state, call.queued_at = "waiting", self.clock.now()
        call.leg.ringing()
        qs.waiting.append(call)
        self._dispatch(qs)
        return True

    # ------------------------------------------------------------ queues and agents

    def _dispatch(self, qs: QueueState) -> None:
        while qs.free and qs.waiting:
            call = qs.waiting.popleft()
            agent = qs.free.popleft()
            qs.busy[agent] = call
            call.agent_id, call.state = agent, "ringing"
            qs.total_wait += self.clock.now() - call.queued_at
            delay = self.scaled(qs.queue.ring_time) + call.extra_latency
            call.timers.append(self._later(delay, lambda c=call: self._agent_answers(c)))

    def _agent_answers(self, call: Call) -> None:
        if call.state != "ringing":
            return
        qs = self.queues[call.queue_id]
        call.state = "answered"
        qs.answered += 1
        qs.answered_via_failover += call.via_failover
        call.leg.answer(call.codec, self._headers(call))
        now = self.clock.now()
        self._event("answer", call.platform, callId=call.call_id, tag=call.tag,
                    entryTrunkId=call.entry_id, trunkId=call.trunk_id, queueId=call.queue_id,
                    agentId=call.agent_id, viaFailover=call.via_failover)
        if call.via_failover:
            self._note_first_answer(call, now)
        call.timers.append(self._later(self.scaled(qs.queue.handle_time),
                                       lambda: self._hangup(call, "handleTime")))

    def _note_first_answer(self, call: Call, now: float) -> None:
        for record in reversed(self.failovers):
            if record["fromTrunkId"] == call.entry_id and record["toTrunkId"] == call.trunk_id:
                if record["firstAnswerAt"] is None and record["at"] <= now:
                    record.update(firstAnswerAt=now, firstAnswerCallId=call.call_id,
                                  firstAnswerTag=call.tag)
                return

    def _hangup(self, call: Call, reason: str) -> None:
        if call.state == "ended":
            return
        call.leg.hangup(reason)
        self._end(call, reason)

    def _end(self, call: Call, reason: str) -> None:
        """Free everything the call held and emit callEnded (once)."""
        if call.state == "ended":
            return
        self._release(call)
        self._event("callEnded", call.platform, callId=call.call_id, tag=call.tag,
                    trunkId=call.trunk_id, reason=reason)

    def _release(self, call: Call) -> None:
        """Give back the license, trunk slot, queue place and agent a call held."""
        was = call.state
        call.state = "ended"
        self._cancel_timers(call)
        self._forget(call)
        if call.holds_license:
            call.holds_license = False
            self.sessions[call.platform] -= 1
        if call.counted_on_trunk:
            call.counted_on_trunk = False
            self.trunk_active[call.trunk_id] -= 1
        qs = self.queues.get(call.queue_id)
        if qs is not None:
            if was == "waiting" and call in qs.waiting:
                qs.waiting.remove(call)
            if call.agent_id and qs.busy.get(call.agent_id) is call:
                del qs.busy[call.agent_id]
                qs.free.append(call.agent_id)
                self._dispatch(qs)

    def _forget(self, call: Call) -> None:
        self.calls.pop(id(call.leg), None)

    def _cancel_timers(self, call: Call) -> None:
        for handle in call.timers:
            handle.cancel()
        call.timers.clear()

    def _call_of(self, leg: CallLeg) -> Call | None:
        return self.calls.get(id(leg))

    # ------------------------------------------------------------ caller callbacks

    @_guarded
    def on_confirmed(self, leg: CallLeg) -> None:
        pass  # the call is already counted as answered

    @_guarded
    def on_cancel(self, leg: CallLeg) -> None:
        call = self._call_of(leg)
        if call is not None:
            self._end(call, "cancel")

    @_guarded
    def on_bye(self, leg: CallLeg) -> None:
        call = self._call_of(leg)
        if call is not None:
            self._end(call, "bye")

    @_guarded
    def on_failed(self, leg: CallLeg, reason: str) -> None:
        call = self._call_of(leg)
        if call is not None:
            self._end(call, "failed")

    @_guarded
    def on_dtmf(self, leg: CallLeg, digit: str) -> None:
        """A DTMF digit from the caller (SIP INFO or RFC 4733); relayed only in-region."""
        call = self._call_of(leg)
        if call is not None:
            self._event("dtmf", call.platform, callId=call.call_id, digit=digit,
                        relayed=call.dtmf_relayed)

    @_guarded
    def on_info(self, leg: CallLeg, body: bytes | str) -> None:
        """SIP INFO from the caller: DTMF as application/dtmf-relay (``Signal=5``) or
        application/dtmf (``5``)."""
        text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else str(body or "")
        digit = _dtmf_digit(text)
        if digit is not None:
            self.on_dtmf(leg, digit)

    # ------------------------------------------------------------ analytics, WFM, state

    def _snapshot_analytics(self, lag: float | None = None) -> None:
        now = self.clock.now()
        if lag is None:
            lo, hi = self.topo.delays.analytics_lag
            lag = self.scaled(self.rng.uniform(lo, hi))
        for qid, qs in self.queues.items():
            batches = self.analytics.setdefault(qid, [])
            batches.append((now + lag, {**qs.stats(now), "asOf": now}))
            # Keep the newest visible batch and everything still in flight.
            visible = [i for i, (at, _) in enumerate(batches) if at <= now]
            if len(visible) > 1:
                del batches[:visible[-1]]

    def queue_realtime(self, platform: str, queue_id: str) -> dict:
        """The batched, lagged figures the analytics endpoint shows (Edge Case 2)."""
        qs = self.queues.get(queue_id)
        if qs is None or qs.queue.platform != platform:
            raise ModelError(404, f"no {platform} queue {queue_id}")
        now = self.clock.now()
        seen = [snap for at, snap in self.analytics.get(queue_id, []) if at <= now]
        snap = seen[-1] if seen else {**qs.stats(self.started_at), "asOf": self.started_at}
        if platform == "genesys":
            keys = ("waitTime", "availableAgents", "answeredCalls", "offeredCalls", "asOf")
        else:
            keys = ("agentCount", "avgWait", "answeredCalls", "offeredCalls", "asOf")
        # Twin-only: no real platform splits a queue's answers by path (CONTRACTS section 2).
        keys += ("answeredViaFailover",)
        return {"queueId": queue_id, **{k: snap[k] for k in keys}}

    def schedules(self, queue_id: str | None, start: float, end: float) -> dict:
        """WFM: agents scheduled per interval (read-only), from each queue's schedule."""
        step = self.topo.wfm_interval
        queues = [self.queues[queue_id].queue] if queue_id else [q.queue for q in self.queues.values()]
        out = []
        first = start - (start % step)
        t = first
        while t < end and len(out) < 10_000:
            index = int(t // step)
            for q in queues:
                agents = q.schedule[index % len(q.schedule)] if q.schedule else q.agents
                out.append({"start": t, "end": t + step, "queueId": q.id, "agentsScheduled": agents})
            t += step
        return {"intervals": out}

    def ground_truth(self) -> dict:
        return {"changes": [c.to_json() for c in self.changes],
                "failovers": [dict(f) for f in self.failovers],
                "failbacks": [dict(f) for f in self.failbacks],
                "brokenCdrs": self.broken_cdrs}

    def routed_state(self) -> dict:
        now = self.clock.now()
        trunks = []
        for t in self.topo.trunks:
            view = render(t.platform, t.id, self.routed[t.id], self.version[t.id])
            view.update(platform=t.platform, inService=self._usable(t.id),
                        blackholed=t.id in self.faults["blackholeTrunks"],
                        failoverTo=self.failover.get(t.id), activeCalls=self.trunk_active[t.id],
                        lowPolls=self._low_polls[t.id] if t.platform == "cxone" else None)
            trunks.append(view)
        return {"now": now, "trunks": trunks,
                "queues": [{"id": q, "name": s.queue.name, **s.stats(now), "waiting": len(s.waiting)}
                           for q, s in self.queues.items()],
                "activeCalls": len(self.calls),
                "licenses": {p: {"inUse": self.sessions[p], "ceiling": self._license_ceiling(p)}
                             for p in ("genesys", "cxone")},
                "failovers": dict(self.failover), "brokenCdrs": self.broken_cdrs}

    def set_faults(self, body: Any) -> dict:
        """Replace the twin-only faults given in ``body`` (others keep their value)."""
        if not isinstance(body, dict):
            raise ModelError(400, "body must be a JSON object")
        new = dict(self.faults)
        for key, value in body.items():
            if key not in DEFAULT_FAULTS:
                raise ModelError(400, f"unknown fault {key!r}")
            new[key] = _check_fault(key, value, self.topo)
        self.faults = new
        return self.get_faults()

    def get_faults(self) -> dict:
        return {k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
                for k, v in self.faults.items()}


def _dtmf_digit(text: str) -> str | None:
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip().lower() == "signal":
            value = value.strip()
            return value if len(value) == 1 and value in "0123456789*#ABCD" else None
    text = text.strip()
    return text if len(text) == 1 and text in "0123456789*#ABCD" else None


def _check_fault(key: str, value: Any, topo: Topology) -> Any:
    bad = ModelError(400, f"bad value for {key}: {value!r}")
    if key == "provisioningFailure":
        if not isinstance(value, bool):
            raise bad
    elif key in ("apiLatencyMs", "apiErrorRate", "apiErrorCode"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise bad
        if key == "apiErrorRate" and value > 1 or key == "apiErrorCode" and not 400 <= value <= 599:
            raise bad
    elif key == "blackholeTrunks":
        if not isinstance(value, list) or any(topo.trunk(t) is None for t in value):
            raise bad
    elif key == "unavailablePools":
        if not isinstance(value, list) or any(topo.pool(p) is None for p in value):
            raise bad
    elif key == "licenseCeiling":
        if not isinstance(value, dict) or any(
                t not in topo.license_tiers or isinstance(n, bool) or not isinstance(n, int) or n < 0
                for t, n in value.items()):
            raise bad
    return value


_ROUTE_STEPS: tuple[Callable[[TwinModel, Call], bool], ...] = (
    TwinModel._step_blackhole,
    TwinModel._step_in_service,
    TwinModel._step_capacity,
    TwinModel._step_codec,
    TwinModel._step_media_pool,
    TwinModel._step_zone,
    TwinModel._step_flow,
    TwinModel._step_queue,
)
