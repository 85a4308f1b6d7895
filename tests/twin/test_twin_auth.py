"""OAuth client credentials: expiry, scopes, the 300 requests/minute limit (fake time)."""

from __future__ import annotations

import base64

import pytest

from harness.twin.auth import Authority, AuthFailure
from harness.twin.topology import OAuthClient

CLIENTS = (OAuthClient("demo", "s", ("view:telephony", "edit:telephony")),)


def _token(auth, now=0.0, **form):
    body = auth.issue({"grant_type": "client_credentials", "client_id": "demo", "client_secret": "s", **form},
                      None, now)
    return "Bearer " + body["access_token"], body


def test_token_carries_scopes_and_expiry():
    auth = Authority(CLIENTS, lifetime=60)
    header, body = _token(auth)
    assert body["token_type"] == "Bearer" and body["expires_in"] == 60
    assert auth.check(header, ("edit:telephony",), 59.0).client_id == "demo"
    with pytest.raises(AuthFailure) as err:
        auth.check(header, ("edit:telephony",), 60.0)
    assert err.value.status == 401


def test_basic_credentials_and_wrong_secret():
    auth = Authority(CLIENTS, lifetime=60)
    basic = "Basic " + base64.b64encode(b"demo:s").decode()
    assert auth.issue({"grant_type": "client_credentials"}, basic, 0.0)["access_token"]
    with pytest.raises(AuthFailure) as err:
        auth.issue({"grant_type": "client_credentials", "client_id": "demo", "client_secret": "x"}, None, 0)
    assert err.value.status == 401


def test_missing_scope_is_403_naming_it():
    auth = Authority(CLIENTS, lifetime=60)
    header, body = _token(auth, scope="view:telephony")
    assert body["scope"] == "view:telephony"
    with pytest.raises(AuthFailure) as err:
        auth.check(header, ("edit:telephony",), 1.0)
    assert err.value.status == 403 and err.value.scope == "edit:telephony"


def test_missing_or_unknown_token_is_401():
    auth = Authority(CLIENTS, lifetime=60)
    for header in (None, "Bearer nope", "Basic abc"):
        with pytest.raises(AuthFailure) as err:
            auth.check(header, (), 0.0)
        assert err.value.status == 401


def test_rate_limit_300_per_minute_with_retry_after():
    auth = Authority(CLIENTS, lifetime=3600)
    header, _ = _token(auth)
    for i in range(300):
        auth.check(header, (), 10.0 + i * 0.1)
    with pytest.raises(AuthFailure) as err:
        auth.check(header, (), 45.0)
    assert err.value.status == 429 and err.value.retry_after == 25
    auth.check(header, (), 70.05)   # the first request left the window
