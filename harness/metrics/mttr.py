"""MTTR and its parts, as pure functions over records, events and an injection time.

Theory of operation (the guide's Edge Case 2): analytics endpoints batch their figures,
so an MTTR read from them is late by the batch lag (90-120 s on the real platforms).
ccharness measures from raw events instead and shows the analytics figure beside it:

- ``detect``: first failed call (per-call record, CONTRACTS section 6) whose final
  response came at or after the injection; without records, the first routing event
  of a failing call.
- ``converge``: failover routing effective: the first ``failover`` event at or after
  the injection (from the injected trunk when known), else the first
  ``trunkConfigApplied`` of that trunk (CONTRACTS section 3).
- ``mttr``: first successful answer carried through the failover path after the
  injection: an ``answer`` event with ``viaFailover`` (tag matched when given); without
  events, a record answered on a trunk other than its entry trunk.
- ``recover``: start of the first window, after a degraded one, whose answer ratio is
  back within the band around the baseline ratio (calls grouped by INVITE time).
- ``analytics``: first analytics poll after the injection whose ``answeredViaFailover``
  (the twin's count of answers through a failover path; ``answeredCalls`` where the
  platform lacks it) for the failover queue exceeds the last pre-injection figure.
- ground truth: the twin's ``failovers[].firstAnswerAt`` minus the injecting change's
  ``requestedAt`` (CONTRACTS section 4).

Every function takes iterables and makes one pass, so files of millions of records
can be streamed through them. All times are epoch seconds; results are seconds after
the injection, or None when the thing never happened.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping

Record = Mapping[str, Any]
Event = Mapping[str, Any]

ANSWERED = "answered"


@dataclass(frozen=True)
class MttrResult:
    """The MTTR block of summary.json (CONTRACTS section 7), seconds after injection."""

    detect_s: float | None
    converge_s: float | None
    mttr_s: float | None
    recover_s: float | None
    analytics_mttr_s: float | None

    def as_dict(self) -> dict[str, float | None]:
        return {k: (None if v is None else round(v, 3)) for k, v in asdict(self).items()}


def final_response_at(record: Record) -> float | None:
    """When the call's final response arrived: INVITE time + setup time, else ended_at."""
    invite_at, setup = record.get("invite_at"), record.get("setup_seconds")
    if invite_at is not None and setup is not None:
        return float(invite_at) + float(setup)
    ended = record.get("ended_at")
    return None if ended is None else float(ended)


def _after(at: float | None, injected_at: float) -> float | None:
    return None if at is None or at < injected_at else at - injected_at


def _min_opt(current: float | None, candidate: float | None) -> float | None:
    if candidate is None:
        return current
    return candidate if current is None or candidate < current else current


def time_to_detect(records: Iterable[Record], injected_at: float) -> float | None:
    """Seconds from injection to the first failed final response at or after it."""
    best = None
    for rec in records:
        if rec.get("outcome") == ANSWERED:
            continue
        best = _min_opt(best, _after(final_response_at(rec), injected_at))
    return best


def time_to_detect_events(events: Iterable[Event], injected_at: float) -> float | None:
    """Without call records: the first platform event of a failing call after injection
    (``callRouting`` rejected or dropped, or a call cut by ``trunkRemoved``)."""
    best = None
    for ev in events:
        kind = ev.get("type")
        failed = (kind == "callRouting" and str(ev.get("decision", "")).startswith(("rejected", "dropped"))) \
            or (kind == "callEnded" and ev.get("reason") == "trunkRemoved")
        if failed:
            best = _min_opt(best, _after(_ts(ev), injected_at))
    return best


def time_to_converge(events: Iterable[Event], injected_at: float,
                     trunk_id: str | None = None) -> float | None:
    """Seconds from injection to failover routing being effective.

    A ``failover`` event (from ``trunk_id`` when given) wins; a ``trunkConfigApplied``
    of ``trunk_id`` stands in when no failover event came (e.g. a capacity-only fault).
    """
    failover = applied = None
    for ev in events:
        kind = ev.get("type")
        if kind == "failover" and trunk_id in (None, ev.get("fromTrunkId")):
            failover = _min_opt(failover, _after(_ts(ev), injected_at))
        elif kind == "trunkConfigApplied" and trunk_id in (None, ev.get("trunkId")):
            applied = _min_opt(applied, _after(_ts(ev), injected_at))
    return failover if failover is not None else applied


def failover_answer_event(events: Iterable[Event], injected_at: float,
                          tag: str | None = None) -> Event | None:
    """The first ``answer`` event with ``viaFailover`` at or after the injection."""
    best: Event | None = None
    for ev in events:
        if ev.get("type") != "answer" or not ev.get("viaFailover"):
            continue
        if tag is not None and ev.get("tag") != tag:
            continue
        at = _ts(ev)
        if at is None or at < injected_at:
            continue
        if best is None or at < _ts(best):
            best = ev
    return best


def mttr_from_events(events: Iterable[Event], injected_at: float,
                     tag: str | None = None) -> float | None:
    """Seconds from injection to the first tagged answer through the failover path."""
    ev = failover_answer_event(events, injected_at, tag)
    return None if ev is None else _ts(ev) - injected_at


def mttr_from_records(records: Iterable[Record], injected_at: float,
                      tag: str | None = None) -> float | None:
    """Fallback without an event stream: first answer on a trunk other than the entry trunk.

    Caller-side ``answered_at`` is the 200 OK's arrival, a few ms after the platform's
    answer event; records without both trunk ids cannot show the path and are skipped.
    """
    best = None
    for rec in records:
        if rec.get("outcome") != ANSWERED or (tag is not None and rec.get("tag") != tag):
            continue
        entry, trunk = rec.get("entry_trunk"), rec.get("trunk")
        if not entry or not trunk or entry == trunk:
            continue
        at = rec.get("answered_at")
        best = _min_opt(best, _after(None if at is None else float(at), injected_at))
    return best


def window_index(invite_at: float, start: float, window_s: float) -> int:
    """The answer-ratio window of a call placed at ``invite_at`` (negative: before ``start``)."""
    return int((invite_at - start) // window_s)


def answer_ratio_windows(records: Iterable[Record], start: float,
                         window_s: float) -> dict[int, tuple[int, int]]:
    """Calls grouped by INVITE time into windows from ``start``: index -> (answered, total).

    Negative indexes are windows before ``start``. Only counters are kept, not records.
    """
    windows: dict[int, list[int]] = {}
    for rec in records:
        invite_at = rec.get("invite_at")
        if invite_at is None:
            continue
        slot = windows.setdefault(window_index(float(invite_at), start, window_s), [0, 0])
        slot[0] += rec.get("outcome") == ANSWERED
        slot[1] += 1
    return {k: (v[0], v[1]) for k, v in windows.items()}


def time_to_recover(records: Iterable[Record], injected_at: float, *,
                    baseline_s: float = 60.0, window_s: float = 5.0,
                    band: float = 0.05) -> float | None:
    """Seconds from injection until the answer ratio is back within the baseline band.

    Baseline: calls placed in the ``baseline_s`` before the injection. A window is
    degraded when its ratio falls below ``baseline - band``; recovery is the start of
    the first later window back at or above it. None when there was no baseline or no
    degradation, or the ratio never came back.
    """
    windows = answer_ratio_windows(records, injected_at, window_s)
    return recover_from_windows(windows, baseline_s=baseline_s, window_s=window_s, band=band)


def recover_from_windows(windows: Mapping[int, tuple[int, int]], *, baseline_s: float,
                         window_s: float, band: float) -> float | None:
    """``time_to_recover`` on windows counted elsewhere (e.g. in the report's one pass)."""
    baseline = _baseline_ratio(windows, int(-(-baseline_s // window_s)))
    if baseline is None:
        return None
    floor = baseline - band
    degraded = False
    for idx in sorted(k for k in windows if k >= 0):
        answered, total = windows[idx]
        ratio = answered / total
        if ratio < floor:
            degraded = True
        elif degraded:
            return idx * window_s
    return None


def _baseline_ratio(windows: Mapping[int, tuple[int, int]], count: int) -> float | None:
    answered = sum(windows[k][0] for k in windows if -count <= k < 0)
    total = sum(windows[k][1] for k in windows if -count <= k < 0)
    return None if total == 0 else answered / total


VIA_FAILOVER = "answeredViaFailover"
ANSWERED_CALLS = "answeredCalls"


def analytics_mttr(polls: Iterable[Mapping[str, Any]], injected_at: float,
                   queue_id: str | None = None) -> float | None:
    """Seconds from injection to the first analytics poll showing the failover queue's
    answers through the failover path above their pre-injection figure.

    A poll is ``{"polled_at", "queueId", "answeredCalls", "answeredViaFailover", "asOf"}``.
    The figure counted is ``answeredViaFailover`` when the polls carry it (the twin), else
    ``answeredCalls`` (real platforms): the latter also rises with answers still coming
    through the primary path when both paths feed one queue, and then shows only the lag.
    The pre-injection figure is the largest one whose data predates the injection
    (``asOf`` when the platform gives it, else ``polled_at``): a batched pipeline goes on
    publishing pre-injection answers long after the injection, and they must not count.
    """
    rises = {VIA_FAILOVER: _AnalyticsRise(injected_at), ANSWERED_CALLS: _AnalyticsRise(injected_at)}
    for poll in polls:
        if queue_id is not None and poll.get("queueId") != queue_id:
            continue
        for key, rise in rises.items():
            rise.feed(poll, key)
    key = VIA_FAILOVER if rises[VIA_FAILOVER].seen else ANSWERED_CALLS
    return rises[key].first_rise()


class _AnalyticsRise:
    """One figure of the analytics polls: its pre-injection level and the polls after."""

    def __init__(self, injected_at: float):
        self.injected_at, self.before, self.seen = injected_at, 0.0, False
        self.after: list[tuple[float, float]] = []

    def feed(self, poll: Mapping[str, Any], key: str) -> None:
        at, value = poll.get("polled_at"), poll.get(key)
        if at is None or value is None:
            return
        self.seen = True
        as_of = poll.get("asOf")
        data_at = float(at) if as_of is None else float(as_of)
        if data_at < self.injected_at:
            self.before = max(self.before, float(value))
        if float(at) >= self.injected_at:
            self.after.append((float(at), float(value)))

    def first_rise(self) -> float | None:
        for at, value in sorted(self.after):
            if value > self.before:
                return at - self.injected_at
        return None


def ground_truth_mttr(truth: Mapping[str, Any], trunk_id: str | None = None,
                      injected_at: float | None = None) -> float | None:
    """The twin's own MTTR: first failover answer minus the injecting change's request.

    With ``injected_at`` (the harness's injection time) the injecting change is the
    failed-over trunk's first change requested from then on, so a fault applied in steps
    (degrade, throttle ramp, then out of service) is timed from its first step, as the
    harness times it; without it, the latest change requested before the failover.
    With ``trunk_id`` only failovers from that trunk count.
    """
    changes = truth.get("changes") or []
    for fo in sorted(truth.get("failovers") or [], key=lambda f: f.get("at") or 0.0):
        if trunk_id is not None and fo.get("fromTrunkId") != trunk_id:
            continue
        if fo.get("firstAnswerAt") is None:
            continue
        requested = [c["requestedAt"] for c in changes
                     if c.get("trunkId") == fo.get("fromTrunkId")
                     and c.get("requestedAt") is not None and c["requestedAt"] <= fo["at"]]
        if injected_at is not None:
            # the journal line is written just before the request leaves: allow 1 s
            requested = [r for r in requested if r >= injected_at - 1.0]
            if requested:
                return float(fo["firstAnswerAt"]) - min(requested)
        elif requested:
            return float(fo["firstAnswerAt"]) - max(requested)
    return None


def compare_ground_truth(mttr_s: float | None, truth_s: float | None) -> dict[str, float | None]:
    """The summary's ``ground_truth`` block: the twin's figure and ours minus it."""
    diff = None if mttr_s is None or truth_s is None else mttr_s - truth_s
    return {"mttr_s": None if truth_s is None else round(truth_s, 3),
            "difference_s": None if diff is None else round(diff, 3)}


def _ts(ev: Event) -> float | None:
    at = ev.get("timestamp")
    return None if at is None else float(at)
