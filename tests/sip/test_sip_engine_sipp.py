"""The engine against a real peer (SIPp UAS): every outcome class, classified right,
the tag header on the wire, codec offers, admission and bad input."""

from __future__ import annotations

import socket

import gevent
import pytest

from harness.errors import SipError
from harness.sip.engine import CallSpec, EngineConfig
from harness.sip.pool import EnginePool
from sipp_peer import sipp_uas

pytestmark = pytest.mark.sipp


@pytest.fixture(scope="module")
def pool():
    with EnginePool(2) as p:
        yield p


def call(pool, uri, **kw):
    kw.setdefault("tag", "run-test")
    kw.setdefault("hold", 0.2)
    return pool.call(CallSpec(target=uri, **kw))


def test_answered_call_has_ordered_timestamps_and_tag_on_the_wire(pool, sipp_bin, tmp_path):
    answers = []
    pool.on_answer = answers.append
    try:
        with sipp_uas(sipp_bin, tmp_path) as (uri, log):
            rec = call(pool, uri, tag="run-42", hold=0.3)
    finally:
        pool.on_answer = None
    # the answer event came at the answer, with the record as it stood then
    assert [(a["call_id"], a["answered_at"], a["bye_at"]) for a in answers] == \
        [(rec["call_id"], rec["answered_at"], None)]
    assert (rec["outcome"], rec["code"]) == ("answered", 200)
    assert rec["invite_at"] < rec["first_18x_at"] <= rec["answered_at"] < rec["bye_at"] <= rec["ended_at"]
    assert rec["setup_seconds"] == pytest.approx(rec["answered_at"] - rec["invite_at"], abs=1e-6)
    assert rec["bye_at"] - rec["answered_at"] >= 0.3
    wire = log.read_text()
    assert "X-Chaos-Test: run-42" in wire
    assert rec["call_id"] and rec["tag"] == "run-42" and rec["target"] == uri
    assert "BYE sip:" in wire          # the call ended with our BYE


@pytest.mark.parametrize("scenario,outcome,code", [
    ("403", "403", 403), ("488", "488", 488), ("503", "503", 503), ("408", "408", 408),
])
def test_refusals_are_classified(pool, sipp_bin, tmp_path, scenario, outcome, code):
    with sipp_uas(sipp_bin, tmp_path, scenario) as (uri, log):
        rec = call(pool, uri)
    assert (rec["outcome"], rec["code"]) == (outcome, code)
    assert rec["answered_at"] is None and rec["bye_at"] is None
    assert rec["setup_seconds"] > 0
    assert "X-Chaos-Test: run-test" in log.read_text()


def test_license_reason_phrase_is_kept(pool, sipp_bin, tmp_path):
    with sipp_uas(sipp_bin, tmp_path, "403") as (uri, _log):
        rec = call(pool, uri)
    assert rec["reason"] == "License Exceeded"


def test_ring_timeout_cancels_and_gets_487(pool, sipp_bin, tmp_path):
    with sipp_uas(sipp_bin, tmp_path, "ring") as (uri, log):
        rec = call(pool, uri, ring_timeout=0.5)
    assert (rec["outcome"], rec["code"]) == ("487", 487)
    assert rec["first_18x_at"] is not None and rec["setup_seconds"] >= 0.5
    assert "CANCEL sip:" in log.read_text()


@pytest.mark.slow
def test_dropped_invite_ends_in_408_after_timer_b(pool, sipp_bin, tmp_path):
    with sipp_uas(sipp_bin, tmp_path, "drop") as (uri, _log):
        rec = call(pool, uri, ring_timeout=120)
    assert (rec["outcome"], rec["code"]) == ("408", 408)
    assert 30 <= rec["setup_seconds"] <= 40      # RFC 3261 17.1.1.2: Timer B = 64*T1


def test_admission_never_exceeds_four_calls_per_process(sipp_bin, tmp_path):
    with EnginePool(1) as one, sipp_uas(sipp_bin, tmp_path) as (uri, _log):
        jobs = [gevent.spawn(call, one, uri, hold=0.4) for _ in range(9)]
        gevent.joinall(jobs, raise_error=True)
    recs = [j.value for j in jobs]
    assert [r["outcome"] for r in recs] == ["answered"] * 9
    events = sorted([(r["invite_at"], 1) for r in recs] + [(r["ended_at"], -1) for r in recs])
    live = peak = 0
    for _, d in events:
        live += d
        peak = max(peak, live)
    assert peak <= 4


def test_codec_profile_sets_the_offer_and_custom_tag_header(sipp_bin, tmp_path):
    cfg = EngineConfig(codecs=("G722/16000/1", "PCMA/8000/1"))
    with EnginePool(1, cfg) as p, sipp_uas(sipp_bin, tmp_path) as (uri, log):
        rec = call(p, uri, tag_header="X-Load-Run", tag="abc")
    assert rec["outcome"] == "answered"
    wire = log.read_text()
    offer = next(ln for ln in wire.splitlines() if ln.startswith("m=audio"))
    assert offer.split()[3:5] == ["9", "8"]        # G722 then PCMA, nothing else but events
    assert "PCMU" not in wire.split("m=audio", 1)[1].split("SIP/2.0")[0]
    assert "X-Load-Run: abc" in wire
    assert "c=IN IP4 127.0.0.1" in wire


def test_malformed_target_is_a_sip_error(pool):
    with pytest.raises(SipError, match="malformed SIP target"):
        call(pool, "sip:nobody@@127.0.0.1")


def test_sip_port_in_use_is_a_clear_error():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(SipError, match=f"SIP port {port} .* already in use"):
            with EnginePool(1, EngineConfig(sip_port=port)):
                pass


def test_engine_refuses_calls_faster_than_its_ioqueue_takes_instead_of_aborting(sipp_bin, tmp_path):
    """Four greenlets redialling a UAS that answers 488 at once, unpaced: the engine must
    admit at most MAX_STARTS per START_WINDOW and refuse the rest, not abort in PJSIP's
    ioqueue (`pj_ioqueue_register_sock2`, ~30 starts in a burst without the gate)."""
    from harness.sip.engine import MAX_STARTS, START_WINDOW
    records, refusals, seconds = [], [], 2.0
    with EnginePool(1) as one, sipp_uas(sipp_bin, tmp_path, "488") as (uri, _log):
        end = gevent.get_hub().loop.now() + seconds

        def redial():
            while gevent.get_hub().loop.now() < end:
                try:
                    records.append(call(one, uri))
                except SipError as exc:
                    refusals.append(exc.message)
                    gevent.sleep(0.005)

        gevent.joinall([gevent.spawn(redial) for _ in range(4)], raise_error=True)
        alive = [p.alive for p in one._procs]
        gevent.sleep(START_WINDOW)                          # the window empties ...
        rec = call(one, uri) if all(alive) else None       # ... and the engine still serves
    assert alive == [True]
    assert rec is not None and rec["outcome"] == "488"
    assert {r["outcome"] for r in records} == {"488"}
    assert len(records) <= MAX_STARTS * (seconds / START_WINDOW + 1)
    assert refusals and all("ioqueue limit" in m for m in refusals)
