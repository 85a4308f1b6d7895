"""The SIP parser and serializer on sample messages kept as files (fixtures/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import SipError
from harness.twin.sip.message import (MAX_DATAGRAM, SipParseError, build_request, build_response,
                                      cseq, param, parse, serialize, top_via, uri_of)

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_parse_error_is_a_sip_error():
    assert issubclass(SipParseError, SipError)


def test_pjsua2_invite():
    msg = parse(load("pjsua2_invite.sip"))
    assert msg.method == "INVITE" and msg.uri == "sip:chaos@127.0.0.1:5070"
    assert msg.status is None
    assert msg.get("x-chaos-test") == "run-2026-12-03-a"
    assert cseq(msg) == (24133, "INVITE")
    assert param(msg.get("from"), "tag") == "1f2e3d4c-5b6a-7980-a1b2-c3d4e5f60718"
    assert uri_of(msg.get("contact")) == "sip:load@127.0.0.1:5072;ob"
    assert msg.body.startswith(b"v=0\r\n") and msg.body.endswith(b"cname:1a2b3c4d5e6f7a8b\r\n")
    assert len(msg.body) == int(msg.get("content-length"))


def test_sipp_invite():
    msg = parse(load("sipp_invite.sip"))
    assert msg.get("call-id") == "1-12345@127.0.0.1"
    assert param(top_via(msg), "branch") == "z9hG4bK-12345-1-0"
    assert uri_of(msg.get("contact")) == "sip:sipp@127.0.0.1:5061"
    assert b"m=audio 6000 RTP/AVP 0" in msg.body


def test_compact_forms_expand_to_long_names():
    msg = parse(load("compact_invite.sip"))
    assert msg.get("call-id") == "compact-call-1@127.0.0.1"
    assert msg.get("via").endswith("branch=z9hG4bKcompact1")
    assert param(msg.get("from"), "tag") == "ctag1"
    assert msg.get("to") == "<sip:chaos@127.0.0.1>"
    assert msg.get("contact") == "<sip:a@127.0.0.1:5090>"
    assert msg.get("supported") == "timer"
    assert msg.get("subject") == "compact forms"
    assert msg.get("content-encoding") == "identity"
    assert msg.get("content-type") == "application/sdp"
    assert msg.body.startswith(b"v=0") and len(msg.body) == int(msg.get("content-length"))


def test_multi_via_and_case_insensitive_names():
    msg = parse(load("multi_via_invite.sip"))
    vias = msg.get_all("via")
    assert len(vias) == 3
    assert "z9hG4bKmiddle" in vias[1] and "z9hG4bKlow" in vias[1]
    assert param(top_via(msg), "branch") == "z9hG4bKtop"
    assert msg.get("call-id") == "multi-via-1"
    response = parse(build_response(msg, 180, "Ringing", to_tag="x"))
    assert response.get_all("via") == vias  # every Via copied, in order (RFC 3261 8.2.6.2)


def test_top_via_of_a_comma_separated_line():
    msg = parse(b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP h1;branch=z9hG4bK1, "
                b"SIP/2.0/UDP h2;branch=z9hG4bK2\r\n\r\n")
    assert top_via(msg) == "SIP/2.0/UDP h1;branch=z9hG4bK1"


def test_folded_header_is_joined():
    msg = parse(load("folded_invite.sip"))
    assert msg.get("subject") == "a subject folded over three lines"
    assert msg.get("contact") == "<sip:c@127.0.0.1:5092>"


def test_body_shorter_than_content_length_is_an_error():
    with pytest.raises(SipParseError, match="shorter than Content-Length"):
        parse(load("short_body_invite.sip"))


def test_extra_bytes_after_content_length_are_discarded():
    data = load("sipp_invite.sip") + b"trailing garbage"
    assert not parse(data).body.endswith(b"garbage")


def test_truncated_datagram_is_an_error():
    data = load("pjsua2_invite.sip")
    with pytest.raises(SipParseError):
        parse(data[: len(data) - 20])  # body cut short
    with pytest.raises(SipParseError):
        parse(data[:200])  # headers cut: no empty line


def test_message_without_content_length_takes_the_rest_as_body():
    msg = parse(b"MESSAGE sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\nhello")
    assert msg.body == b"hello"


def test_missing_mandatory_header_still_parses():
    msg = parse(load("missing_callid_invite.sip"))
    assert msg.method == "INVITE" and msg.get("call-id") is None


def test_response():
    msg = parse(load("bye_200_response.sip"))
    assert (msg.status, msg.reason) == (200, "OK")
    assert msg.method is None and not msg.is_request
    assert cseq(msg) == (1, "BYE")
    assert param(msg.get("to"), "tag") == "1f2e"


def test_lf_only_line_endings_are_tolerated():
    head, _, body = load("sipp_invite.sip").partition(b"\r\n\r\n")
    msg = parse(head.replace(b"\r\n", b"\n") + b"\n\n" + body)
    assert msg.get("call-id") == "1-12345@127.0.0.1" and msg.body == body


@pytest.mark.parametrize("data, why", [
    (b"", "empty"),
    (b"\r\n\r\n", "keepalive"),
    (b"INVITE sip:a@h SIP/2.0\r\nVia: x", "no empty line"),
    (b"INVITE sip:a@h SIP/3.0\r\n\r\n", "version"),
    (b"INVITE  SIP/2.0\r\n\r\n", "no uri"),
    (b"IN VITE sip:a@h SIP/2.0\r\n\r\n", "bad request line"),
    (b"SIP/2.0 99 Odd\r\n\r\n", "status below 100"),
    (b"SIP/2.0 7xx Odd\r\n\r\n", "status not digits"),
    (b"SIP/2.0 \xd9\xa2\xd9\xa0\xd9\xa0 OK\r\n\r\n", "non-ASCII digits"),
    (b"INVITE sip:a@h SIP/2.0\r\nNoColonHere\r\n\r\n", "header without colon"),
    (b"INVITE sip:a@h SIP/2.0\r\n folded first\r\n\r\n", "continuation first"),
    (b"INVITE sip:a@h SIP/2.0\r\nBad Name: x\r\n\r\n", "space in name"),
    (b"INVITE sip:a@h SIP/2.0\r\nContent-Length: -1\r\n\r\n", "negative length"),
    (b"INVITE sip:a@h SIP/2.0\r\nContent-Length: 99999999999\r\n\r\n", "absurd length"),
    (b"INVITE sip:a@h SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nab", "conflicting lengths"),
    (b"INVITE sip:a@h SIP/2.0\r\nX: \xff\xfe\r\n\r\n", "not UTF-8"),
    (b"INVITE sip:a@h SIP/2.0\r\nX: a\x00b\r\n\r\n", "NUL byte"),
])
def test_malformed_messages_raise_parse_error(data, why):
    with pytest.raises(SipParseError):
        parse(data)


def test_oversized_datagram_rejected():
    data = load("sipp_invite.sip")
    padded = data.replace(b"Subject:", b"X-Pad: " + b"a" * MAX_DATAGRAM + b"\r\nSubject:")
    with pytest.raises(SipParseError, match="exceeds"):
        parse(padded)


def test_absurd_header_count_rejected():
    head = b"INVITE sip:a@h SIP/2.0\r\n" + b"X: 1\r\n" * 1000 + b"\r\n"
    with pytest.raises(SipParseError, match="header lines"):
        parse(head)


def test_non_bytes_rejected():
    with pytest.raises(SipParseError):
        parse("INVITE sip:a@h SIP/2.0\r\n\r\n")  # type: ignore[arg-type]


def test_build_response_copies_dialog_headers_and_adds_tag_contact_length():
    req = parse(load("pjsua2_invite.sip"))
    data = build_response(req, 200, "OK", to_tag="abc", contact="sip:twin@127.0.0.1:5070",
                          extra_headers={"X-Twin-Trunk": "t-1", "X-Evil": "a\r\nInjected: 1"},
                          body=b"v=0\r\n")
    resp = parse(data)
    assert (resp.status, resp.reason) == (200, "OK")
    for name in ("via", "from", "call-id", "cseq"):
        assert resp.get_all(name) == req.get_all(name)
    assert resp.get("to") == req.get("to") + ";tag=abc"
    assert resp.get("contact") == "<sip:twin@127.0.0.1:5070>"
    assert resp.get("x-twin-trunk") == "t-1"
    assert resp.get("injected") is None  # CR/LF in a value cannot add a header
    assert resp.get("content-length") == "5" and resp.body == b"v=0\r\n"


def test_build_response_keeps_existing_to_tag_and_skips_it_on_100():
    req = parse(load("bye_200_response.sip").replace(b"SIP/2.0 200 OK", b"BYE sip:x@h SIP/2.0"))
    assert param(parse(build_response(req, 200, "OK", to_tag="new")).get("to"), "tag") == "1f2e"
    invite = parse(load("sipp_invite.sip"))
    assert param(parse(build_response(invite, 100, "Trying", to_tag="t")).get("to"), "tag") is None


def test_build_request_and_serialize_round_trip():
    data = build_request("BYE", "sip:a@127.0.0.1:5061", [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKx"), ("From", "<sip:t@h>;tag=1"),
        ("To", "<sip:a@h>;tag=2"), ("Call-ID", "c1"), ("CSeq", "1 BYE")])
    msg = parse(data)
    assert msg.method == "BYE" and cseq(msg) == (1, "BYE") and msg.get("content-length") == "0"
    again = parse(serialize(parse(load("pjsua2_invite.sip"))))
    original = parse(load("pjsua2_invite.sip"))
    assert again.headers == original.headers and again.body == original.body
