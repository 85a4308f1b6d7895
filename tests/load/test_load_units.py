"""Unit level: call sink, settings, reporting, API client (httpx MockTransport)."""

from __future__ import annotations

import argparse
import json
import socket

import httpx
import pytest

from harness.errors import ConfigError, SipError
from harness.load.api import ApiClient
from harness.load.preflight import check_reachable
from harness.load.reporting import RecordBatcher, fire_call
from harness.load.settings import LoadSettings, add_arguments
from harness.load.sink import CallSink, percentile


def rec(i, outcome="answered", code=200, setup=0.01, worker="h:1"):
    return {"call_id": f"c{i}", "outcome": outcome, "code": code, "setup_seconds": setup,
            "worker": worker}


def test_sink_writes_jsonl_tallies_and_feeds_subscribers(tmp_path):
    path = tmp_path / "calls.jsonl"
    sink = CallSink(str(path), mode="w")
    seen = []
    sink.subscribe(seen.append)
    bad = sink.subscribe(lambda b: 1 / 0)          # a broken subscriber must not matter
    sink.add([rec(1), rec(2, "403", 403, worker="h:2")])
    bad()
    sink.add([rec(3, setup=0.03)])
    sink.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [r["call_id"] for r in lines] == ["c1", "c2", "c3"]
    assert [len(b) for b in seen] == [2, 1]
    assert sink.by_outcome == {"answered": 2, "403": 1}
    assert sink.by_code == {"200": 2, "403": 1}
    assert sink.by_worker == {"h:1": 2, "h:2": 1}
    assert sink.setup_percentiles()["max"] == 0.03
    answered = []
    sink.subscribe_answers(answered.append)
    sink.add_answers([rec(4)])
    assert answered == [[rec(4)]] and sink.answers_seen == 1 and sink.total == 3


def test_percentile_nearest_rank():
    v = [float(i) for i in range(1, 101)]
    assert (percentile(v, 50), percentile(v, 99), percentile(v, 100)) == (50.0, 99.0, 100.0)
    assert percentile([], 50) is None


def options(*argv):
    p = argparse.ArgumentParser()
    orig = p.add_argument
    p.add_argument = lambda *a, **kw: orig(*a, **{k: v for k, v in kw.items() if k != "is_secret"})
    add_arguments(p)
    return p.parse_args(list(argv))


def test_settings_validate_into_typed_object(tmp_path):
    eps = tmp_path / "endpoints.json"
    eps.write_text(json.dumps({"trunks": [{"id": "T1", "sip_uri": "sip:chaos@127.0.0.1:5070"}]}))
    s = LoadSettings.from_options(options(
        "--sip-target", "sip:chaos@127.0.0.1:5070,sip:b@127.0.0.1:5071", "--sip-codecs", "g722",
        "--sip-hold", "uniform:1:2", "--sip-retry", "--sip-endpoints-file", str(eps)))
    assert s.targets == ("sip:chaos@127.0.0.1:5070", "sip:b@127.0.0.1:5071")
    assert s.codecs == ("G722/16000/1",) and s.retry and s.hold.kind == "uniform"
    assert s.entry_trunks == {"sip:chaos@127.0.0.1:5070": "T1"}
    assert s.min_interval == 1.0                   # callers are paced unless told otherwise
    fast = LoadSettings.from_options(options("--sip-target", "sip:x@127.0.0.1",
                                             "--sip-min-interval", "0.2"))
    assert fast.min_interval == 0.2


@pytest.mark.parametrize("argv,err", [
    ((), ConfigError), (("--sip-target", "sip:x@10.1.1.1"), SipError),
    (("--sip-target", "sip:x@127.0.0.1", "--sip-hold", "soon"), ConfigError),
    (("--sip-target", "sip:x@127.0.0.1", "--sip-tag-header", "X Bad"), ConfigError),
    (("--sip-target", "sip:x@127.0.0.1", "--sip-min-interval", "0"), ConfigError),
    (("--sip-target", "sip:x@127.0.0.1", "--sip-min-interval", "nan"), ConfigError),
])
def test_settings_refuse_bad_input(argv, err):
    with pytest.raises(err):
        LoadSettings.from_options(options(*argv))


class FakeEvents:
    def __init__(self):
        self.fired = []

    class _Req:
        def __init__(self, out):
            self.out = out

        def fire(self, **kw):
            self.out.append(kw)

    @property
    def request(self):
        return self._Req(self.fired)


class FakeEnv:
    def __init__(self):
        self.events = FakeEvents()


def test_fire_call_reports_setup_ms_and_failures():
    env = FakeEnv()
    fire_call(env, {**rec(1, setup=0.25), "trunk": None})
    fire_call(env, {**rec(2, "503", 503), "reason": "Service Unavailable", "trunk": None})
    ok, bad = env.events.fired
    assert (ok["request_type"], ok["name"], ok["response_time"], ok["exception"]) == \
        ("SIP", "INVITE answered", 250.0, None)
    assert bad["name"] == "INVITE 503" and "503 Service Unavailable" in str(bad["exception"])


def test_batcher_delivers_each_record_once_and_keeps_failed_batches():
    got, fail = [], [True]

    def deliver(batch):
        if fail[0]:
            fail[0] = False
            raise OSError("master gone")
        got.extend(batch)

    answers = []
    b = RecordBatcher(None, deliver, answers.extend)
    b.add(rec(1))
    b.add_answer(rec(1))
    b.flush()                 # records fail: kept; the answer goes its own way
    b.add(rec(2))
    b.flush()
    b.flush()
    assert [r["call_id"] for r in got] == ["c1", "c2"]
    assert [r["call_id"] for r in answers] == ["c1"]


def test_api_client_tags_authenticates_and_honours_429():
    seen = []

    def handler(request: httpx.Request):
        seen.append(request)
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "tok", "expires_in": 300})
        if len(seen) == 2:
            return httpx.Response(429, headers={"Retry-After": "0.2"})
        return httpx.Response(200, json={"queueId": "Q"})

    events = FakeEvents()
    api = ApiClient("http://127.0.0.1:1", "", "cid", "secret", "genesys", "T", "Q",
                    "X-Chaos-Test", "run-7", events, transport=httpx.MockTransport(handler))
    api.read_queue()
    assert api.blocked_until > 0
    api.read_queue()
    gets = [r for r in seen if r.method == "GET"]
    assert all(r.headers["X-Chaos-Test"] == "run-7" for r in seen)
    assert all(r.headers["Authorization"] == "Bearer tok" for r in gets)
    assert gets[1].url.path == "/api/v2/analytics/queues/Q/realtime"
    first, second = events.fired
    assert first["name"] == "/api/v2/analytics/queues/{id}/realtime"
    assert "429" in str(first["exception"]) and second["exception"] is None
    api.close()


def test_preflight_detects_nothing_listening():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        check_reachable(f"sip:x@127.0.0.1:{port}")        # bound: no error
    with pytest.raises(SipError, match="unreachable"):
        check_reachable(f"sip:x@127.0.0.1:{port}")
