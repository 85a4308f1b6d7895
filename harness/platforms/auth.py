"""OAuth client-credentials tokens, renewed before expiry and on 401.

The secret is held in memory only: never logged, never journaled, never put in a
repr. ``TokenManager.header()`` returns a valid bearer header, fetching a new token
when none is held, when it is within ``renew_margin`` of expiry, or after
``invalidate()`` (which the HTTP client calls on a 401).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import httpx

from harness.errors import AuthError, PlatformError

log = logging.getLogger(__name__)


@dataclass
class ClientCredentials:
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...] = ()

    def __repr__(self) -> str:  # never show the secret, even in tracebacks
        return f"ClientCredentials(client_id={self.client_id!r}, client_secret=***)"


class TokenManager:
    """Holds one bearer token for ``credentials`` from ``token_url``."""

    def __init__(self, http: httpx.Client, token_url: str, credentials: ClientCredentials,
                 clock: Callable[[], float] = time.time, renew_fraction: float = 0.2,
                 max_margin_s: float = 60.0):
        self.http, self.token_url, self.credentials = http, token_url, credentials
        self.clock = clock
        self.renew_fraction, self.max_margin_s = renew_fraction, max_margin_s
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._margin = 0.0
        self.granted_scopes: frozenset[str] = frozenset()
        self.fetches = 0
        # Told of every fetch (never the token or secret): the journal records renewals.
        self.on_fetch: Callable[[dict], None] | None = None

    def header(self) -> dict[str, str]:
        with self._lock:
            if self._token is None or self.clock() >= self._expires_at - self._margin:
                self._fetch()
            return {"Authorization": f"Bearer {self._token}"}

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _fetch(self) -> None:
        data = {"grant_type": "client_credentials", "client_id": self.credentials.client_id,
                "client_secret": self.credentials.client_secret}
        if self.credentials.scopes:
            data["scope"] = " ".join(self.credentials.scopes)
        try:
            resp = self.http.post(self.token_url, data=data)
        except httpx.HTTPError as exc:
            raise PlatformError(f"token endpoint unreachable: {type(exc).__name__}",
                                retryable=True) from None
        if resp.status_code in (400, 401, 403):
            raise AuthError(f"token request refused ({resp.status_code}) for client "
                            f"{self.credentials.client_id!r}", status=resp.status_code)
        if resp.status_code >= 300:
            raise PlatformError(f"token endpoint answered {resp.status_code}", status=resp.status_code,
                                retryable=resp.status_code >= 500 or resp.status_code == 429)
        body = resp.json()
        self._token = body["access_token"]
        lifetime = float(body.get("expires_in", 3600))
        self._expires_at = self.clock() + lifetime
        self._margin = min(self.max_margin_s, lifetime * self.renew_fraction)
        self.granted_scopes = frozenset(str(body.get("scope", "")).split())
        self.fetches += 1
        log.debug("token fetched for %s, lifetime %.1fs", self.credentials.client_id, lifetime)
        if self.on_fetch:
            self.on_fetch({"client_id": self.credentials.client_id, "fetch": self.fetches,
                           "lifetime_s": lifetime})
