"""Prometheus series of a run, fed on the Locust master.

One ``HarnessMetrics`` per run, built on an injected ``CollectorRegistry`` (no global
registry in library code, so tests and several runs in one process do not collide).
It is fed by

- per-call record batches (CONTRACTS section 6): subscribe ``observe_records`` to the
  master sink, which receives every worker's records through Locust messages, so the
  master's one scrape target carries the whole distributed run;
- the fault controller: ``set_phase``, ``set_fault``, ``observe_mttr``;
- platform API calls: ``observe_api`` with an endpoint template, never a raw URL;
- the load side: ``set_active_calls(n, worker)`` (summed over workers at scrape time).

Label values are bounded: trunk ids only from the topology (else ``other``), SIP codes
as strings, outcomes from the contract's list, endpoint templates with ids replaced and
capped in number, fault kinds capped in number.

``serve`` exposes the registry over HTTP on 127.0.0.1:9646 by default (DEFAULT_PORT).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import start_http_server

from harness.errors import ConfigError
from harness.metrics.analytics import LiveAnalyticsMttr

log = logging.getLogger(__name__)

DEFAULT_PORT = 9646
DEFAULT_ADDR = "127.0.0.1"
OUTCOMES = ("answered", "408", "487", "488", "403", "503", "other")
# The fault controller's states (harness/control/states.py State values).
PHASES = ("idle", "baseline", "injecting", "converging", "holding", "rolling_back",
          "recovering", "done", "aborted")
# SIP setup spans ms (answered on loopback) to 32 s (Timer B, RFC 3261 17.1.1.2) and beyond.
SETUP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64)
# MTTR: propagation 15-25 s (Genesys), 3 x 10 s polls (CXone), analytics lag 90-120 s.
MTTR_BUCKETS = (1, 2, 5, 10, 15, 20, 25, 30, 40, 60, 90, 120, 180, 300, 600)
API_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
MAX_ENDPOINTS = 32
# Series published at zero from the start, so dashboards and rules have a vector (of
# zeros) to compute on before the first such call: (code, outcome) per known trunk, and
# the error codes the API panels and alert select, per endpoint once it is first seen.
CODES_OF_INTEREST = (("200", "answered"), ("408", "408"), ("487", "487"), ("488", "488"),
                     ("403", "403"), ("503", "503"))
API_ERROR_CODES = ("429", "500", "503", "error")
MAX_FAULT_KINDS = 16
_ID_SEGMENT = re.compile(r"^(?:[0-9a-fA-F-]{8,}|\d+|[0-9a-zA-Z_-]*\d[0-9a-zA-Z_-]{15,})$")


def endpoint_template(path: str) -> str:
    """``/api/v2/telephony/phone/trunks/<uuid>?x=1`` -> ``/api/v2/telephony/phone/trunks/{id}``."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    if "://" in path:
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    parts = ["{id}" if _ID_SEGMENT.match(p) else p for p in path.split("/")]
    return "/".join(parts) or "/"


class BoundedLabel:
    """Maps raw values to a bounded set: a fixed allow-list, or the first ``cap`` seen."""

    def __init__(self, allowed: Iterable[str] = (), cap: int = 0, overflow: str = "other"):
        self._allowed = set(allowed)
        self._fixed = bool(self._allowed)
        self._cap, self._overflow = cap, overflow
        self._lock = threading.Lock()

    def __call__(self, value: Any) -> str:
        if value is None or value == "":
            return "none"
        value = str(value)
        if value in self._allowed:
            return value
        if self._fixed:
            return self._overflow
        with self._lock:
            if len(self._allowed) < self._cap:
                self._allowed.add(value)
                return value
        return self._overflow


def code_label(code: Any) -> str:
    """SIP final code as a string; anything outside 100-699 is ``other``."""
    try:
        value = int(code)
    except (TypeError, ValueError):
        return "none" if code is None else "other"
    return str(value) if 100 <= value <= 699 else "other"


def is_license_rejection(record: Mapping[str, Any]) -> bool:
    """403 whose reason names the licence (CONTRACTS section 5: ``403 License Exceeded``)."""
    return code_label(record.get("code")) == "403" and "licen" in str(record.get("reason") or "").lower()


@dataclass
class _Injection:
    trunk: str
    fault: str
    at: float
    recovered: bool = False


class _ActiveCalls:
    """Collector summing the last reported active-call count of every worker at scrape."""

    def __init__(self) -> None:
        self._by_worker: dict[str, int] = {}
        self._lock = threading.Lock()

    def set(self, worker: str, value: int) -> None:
        with self._lock:
            self._by_worker[worker] = max(0, int(value))

    def forget(self, worker: str) -> None:
        with self._lock:
            self._by_worker.pop(worker, None)

    def collect(self):
        with self._lock:
            total = sum(self._by_worker.values())
        yield GaugeMetricFamily("ccharness_active_calls",
                                "Calls in progress across all workers (last report of each)",
                                value=total)


class HarnessMetrics:
    """The run's series on ``registry``; every method is safe from any thread."""

    def __init__(self, registry: CollectorRegistry, *, trunks: Iterable[str] = ()):
        self.registry = registry
        trunk_ids = list(trunks)
        self._trunk = BoundedLabel(trunk_ids) if trunk_ids else BoundedLabel(cap=16)
        self._endpoint = BoundedLabel(cap=MAX_ENDPOINTS)
        self._fault = BoundedLabel(cap=MAX_FAULT_KINDS)
        self._lock = threading.Lock()
        self._injections: dict[tuple[str, str], _Injection] = {}
        self._analytics = LiveAnalyticsMttr()
        self._build(registry)
        self._init_zero_series(trunk_ids)

    def _init_zero_series(self, trunk_ids: list[str]) -> None:
        """Bounded label sets known up front, published at zero (values stay honest:
        a series only counts what was observed)."""
        for trunk in trunk_ids:
            for code, outcome in CODES_OF_INTEREST:
                self.sip_responses.labels(code=code, outcome=outcome, trunk=trunk)
        for outcome in OUTCOMES:
            self.call_setup.labels(outcome=outcome)

    def _build(self, r: CollectorRegistry) -> None:
        self.sip_responses = Counter(
            "ccharness_sip_responses", "Calls by final SIP response",
            ["code", "outcome", "trunk"], registry=r)
        self.license_rejections = Counter(
            "ccharness_license_rejections", "Calls refused with 403 License Exceeded", registry=r)
        self.call_setup = Histogram(
            "ccharness_call_setup_seconds", "INVITE to final response", ["outcome"],
            buckets=SETUP_BUCKETS, registry=r)
        self.answer_mttr = Histogram(
            "ccharness_answer_mttr_seconds",
            "Injection to first answer through the failover path (raw events, not analytics)",
            buckets=MTTR_BUCKETS, registry=r)
        self.analytics_mttr = Gauge(
            "ccharness_analytics_mttr_seconds",
            "Injection to the first analytics poll showing the failover queue's answers "
            "(batched and lagged: compare with ccharness_answer_mttr_seconds)", registry=r)
        self.fault_active = Gauge(
            "ccharness_fault_active", "1 while a fault is injected", ["trunk", "fault"], registry=r)
        self.fault_recovered = Gauge(
            "ccharness_fault_recovered",
            "1 once a call was answered through the failover path after the injection",
            ["trunk", "fault"], registry=r)
        self.api_requests = Counter(
            "ccharness_api_requests", "Platform REST calls", ["endpoint", "code"], registry=r)
        self.api_seconds = Histogram(
            "ccharness_api_request_seconds", "Platform REST call duration", ["endpoint"],
            buckets=API_BUCKETS, registry=r)
        self.phase = Gauge(
            "ccharness_experiment_phase", "1 for the experiment's current phase", ["phase"],
            registry=r)
        for name in PHASES:
            self.phase.labels(phase=name).set(1 if name == "idle" else 0)
        self._active = _ActiveCalls()
        r.register(self._active)

    # -- records -----------------------------------------------------------------

    def observe_records(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Count a batch of per-call records (a master-sink subscriber)."""
        for rec in records:
            outcome = rec.get("outcome")
            outcome = outcome if outcome in OUTCOMES else "other"
            self.sip_responses.labels(code=code_label(rec.get("code")), outcome=outcome,
                                      trunk=self._trunk(rec.get("trunk"))).inc()
            if is_license_rejection(rec):
                self.license_rejections.inc()
            setup = rec.get("setup_seconds")
            if setup is not None:
                self.call_setup.labels(outcome=outcome).observe(float(setup))
            if outcome == "answered":
                self._check_failover_answer(rec.get("entry_trunk"), rec.get("trunk"),
                                            rec.get("answered_at"))

    def observe_event(self, event: Mapping[str, Any]) -> None:
        """A twin/platform event (CONTRACTS section 3); answers via failover end the MTTR."""
        if event.get("type") == "answer" and event.get("viaFailover"):
            self._check_failover_answer(event.get("entryTrunkId"), event.get("trunkId"),
                                        event.get("timestamp"), via_failover=True)
            at = event.get("timestamp")
            with self._lock:
                if at is not None and self._analytics.pending and float(at) >= self._analytics_at():
                    self._set_analytics(self._analytics.failover_queue(event.get("queueId")))

    def observe_analytics_polls(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """analytics.jsonl rows (``AnalyticsPoller(on_rows=...)``): the live analytics MTTR."""
        with self._lock:
            for row in rows:
                self._set_analytics(self._analytics.poll(row))

    def _analytics_at(self) -> float:
        return self._analytics._at or 0.0

    def _set_analytics(self, value: float | None) -> None:
        if value is not None:
            self.analytics_mttr.set(value)

    def _check_failover_answer(self, entry: Any, trunk: Any, at: Any,
                               via_failover: bool = False) -> None:
        if at is None or not (via_failover or (entry and trunk and entry != trunk)):
            return
        with self._lock:
            for inj in self._injections.values():
                if inj.recovered or float(at) < inj.at:
                    continue
                if inj.trunk not in ("none", self._trunk(entry)):
                    continue
                inj.recovered = True
                self.answer_mttr.observe(float(at) - inj.at)
                self.fault_recovered.labels(trunk=inj.trunk, fault=inj.fault).set(1)

    # -- controller ----------------------------------------------------------------

    def set_phase(self, phase: str) -> None:
        """Mark the experiment phase (one of PHASES; others are logged and shown as idle)."""
        if phase not in PHASES:
            log.warning("unknown experiment phase %r", phase)
            return
        for name in PHASES:
            self.phase.labels(phase=name).set(1 if name == phase else 0)

    def set_fault(self, trunk: str | None, fault: str, active: bool, at: float | None = None) -> None:
        """A fault was injected (``active``, at epoch ``at``) or rolled back on ``trunk``.

        While an injection waits for its first failover answer, the answer that ends it
        is observed into ``ccharness_answer_mttr_seconds`` (live figure; the report
        recomputes it exactly from the stored events).
        """
        labels = {"trunk": self._trunk(trunk), "fault": self._fault(fault)}
        self.fault_active.labels(**labels).set(1 if active else 0)
        with self._lock:
            key = (labels["trunk"], labels["fault"])
            if active:
                if at is None:
                    raise ConfigError("set_fault(active=True) needs the injection time")
                self._injections[key] = _Injection(labels["trunk"], labels["fault"], float(at))
                self.fault_recovered.labels(**labels).set(0)
                if not self._analytics.pending:
                    self._analytics.start(float(at))

    def observe_mttr(self, seconds: float) -> None:
        """An MTTR measured elsewhere (e.g. the controller's own event watch)."""
        self.answer_mttr.observe(float(seconds))

    # -- API and load side -----------------------------------------------------------

    def observe_api(self, endpoint: str, code: int | str | None, seconds: float) -> None:
        """One platform REST call; ``endpoint`` may be a path or URL, it is templated."""
        method, _, path = endpoint.rpartition(" ")
        label = self._endpoint(f"{method} {endpoint_template(path)}".strip())
        for err in API_ERROR_CODES:
            self.api_requests.labels(endpoint=label, code=err)   # zero until one happens
        self.api_requests.labels(endpoint=label, code=str(code) if code else "error").inc()
        self.api_seconds.labels(endpoint=label).observe(float(seconds))

    def observe_api_call(self, call: Mapping[str, Any]) -> None:
        """Adapter ``on_call`` hook: ``{"method","path","status","duration_s"}`` per attempt."""
        endpoint = f"{call.get('method', '')} {endpoint_template(str(call.get('path', '')))}".strip()
        self.observe_api(endpoint, call.get("status"), call.get("duration_s") or 0.0)

    def set_active_calls(self, value: int, worker: str = "local") -> None:
        self._active.set(worker, value)

    def forget_worker(self, worker: str) -> None:
        """A worker left: drop its active-call count."""
        self._active.forget(worker)

    def exposition(self) -> bytes:
        """The text exposition, as a scrape would see it (for metrics.prom)."""
        return generate_latest(self.registry)


class ExporterServer:
    """The HTTP exporter; use with ``with`` or call ``close``."""

    def __init__(self, registry: CollectorRegistry, port: int = DEFAULT_PORT,
                 addr: str = DEFAULT_ADDR):
        try:
            self._server, self._thread = start_http_server(port, addr=addr, registry=registry)
        except OSError as exc:
            raise ConfigError(f"cannot serve metrics on {addr}:{port}: {exc.strerror or exc}",
                              key="metrics-port") from exc
        self.addr, self.port = addr, self._server.server_port

    @property
    def url(self) -> str:
        return f"http://{self.addr}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "ExporterServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(metrics: HarnessMetrics, port: int = DEFAULT_PORT, addr: str = DEFAULT_ADDR) -> ExporterServer:
    """Start the exporter for ``metrics`` (port 0 picks a free one: read ``.port``)."""
    return ExporterServer(metrics.registry, port=port, addr=addr)
