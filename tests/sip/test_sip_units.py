"""Pure parts of the SIP engine: URIs, outcome classes, profiles, wire protocol."""

import random

import pytest

from harness.errors import ConfigError, SipError
from harness.sip import wire
from harness.sip.engine import CallSpec, EngineConfig, RateGate, twin_trunk
from harness.sip.outcome import CallRecord, classify
from harness.sip.profiles import codec_ids, parse_hold
from harness.sip.uri import parse_target


@pytest.mark.parametrize("uri,host,port", [
    ("sip:chaos@127.0.0.1:5070", "127.0.0.1", 5070),
    ("sip:127.0.0.1", "127.0.0.1", 5060),
    ("sip:+15551234@localhost:5999;transport=udp", "localhost", 5999),
    ("sip:x@127.0.0.2:6000", "127.0.0.2", 6000),
])
def test_loopback_targets_parse(uri, host, port):
    t = parse_target(uri)
    assert (t.host, t.port) == (host, port)


@pytest.mark.parametrize("uri,words", [
    ("", "empty"),
    ("http://127.0.0.1:5060", "malformed"),
    ("sip:chaos@127.0.0.1:99999", "out of range"),
    ("sip:chaos@@127.0.0.1", "malformed"),
    ("sips:chaos@127.0.0.1", "sips"),
    ("sip:chaos@192.0.2.1:5060", "not on loopback"),
    ("sip:chaos@example.com", "not on loopback"),
])
def test_bad_targets_are_refused_with_a_reason(uri, words):
    with pytest.raises(SipError, match=words):
        parse_target(uri)


@pytest.mark.parametrize("code,outcome", [
    (200, "answered"), (202, "answered"), (408, "408"), (487, "487"), (488, "488"),
    (403, "403"), (503, "503"), (486, "other"), (500, "other"), (0, "other"), (None, "other"),
])
def test_classify(code, outcome):
    assert classify(code) == outcome


def test_record_finish_sets_setup_from_final_response():
    r = CallRecord(call_id="c", tag="t", target="sip:x@127.0.0.1", invite_at=100.0)
    r.finish(403, "License Exceeded", 100.25, 100.3)
    d = r.to_dict()
    assert (d["outcome"], d["code"], d["setup_seconds"]) == ("403", 403, 0.25)
    assert set(d) >= {"call_id", "tag", "target", "entry_trunk", "trunk", "outcome", "code",
                      "reason", "invite_at", "first_18x_at", "answered_at", "bye_at",
                      "ended_at", "setup_seconds", "worker"}


def test_codec_profiles():
    assert codec_ids("g722, pcmu") == ("G722/16000/1", "PCMU/8000/1")
    assert codec_ids(["g711a"]) == ("PCMA/8000/1",)
    with pytest.raises(ConfigError, match="unknown codec"):
        codec_ids("pcmu,amr")
    with pytest.raises(ConfigError):
        codec_ids("")


def test_hold_distributions():
    rng = random.Random(1)
    assert parse_hold("30").draw(rng) == 30.0
    assert parse_hold(2.5).draw(rng) == 2.5
    u = parse_hold("uniform:10:20")
    assert all(10 <= u.draw(rng) <= 20 for _ in range(200))
    assert all(parse_hold("normal:1:5").draw(rng) >= 0 for _ in range(200))
    assert parse_hold("exp:45").mean == 45
    for bad in ("uniform:5", "gamma:1", "fixed:-1", "uniform:9:3", "fixed:x"):
        with pytest.raises(ConfigError):
            parse_hold(bad)


def test_twin_trunk_header_is_read_from_the_final_response():
    msg = "SIP/2.0 200 OK\r\nVia: x\r\nX-Twin-Trunk: 1234-abcd\r\nContent-Length: 0\r\n\r\n"
    assert twin_trunk(msg) == "1234-abcd"
    assert twin_trunk("SIP/2.0 200 OK\r\n\r\n") is None


def test_wire_roundtrip_and_partial_lines():
    spec = CallSpec(target="sip:a@127.0.0.1", tag="t", hold=1.5, extra_headers=(("X-A", "1"),))
    assert wire.spec_from_dict(wire.spec_to_dict(spec)) == spec
    cfg = EngineConfig(codecs=("PCMU/8000/1",))
    assert wire.config_from_dict(wire.config_to_dict(cfg)) == cfg
    buf = wire.LineBuffer()
    data = wire.encode({"op": "quit"}) + wire.encode({"ev": "x"})
    assert buf.feed(data[:5]) == []
    assert buf.feed(data[5:]) == [{"op": "quit"}, {"ev": "x"}]


def test_rate_gate_admits_at_most_limit_per_sliding_window():
    gate = RateGate(limit=3, window=1.0)
    assert [gate.admit(t) for t in (0.0, 0.1, 0.2, 0.3, 0.9)] == [True, True, True, False, False]
    assert gate.admit(1.05) is True          # the start at 0.0 left the window
    assert gate.admit(1.06) is False         # 0.1, 0.2, 1.05 still in it
    assert [gate.admit(t) for t in (3.0, 3.0, 3.0, 3.0)] == [True, True, True, False]


def test_rate_gate_refuses_nonsense_bounds():
    with pytest.raises(ValueError):
        RateGate(limit=0)
    with pytest.raises(ValueError):
        RateGate(window=0)
