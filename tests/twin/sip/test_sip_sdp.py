"""SDP offer parsing and the twin's answer."""

from __future__ import annotations

from harness.twin.sip.message import parse
from harness.twin.sip.sdp import build_answer, parse_offer

from twinsip_support import FIXTURES


def offer_of(name: str):
    return parse_offer(parse((FIXTURES / name).read_bytes()).body)


def test_static_payload_types_and_rtpmap_names_in_offer_order():
    offer = offer_of("opus_offer_invite.sip")
    assert offer.names == ["OPUS", "G722", "PCMU"]  # CN left out, video ignored
    assert offer.telephone_event.pt == 110 and offer.telephone_event.rate == 48000
    assert (offer.address, offer.port) == ("127.0.0.1", 7100)


def test_static_types_without_rtpmap():
    offer = offer_of("compact_invite.sip")
    assert offer.names == ["PCMA", "G729"]
    assert offer.telephone_event.pt == 101


def test_answer_uses_offered_payload_type_loopback_and_media_port():
    offer = offer_of("opus_offer_invite.sip")
    text = build_answer(offer, "opus", 41000, session_id=7).decode()
    assert "c=IN IP4 127.0.0.1" in text
    assert "m=audio 41000 RTP/AVP 111 110\r\n" in text
    assert "a=rtpmap:111 opus/48000/2" in text
    assert "a=rtpmap:110 telephone-event/48000" in text and "a=fmtp:110 0-16" in text


def test_answer_without_telephone_event_when_not_offered():
    offer = offer_of("sipp_invite.sip")
    text = build_answer(offer, "PCMU", 41000, session_id=1).decode()
    assert "m=audio 41000 RTP/AVP 0\r\n" in text and "telephone-event" not in text


def test_codec_not_in_offer_falls_back_to_its_static_type():
    text = build_answer(offer_of("sipp_invite.sip"), "G729", 41000, session_id=1).decode()
    assert "m=audio 41000 RTP/AVP 18" in text and "a=rtpmap:18 G729/8000" in text


def test_garbage_offer_has_no_codecs():
    for body in (b"", b"\xff\xfe garbage", b"m=audio x RTP/AVP a b\r\n", b"m=audio 1 RTP/AVP 200\r\n"):
        assert parse_offer(body).names == []
