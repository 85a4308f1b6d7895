"""SipServer as an I/O edge: binding rules, shutdown, resilience to a failing router."""

from __future__ import annotations

import socket

import pytest

from harness.errors import ConfigError
from harness.twin.clock import GeventScheduler
from harness.twin.sip.message import parse
from harness.twin.sip.server import SipServer

from twinsip_support import FIXTURES, RecordingRouter, ServerThread


def invite_for(user: str, call_id: str) -> bytes:
    data = (FIXTURES / "sipp_invite.sip").read_bytes()
    return data.replace(b"sip:service@", f"sip:{user}@".encode(), 1).replace(
        b"1-12345@127.0.0.1", call_id.encode())


def final_response(client: socket.socket, call_id: str):
    while True:
        msg = parse(client.recvfrom(65535)[0])
        if msg.get("call-id") == call_id and msg.status is not None and msg.status >= 200:
            return msg


def test_a_router_exception_is_counted_and_the_listener_keeps_serving():
    def behaviour(leg):
        if leg.info.request_uri.startswith("sip:boom@"):
            raise RuntimeError("model bug")
        leg.answer("PCMU")

    with ServerThread(RecordingRouter(behaviour=behaviour)) as server, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(5)
        target = ("127.0.0.1", server.ports["t1"])
        client.sendto(invite_for("boom", "boom-1"), target)
        client.sendto(invite_for("ok", "ok-1"), target)
        assert final_response(client, "ok-1").status == 200
        assert server.stats["internal_errors"] == 1


def test_each_trunk_answers_on_its_own_port_with_its_contact():
    with ServerThread(RecordingRouter(), trunks=("a", "b")) as server, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(5)
        client.sendto(invite_for("x", "on-b"), ("127.0.0.1", server.ports["b"]))
        data, source = client.recvfrom(65535)
        assert source == ("127.0.0.1", server.ports["b"])  # answered from the trunk's socket
        assert parse(data).get("contact") == f"<sip:twin@127.0.0.1:{server.ports['b']}>"
        assert server.router.legs[0].info.trunk_id == "b"


def test_port_in_use_is_a_config_error_naming_the_port():
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", 0))
    port = blocker.getsockname()[1]
    server = SipServer(RecordingRouter(), GeventScheduler())
    try:
        with pytest.raises(ConfigError, match=str(port)):
            server.add_listener("t1", port)
    finally:
        server.stop()
        blocker.close()


def test_non_loopback_host_is_refused():
    with pytest.raises(ConfigError, match="non-loopback"):
        SipServer(RecordingRouter(), GeventScheduler(), host="0.0.0.0")


def test_stop_closes_every_socket():
    with ServerThread(RecordingRouter(), trunks=("a", "b")) as server:
        ports = dict(server.ports)
        media = server.server.media_port
    for port in [*ports.values(), media]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", port))  # free again
