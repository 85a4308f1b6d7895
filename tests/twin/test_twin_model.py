"""The routing model on a fake clock with fake legs: one test per behaviour of the guide."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.twin.model import ModelError
from twin_support import FIXTURES, Harness


def test_healthy_trunk_rings_then_answers_with_twin_headers(twin):
    leg = twin.call("G1", codecs=("G722", "PCMA", "PCMU"))
    assert leg.actions == [("ringing",)]
    twin.advance(0.9)
    assert leg.outcome is None
    twin.advance(0.2)
    assert leg.actions[-1] == ("answer", "PCMA", {"X-Twin-Trunk": twin.id("G1"), "X-Twin-Queue": twin.id("GQ")})
    answer = twin.of_type("answer")[0]
    assert answer["tag"] == "run-1" and answer["viaFailover"] is False
    assert twin.of_type("callRouting")[0]["decision"] == "queued"


def test_agent_hangs_up_after_handle_time_and_frees_the_agent(twin):
    leg = twin.call("G1")
    twin.advance(1.0 + 10.0)
    assert leg.outcome == "bye"
    assert twin.of_type("callEnded")[0]["reason"] == "handleTime"
    assert len(twin.model.queues[twin.id("GQ")].free) == 2


def test_caller_bye_frees_agent_for_waiting_call(twin):
    a, b = twin.call("G1"), twin.call("G1")
    twin.advance(1.5)
    assert a.outcome == b.outcome == "answer"
    # No agent free: the Genesys flow sends the next call to the fallback queue GFB.
    c = twin.call("G1")
    assert twin.of_type("callRouting")[-1]["decision"] == "fallback"
    # GFB's single agent takes c; a fourth call waits in GFB.
    d = twin.call("G1")
    twin.advance(1.5)
    assert c.outcome == "answer" and d.outcome is None
    twin.model.on_bye(c)
    twin.advance(1.5)
    assert d.outcome == "answer"
    assert d.actions[-1][2]["X-Twin-Queue"] == twin.id("GFB")


def test_flow_offers_callback_when_no_agents_and_no_fallback_queue(twin):
    leg = twin.call("GCallback")
    assert twin.of_type("callRouting")[-1]["decision"] == "callback"
    assert leg.outcome == "answer"
    twin.advance(2.5)
    assert leg.outcome == "bye"
    assert twin.model.sessions["genesys"] == 0


def test_patch_answers_at_once_but_routing_changes_only_after_propagation(twin):
    view = twin.patch("G1", {"status": "Degraded", "capacity": {"throttlePercentage": 10}})
    assert view["status"] == "Degraded" and view["capacity"]["throttlePercentage"] == 10
    assert twin.model.trunk_view("genesys", twin.id("G1"))["version"] == 2
    assert twin.model.routed[twin.id("G1")].status == "Active"
    twin.advance(14.9)
    assert twin.model.routed[twin.id("G1")].status == "Active"
    assert twin.model.ground_truth()["changes"][0]["appliedAt"] is None
    twin.advance(10.2)
    assert twin.model.routed[twin.id("G1")].status == "Degraded"
    change = twin.model.ground_truth()["changes"][0]
    assert 15.0 <= change["appliedAt"] - change["requestedAt"] <= 25.0
    applied = twin.of_type("trunkConfigApplied")[0]
    assert applied["changeId"] == change["changeId"] and applied["fields"]["status"] == "Degraded"


def _outcomes(twin, trunk, n):
    legs = [twin.call(trunk) for _ in range(n)]
    for leg in legs:  # free capacity at once: the caller hangs up after the first answer
        twin.model.on_cancel(leg)
    return [leg.outcome for leg in legs]


def test_degraded_trunk_admits_throttle_percentage_after_propagation_only(twin):
    # GWest has no peer in its group, so the health check finds no trunk to fail over to.
    twin.patch("GWest", {"status": "Degraded", "capacity": {"throttlePercentage": 10}})
    before = _outcomes(twin, "GWest", 50)
    assert before.count("reject:503") == 0
    twin.advance(30.1)
    assert twin.model.failover == {}
    after = _outcomes(twin, "GWest", 100)
    assert after.count("reject:503") == 90
    assert twin.of_type("callRouting")[-1]["decision"] in ("rejected:503", "queued", "fallback")


def test_reject_code_is_configurable(twin):
    twin.model.topo = twin.topo.__class__(**{**twin.topo.__dict__, "reject_code": 480})
    twin.patch("GWest", {"status": "Degraded", "capacity": {"throttlePercentage": 0}})
    twin.advance(25.1)
    leg = twin.call("GWest")
    assert leg.actions[-1][:3] == ("reject", 480, "Temporarily Unavailable")


def test_above_max_concurrent_calls_gets_503(twin):
    legs = [twin.call("G1") for _ in range(6)]
    assert [leg.outcome for leg in legs[:5]] == [None] * 5
    assert legs[5].outcome == "reject:503"
    assert legs[5].actions[-1][3]["X-Twin-Trunk"] == twin.id("G1")


def test_inactive_trunk_drops_invites_without_answer(twin):
    twin.patch("GCallback", {"status": "Inactive"})
    twin.advance(25.1)
    leg = twin.call("GCallback")
    assert leg.actions == [("drop",)]
    assert twin.of_type("callRouting")[-1]["decision"] == "dropped"


def test_blackholed_trunk_drops_at_once_and_fails_health(twin):
    twin.model.set_faults({"blackholeTrunks": [twin.id("G1")]})
    assert twin.call("G1").outcome == "drop"
    assert twin.model.options_status(twin.id("G1"))[0] == 503
    assert twin.model.options_status(twin.id("G2")) == (200, "OK")


def _fixed_propagation(twin, seconds):
    delays = replace(twin.topo.delays, genesys_propagation=(seconds, seconds))
    twin.model.topo = replace(twin.topo, delays=delays)


def test_abrupt_removal_ends_waiting_with_487_and_answered_with_bye(twin):
    _fixed_propagation(twin, 20.0)
    twin.patch("G1", {"status": "Inactive"})
    twin.advance(15.0)
    answered = [twin.call("G1") for _ in range(3)]   # GQ's two agents, then GFB's one
    waiting = twin.call("G1")                        # nobody free in GFB: waits, 180 only
    twin.advance(2.0)
    assert [leg.outcome for leg in answered] == ["answer"] * 3 and waiting.outcome is None
    twin.advance(3.1)
    assert [leg.outcome for leg in answered] == ["bye"] * 3
    assert waiting.outcome == "487"
    assert ("reject", 487, "Request Terminated", {"X-Twin-Trunk": twin.id("G1"),
                                                  "X-Twin-Queue": twin.id("GFB")}) in waiting.actions
    assert twin.model.ground_truth()["brokenCdrs"] == 4
    assert {e["reason"] for e in twin.of_type("callEnded")} == {"trunkRemoved"}
    assert twin.model.sessions["genesys"] == 0 and twin.model.trunk_active[twin.id("G1")] == 0


def test_genesys_failover_waits_for_health_check_then_uses_next_priority(twin):
    _fixed_propagation(twin, 17.0)      # health checks run every 5 s: at 15, 20, ...
    twin.patch("G1", {"status": "Inactive"})
    twin.advance(17.5)
    applied_at = twin.model.ground_truth()["changes"][0]["appliedAt"]
    assert applied_at is not None and twin.model.ground_truth()["failovers"] == []
    assert twin.call("G1").outcome == "drop"   # routing sees Inactive, health check not yet
    assert twin.model.options_status(twin.id("G1"))[0] == 503
    twin.advance(2.6)
    [failover] = twin.model.ground_truth()["failovers"]
    assert failover["fromTrunkId"] == twin.id("G1") and failover["toTrunkId"] == twin.id("G2")
    assert failover["at"] - applied_at == pytest.approx(3.0)
    leg = twin.call("G1")
    twin.advance(1.1)
    assert leg.actions[-1][2]["X-Twin-Trunk"] == twin.id("G2")
    answer = twin.of_type("answer")[-1]
    assert answer["viaFailover"] is True and answer["entryTrunkId"] == twin.id("G1")
    truth = twin.model.ground_truth()["failovers"][0]
    assert truth["firstAnswerCallId"] == leg.info.call_id and truth["firstAnswerTag"] == "run-1"


def test_genesys_degraded_trunk_fails_over_at_the_health_check_when_a_peer_is_healthy(twin):
    _fixed_propagation(twin, 17.0)
    twin.patch("G1", {"status": "Degraded", "capacity": {"throttlePercentage": 0}})
    twin.advance(17.5)
    assert twin.call("G1").outcome == "reject:503"     # throttled until the health check
    twin.advance(2.6)
    assert twin.model.failover == {twin.id("G1"): twin.id("G2")}
    leg = twin.call("G1")
    twin.advance(1.1)
    assert leg.actions[-1][2]["X-Twin-Trunk"] == twin.id("G2")


def test_failover_trunk_moved_to_a_far_pool_with_short_invite_timer_gives_408(twin):
    twin.patch("G2", {"inviteTimeout": 0.1, "mediaServerPoolId": "euw"})
    twin.patch("G1", {"status": "Inactive"})
    twin.advance(31.0)
    leg = twin.call("G1")
    twin.advance(0.09)
    assert leg.outcome is None
    twin.advance(0.02)
    assert leg.outcome == "reject:408"


def test_genesys_failover_skips_a_trunk_that_is_out_of_service(twin):
    twin.patch("G2", {"routing": {"enabled": False}})
    twin.patch("G1", {"status": "Inactive"})
    twin.advance(31.0)
    assert twin.model.failover[twin.id("G1")] == twin.id("G3")


def test_genesys_failback_when_the_trunk_is_healthy_again(twin):
    twin.patch("G1", {"status": "Inactive"})
    twin.advance(31.0)
    twin.patch("G1", {"status": "Active"})
    twin.advance(31.0)
    back = twin.model.ground_truth()["failbacks"]
    assert back[0]["fromTrunkId"] == twin.id("G2") and back[0]["toTrunkId"] == twin.id("G1")
    twin.call("G1")
    twin.advance(1.1)
    assert twin.of_type("answer")[-1]["trunkId"] == twin.id("G1")


def test_failover_trunk_without_common_codec_gives_488(twin):
    twin.patch("G1", {"status": "Inactive"})
    twin.patch("G2", {"status": "Inactive"})
    twin.advance(31.0)
    assert twin.model.failover[twin.id("G1")] == twin.id("G3")
    assert twin.call("G1", codecs=("PCMA",)).outcome == "reject:488"
    assert twin.call("G1", codecs=("PCMA", "PCMU")).actions[0] == ("ringing",)


def test_cxone_put_reaches_routing_at_next_edge_refresh(twin):
    twin.patch("C1", {"healthScore": 45})
    assert twin.model.routed[twin.id("C1")].health_score == 95
    twin.advance(10.0)
    assert twin.model.routed[twin.id("C1")].health_score == 45


def test_cxone_fails_over_only_after_three_consecutive_low_polls(twin):
    twin.patch("C1", {"healthScore": 45})
    twin.advance(10.0)          # edge refresh and first low poll
    twin.advance(10.0)          # second low poll
    assert twin.model.ground_truth()["failovers"] == []
    leg = twin.call("C1")
    twin.advance(1.1)
    assert leg.actions[-1][2]["X-Twin-Trunk"] == twin.id("C1")
    twin.advance(10.0)          # third low poll
    [failover] = twin.of_type("failover")
    assert failover["fromTrunkId"] == twin.id("C1") and failover["toTrunkId"] == twin.id("C2")
    leg = twin.call("C1")
    twin.advance(1.1)
    assert leg.actions[-1][2]["X-Twin-Trunk"] == twin.id("C2")


def test_cxone_low_polls_must_be_consecutive(twin):
    twin.patch("C1", {"healthScore": 45})
    twin.advance(20.0)          # two low polls
    twin.patch("C1", {"healthScore": 95})
    twin.advance(10.0)          # healthy poll resets the count
    twin.patch("C1", {"healthScore": 45})
    twin.advance(20.0)
    assert twin.of_type("failover") == []
    twin.advance(10.0)
    assert len(twin.of_type("failover")) == 1


def test_cxone_fails_back_after_three_healthy_polls(twin):
    twin.patch("C1", {"healthScore": 45})
    twin.advance(30.0)
    twin.patch("C1", {"healthScore": 95})
    twin.advance(20.0)
    assert twin.of_type("failback") == []
    twin.advance(10.0)
    assert twin.of_type("failback")[0]["toTrunkId"] == twin.id("C1")


def test_cxone_failover_with_mismatched_codecs_gives_488(twin):
    twin.patch("C3", {"healthScore": 10})
    twin.advance(30.0)
    assert twin.call("C3").outcome == "reject:488"


def test_cxone_unavailable_failover_target_goes_to_fallback_support_queue(twin):
    twin.patch("C2", {"status": "Inactive"})
    twin.patch("C1", {"healthScore": 10})
    twin.advance(30.0)
    leg = twin.call("C1")
    routing = twin.of_type("callRouting")[-1]
    assert routing["decision"] == "fallback" and routing["exceptionType"] == "TRUNK_UNAVAILABLE"
    twin.advance(1.1)
    assert leg.actions[-1][2]["X-Twin-Queue"] == twin.id("Fallback_Support_Queue")


def test_cxone_media_server_timeout_goes_to_fallback_queue(twin):
    twin.call("CDown")
    routing = twin.of_type("callRouting")[-1]
    assert routing["exceptionType"] == "MEDIA_SERVER_TIMEOUT"
    assert routing["queueId"] == twin.id("Fallback_Support_Queue")


def test_cxone_other_exceptions_go_to_maintenance_ivr(twin):
    twin.model.queues.pop(twin.id("CQ"))
    twin.model.topo = replace(twin.topo, by_id={k: v for k, v in twin.topo.by_id.items() if k != twin.id("CQ")})
    leg = twin.call("C2")
    routing = twin.of_type("callRouting")[-1]
    assert routing["decision"] == "ivr" and routing["queueId"] == twin.id("System_Maintenance_Message")
    assert leg.outcome == "answer"
    twin.advance(5.1)
    assert leg.outcome == "bye"


def test_unknown_media_pool_drops_the_call_at_invite(twin):
    twin.patch("G2", {"mediaServerPoolId": "ms_pool_eu_west_1"})
    twin.advance(25.1)
    assert twin.call("G2").outcome == "drop"
    assert twin.of_type("callRouting")[-1]["decision"] == "dropped"


def test_cross_region_pool_delays_answer_and_breaks_dtmf_relay(twin):
    leg = twin.call("GWest")
    twin.advance(1.079)
    assert leg.outcome is None
    twin.advance(0.05)
    assert leg.outcome == "answer"
    twin.model.on_dtmf(leg, "5")
    assert twin.of_type("dtmf")[0]["relayed"] is False
    same = twin.call("G1")
    twin.advance(1.0)
    twin.model.on_dtmf(same, "1")
    assert twin.of_type("dtmf")[-1]["relayed"] is True


def test_failover_into_a_far_zone_with_short_invite_timeout_gives_408(twin):
    twin.patch("GNear", {"status": "Inactive"})
    twin.advance(31.0)
    leg = twin.call("GNear")
    assert leg.outcome is None
    twin.advance(0.06)
    assert leg.outcome == "reject:408"


def test_license_ceiling_gives_403_license_exceeded(twin):
    twin.model.set_faults({"licenseCeiling": {"G": 3}})
    legs = [twin.call("G2") for _ in range(4)]
    assert legs[3].actions[-1][:3] == ("reject", 403, "License Exceeded")
    twin.model.on_bye(legs[0])
    assert twin.call("G2").outcome != "reject:403"


def test_topology_license_ceiling_applies_per_platform(twin):
    legs = [twin.call(name) for name in ("G1", "G2", "G3") for _ in range(4)]
    assert [leg.outcome for leg in legs].count("reject:403") == 2
    assert twin.call("C1").outcome != "reject:403"


def test_provisioning_failure_behind_200_never_reaches_routing(twin):
    twin.model.set_faults({"provisioningFailure": True})
    view = twin.patch("G1", {"status": "Inactive"})
    assert view["status"] == "Inactive"
    twin.advance(120.0)
    assert twin.model.routed[twin.id("G1")].status == "Active"
    [change] = twin.model.ground_truth()["changes"]
    assert change["provisioningFailed"] is True and change["appliedAt"] is None
    assert twin.of_type("provisioningFailed")[0]["changeId"] == change["changeId"]
    assert twin.of_type("trunkConfigApplied") == []


def test_analytics_lag_behind_answers(twin):
    twin.call("G1")
    twin.advance(1.1)
    answer_at = twin.of_type("answer")[0]["timestamp"]
    seen = twin.model.queue_realtime("genesys", twin.id("GQ"))
    assert seen["answeredCalls"] == 0
    twin.advance(80.0)
    assert twin.model.queue_realtime("genesys", twin.id("GQ"))["answeredCalls"] == 0
    twin.advance(60.0)
    seen = twin.model.queue_realtime("genesys", twin.id("GQ"))
    assert seen["answeredCalls"] == 1
    assert twin.clock.now() - answer_at >= 90.0
    cx = twin.model.queue_realtime("cxone", twin.id("CQ"))
    assert set(cx) == {"queueId", "agentCount", "avgWait", "answeredCalls", "offeredCalls", "asOf",
                       "answeredViaFailover"}


def test_analytics_count_failover_answers_apart_and_as_late(twin):
    twin.call("G1")
    twin.advance(1.1)                   # answered on its entry trunk: not via failover
    _fixed_propagation(twin, 17.0)
    twin.patch("G1", {"status": "Inactive"})
    twin.advance(20.1)                  # applied at 18.2, health check fails over at 20
    assert twin.model.failover == {twin.id("G1"): twin.id("G2")}
    twin.call("G1")
    twin.advance(1.1)
    assert [a["viaFailover"] for a in twin.of_type("answer")] == [False, True]
    seen = twin.model.queue_realtime("genesys", twin.id("GQ"))
    assert seen["answeredViaFailover"] == 0          # batched and lagged like answeredCalls
    twin.advance(150.0)
    seen = twin.model.queue_realtime("genesys", twin.id("GQ"))
    assert (seen["answeredCalls"], seen["answeredViaFailover"]) == (2, 1)


def test_time_scale_multiplies_platform_delays():
    twin = Harness(FIXTURES / "unit.yaml", time_scale=0.01)
    twin.patch("G1", {"status": "Degraded"})
    twin.advance(0.149)
    assert twin.model.routed[twin.id("G1")].status == "Active"
    twin.advance(0.102)
    assert twin.model.routed[twin.id("G1")].status == "Degraded"
    leg = twin.call("G2")
    twin.advance(0.011)
    assert leg.outcome == "answer"


def test_bad_update_bodies_are_refused(twin):
    for body in ({"bogus": 1}, {"status": "Broken"}, {"capacity": {"throttlePercentage": 101}},
                 {"routing": {"enabled": "yes"}}, [1]):
        with pytest.raises(ModelError) as err:
            twin.patch("G1", body)
        assert err.value.status == 400
    with pytest.raises(ModelError) as err:
        twin.model.update_trunk("cxone", twin.id("G1"), {"healthScore": 1})
    assert err.value.status == 404


def test_reset_restores_topology_and_hangs_up_calls(twin):
    leg = twin.call("G1")
    twin.patch("G1", {"status": "Inactive"})
    twin.model.set_faults({"provisioningFailure": True})
    twin.model.reset()
    assert leg.outcome == "487"
    assert twin.model.trunk_view("genesys", twin.id("G1"))["status"] == "Active"
    assert twin.model.ground_truth()["changes"] == [] and twin.model.faults["provisioningFailure"] is False
    twin.advance(30.0)
    assert twin.model.routed[twin.id("G1")].status == "Active"


def test_wfm_schedule_lists_agents_per_interval(twin):
    out = twin.model.schedules(twin.id("GQ"), 0.0, 3600.0)["intervals"]
    assert [(i["start"], i["end"], i["agentsScheduled"]) for i in out] == [(0.0, 1800.0, 2), (1800.0, 3600.0, 2)]


def test_sip_info_dtmf_is_reported_as_a_dtmf_event(twin):
    leg = twin.call("G1")
    twin.advance(1.1)
    twin.model.on_info(leg, b"Signal=7\r\nDuration=160\r\n")
    twin.model.on_info(leg, b"garbage")
    [dtmf] = twin.of_type("dtmf")
    assert dtmf["digit"] == "7" and dtmf["relayed"] is True and dtmf["callId"] == leg.info.call_id


def test_a_model_bug_answers_500_instead_of_escaping(twin):
    def broken(event):
        raise RuntimeError("boom")
    twin.model.emit = broken
    leg = twin.call("G1")
    assert leg.outcome == "reject:500"
    assert twin.model.internal_errors == 1 and twin.model.calls == {}
    assert twin.model.sessions["genesys"] == 0 and twin.model.trunk_active[twin.id("G1")] == 0


def test_cxone_failover_trunk_may_be_named(twin):
    view = twin.patch("C3", {"failoverTrunkId": "C2", "healthScore": 10})
    assert view["failoverTrunkId"] == twin.id("C2")
    twin.advance(30.0)
    assert twin.model.failover[twin.id("C3")] == twin.id("C2")
