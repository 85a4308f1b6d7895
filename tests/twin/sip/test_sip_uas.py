"""UasCore on a fake clock with a recording router: RFC 3261 UAS behaviour."""

from __future__ import annotations

import pytest

from harness.errors import SipError
from harness.twin.sip.message import cseq, param, parse, top_via
from harness.twin.sip.uas import LINGER, T1, T2, TIMEOUT

from twinsip_support import FIXTURES, CoreHarness, RecordingRouter

CALLER = ("127.0.0.1", 5061)


def invite(call_id="c1", from_tag="ft1", seq=1, branch="z9hG4bKinv1", to_tag=None) -> bytes:
    data = (FIXTURES / "sipp_invite.sip").read_bytes()
    data = data.replace(b"1-12345@127.0.0.1", call_id.encode())
    data = data.replace(b"12345SIPpTag001", from_tag.encode())
    data = data.replace(b"z9hG4bK-12345-1-0", branch.encode())
    data = data.replace(b"CSeq: 1 INVITE", f"CSeq: {seq} INVITE".encode())
    if to_tag:
        data = data.replace(b"<sip:service@127.0.0.1:5060>", f"<sip:service@127.0.0.1:5060>;tag={to_tag}".encode())
    return data


def request(method, call_id="c1", from_tag="ft1", to_tag=None, seq=1, branch="z9hG4bKinv1",
            cseq_method=None, body=b"") -> bytes:
    to = "<sip:service@127.0.0.1:5060>" + (f";tag={to_tag}" if to_tag else "")
    return (f"{method} sip:service@127.0.0.1:5060 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5061;branch={branch}\r\n"
            f"From: sipp <sip:sipp@127.0.0.1:5061>;tag={from_tag}\r\n"
            f"To: {to}\r\nCall-ID: {call_id}\r\nCSeq: {seq} {cseq_method or method}\r\n"
            f"Max-Forwards: 70\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def codes(datagrams) -> list:
    out = []
    for data in datagrams:
        msg = parse(data)
        out.append(msg.status if msg.status is not None else msg.method)
    return out


def wait_router() -> RecordingRouter:
    return RecordingRouter(behaviour=lambda leg: None)  # the model decides later


def sent_times(h: CoreHarness, seconds: float, step: float = 0.25) -> list[float]:
    """Advance the clock in steps and return the offsets at which something was sent."""
    start, times, t = h.clock.now(), [], 0.0
    while t < seconds:
        h.clock.advance(step)
        t += step
        times.extend(h.clock.now() - start for _ in h.take())
    return times


def to_tag_of(data: bytes) -> str:
    return param(parse(data).get("to"), "tag")


# --- INVITE: 100, 180, 200 and the InviteInfo ----------------------------------------

def test_pending_invite_gets_100_at_once_then_180_and_200_with_sdp():
    h = CoreHarness(wait_router())
    h.feed(invite())
    assert codes(h.take()) == [100]
    leg = h.router.legs[0]
    assert leg.state == "proceeding"
    leg.ringing()
    leg.ringing()  # only once
    leg.answer("PCMU", {"X-Twin-Trunk": "trunk-a", "X-Twin-Queue": "queue-a"})
    ring, ok = h.take()
    assert codes([ring, ok]) == [180, 200]
    resp = parse(ok)
    assert resp.get("x-twin-trunk") == "trunk-a" and resp.get("x-twin-queue") == "queue-a"
    assert resp.get("contact") == "<sip:twin@127.0.0.1:5070>"
    assert to_tag_of(ring) == to_tag_of(ok) is not None
    assert b"c=IN IP4 127.0.0.1" in resp.body and b"m=audio 40000 RTP/AVP 0" in resp.body
    assert leg.state == "answered"


def test_synchronous_answer_needs_no_100():
    h = CoreHarness(RecordingRouter())
    h.feed(invite())
    assert codes(h.take()) == [200]


def test_invite_info_from_a_pjsua2_invite():
    h = CoreHarness(wait_router())
    h.clock.advance(3.0)
    h.feed((FIXTURES / "pjsua2_invite.sip").read_bytes(), addr=("127.0.0.1", 5072))
    info = h.router.legs[0].info
    assert info.call_id == "9a8b7c6d-5e4f-3a2b-1c0d-efefefefefef"
    assert info.trunk_id == "t1" and info.source == ("127.0.0.1", 5072)
    assert info.from_uri == "sip:load@127.0.0.1" and info.to_uri == "sip:chaos@127.0.0.1:5070"
    assert info.request_uri == "sip:chaos@127.0.0.1:5070"
    assert info.offered_codecs == ["SPEEX", "SPEEX", "SPEEX", "ILBC", "GSM", "PCMU", "PCMA", "G722"]
    assert info.header("X-Chaos-Test") == "run-2026-12-03-a"
    assert info.headers["user-agent"].startswith("PJSUA2")
    assert info.received_at == h.clock.now()


def test_answer_includes_telephone_event_when_offered():
    h = CoreHarness(RecordingRouter(behaviour=lambda leg: leg.answer("PCMA")))
    h.feed((FIXTURES / "compact_invite.sip").read_bytes())
    body = parse(h.take()[0]).body
    assert b"m=audio 40000 RTP/AVP 8 101" in body and b"telephone-event/8000" in body


# --- 2xx retransmission and ACK --------------------------------------------------------

def test_2xx_retransmitted_t1_doubling_to_t2_then_give_up_with_bye():
    h = CoreHarness(RecordingRouter())
    h.feed(invite())
    h.take()
    times = sent_times(h, TIMEOUT + 0.25)  # before the BYE's own first retransmission
    retx, bye_at = times[:-1], times[-1]
    gaps = [b - a for a, b in zip([0.0] + retx, retx)]
    assert gaps[:4] == [T1, 2 * T1, 4 * T1, T2]
    assert all(gap == T2 for gap in gaps[3:])
    assert bye_at == TIMEOUT
    assert h.router.kinds() == ["invite", "failed"]
    assert h.router.legs[0].state == "ended"


def test_give_up_sends_bye_to_the_dialog():
    h = CoreHarness(RecordingRouter())
    h.feed(invite())
    ok = h.take()[0]
    h.clock.advance(TIMEOUT)
    bye = parse(h.take()[-1])
    assert bye.method == "BYE" and bye.uri == "sip:sipp@127.0.0.1:5061"  # caller's Contact
    assert param(bye.get("from"), "tag") == to_tag_of(ok)  # From/To swapped, with tags
    assert param(bye.get("to"), "tag") == "ft1"
    assert cseq(bye)[1] == "BYE"
    assert param(top_via(bye), "branch").startswith("z9hG4bK")


def test_ack_stops_2xx_retransmission_and_confirms():
    h = CoreHarness(RecordingRouter())
    h.feed(invite())
    tag = to_tag_of(h.take()[0])
    h.clock.advance(T1)
    assert codes(h.take()) == [200]
    h.feed(request("ACK", to_tag=tag, branch="z9hG4bKack"))
    h.feed(request("ACK", to_tag=tag, branch="z9hG4bKack"))  # retransmitted ACK: ignored
    assert h.router.kinds() == ["invite", "confirmed"]
    assert h.router.legs[0].state == "confirmed"
    h.clock.advance(TIMEOUT)
    assert h.take() == []


def test_invite_retransmission_gets_last_response_and_one_router_call():
    h = CoreHarness(wait_router())
    h.feed(invite())
    h.feed(invite())
    assert codes(h.take()) == [100, 100]
    h.router.legs[0].answer("PCMU")
    h.take()
    h.feed(invite())
    assert codes(h.take()) == [200]
    assert h.router.kinds() == ["invite"]
    assert h.core.stats["retransmissions_absorbed"] == 2


# --- non-2xx finals, CANCEL, drop ------------------------------------------------------

def test_reject_carries_extra_headers_and_is_retransmitted_until_ack():
    h = CoreHarness(RecordingRouter(
        behaviour=lambda leg: leg.reject(503, "Service Unavailable", {"X-Twin-Trunk": "tr"})))
    h.feed(invite())
    first = h.take()[0]
    resp = parse(first)
    assert (resp.status, resp.get("x-twin-trunk")) == (503, "tr")
    assert [t for t in sent_times(h, 4.0)] == [0.5, 1.5, 3.5]  # Timer G
    h.feed(request("ACK", to_tag=to_tag_of(first)))
    h.clock.advance(TIMEOUT)
    assert h.take() == []
    assert h.router.legs[0].state == "ended"


def test_reject_needs_a_final_failure_code():
    h = CoreHarness(wait_router())
    h.feed(invite())
    with pytest.raises(SipError):
        h.router.legs[0].reject(200, "OK")


def test_non_2xx_retransmission_stops_at_timer_h():
    h = CoreHarness(RecordingRouter(behaviour=lambda leg: leg.reject(486, "Busy Here")))
    h.feed(invite())
    h.take()
    times = sent_times(h, TIMEOUT + 5)
    assert times and max(times) < TIMEOUT
    assert h.router.kinds() == ["invite"]  # no on_failed for a rejected call


def test_cancel_pending_invite_gets_200_and_487():
    h = CoreHarness(wait_router())
    h.feed(invite())
    h.take()
    h.feed(request("CANCEL"))
    ok, terminated = h.take()
    assert (parse(ok).status, cseq(parse(ok))[1]) == (200, "CANCEL")
    assert (parse(terminated).status, cseq(parse(terminated))[1]) == (487, "INVITE")
    assert h.router.kinds() == ["invite", "cancel"]
    leg = h.router.legs[0]
    assert leg.state == "ended"
    leg.answer("PCMU")  # no-op once ended
    assert h.take() == []
    h.clock.advance(T1)
    assert codes(h.take()) == [487]  # retransmitted until ACK
    h.feed(request("ACK", to_tag=to_tag_of(terminated)))
    h.clock.advance(10)
    assert h.take() == []


def test_cancel_after_answer_gets_200_only():
    h = CoreHarness(RecordingRouter())
    h.feed(invite())
    h.take()
    h.feed(request("CANCEL"))
    assert codes(h.take()) == [200]
    assert h.router.kinds() == ["invite"]


def test_cancel_unknown_gets_481():
    h = CoreHarness(RecordingRouter())
    h.feed(request("CANCEL", call_id="nope"))
    assert codes(h.take()) == [481]


def test_dropped_invite_never_answered_and_absorbs_retransmissions():
    h = CoreHarness(RecordingRouter(behaviour=lambda leg: leg.drop()))
    for _ in range(7):
        h.feed(invite())
        h.clock.advance(2.0)
    h.feed(request("CANCEL"))
    assert h.take() == []
    assert h.router.kinds() == ["invite"]
    assert h.core.stats["retransmissions_absorbed"] == 6


# --- BYE both ways ------------------------------------------------------------------

def confirmed_call(h: CoreHarness) -> str:
    h.feed(invite())
    tag = to_tag_of(h.take()[-1])
    h.feed(request("ACK", to_tag=tag))
    return tag


def test_bye_gets_200_and_on_bye():
    h = CoreHarness(RecordingRouter())
    tag = confirmed_call(h)
    h.feed(request("BYE", to_tag=tag, seq=2, branch="z9hG4bKbye"))
    assert codes(h.take()) == [200]
    h.feed(request("BYE", to_tag=tag, seq=2, branch="z9hG4bKbye"))  # retransmitted
    assert codes(h.take()) == [200]
    assert h.router.kinds() == ["invite", "confirmed", "bye"]


def test_bye_for_unknown_dialog_or_wrong_tag_gets_481():
    h = CoreHarness(RecordingRouter())
    confirmed_call(h)
    h.feed(request("BYE", to_tag="not-ours", seq=2))
    h.feed(request("BYE", call_id="unknown", to_tag="x", seq=2))
    assert codes(h.take()) == [481, 481]


def test_hangup_unanswered_sends_487():
    h = CoreHarness(wait_router())
    h.feed(invite())
    h.take()
    h.router.legs[0].hangup("trunk removed")
    assert codes(h.take()) == [487]


def test_hangup_confirmed_sends_bye_retransmitted_until_response():
    h = CoreHarness(RecordingRouter())
    tag = confirmed_call(h)
    h.router.legs[0].hangup("trunk removed")
    bye_data = h.take()[0]
    bye = parse(bye_data)
    assert bye.method == "BYE" and param(bye.get("from"), "tag") == tag
    assert "trunk removed" in bye.get("reason")
    assert sent_times(h, 4.0) == [0.5, 1.5, 3.5]  # Timer E
    response = (f"SIP/2.0 200 OK\r\nVia: {bye.get('via')}\r\nFrom: {bye.get('from')}\r\n"
                f"To: {bye.get('to')}\r\nCall-ID: {bye.get('call-id')}\r\nCSeq: 1 BYE\r\n"
                "Content-Length: 0\r\n\r\n").encode()
    h.feed(response)
    h.clock.advance(10)
    assert h.take() == []
    assert h.core.stats["stray"] == 0


def test_hangup_before_ack_waits_for_the_ack():
    h = CoreHarness(RecordingRouter())
    h.feed(invite())
    tag = to_tag_of(h.take()[0])
    h.router.legs[0].hangup()
    assert h.take() == []
    h.feed(request("ACK", to_tag=tag))
    assert codes(h.take()) == ["BYE"]
    assert h.router.kinds() == ["invite"]  # the model hung up: no confirmed callback


def test_stray_response_is_absorbed():
    h = CoreHarness(RecordingRouter())
    h.feed((FIXTURES / "bye_200_response.sip").read_bytes())
    assert h.take() == [] and h.core.stats["stray"] == 1


# --- other methods and bad input ----------------------------------------------------

def test_options_answers_the_routers_status():
    h = CoreHarness(RecordingRouter(options=(503, "Service Unavailable")))
    h.feed(request("OPTIONS", call_id="opt"), trunk="t1")
    resp = parse(h.take()[0])
    assert (resp.status, resp.reason) == (503, "Service Unavailable")
    assert "INVITE" in resp.get("allow")
    assert h.router.events == [("options", "t1")]


def test_info_in_dialog_gets_200_and_reaches_the_router():
    h = CoreHarness(RecordingRouter())
    tag = confirmed_call(h)
    h.feed(request("INFO", to_tag=tag, seq=2, body=b"Signal=5\r\n"))
    assert codes(h.take()) == [200]
    assert h.router.events[-1] == ("info", "c1", b"Signal=5\r\n")
    h.feed(request("INFO", call_id="unknown", to_tag="x"))
    assert codes(h.take()) == [481]


@pytest.mark.parametrize("method", ["REGISTER", "SUBSCRIBE", "PRACK", "FOO"])
def test_other_methods_get_501(method):
    h = CoreHarness(RecordingRouter())
    h.feed(request(method))
    assert codes(h.take()) == [501]


def test_garbage_is_counted_and_dropped():
    h = CoreHarness(RecordingRouter())
    for data in (b"", b"\x00\xff" * 10, b"hello world\r\n\r\n", invite()[:100]):
        h.feed(data)
    assert h.take() == [] and h.core.stats["garbage"] == 4


def test_missing_mandatory_header_gets_400_when_via_is_usable():
    h = CoreHarness(RecordingRouter())
    h.feed((FIXTURES / "missing_callid_invite.sip").read_bytes())
    resp = parse(h.take()[0])
    assert resp.status == 400 and "call-id" in resp.reason
    assert h.router.events == []


def test_missing_via_is_dropped_without_answer():
    h = CoreHarness(RecordingRouter())
    h.feed(b"INVITE sip:a@127.0.0.1 SIP/2.0\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n")
    h.feed(request("INVITE", cseq_method="BYE"))  # CSeq mismatch -> 400
    assert codes(h.take()) == [400]
    assert h.core.stats["dropped_invalid"] == 1


# --- memory ---------------------------------------------------------------------------

def test_ended_legs_linger_then_are_purged():
    h = CoreHarness(RecordingRouter())
    for n in range(2000):
        h.feed(invite(call_id=f"call-{n}"))
    assert h.core.stats["peak_dialogs"] == 2000 and len(h.core.legs) == 2000
    for leg in list(h.router.legs):
        tag = leg.to_tag
        h.feed(request("ACK", call_id=leg.info.call_id, to_tag=tag))
        h.feed(request("BYE", call_id=leg.info.call_id, to_tag=tag, seq=2))
    assert h.core.stats["active_dialogs"] == 0
    h.clock.advance(LINGER - 1)
    assert len(h.core.legs) == 2000  # still absorbing late retransmissions
    h.clock.advance(2)
    assert len(h.core.legs) == 0 and h.core.stats["purged"] == 2000


def test_late_invite_retransmission_during_linger_is_absorbed():
    h = CoreHarness(RecordingRouter(behaviour=lambda leg: leg.reject(486, "Busy Here")))
    h.feed(invite())
    h.clock.advance(20)
    h.take()
    h.feed(invite())
    assert codes(h.take()) == [486]
    assert h.router.kinds() == ["invite"]


def test_reinvite_in_a_confirmed_dialog_gets_the_same_session():
    h = CoreHarness(RecordingRouter())
    h.feed(invite())
    first = parse(h.take()[0])
    tag = param(first.get("to"), "tag")
    h.feed(request("ACK", to_tag=tag))
    h.feed(invite(seq=2, branch="z9hG4bKre", to_tag=tag))
    again = parse(h.take()[0])
    assert again.status == 200 and again.body == first.body
    assert h.router.kinds() == ["invite", "confirmed"]


def test_reinvite_for_an_unknown_dialog_gets_481():
    h = CoreHarness(RecordingRouter())
    h.feed(invite(to_tag="nobody"))
    assert codes(h.take()) == [481]


def test_past_max_legs_new_invites_get_503_without_reaching_the_router():
    h = CoreHarness(wait_router())
    h.core.max_legs = 3
    for n in range(4):
        h.feed(invite(call_id=f"c{n}"))
    assert codes(h.take()) == [100, 100, 100, 503]
    assert h.router.kinds() == ["invite"] * 3 and h.core.stats["overload"] == 1
