"""Unit tests of the platform client against httpx.MockTransport fakes."""

from __future__ import annotations

import logging

import httpx
import pytest

from harness.errors import AuthError, PlatformError
from harness.platforms.adapter import open_adapter
from harness.platforms.credentials import Connection
from harness.platforms.http import ApiBudgetExceeded
from harness.platforms.sse import SseParser

SECRET = "s3cr3t-never-logged-0451"
TRUNK = {"id": "t1", "name": "Chaos_T", "status": "Active"}


class FakePlatform:
    """A tiny platform: tokens with a lifetime, one trunk, scripted failures."""

    def __init__(self, lifetime=3600, script=None):
        self.lifetime, self.script = lifetime, list(script or [])
        self.tokens_issued = 0
        self.valid: set[str] = set()
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/oauth/token":
            assert SECRET.encode() in request.content
            self.tokens_issued += 1
            token = f"tok{self.tokens_issued}"
            self.valid = {token}
            return httpx.Response(200, json={"access_token": token, "token_type": "Bearer",
                                             "expires_in": self.lifetime, "scope": "view:telephony"})
        if self.script:
            status, headers = self.script.pop(0)
            if status:
                return httpx.Response(status, headers=headers, json={"message": "scripted"})
        auth = request.headers.get("Authorization", "")
        if auth.removeprefix("Bearer ") not in self.valid:
            return httpx.Response(401, json={"message": "expired"})
        return httpx.Response(200, json=TRUNK)


def adapter(fake, monkeypatch, clock=None, budget=100, sleeps=None):
    monkeypatch.setenv("CCH_TEST_SECRET", SECRET)
    conn = Connection(platform="genesys", api="genesys", base_url="https://api.test",
                      token_url="https://api.test/oauth/token", events_url="https://api.test/ev",
                      client_id="cid", client_secret_env="CCH_TEST_SECRET", api_call_budget=budget,
                      max_retries=3)
    sleeps = sleeps if sleeps is not None else []
    return open_adapter(conn, transport=httpx.MockTransport(fake), sleep=sleeps.append,
                           clock=clock)


def test_get_trunk_uses_the_guide_route_with_a_bearer_token(monkeypatch):
    fake = FakePlatform()
    with adapter(fake, monkeypatch) as a:
        assert a.get_trunk("t1") == TRUNK
    req = fake.requests[-1]
    assert req.method == "GET" and req.url.path == "/api/v2/telephony/phone/trunks/t1"
    assert req.headers["Authorization"] == "Bearer tok1"


def test_token_is_renewed_before_expiry(monkeypatch):
    now = [1000.0]
    fake = FakePlatform(lifetime=100)
    with adapter(fake, monkeypatch, clock=lambda: now[0]) as a:
        a.get_trunk("t1")
        now[0] += 70          # inside the lifetime, outside the renewal margin (20 s)
        a.get_trunk("t1")
        assert fake.tokens_issued == 1
        now[0] += 15          # 85 s: within 20 s of expiry -> renew first
        a.get_trunk("t1")
        assert fake.tokens_issued == 2


def test_token_is_renewed_on_401(monkeypatch):
    fake = FakePlatform()
    with adapter(fake, monkeypatch) as a:
        a.get_trunk("t1")
        fake.valid = set()    # the platform revoked/expired it early
        assert a.get_trunk("t1") == TRUNK
    assert fake.tokens_issued == 2


def test_429_waits_retry_after(monkeypatch):
    sleeps: list[float] = []
    fake = FakePlatform(script=[(429, {"Retry-After": "2"}), (429, {"Retry-After": "1"})])
    with adapter(fake, monkeypatch, sleeps=sleeps) as a:
        assert a.get_trunk("t1") == TRUNK
    assert sleeps == [2.0, 1.0]


def test_5xx_retries_with_bounded_jittered_backoff(monkeypatch):
    sleeps: list[float] = []
    fake = FakePlatform(script=[(503, {}), (502, {})])
    with adapter(fake, monkeypatch, sleeps=sleeps) as a:
        assert a.get_trunk("t1") == TRUNK
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.2 and 0 <= sleeps[1] <= 0.4


def test_5xx_gives_up_after_max_retries(monkeypatch):
    fake = FakePlatform(script=[(503, {})] * 10)
    with adapter(fake, monkeypatch) as a:
        with pytest.raises(PlatformError) as info:
            a.get_trunk("t1")
    assert info.value.status == 503 and info.value.retryable


def test_timeouts_are_retried(monkeypatch):
    calls = {"n": 0}
    inner = FakePlatform()

    def flaky(request):
        if request.url.path != "/oauth/token" and calls["n"] < 2:
            calls["n"] += 1
            raise httpx.ReadTimeout("slow", request=request)
        return inner(request)
    with adapter(flaky, monkeypatch) as a:
        assert a.get_trunk("t1") == TRUNK


def test_4xx_is_not_retried(monkeypatch):
    fake = FakePlatform(script=[(400, {})])
    with adapter(fake, monkeypatch) as a:
        with pytest.raises(PlatformError) as info:
            a.get_trunk("t1")
        assert info.value.status == 400 and a.client.calls == 1


def test_403_is_an_auth_error(monkeypatch):
    fake = FakePlatform(script=[(403, {})])
    with adapter(fake, monkeypatch) as a, pytest.raises(AuthError):
        a.get_trunk("t1")


def test_budget_stops_non_essential_calls_but_not_rollback(monkeypatch):
    fake = FakePlatform()
    with adapter(fake, monkeypatch, budget=2) as a:
        a.get_trunk("t1")
        a.get_trunk("t1")
        with pytest.raises(ApiBudgetExceeded):
            a.get_trunk("t1")
        assert a.get_trunk("t1", essential=True) == TRUNK


def test_missing_secret_env_is_an_auth_error(monkeypatch):
    monkeypatch.delenv("CCH_NOPE", raising=False)
    conn = Connection(platform="genesys", api="genesys", base_url="https://api.test",
                      token_url="https://api.test/oauth/token", events_url="e", client_id="cid",
                      client_secret_env="CCH_NOPE")
    with pytest.raises(AuthError, match="CCH_NOPE"):
        open_adapter(conn, transport=httpx.MockTransport(FakePlatform()))


def test_secret_from_file(monkeypatch, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    conn = Connection(platform="genesys", api="genesys", base_url="https://api.test",
                      token_url="https://api.test/oauth/token", events_url="e", client_id="cid",
                      client_secret_file=str(secret_file))
    with open_adapter(conn, transport=httpx.MockTransport(FakePlatform())) as a:
        assert a.get_trunk("t1") == TRUNK


def test_secret_never_appears_in_logs_or_call_records(monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    records: list[dict] = []
    fake = FakePlatform(script=[(503, {}), (429, {"Retry-After": "0"})])
    with adapter(fake, monkeypatch) as a:
        a.client.on_call = records.append
        a.get_trunk("t1")
        fake.valid = set()
        a.get_trunk("t1")
        assert SECRET not in repr(a.tokens.credentials)
    assert records and SECRET not in repr(records)
    assert SECRET not in caplog.text and "tok1" not in caplog.text


def test_cxone_map_uses_put_and_its_paths(monkeypatch):
    monkeypatch.setenv("CCH_TEST_SECRET", SECRET)
    fake = FakePlatform()
    conn = Connection(platform="cxone", api="cxone", base_url="https://api.test",
                      token_url="https://api.test/oauth/token", events_url="e", client_id="cid",
                      client_secret_env="CCH_TEST_SECRET")
    with open_adapter(conn, transport=httpx.MockTransport(fake)) as a:
        a.update_trunk("t9", {"healthScore": 45})
    req = fake.requests[-1]
    assert req.method == "PUT" and req.url.path == "/api/v2.0/telephony/trunks/t9"


def test_sse_parser_events_comments_and_multiline():
    p = SseParser()
    lines = [": keepalive", "event: failover", 'data: {"type": "failover",', 'data: "fromTrunkId": "a"}', ""]
    out = [p.feed(line) for line in lines]
    assert out[:4] == [None] * 4
    assert out[4] == {"type": "failover", "fromTrunkId": "a"}
    assert p.feed("") is None


def test_only_the_twin_adapter_has_faults(monkeypatch):
    monkeypatch.setenv("CCH_TEST_SECRET", SECRET)
    seen = []

    def handler(request):
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 60, "scope": ""})
        seen.append((request.method, request.url.path))
        return httpx.Response(200, json={"provisioningFailure": False})

    def conn(platform):
        return Connection(platform=platform, api="genesys", base_url="https://api.test",
                          token_url="https://api.test/oauth/token", events_url="e", client_id="cid",
                          client_secret_env="CCH_TEST_SECRET")
    with open_adapter(conn("twin"), transport=httpx.MockTransport(handler)) as twin:
        twin.put_faults({"provisioningFailure": False})
        assert seen == [("PUT", "/twin/v1/faults")]
    with open_adapter(conn("genesys"), transport=httpx.MockTransport(handler)) as genesys:
        with pytest.raises(PlatformError, match="no twin faults"):
            genesys.put_faults({})
    assert len(seen) == 1


def test_429_without_retry_after_backs_off_with_jitter(monkeypatch):
    sleeps: list[float] = []
    fake = FakePlatform(script=[(429, {}), (429, {})])
    with adapter(fake, monkeypatch, sleeps=sleeps) as a:
        assert a.get_trunk("t1") == TRUNK
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 0.2 and 0 <= sleeps[1] <= 0.4


def test_event_feed_resumes_with_last_event_id():
    import threading
    from harness.platforms.sse import EventFeed
    seen_headers = []
    done = threading.Event()

    def handler(request):
        seen_headers.append(request.headers.get("Last-Event-ID"))
        if len(seen_headers) == 1:
            body = b'id: 7\nevent: failover\ndata: {"type": "failover", "timestamp": 1.0}\n\n'
        else:
            body = b'id: 8\nevent: failback\ndata: {"type": "failback", "timestamp": 2.0}\n\n'
            done.set()
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})
    http = httpx.Client(transport=httpx.MockTransport(handler))
    with EventFeed(http, "https://api.test/events", lambda: {}, lambda: None) as feed:
        assert done.wait(5)
        assert feed.wait_for(lambda e: e["type"] == "failback", since=0, timeout=5)
    assert seen_headers[:2] == [None, "7"]
