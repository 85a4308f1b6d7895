"""Fuzzing the SIP side: malformed datagrams never crash the parser, the UasCore or a
live SipServer, and a valid call is still answered afterwards.

Each hypothesis example is a batch of ``BATCH`` datagrams, so ``EXAMPLES * BATCH``
(10,000) datagrams reach each target: mutated real messages, truncations, random
bytes, absurd header counts and oversized datagrams.
"""

from __future__ import annotations

import socket

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.twin.sip.message import MAX_DATAGRAM, SipMessage, SipParseError, parse

from twinsip_support import FIXTURES, CoreHarness, RecordingRouter, ServerThread

BATCH, EXAMPLES = 50, 200
SEEDS = [path.read_bytes() for path in sorted(FIXTURES.glob("*.sip"))] + [
    b"ACK sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-12345-1-0\r\n"
    b"From: <sip:sipp@127.0.0.1>;tag=12345SIPpTag001\r\nTo: <sip:s@h>;tag=x\r\n"
    b"Call-ID: 1-12345@127.0.0.1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
    b"CANCEL sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-12345-1-0\r\n"
    b"From: <sip:sipp@127.0.0.1>;tag=12345SIPpTag001\r\nTo: <sip:s@h>\r\n"
    b"Call-ID: 1-12345@127.0.0.1\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n",
]
TOKENS = [b"\r\n", b"\r\n\r\n", b":", b";", b",", b" ", b"\t", b"<", b">", b"tag=", b"\x00",
          b"\xff", b"Content-Length: 99999", b"l: 0", b"CSeq: x", b"SIP/2.0", b"INVITE",
          b"Via: ", b"\xe2\x80\xa8", b"\r\n ", b"m=audio 0 RTP/AVP 0 8 101 999"]


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.integers(0, 4))
        pos = draw(st.integers(0, len(data)))
        if op == 0:
            del data[pos:pos + draw(st.integers(1, 40))]
        elif op == 1:
            data[pos:pos] = draw(st.sampled_from(TOKENS))
        elif op == 2:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=20))
        elif op == 3 and data:
            data[min(pos, len(data) - 1)] ^= draw(st.integers(1, 255))
        else:
            data = data.swapcase() if draw(st.booleans()) else data.replace(b"\r\n", b"\n")
    return bytes(data)


def header_flood(count: int) -> bytes:
    return b"INVITE sip:a@127.0.0.1 SIP/2.0\r\n" + b"X-A: b\r\n" * count + b"\r\n"


datagrams = st.one_of(
    mutated(),
    st.sampled_from(SEEDS).flatmap(lambda s: st.integers(0, len(s)).map(lambda n: s[:n])),
    st.binary(max_size=1500),
    st.sampled_from([header_flood(300), header_flood(8000), b"\r\n\r\n", b"",
                     b"SIP/2.0 200 OK\r\n\r\n", b"\xff" * 1000]),
)
oversized = st.sampled_from([b"A" * (MAX_DATAGRAM + 1), SEEDS[0] + b"x" * MAX_DATAGRAM])
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.lists(st.one_of(datagrams, oversized), min_size=BATCH, max_size=BATCH))
def test_parser_raises_only_its_own_error(batch):
    for data in batch:
        try:
            assert isinstance(parse(data), SipMessage)
        except SipParseError:
            pass


def answered(h: CoreHarness, call_id: str) -> bool:
    seed = (FIXTURES / "sipp_invite.sip").read_bytes().replace(b"1-12345@127.0.0.1", call_id.encode())
    h.take()
    h.feed(seed)
    return any(parse(d).status == 200 for d in h.take())


def test_uas_core_survives_fuzz_and_answers_a_call():
    h = CoreHarness(RecordingRouter(behaviour=lambda leg: leg.answer("PCMU")))
    fed = 0

    @FUZZ
    @given(st.lists(st.one_of(datagrams, oversized), min_size=BATCH, max_size=BATCH))
    def throw(batch):
        nonlocal fed
        for data in batch:
            h.feed(data)
        h.clock.advance(1.0)  # let retransmission and purge timers run on fuzzed state
        fed += len(batch)

    throw()
    assert fed >= 10_000
    h.clock.advance(120)
    assert answered(h, "after-fuzz@127.0.0.1")


def test_live_server_survives_fuzz_and_answers_a_call():
    router = RecordingRouter(behaviour=lambda leg: leg.answer("PCMU"))
    sent = 0
    with ServerThread(router) as server, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.bind(("127.0.0.1", 0))
        client.setblocking(False)
        target = ("127.0.0.1", server.ports["t1"])

        @FUZZ
        @given(st.lists(datagrams, min_size=BATCH, max_size=BATCH))
        def throw(batch):
            nonlocal sent
            for data in batch:
                client.sendto(data[:MAX_DATAGRAM], target)
                sent += 1
            drain(client)
            # pace the sender so the kernel buffer never drops what the twin must see
            server.wait_for(lambda: server.stats["datagrams"] >= sent, timeout=5)

        throw()
        assert sent >= 10_000
        assert server.wait_for(lambda: server.stats["datagrams"] >= sent, timeout=10)
        assert server.stats["internal_errors"] == 0
        drain(client)
        invite = (FIXTURES / "sipp_invite.sip").read_bytes().replace(
            b"1-12345@127.0.0.1", b"live-after-fuzz")
        client.setblocking(True)
        client.settimeout(5)
        client.sendto(invite, target)
        while True:
            msg = parse(client.recvfrom(65535)[0])
            if msg.get("call-id") == "live-after-fuzz" and msg.status is not None:
                break
        assert msg.status == 200


def drain(sock: socket.socket) -> None:
    while True:
        try:
            sock.recvfrom(65535)
        except (BlockingIOError, InterruptedError):
            return
