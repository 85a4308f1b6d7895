"""Test support for the twin's SIP side: a recording router, a UasCore on a fake clock,
and a live SipServer running on its own gevent hub in a thread.

A plain module, not conftest.py: other test directories import their own ``conftest``
by name, and two modules called ``conftest`` on sys.path would shadow each other."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from harness.twin.clock import FakeScheduler
from harness.twin.sip.uas import UasCore

FIXTURES = Path(__file__).parent / "fixtures"


class RecordingRouter:
    """A CallRouter that records callbacks and runs ``behaviour(leg)`` on each INVITE."""

    def __init__(self, behaviour: Callable | None = None, options=(200, "OK")):
        self.behaviour = behaviour or (lambda leg: leg.answer("PCMU"))
        self.options = options
        self.events: list[tuple] = []
        self.legs: list = []

    def on_invite(self, leg):
        self.legs.append(leg)
        self.events.append(("invite", leg.info.call_id))
        self.behaviour(leg)

    def on_confirmed(self, leg):
        self.events.append(("confirmed", leg.info.call_id))

    def on_cancel(self, leg):
        self.events.append(("cancel", leg.info.call_id))

    def on_bye(self, leg):
        self.events.append(("bye", leg.info.call_id))

    def on_failed(self, leg, reason):
        self.events.append(("failed", leg.info.call_id))

    def on_info(self, leg, body):
        self.events.append(("info", leg.info.call_id, body))

    def options_status(self, trunk_id):
        self.events.append(("options", trunk_id))
        return self.options

    def kinds(self) -> list[str]:
        return [event[0] for event in self.events]


class CoreHarness:
    """A UasCore on a FakeScheduler whose sends are recorded as (bytes, addr, trunk)."""

    def __init__(self, router: RecordingRouter):
        self.router = router
        self.clock = FakeScheduler()
        self.sent: list[tuple[bytes, tuple, str]] = []
        self.core = UasCore(router, self.clock, self._send, media_port=40000)
        self.core.add_trunk("t1", ("127.0.0.1", 5070))

    def _send(self, data, addr, trunk_id):
        self.sent.append((data, addr, trunk_id))

    def feed(self, data: bytes, addr=("127.0.0.1", 5061), trunk="t1") -> None:
        self.core.datagram_received(data, addr, trunk)

    def take(self) -> list[bytes]:
        """Datagrams sent since the last call."""
        out = [data for data, _, _ in self.sent]
        self.sent.clear()
        return out


class ServerThread:
    """A SipServer on its own gevent hub in a daemon thread (the test thread stays free
    to run SIPp and plain sockets). ``ports`` maps trunk id to bound port."""

    def __init__(self, router, trunks=("t1",)):
        self.router = router
        self.trunks = trunks
        self.ports: dict[str, int] = {}
        self.server = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import gevent

        from harness.twin.clock import GeventScheduler
        from harness.twin.sip.server import SipServer

        try:
            self.server = SipServer(self.router, GeventScheduler())
            for trunk in self.trunks:
                self.ports[trunk] = self.server.add_listener(trunk)
            self.server.start()
        except BaseException as exc:  # reported to the test thread
            self.error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stop:
                gevent.sleep(0.02)
        finally:
            self.server.stop()

    def __enter__(self) -> "ServerThread":
        self._thread.start()
        self._ready.wait(10)
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc) -> None:
        self._stop = True
        self._thread.join(10)

    @property
    def stats(self) -> dict[str, int]:
        return dict(self.server.stats)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()
