"""MTTR and its parts on the failover_genesys fixture (scenario in make_failover_fixture.py)."""

import json
import pathlib

import pytest

from harness.metrics import mttr

FIX = pathlib.Path(__file__).parent / "fixtures" / "failover_genesys"
T = 1764770000.0
P, S = "trunk-primary", "trunk-secondary"


def load(name):
    with open(FIX / name) as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.fixture(scope="module")
def calls():
    return load("calls.jsonl")


@pytest.fixture(scope="module")
def events():
    return load("events.jsonl")


def test_detect_is_first_failed_final_response_after_injection(calls):
    # the 408s placed at T and T+1 end at T+32; the 503 placed at T+2 ends at T+2.1
    assert mttr.time_to_detect(calls, T) == pytest.approx(2.1)


def test_detect_ignores_failures_before_injection(calls):
    before = [c for c in calls if c["invite_at"] < T]
    assert mttr.time_to_detect(before, T) is None


def test_detect_from_events_without_records():
    events = [{"type": "callRouting", "timestamp": T - 5, "decision": "rejected:503"},
              {"type": "callRouting", "timestamp": T + 1, "decision": "queued"},
              {"type": "callEnded", "timestamp": T + 4, "reason": "trunkRemoved"},
              {"type": "callRouting", "timestamp": T + 3, "decision": "dropped"},
              {"type": "callEnded", "timestamp": T + 2, "reason": "bye"}]
    assert mttr.time_to_detect_events(events, T) == pytest.approx(3.0)
    assert mttr.time_to_detect_events(events[:2], T) is None


def test_converge_prefers_failover_of_the_injected_trunk(events):
    assert mttr.time_to_converge(events, T, trunk_id=P) == pytest.approx(20.0)
    # the stale failover from another trunk at T-30 is before injection
    assert mttr.time_to_converge(events, T) == pytest.approx(20.0)


def test_converge_falls_back_to_config_applied_without_failover(events):
    no_failover = [e for e in events if e["type"] != "failover"]
    assert mttr.time_to_converge(no_failover, T, trunk_id=P) == pytest.approx(20.0)
    assert mttr.time_to_converge(no_failover, T, trunk_id="elsewhere") is None


def test_mttr_from_answer_events_honours_the_tag(events):
    assert mttr.mttr_from_events(events, T, tag="run-1") == pytest.approx(21.5)
    # the untagged organic answer at T+21.2 counts when no tag is asked for
    assert mttr.mttr_from_events(events, T) == pytest.approx(21.2)


def test_mttr_ignores_answers_not_via_failover(events):
    direct = [dict(e, viaFailover=False) if e["type"] == "answer" else e for e in events]
    assert mttr.mttr_from_events(direct, T) is None


def test_mttr_from_records_uses_trunk_differing_from_entry(calls):
    assert mttr.mttr_from_records(calls, T, tag="run-1") == pytest.approx(21.52)


def test_mttr_from_records_skips_records_without_trunk_ids(calls):
    blind = [dict(c, trunk=None) for c in calls]
    assert mttr.mttr_from_records(blind, T) is None


def test_recover_is_first_window_back_in_band_after_degradation(calls):
    assert mttr.time_to_recover(calls, T, baseline_s=60, window_s=5, band=0.05) == 25.0


def test_recover_is_none_without_degradation(calls):
    healthy = [dict(c, outcome="answered") for c in calls]
    assert mttr.time_to_recover(healthy, T) is None


def test_recover_is_none_without_baseline(calls):
    after = [c for c in calls if c["invite_at"] >= T]
    assert mttr.time_to_recover(after, T) is None


def test_analytics_figure_shows_the_batch_lag():
    polls = load("analytics.jsonl")
    assert mttr.analytics_mttr(polls, T, queue_id="queue-secondary") == pytest.approx(125.0)
    assert mttr.analytics_mttr(polls, T, queue_id="queue-primary") is None


def test_analytics_baseline_is_last_figure_before_injection():
    polls = [{"polled_at": T - 5, "queueId": "q", "answeredCalls": 7},
             {"polled_at": T + 5, "queueId": "q", "answeredCalls": 7},
             {"polled_at": T + 10, "queueId": "q", "answeredCalls": 8}]
    assert mttr.analytics_mttr(polls, T) == pytest.approx(10.0)


def demo_situation(lag=10.0):
    """The demo: both trunks feed one queue and the primary goes on answering part of the
    calls during the fault; the first answer via failover comes at T+22.4. The analytics
    batch ``lag`` s behind, polled every 5 s."""
    answers = [(T + k, False) for k in range(-30, 61, 2)]        # primary, all along
    answers += [(T + 22.4 + k, True) for k in range(0, 38, 2)]   # through the failover
    events = [{"type": "answer", "timestamp": at, "queueId": "q", "viaFailover": via}
              for at, via in answers]
    polls = []
    for k in range(-6, 13):
        polled = T + 5 * k
        as_of = polled - lag
        polls.append({"polled_at": polled, "queueId": "q", "asOf": as_of,
                      "answeredCalls": sum(1 for at, _ in answers if at <= as_of),
                      "answeredViaFailover": sum(1 for at, via in answers if via and at <= as_of)})
    return events, polls


def test_analytics_figure_counts_failover_answers_so_it_trails_the_event_mttr():
    events, polls = demo_situation(lag=10.0)
    event_mttr = mttr.mttr_from_events(events, T)
    assert event_mttr == pytest.approx(22.4)
    figure = mttr.analytics_mttr(polls, T, queue_id="q")
    assert figure == pytest.approx(35.0)        # first poll whose batch holds T+22.4
    assert figure >= event_mttr + 10.0          # late by at least the lag


def test_analytics_without_the_failover_count_falls_back_to_answered_calls():
    # A real platform's body has no answeredViaFailover: the primary's own answers make
    # answeredCalls rise one lag after the injection, before any failover answer (the
    # demo's old, too small figure).
    events, polls = demo_situation(lag=10.0)
    for poll in polls:
        del poll["answeredViaFailover"]
    figure = mttr.analytics_mttr(polls, T, queue_id="q")
    assert figure == pytest.approx(10.0) and figure < mttr.mttr_from_events(events, T)


def test_ground_truth_is_first_answer_minus_change_request():
    truth = json.loads((FIX / "ground_truth.json").read_text())
    assert mttr.ground_truth_mttr(truth, trunk_id=P) == pytest.approx(21.45)
    # without a trunk, the earliest failover with a matching change (none for the
    # stale one from trunk-other) is the primary's
    assert mttr.ground_truth_mttr(truth) == pytest.approx(21.45)
    assert mttr.ground_truth_mttr(truth, trunk_id="nope") is None


def test_ground_truth_of_a_stepped_fault_counts_from_the_first_step():
    truth = json.loads((FIX / "ground_truth.json").read_text())
    # a throttle ramp and an out-of-service step after the first change
    truth["changes"] += [{"changeId": "ch2", "trunkId": P, "requestedAt": T + 1.05, "appliedAt": T + 21},
                         {"changeId": "ch3", "trunkId": P, "requestedAt": T + 3.05, "appliedAt": T + 23}]
    assert mttr.ground_truth_mttr(truth, P, injected_at=T) == pytest.approx(21.45)
    assert mttr.ground_truth_mttr(truth, P) == pytest.approx(18.45)  # latest change before
    # changes of an earlier experiment (long before this injection) do not count
    truth["changes"].insert(0, {"changeId": "old", "trunkId": P, "requestedAt": T - 300})
    assert mttr.ground_truth_mttr(truth, P, injected_at=T) == pytest.approx(21.45)


def test_compare_ground_truth_reports_difference():
    assert mttr.compare_ground_truth(21.5, 21.45) == {"mttr_s": 21.45, "difference_s": 0.05}
    assert mttr.compare_ground_truth(None, 21.45) == {"mttr_s": 21.45, "difference_s": None}


def test_result_block_rounds_and_keeps_missing_parts():
    res = mttr.MttrResult(2.1, 20.0, 21.5004, None, 125.0)
    assert res.as_dict() == {"detect_s": 2.1, "converge_s": 20.0, "mttr_s": 21.5,
                             "recover_s": None, "analytics_mttr_s": 125.0}
