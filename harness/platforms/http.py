"""Retrying JSON-over-HTTP client for platform REST calls.

Policy, per request:
- 401: the token is dropped and renewed once, then the request is retried;
- 429: wait ``Retry-After`` seconds (capped), without counting it as a failure;
- 5xx, timeouts, connection errors: exponential backoff with full jitter, up to
  ``max_retries`` attempts;
- other 4xx: no retry; a PlatformError carrying the status.
Every attempt counts against the API call budget; past it, ApiBudgetExceeded is
raised unless the call is marked ``essential`` (rollback must never be starved).
``on_call`` receives one dict per attempt (method, path, status, duration) for the
journal; it never sees headers or bodies that could hold credentials.
"""

from __future__ import annotations

import random
import time
from typing import Any, Callable

import httpx

from harness.errors import GuardError, PlatformError
from harness.platforms.auth import TokenManager


class ApiBudgetExceeded(GuardError):
    """The experiment's API call budget is spent (exit 3 via the guard path)."""


class RetryingClient:
    def __init__(self, http: httpx.Client, base_url: str, tokens: TokenManager, *,
                 max_retries: int = 5, budget: int = 1000, backoff_base_s: float = 0.2,
                 backoff_cap_s: float = 5.0, retry_after_cap_s: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None,
                 on_call: Callable[[dict], None] | None = None):
        self.http, self.base_url, self.tokens = http, base_url.rstrip("/"), tokens
        self.max_retries, self.budget = max_retries, budget
        self.backoff_base_s, self.backoff_cap_s = backoff_base_s, backoff_cap_s
        self.retry_after_cap_s = retry_after_cap_s
        self.sleep, self.rng = sleep, rng or random.Random()
        self.on_call = on_call
        self.calls = 0
        self.throttled = 0

    def request(self, method: str, path: str, *, json: Any = None, params: dict | None = None,
                essential: bool = False) -> Any:
        """Send until success or a non-retryable answer; return the decoded JSON body."""
        failures = throttled_here = 0
        renewed = False
        while True:
            resp, error = self._attempt(method, path, json, params, essential)
            if resp is not None and resp.status_code < 300:
                return resp.json() if resp.content else None
            if resp is not None and resp.status_code == 401 and not renewed:
                renewed = True
                self.tokens.invalidate()
                continue
            if resp is not None and resp.status_code == 429:
                self.throttled += 1
                throttled_here += 1
                if self.throttled > 50 * (self.max_retries + 1):
                    raise PlatformError(f"{method} {path}: rate limited without end", status=429)
                self.sleep(self._retry_after(resp, min(throttled_here, 6)))
                continue
            retryable = error is not None or (resp is not None and resp.status_code >= 500)
            failures += 1
            if not retryable or failures > self.max_retries:
                raise self._error(method, path, resp, error, retryable)
            self.sleep(self._backoff(failures))

    def _attempt(self, method, path, json, params, essential):
        if self.calls >= self.budget and not essential:
            raise ApiBudgetExceeded(f"API call budget of {self.budget} calls spent before {method} {path}")
        self.calls += 1
        started = time.time()
        resp = error = None
        try:
            headers = self.tokens.header()
            resp = self.http.request(method, self.base_url + path, json=json, params=params,
                                     headers=headers)
        except PlatformError as exc:  # token endpoint trouble
            if not exc.retryable:
                raise
            error = exc
        except httpx.HTTPError as exc:
            error = exc
        if self.on_call:
            self.on_call({"method": method, "path": path, "status": resp.status_code if resp else None,
                          "error": type(error).__name__ if error else None,
                          "duration_s": round(time.time() - started, 4)})
        return resp, error

    def _retry_after(self, resp: httpx.Response, attempt: int) -> float:
        """Retry-After in seconds (RFC 9110 10.2.3); without one, jittered backoff."""
        header = resp.headers.get("Retry-After")
        try:
            value = float(header) if header is not None else self._backoff(attempt)
        except ValueError:
            value = self._backoff(attempt)
        return max(0.0, min(value, self.retry_after_cap_s))

    def _backoff(self, failures: int) -> float:
        # Full jitter (AWS architecture blog): spreads retries of many clients apart.
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * (2 ** (failures - 1)))
        return self.rng.uniform(0, ceiling)

    @staticmethod
    def _error(method, path, resp, error, retryable) -> PlatformError:
        if resp is None:
            return PlatformError(f"{method} {path}: {type(error).__name__}", retryable=True)
        detail = resp.text[:200].replace("\n", " ")
        cls = PlatformError
        if resp.status_code in (401, 403):
            from harness.errors import AuthError
            cls = AuthError
        return cls(f"{method} {path} answered {resp.status_code}: {detail}", status=resp.status_code,
                   retryable=retryable)
