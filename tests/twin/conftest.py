"""Fixtures for the twin's model and API: fake legs on a fake clock, topology files."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.twin.clock import FakeScheduler
from harness.twin.legs import InviteInfo
from harness.twin.model import TwinModel
from harness.twin.topology import load_topology

FIXTURES = Path(__file__).parent / "fixtures"


class FakeLeg:
    """A CallLeg that records what the model told it."""

    def __init__(self, call_id: str, trunk_id: str, codecs=("PCMU",), tag="run-1"):
        self.info = InviteInfo(call_id=call_id, trunk_id=trunk_id, from_uri="sip:a@127.0.0.1",
                               to_uri="sip:b@127.0.0.1", request_uri="sip:b@127.0.0.1",
                               source=("127.0.0.1", 5060), offered_codecs=list(codecs),
                               headers={"x-chaos-test": tag} if tag else {})
        self.actions: list[tuple] = []
        self._state = "proceeding"

    def ringing(self):
        self.actions.append(("ringing",))

    def answer(self, codec, extra_headers=None):
        if self._state == "proceeding":
            self._state = "answered"
            self.actions.append(("answer", codec, dict(extra_headers or {})))

    def reject(self, code, reason, extra_headers=None):
        if self._state == "proceeding":
            self._state = "ended"
            self.actions.append(("reject", code, reason, dict(extra_headers or {})))

    def drop(self):
        self.actions.append(("drop",))

    def hangup(self, reason=""):
        if self._state != "ended":
            self.actions.append(("bye" if self._state == "answered" else "487", reason))
            self._state = "ended"

    @property
    def state(self):
        return self._state

    @property
    def outcome(self):
        """The last final outcome: 'answer', 'reject:<code>', 'drop', 'bye', '487' or None."""
        for action in reversed(self.actions):
            if action[0] == "reject":
                return f"reject:{action[1]}"
            if action[0] in ("answer", "drop", "bye", "487"):
                return action[0]
        return None


class Harness:
    """A model on a FakeScheduler, with names for ids and helpers to place calls."""

    def __init__(self, path: Path, time_scale: float = 1.0):
        self.topo = load_topology(path)
        self.clock = FakeScheduler()
        self.events: list[dict] = []
        self.model = TwinModel(self.topo, self.clock, self.events.append, time_scale=time_scale, seed=7)
        self.model.start()
        self._n = 0

    def id(self, name: str) -> str:
        for obj in (*self.topo.trunks, *self.topo.queues, *self.topo.ivrs):
            if obj.name == name:
                return obj.id
        raise KeyError(name)

    def call(self, trunk: str, codecs=("PCMU",), tag="run-1") -> FakeLeg:
        self._n += 1
        leg = FakeLeg(f"call-{self._n}", self.id(trunk), codecs, tag)
        self.model.on_invite(leg)
        return leg

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def of_type(self, type_: str) -> list[dict]:
        return [e for e in self.events if e["type"] == type_]

    def patch(self, trunk: str, body: dict) -> dict:
        platform = self.topo.trunk(self.id(trunk)).platform
        return self.model.update_trunk(platform, self.id(trunk), body)


@pytest.fixture
def twin() -> Harness:
    return Harness(FIXTURES / "unit.yaml")
