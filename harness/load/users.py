"""Locust users: SipCaller (tagged PJSUA2 calls) and ApiUser (tagged REST reads).

One SipCaller holds at most one call at a time, so ``-u N`` users mean N
concurrent calls, and starts one at most every ``--sip-min-interval`` seconds
(pacing: a fast 488/503 must not turn a user into a redial loop); the worker's engine pool grows to fit its users (4 calls per
engine process). Each call is reported with ``environment.events.request``
(reporting.fire_call) and its record goes to the master in batches.
"""

from __future__ import annotations

import logging
import time

import gevent
from locust import User, constant, task

from harness.errors import SipError
from harness.load.reporting import fire_call
from harness.sip.engine import CallSpec

log = logging.getLogger(__name__)

RETRY_OUTCOMES = ("503", "408")   # carrier practice: try the next trunk (RFC 3263 4.3)


class SipCaller(User):
    """Places calls back to back, paced: INVITE, ring, answer, hold, optional DTMF, BYE;
    the next call starts no sooner than ``min_interval`` after this one started."""

    _last_start = None

    def wait_time(self) -> float:
        """Locust's pause between tasks: the rest of the pacing interval, if any."""
        if self._last_start is None:
            return 0.0
        return max(0.0, self.settings.min_interval - (time.monotonic() - self._last_start))

    def on_start(self) -> None:
        self.ctx = self.environment.ccharness
        self.ctx.users += 1
        self.pool = self.ctx.engines(self.ctx.users)
        self.settings = self.ctx.load_settings()

    def on_stop(self) -> None:
        self.ctx.users -= 1

    @task
    def call(self) -> None:
        s = self.settings
        if self.ctx.started >= s.max_calls:
            gevent.sleep(1.0)     # bounded: this worker placed its share
            return
        # One paced cycle; failover retries inside it are bounded by len(targets).
        self._last_start = time.monotonic()
        for attempt, target in enumerate(s.targets):
            record = self._one_call(target)
            if record is None:
                return
            if not (s.retry and record["outcome"] in RETRY_OUTCOMES):
                return
            if attempt + 1 == len(s.targets):
                return

    def _one_call(self, target: str) -> dict | None:
        s = self.settings
        self.ctx.started += 1
        spec = CallSpec(target=target, tag=s.tag, hold=s.hold.draw(), tag_header=s.tag_header,
                        dtmf=s.dtmf, dtmf_method=s.dtmf_method, ring_timeout=s.ring_timeout,
                        entry_trunk=s.entry_trunks.get(target))
        try:
            record = self.pool.call(spec)
        except SipError as exc:
            self.environment.events.request.fire(
                request_type="SIP", name="INVITE error", response_time=0.0, response_length=0,
                exception=exc)
            gevent.sleep(1.0)     # an engine failure is not a reason to spin
            return None
        fire_call(self.environment, record)
        self.ctx.batcher.add(record)
        return record


class ApiUser(User):
    """Reads trunk and queue stats from the platform REST API, tagged, honouring 429."""

    wait_time = constant(1.0)
    abstract = False

    def on_start(self) -> None:
        from harness.load.api import ApiClient  # noqa: PLC0415 - httpx after locust's patching

        self.api = ApiClient.from_options(self.environment.parsed_options,
                                          self.environment.events)

    def on_stop(self) -> None:
        self.api.close()

    @task
    def poll(self) -> None:
        """What a supervisor's dashboard does: queue figures, then the trunk."""
        self.api.read_queue()
        self.api.read_trunk()
