"""Reporting through Locust: per-call request events and worker -> master batches.

Each call fires ``environment.events.request`` (type ``SIP``, name ``INVITE
<outcome>``, response time = setup in ms, an exception for every outcome but
answered), so Locust's stats, UI, CSV and distributed aggregation keep working.
Records travel to the master in batches with Locust's own custom messages
(``runner.send_message`` / ``register_message``), at most one batch a second per
worker plus a final flush at test stop, so the master sees each record once.
Answer events (the record as it stood at the answer) travel the same way under
their own message, so the master sees answers resume without waiting for the hold.
"""

from __future__ import annotations

import logging

import gevent

from harness.errors import SipError

log = logging.getLogger(__name__)

MESSAGE = "ccharness_calls"
ANSWERS_MESSAGE = "ccharness_answers"
FLUSH_SECONDS = 0.5


class CallOutcomeError(SipError):
    """The exception Locust records for a call that was not answered."""


def fire_call(environment, record: dict) -> None:
    outcome = record["outcome"]
    exc = None
    if outcome != "answered":
        exc = CallOutcomeError(f"{record.get('code', 0)} {record.get('reason', '')}".strip())
    environment.events.request.fire(
        request_type="SIP", name=f"INVITE {outcome}",
        response_time=record["setup_seconds"] * 1000.0, response_length=0,
        exception=exc, context={"call_id": record["call_id"], "trunk": record.get("trunk")})


class RecordBatcher:
    """Worker side: buffer records and answer events, send them to the master (or
    hand them to local sinks) every FLUSH_SECONDS."""

    def __init__(self, environment, deliver=None, deliver_answers=None):
        self.environment = environment
        self._deliver = {MESSAGE: deliver, ANSWERS_MESSAGE: deliver_answers}
        self._buf: dict[str, list[dict]] = {MESSAGE: [], ANSWERS_MESSAGE: []}
        self._loop = None

    def add(self, record: dict) -> None:
        self._buf[MESSAGE].append(record)

    def add_answer(self, record: dict) -> None:
        self._buf[ANSWERS_MESSAGE].append(record)

    def start(self) -> None:
        if self._loop is None:
            self._loop = gevent.spawn(self._run)

    def _run(self) -> None:
        while True:
            gevent.sleep(FLUSH_SECONDS)
            self.flush()

    def flush(self) -> None:
        for kind in (ANSWERS_MESSAGE, MESSAGE):
            batch, self._buf[kind] = self._buf[kind], []
            if not batch:
                continue
            try:
                deliver = self._deliver[kind]
                if deliver is not None:
                    deliver(batch)
                else:
                    self.environment.runner.send_message(kind, batch)
            except Exception:  # noqa: BLE001 - keep the records for the next try
                log.exception("sending %d %s failed", len(batch), kind)
                self._buf[kind][:0] = batch

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.kill(block=False)
            self._loop = None
        self.flush()
