"""The twin's REST API over real HTTP against `ccharness emulator` (time scale 0.02)."""

from __future__ import annotations

import httpx

from twin_support import E2E_SCALE, Api, wait_until

SCALE = E2E_SCALE
PROPAGATION = 100 * SCALE   # e2e.yaml fixes Genesys propagation at 100 s


def test_token_endpoint_issues_bearer_tokens(live):
    r = httpx.post(live["token_url"], data={"grant_type": "client_credentials", "client_id": "demo",
                                             "client_secret": "e2e-secret"})
    body = r.json()
    assert r.status_code == 200 and body["token_type"] == "Bearer" and body["expires_in"] == 3600
    bad = httpx.post(live["token_url"], data={"grant_type": "client_credentials", "client_id": "demo",
                                               "client_secret": "wrong"})
    assert bad.status_code == 401


def test_every_route_needs_a_token(api):
    tid = api.trunk_id("Healthy")
    for path in (f"/api/v2/telephony/phone/trunks/{tid}", "/twin/v1/ground-truth",
                 "/api/v2/events/stream", "/api/v2/workforcemanagement/schedules"):
        assert api.http.get(path).status_code == 401
        assert api.http.get(path, headers={"Authorization": "Bearer forged"}).status_code == 401


def test_missing_scope_is_403_naming_the_scope(live, api):
    narrow = Api(live, "narrow", "narrow-secret")
    tid = api.trunk_id("Healthy")
    assert narrow.get(f"/api/v2/telephony/phone/trunks/{tid}").status_code == 200
    r = narrow.request("PATCH", f"/api/v2/telephony/phone/trunks/{tid}", json={"status": "Degraded"})
    assert r.status_code == 403 and r.json()["missingScope"] == "edit:telephony"
    assert narrow.get(f"/api/v2.0/telephony/trunks/{api.trunk_id('C1')}").status_code == 403
    narrow.close()


def test_rate_limit_gives_429_with_retry_after(live):
    client = Api(live)
    tid = client.trunk_id("Healthy")
    codes = [client.get(f"/api/v2/telephony/phone/trunks/{tid}").status_code for _ in range(301)]
    assert codes[:300] == [200] * 300
    assert codes[300] == 429
    r = client.get(f"/api/v2/telephony/phone/trunks/{tid}")
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
    client.token = client.new_token()   # the limit is per token
    assert client.get(f"/api/v2/telephony/phone/trunks/{tid}").status_code == 200
    client.close()


def test_patch_answers_200_at_once_and_routing_follows_after_propagation(api):
    tid = api.trunk_id("Throttled")
    r = api.request("PATCH", f"/api/v2/telephony/phone/trunks/{tid}",
                    json={"status": "Degraded", "capacity": {"throttlePercentage": 25}})
    assert r.status_code == 200 and r.json()["status"] == "Degraded"
    assert api.get(f"/api/v2/telephony/phone/trunks/{tid}").json()["capacity"]["throttlePercentage"] == 25
    routed = next(t for t in api.get("/twin/v1/state").json()["trunks"] if t["id"] == tid)
    [change] = api.truth()["changes"]
    assert routed["status"] == "Active" and change["appliedAt"] is None
    change = wait_until(lambda: api.truth()["changes"][0]["appliedAt"] and api.truth()["changes"][0], 10)
    assert change["appliedAt"] - change["requestedAt"] >= PROPAGATION - 0.01
    routed = next(t for t in api.get("/twin/v1/state").json()["trunks"] if t["id"] == tid)
    assert routed["status"] == "Degraded" and routed["capacity"]["throttlePercentage"] == 25


def test_cxone_put_and_bad_bodies(api):
    cid = api.trunk_id("C1")
    r = api.request("PUT", f"/api/v2.0/telephony/trunks/{cid}", json={"healthScore": 45})
    assert r.status_code == 200 and r.json()["healthScore"] == 45
    assert api.request("PUT", f"/api/v2.0/telephony/trunks/{cid}", json={"colour": "red"}).status_code == 400
    assert api.request("PUT", f"/api/v2.0/telephony/trunks/{cid}", content=b"{not json").status_code == 400
    # A CXone trunk is not a Genesys trunk.
    assert api.get(f"/api/v2/telephony/phone/trunks/{cid}").status_code == 404


def test_provisioning_failure_hides_behind_200(api):
    assert api.request("PUT", "/twin/v1/faults", json={"provisioningFailure": True}).status_code == 200
    tid = api.trunk_id("Healthy")
    r = api.request("PATCH", f"/api/v2/telephony/phone/trunks/{tid}", json={"status": "Inactive"})
    assert r.status_code == 200 and r.json()["status"] == "Inactive"
    events = api.events(lambda evs: any(e["type"] == "provisioningFailed" for e in evs), timeout=10)
    failed = [e for e in events if e["type"] == "provisioningFailed"]
    assert failed and failed[0]["trunkId"] == tid
    [change] = api.truth()["changes"]
    assert change["provisioningFailed"] is True and change["appliedAt"] is None
    routed = next(t for t in api.get("/twin/v1/state").json()["trunks"] if t["id"] == tid)
    assert routed["status"] == "Active"


def test_injected_api_errors_spare_the_twin_admin_routes(api):
    api.request("PUT", "/twin/v1/faults", json={"apiErrorRate": 1.0, "apiErrorCode": 502})
    tid = api.trunk_id("Healthy")
    assert api.get(f"/api/v2/telephony/phone/trunks/{tid}").status_code == 502
    assert api.get("/twin/v1/faults").json()["apiErrorRate"] == 1.0
    assert api.request("PUT", "/twin/v1/faults", json={"nonsense": 1}).status_code == 400


def test_analytics_and_wfm_shapes(api):
    g = api.get(f"/api/v2/analytics/queues/{api.queue_id('GQ')}/realtime").json()
    assert set(g) == {"queueId", "waitTime", "availableAgents", "answeredCalls", "offeredCalls", "asOf",
                      "answeredViaFailover"}
    c = api.get(f"/api/v2.0/analytics/queues/{api.queue_id('CQ')}/realtime").json()
    assert set(c) == {"queueId", "agentCount", "avgWait", "answeredCalls", "offeredCalls", "asOf",
                      "answeredViaFailover"}
    r = api.get("/api/v2/workforcemanagement/schedules",
                params={"queueId": api.queue_id("GQ"), "from": "2026-01-01T00:00:00Z",
                        "to": "2026-01-01T02:00:00Z"})
    intervals = r.json()["intervals"]
    assert len(intervals) == 4 and {i["agentsScheduled"] for i in intervals} == {400}


def test_event_stream_is_server_sent_events(api):
    tid = api.trunk_id("C2")
    api.request("PUT", f"/api/v2.0/telephony/trunks/{tid}", json={"healthScore": 80})
    events = api.events(lambda evs: any(e["type"] == "trunkConfigApplied" for e in evs))
    applied = next(e for e in events if e["type"] == "trunkConfigApplied")
    assert applied["platform"] == "cxone" and applied["fields"]["healthScore"] == 80
    assert isinstance(applied["timestamp"], float)


def test_injected_api_latency_delays_platform_routes(api):
    api.request("PUT", "/twin/v1/faults", json={"apiLatencyMs": 300})
    tid = api.trunk_id("Healthy")
    slow = api.get(f"/api/v2/telephony/phone/trunks/{tid}")
    assert slow.status_code == 200 and slow.elapsed.total_seconds() >= 0.3
    assert api.get("/twin/v1/faults").json()["apiLatencyMs"] == 300
