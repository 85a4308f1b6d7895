"""OAuth client credentials for the twin: tokens with expiry, scopes, a rate limit.

Sans-I/O: ``now`` is passed in, so tests can move time. The REST layer maps the
``AuthFailure`` statuses to HTTP (401, 403, 429 with Retry-After).
"""

from __future__ import annotations

import base64
import collections
import math
import secrets
from dataclasses import dataclass

from harness.twin.topology import OAuthClient

RATE_LIMIT_PER_MINUTE = 300


class AuthFailure(Exception):
    def __init__(self, status: int, error: str, message: str, retry_after: int | None = None,
                 scope: str | None = None):
        super().__init__(message)
        self.status, self.error, self.message = status, error, message
        self.retry_after, self.scope = retry_after, scope


@dataclass
class Token:
    value: str
    client_id: str
    scopes: frozenset[str]
    expires_at: float
    requests: collections.deque


class Authority:
    def __init__(self, clients: tuple[OAuthClient, ...], lifetime: float,
                 rate_limit: int = RATE_LIMIT_PER_MINUTE):
        self.clients = {c.id: c for c in clients}
        self.lifetime = lifetime
        self.rate_limit = rate_limit
        self._tokens: dict[str, Token] = {}

    def issue(self, form: dict[str, str], authorization: str | None, now: float) -> dict:
        """Client-credentials grant (RFC 6749 4.4); credentials in the form or HTTP Basic."""
        if form.get("grant_type") != "client_credentials":
            raise AuthFailure(400, "unsupported_grant_type", "grant_type must be client_credentials")
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise AuthFailure(401, "invalid_client", "bad Basic credentials") from None
        client = self.clients.get(client_id or "")
        if client is None or not secrets.compare_digest(client.secret, secret or ""):
            raise AuthFailure(401, "invalid_client", "unknown client or wrong secret")
        wanted = set((form.get("scope") or "").split()) or set(client.scopes)
        scopes = frozenset(wanted & set(client.scopes))
        if not scopes:
            raise AuthFailure(400, "invalid_scope", "none of the requested scopes is granted")
        self._expire(now)
        token = Token(secrets.token_urlsafe(24), client.id, scopes, now + self.lifetime,
                      collections.deque())
        self._tokens[token.value] = token
        return {"access_token": token.value, "token_type": "Bearer",
                "expires_in": int(self.lifetime), "scope": " ".join(sorted(scopes))}

    def check(self, authorization: str | None, scopes: tuple[str, ...], now: float) -> Token:
        """The token behind ``Authorization`` if it is valid, has one of ``scopes`` and is
        under the rate limit (300 requests in any 60 s)."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise AuthFailure(401, "unauthorized", "missing bearer token")
        token = self._tokens.get(authorization[7:].strip())
        if token is None or token.expires_at <= now:
            raise AuthFailure(401, "unauthorized", "unknown or expired token")
        if scopes and not token.scopes.intersection(scopes):
            raise AuthFailure(403, "missing.scope", f"token lacks scope {' or '.join(scopes)}",
                              scope=scopes[0])
        window = token.requests
        while window and window[0] <= now - 60.0:
            window.popleft()
        if len(window) >= self.rate_limit:
            raise AuthFailure(429, "too.many.requests", "rate limit exceeded",
                              retry_after=max(1, math.ceil(window[0] + 60.0 - now)))
        window.append(now)
        return token

    def _expire(self, now: float) -> None:
        for value in [v for v, t in self._tokens.items() if t.expires_at <= now]:
            del self._tokens[value]
