"""Property tests: random traffic, config changes and faults never break the model's
books, and no request, however malformed, breaks the REST app."""

from __future__ import annotations

import io
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.twin.api import TwinApi
from harness.twin.auth import Authority
from harness.twin.events import EventBus
from twin_support import FIXTURES, Harness

TRUNKS = ["G1", "G2", "G3", "GNear", "GFar", "GWest", "GCallback", "C1", "C2", "C3", "C4", "CDown"]
BODIES = [
    {"status": "Inactive"}, {"status": "Active"}, {"status": "Degraded"},
    {"capacity": {"throttlePercentage": 30}}, {"capacity": {"maxConcurrentCalls": 2}},
    {"routing": {"enabled": False}}, {"routing": {"enabled": True}}, {"healthScore": 20},
    {"healthScore": 90}, {"codecs": ["G722"]}, {"codecs": ["PCMU", "PCMA"]},
    {"mediaServerPoolId": "west"}, {"mediaServerPoolId": "nowhere"}, {"mediaServerPoolId": "east"},
]
FAULTS = [{"blackholeTrunks": []}, {"licenseCeiling": {"G": 1}}, {"licenseCeiling": {"G": 10}},
          {"provisioningFailure": True}, {"provisioningFailure": False},
          {"unavailablePools": ["east"]}, {"unavailablePools": []}]

op = st.one_of(
    st.tuples(st.just("call"), st.sampled_from(TRUNKS), st.sampled_from([("PCMU",), ("G722",), ("PCMA", "OPUS")])),
    st.tuples(st.just("bye"), st.integers(0, 50)),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("failed"), st.integers(0, 50)),
    st.tuples(st.just("patch"), st.sampled_from(TRUNKS), st.sampled_from(BODIES)),
    st.tuples(st.just("fault"), st.sampled_from(FAULTS)),
    st.tuples(st.just("advance"), st.floats(0.0, 30.0)),
    st.tuples(st.just("reset")),
)


def _check_books(twin: Harness) -> None:
    m = twin.model
    live = [c for c in m.calls.values() if c.state != "ended"]
    for platform in ("genesys", "cxone"):
        assert m.sessions[platform] == sum(c.holds_license for c in live if c.platform == platform)
    for trunk in twin.topo.trunks:
        assert m.trunk_active[trunk.id] == sum(c.counted_on_trunk for c in live if c.trunk_id == trunk.id)
    for qs in m.queues.values():
        assert len(qs.free) + len(qs.busy) == qs.queue.agents
        assert len(set(qs.free)) == len(qs.free) and not set(qs.free) & set(qs.busy)
        assert all(c.state == "waiting" for c in qs.waiting)
    assert m.internal_errors == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, max_size=60))
def test_random_operations_keep_the_books_straight(ops):
    twin = Harness(FIXTURES / "unit.yaml")
    legs = []
    for o in ops:
        kind = o[0]
        if kind == "call":
            legs.append(twin.call(o[1], codecs=o[2]))
        elif kind in ("bye", "cancel", "failed") and legs:
            leg = legs[o[1] % len(legs)]
            if kind == "bye":
                twin.model.on_bye(leg)
            elif kind == "cancel":
                twin.model.on_cancel(leg)
            else:
                twin.model.on_failed(leg, "test")
        elif kind == "patch":
            platform = twin.topo.trunk(twin.id(o[1])).platform
            body = o[2]
            if platform == "genesys" and "healthScore" in body or platform == "cxone" and (
                    "capacity" in body or "routing" in body):
                continue
            twin.patch(o[1], body)
        elif kind == "fault":
            twin.model.set_faults(o[1])
        elif kind == "advance":
            twin.advance(o[1])
        elif kind == "reset":
            twin.model.reset()
        _check_books(twin)
    twin.advance(10_000.0)   # every handle time, IVR and callback runs out
    _check_books(twin)
    assert all(c.state == "waiting" for c in twin.model.calls.values())


def _app():
    twin = Harness(FIXTURES / "unit.yaml")
    auth = Authority(twin.topo.clients, 60, rate_limit=10**9)
    token = auth.issue({"grant_type": "client_credentials", "client_id": "demo", "client_secret": "s3cret"},
                       None, twin.clock.now())["access_token"]
    return TwinApi(twin.model, EventBus(), auth, clock=twin.clock.now), token


_APP, _TOKEN = _app()
paths = st.one_of(
    st.sampled_from(["/oauth/token", "/api/v2/telephony/phone/trunks/", "/api/v2.0/telephony/trunks/",
                     "/api/v2/analytics/queues/x/realtime", "/twin/v1/faults", "/twin/v1/reset",
                     "/api/v2/workforcemanagement/schedules", "/twin/v1/state"]),
    st.text(max_size=80).map(lambda s: "/" + s),
).flatmap(lambda p: st.sampled_from([p, p + _APP.model.topo.trunks[0].id, p + "/" + "x" * 10]))
bodies = st.one_of(st.binary(max_size=200),
                   st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                                lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=12), c, max_size=3),
                                max_leaves=8).map(lambda v: json.dumps(v).encode()))


@settings(max_examples=400, deadline=None)
@given(method=st.sampled_from(["GET", "PUT", "PATCH", "POST", "DELETE"]), path=paths, body=bodies,
       query=st.text(max_size=40), auth=st.sampled_from([None, "Bearer " + _TOKEN, "Bearer x", "Basic ???"]))
def test_no_request_breaks_the_rest_app(method, path, body, query, auth):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    if auth:
        environ["HTTP_AUTHORIZATION"] = auth
    seen = {}

    def start_response(status, headers):
        seen["status"] = int(status.split()[0])

    result = _APP(environ, start_response)
    assert seen["status"] in (200, 400, 401, 403, 404, 405, 429)
    if seen["status"] != 200 or path != "/api/v2/events/stream":
        b"".join(result)
