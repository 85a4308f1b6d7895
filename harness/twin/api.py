"""The twin's REST API as a plain WSGI app (CONTRACTS.md section 2).

Routes are a table of (method, pattern) -> (scopes, handler). Every route but the
token endpoint needs a bearer token. Injected API faults (latency, error rate) apply to
the platform routes, not to ``/twin/v1`` (the harness must always be able to undo them).
The app runs on the gevent hub together with the model, so handlers call the model
directly, with no locks.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Callable
from urllib.parse import parse_qs

from harness.twin.auth import Authority, AuthFailure
from harness.twin.events import EventBus, sse_stream
from harness.twin.model import ModelError, TwinModel

_STATUS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 429: "Too Many Requests",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}
_UUID = r"(?P<id>[^/]+)"


class Response:
    def __init__(self, status: int, body: Any = None, headers: dict | None = None,
                 stream=None, content_type: str = "application/json"):
        self.status, self.body, self.stream = status, body, stream
        self.headers = dict(headers or {})
        self.content_type = content_type


def _error(status: int, message: str, **extra: Any) -> Response:
    return Response(status, {"status": status, "message": message, **extra})


class TwinApi:
    """WSGI callable. ``sleep`` is gevent.sleep in production (API latency injection)."""

    def __init__(self, model: TwinModel, bus: EventBus, authority: Authority,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] | None = None):
        self.model, self.bus, self.auth = model, bus, authority
        self.clock = clock
        self.sleep = sleep or (lambda s: None)
        self.routes = [
            ("POST", r"/oauth/token", None, self.token, False),
            ("GET", rf"/api/v2/telephony/phone/trunks/{_UUID}", ("view:telephony", "edit:telephony"),
             self.genesys_trunk_get, True),
            ("PATCH", rf"/api/v2/telephony/phone/trunks/{_UUID}", ("edit:telephony",),
             self.genesys_trunk_patch, True),
            ("GET", rf"/api/v2/analytics/queues/{_UUID}/realtime", ("view:analytics",),
             self.genesys_queue, True),
            ("GET", rf"/api/v2\.0/telephony/trunks/{_UUID}", ("manage:trunks",), self.cxone_trunk_get, True),
            ("PUT", rf"/api/v2\.0/telephony/trunks/{_UUID}", ("manage:trunks",), self.cxone_trunk_put, True),
            ("GET", rf"/api/v2\.0/analytics/queues/{_UUID}/realtime", ("read:analytics",),
             self.cxone_queue, True),
            ("GET", r"/api/v2/workforcemanagement/schedules", ("view:workforcemanagement", "read:system"),
             self.schedules, True),
            ("GET", r"/api/v2/events/stream", ("view:analytics", "read:analytics"), self.events, False),
            ("GET", r"/twin/v1/ground-truth", ("twin:admin",), self.ground_truth, False),
            ("GET", r"/twin/v1/state", ("twin:admin",), self.state, False),
            ("GET", r"/twin/v1/faults", ("twin:admin",), self.faults_get, False),
            ("PUT", r"/twin/v1/faults", ("twin:admin",), self.faults_put, False),
            ("POST", r"/twin/v1/reset", ("twin:admin",), self.reset, False),
        ]
        self._compiled = [(m, re.compile(p + r"/?\Z"), s, h, f) for m, p, s, h, f in self.routes]

    # ------------------------------------------------------------ WSGI

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        try:
            response = self.dispatch(environ)
        except Exception:  # never let one request take the twin down
            import logging
            logging.getLogger(__name__).exception("twin API handler failed")
            response = _error(500, "internal error")
        headers = [("Content-Type", response.content_type), *response.headers.items()]
        if response.stream is not None:
            headers += [("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no")]
            start_response(f"{response.status} OK", headers)
            return response.stream
        body = b"" if response.body is None else json.dumps(response.body).encode()
        headers.append(("Content-Length", str(len(body))))
        start_response(f"{response.status} {_STATUS.get(response.status, 'Status')}", headers)
        return [body]

    def dispatch(self, environ: dict) -> Response:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        allowed = False
        for m, pattern, scopes, handler, faultable in self._compiled:
            match = pattern.match(path)
            if not match:
                continue
            allowed = True
            if m != method:
                continue
            if scopes is not None:
                try:
                    self.auth.check(environ.get("HTTP_AUTHORIZATION"), scopes, self.clock())
                except AuthFailure as exc:
                    return self._auth_error(exc)
            if faultable:
                injected = self._inject_faults()
                if injected is not None:
                    return injected
            try:
                return handler(environ, **match.groupdict())
            except ModelError as exc:
                return _error(exc.status, exc.message)
        return _error(405 if allowed else 404, "method not allowed" if allowed else "no such route")

    def _auth_error(self, exc: AuthFailure) -> Response:
        headers = {}
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="twin"'
        if exc.retry_after is not None:
            headers["Retry-After"] = str(exc.retry_after)
        extra = {"code": exc.error}
        if exc.scope:
            extra["missingScope"] = exc.scope
        r = _error(exc.status, exc.message, **extra)
        r.headers.update(headers)
        return r

    def _inject_faults(self) -> Response | None:
        faults = self.model.faults
        if faults["apiLatencyMs"]:
            self.sleep(faults["apiLatencyMs"] / 1000.0)
        if faults["apiErrorRate"] and self.model.rng.random() < faults["apiErrorRate"]:
            return _error(int(faults["apiErrorCode"]), "injected API error")
        return None

    # ------------------------------------------------------------ helpers

    @staticmethod
    def _json_body(environ: dict) -> Any:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        raw = environ["wsgi.input"].read(min(length, 1_000_000)) if length else b""
        try:
            return json.loads(raw or b"null")
        except ValueError:
            raise ModelError(400, "body is not valid JSON") from None

    @staticmethod
    def _query(environ: dict) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}

    # ------------------------------------------------------------ handlers

    def token(self, environ: dict) -> Response:
        raw = environ["wsgi.input"].read(min(int(environ.get("CONTENT_LENGTH") or 0), 65536))
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        try:
            return Response(200, self.auth.issue(form, environ.get("HTTP_AUTHORIZATION"), self.clock()))
        except AuthFailure as exc:
            return Response(exc.status, {"error": exc.error, "error_description": exc.message})

    def genesys_trunk_get(self, environ: dict, id: str) -> Response:
        return Response(200, self.model.trunk_view("genesys", id))

    def genesys_trunk_patch(self, environ: dict, id: str) -> Response:
        return Response(200, self.model.update_trunk("genesys", id, self._json_body(environ)))

    def cxone_trunk_get(self, environ: dict, id: str) -> Response:
        return Response(200, self.model.trunk_view("cxone", id))

    def cxone_trunk_put(self, environ: dict, id: str) -> Response:
        return Response(200, self.model.update_trunk("cxone", id, self._json_body(environ)))

    def genesys_queue(self, environ: dict, id: str) -> Response:
        return Response(200, self.model.queue_realtime("genesys", id))

    def cxone_queue(self, environ: dict, id: str) -> Response:
        return Response(200, self.model.queue_realtime("cxone", id))

    def schedules(self, environ: dict) -> Response:
        q = self._query(environ)
        now = self.clock()
        start, end = _when(q.get("from"), now), _when(q.get("to"), now + 86400.0)
        if end < start or end - start > 31 * 86400:
            raise ModelError(400, "need from <= to, at most 31 days apart")
        queue_id = q.get("queueId") or None
        if queue_id is not None and queue_id not in self.model.queues:
            raise ModelError(404, f"no queue {queue_id}")
        return Response(200, self.model.schedules(queue_id, start, end))

    def events(self, environ: dict) -> Response:
        replay = self._query(environ).get("replay", "") in ("1", "true", "yes")
        last = environ.get("HTTP_LAST_EVENT_ID", "").strip()
        after = int(last) if last.isdigit() else None
        return Response(200, stream=sse_stream(self.bus, replay, after), content_type="text/event-stream")

    def ground_truth(self, environ: dict) -> Response:
        return Response(200, self.model.ground_truth())

    def state(self, environ: dict) -> Response:
        return Response(200, self.model.routed_state())

    def faults_get(self, environ: dict) -> Response:
        return Response(200, self.model.get_faults())

    def faults_put(self, environ: dict) -> Response:
        return Response(200, self.model.set_faults(self._json_body(environ)))

    def reset(self, environ: dict) -> Response:
        self.model.reset()
        self.bus.history.clear()   # a replaying client sees only what follows the reset
        return Response(200, {"reset": True})


def _when(value: str | None, default: float) -> float:
    """Epoch seconds from a float or an ISO 8601 string."""
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        pass
    from datetime import datetime, timezone
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ModelError(400, f"bad time {value!r}: epoch seconds or ISO 8601") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()
