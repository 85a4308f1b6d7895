"""End to end: SIPp (a real peer) against `ccharness emulator --time-scale 0.02`."""

from __future__ import annotations

import time

import pytest

from twin_support import E2E_SCALE, run_sipp, wait_until

pytestmark = pytest.mark.sipp
SCALE = E2E_SCALE


def _applied(api, trunk_id):
    changes = [c for c in api.truth()["changes"] if c["trunkId"] == trunk_id]
    return changes and changes[-1]["appliedAt"] is not None


def test_calls_on_a_healthy_trunk_are_answered(sipp_bin, tmp_path, api):
    run = run_sipp(sipp_bin, tmp_path, api.sip_port("Healthy"), calls=10, rate=50, tag="healthy-run")
    assert run.returncode == 0
    assert run.count(200) == 10
    assert "X-Twin-Trunk: " + api.trunk_id("Healthy") in run.log
    answers = [e for e in api.events(lambda evs: sum(e["type"] == "answer" for e in evs) >= 10)
               if e["type"] == "answer"]
    assert len(answers) == 10 and {a["tag"] for a in answers} == {"healthy-run"}


def test_degraded_trunk_rejects_by_throttle_only_after_propagation(sipp_bin, tmp_path, api):
    tid = api.trunk_id("Throttled")
    r = api.request("PATCH", f"/api/v2/telephony/phone/trunks/{tid}",
                    json={"status": "Degraded", "capacity": {"throttlePercentage": 25}})
    assert r.status_code == 200
    before = run_sipp(sipp_bin, tmp_path, api.sip_port("Throttled"), calls=10, rate=100, hold_ms=10)
    assert not _applied(api, tid), "propagation finished during the 'before' run; slow machine?"
    assert before.count(200) == 10
    assert wait_until(lambda: _applied(api, tid), 10)
    after = run_sipp(sipp_bin, tmp_path, api.sip_port("Throttled"), calls=40, rate=100, hold_ms=10)
    assert after.count(503) == 30 and after.count(200) == 10


def test_blackholed_trunk_never_answers_and_the_caller_retransmits(sipp_bin, tmp_path, api):
    tid = api.trunk_id("Blackhole")
    assert api.request("PUT", "/twin/v1/faults", json={"blackholeTrunks": [tid]}).status_code == 200
    # SIPp gives up after two retransmissions (Timer A: 0.5 s, 1 s) instead of Timer B's 32 s.
    run = run_sipp(sipp_bin, tmp_path, api.sip_port("Blackhole"), calls=2, rate=10,
                   extra=("-max_invite_retrans", "2"))
    assert run.finals == {}
    assert "SIP/2.0 100" not in run.log and "SIP/2.0 180" not in run.log
    assert run.invites == 2 * 3


def test_cancel_while_ringing_ends_the_invite_with_487(sipp_bin, tmp_path, api):
    run = run_sipp(sipp_bin, tmp_path, api.sip_port("SlowRing"), calls=3, rate=10,
                   scenario="uac_cancel.xml")
    assert run.returncode == 0
    assert run.count(487) == 3
    ended = api.events(lambda evs: sum(e["type"] == "callEnded" for e in evs) >= 3)
    assert [e["reason"] for e in ended if e["type"] == "callEnded"] == ["cancel"] * 3


def test_offer_without_a_common_codec_gets_488(sipp_bin, tmp_path, api):
    run = run_sipp(sipp_bin, tmp_path, api.sip_port("Healthy"), calls=3, codec=(9, "G722"))
    assert run.count(488) == 3
    ok = run_sipp(sipp_bin, tmp_path, api.sip_port("Healthy"), calls=1, codec=(8, "PCMA"))
    assert ok.count(200) == 1


def test_past_the_license_ceiling_calls_get_403_license_exceeded(sipp_bin, tmp_path, api):
    api.request("PUT", "/twin/v1/faults", json={"licenseCeiling": {"G": 3}})
    run = run_sipp(sipp_bin, tmp_path, api.sip_port("Healthy"), calls=6, rate=50, hold_ms=1500)
    assert run.count(200) == 3 and run.count(403) == 3
    assert "SIP/2.0 403 License Exceeded" in run.log


def test_cxone_fails_over_only_after_three_low_polls(sipp_bin, tmp_path, api):
    c1, c2 = api.trunk_id("C1"), api.trunk_id("C2")
    assert api.request("PUT", f"/api/v2.0/telephony/trunks/{c1}", json={"healthScore": 45}).status_code == 200
    events = api.events(lambda evs: any(e["type"] == "failover" for e in evs), timeout=10)
    applied = next(e for e in events if e["type"] == "trunkConfigApplied" and e["trunkId"] == c1)
    failover = next(e for e in events if e["type"] == "failover")
    assert (failover["fromTrunkId"], failover["toTrunkId"]) == (c1, c2)
    poll = 10 * SCALE   # the first low poll is at or after the refresh; the third 2 polls later
    assert failover["timestamp"] - applied["timestamp"] >= 2 * poll - 0.01
    run = run_sipp(sipp_bin, tmp_path, api.sip_port("C1"), calls=2, tag="after-failover")
    assert run.count(200) == 2 and f"X-Twin-Trunk: {c2}" in run.log
    [record] = api.truth()["failovers"]
    assert record["firstAnswerTag"] == "after-failover" and record["firstAnswerAt"] >= record["at"]


def test_analytics_lag_behind_the_event_stream(sipp_bin, tmp_path, api):
    queue = api.queue_id("GQ")
    run = run_sipp(sipp_bin, tmp_path, api.sip_port("Healthy"), calls=1)
    assert run.count(200) == 1
    answer = next(e for e in api.events(lambda evs: any(e["type"] == "answer" for e in evs))
                  if e["type"] == "answer")
    assert api.get(f"/api/v2/analytics/queues/{queue}/realtime").json()["answeredCalls"] == 0
    seen = wait_until(lambda: api.get(f"/api/v2/analytics/queues/{queue}/realtime").json()["answeredCalls"], 10)
    assert seen == 1
    assert time.time() - answer["timestamp"] >= 90 * SCALE   # the guide's lag, scaled


def test_provisioning_failure_behind_200_leaves_calls_flowing(sipp_bin, tmp_path, api):
    api.request("PUT", "/twin/v1/faults", json={"provisioningFailure": True})
    tid = api.trunk_id("Healthy")
    r = api.request("PATCH", f"/api/v2/telephony/phone/trunks/{tid}", json={"status": "Inactive"})
    assert r.status_code == 200 and r.json()["status"] == "Inactive"
    assert api.events(lambda evs: any(e["type"] == "provisioningFailed" for e in evs))
    run = run_sipp(sipp_bin, tmp_path, api.sip_port("Healthy"), calls=3)
    assert run.count(200) == 3


def test_abrupt_removal_sends_bye_to_established_calls(sipp_bin, tmp_path, api):
    import threading

    tid = api.trunk_id("Healthy")
    result = {}
    caller = threading.Thread(target=lambda: result.update(run=run_sipp(
        sipp_bin, tmp_path, api.sip_port("Healthy"), calls=3, rate=30,
        scenario="twin_uac_wait_bye.xml", timeout=25)))
    caller.start()
    try:
        assert wait_until(lambda: api.get("/twin/v1/state").json()["activeCalls"] == 3, 10)
        api.request("PATCH", f"/api/v2/telephony/phone/trunks/{tid}", json={"status": "Inactive"})
    finally:
        caller.join(40)
    run = result["run"]
    assert run.returncode == 0 and run.count(200) == 3
    assert run.log.count("BYE sip:") >= 3
    assert api.truth()["brokenCdrs"] == 3


def test_options_follow_routed_health(sipp_bin, tmp_path, api):
    port = api.sip_port("Blackhole")
    healthy = run_sipp(sipp_bin, tmp_path, port, calls=1, scenario="uac_options_200.xml")
    assert healthy.returncode == 0
    api.request("PUT", "/twin/v1/faults", json={"blackholeTrunks": [api.trunk_id("Blackhole")]})
    down = run_sipp(sipp_bin, tmp_path, port, calls=1, scenario="uac_options_503.xml")
    assert down.returncode == 0 and "SIP/2.0 503" in down.log
