"""Helpers for the twin tests: fake legs on a fake clock, a live emulator, a REST client,
SIPp runs read from their message logs. Imported by name (not from conftest) so that
tests/twin/sip/conftest.py can never shadow it."""

from __future__ import annotations

import functools
import json
import re
import socket
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import httpx

from harness.twin.clock import FakeScheduler
from harness.twin.legs import InviteInfo
from harness.twin.model import TwinModel
from harness.twin.topology import load_topology

FIXTURES = Path(__file__).parent / "fixtures"
E2E_SCALE = 0.02   # time scale of the end-to-end emulator (conftest fixture `live`)


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
            if code == 487:
                self.actions.append(("487", "rejected"))

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


@functools.lru_cache(maxsize=4)
def cached_topology(path: Path):
    """Topologies are frozen, so tests may share one load (replace(), never mutate)."""
    return load_topology(path)


class Harness:
    """A model on a FakeScheduler, with names for ids and helpers to place calls."""

    def __init__(self, path: Path, time_scale: float = 1.0):
        self.topo = cached_topology(path)
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


# ---------------------------------------------------------------- live emulator helpers


REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "sip"


def wait_until(predicate, timeout: float, interval: float = 0.05):
    """Poll ``predicate`` until it returns a truthy value (returned) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@contextmanager
def emulator(tmp_path: Path, topology: Path | None, time_scale: float = 0.02, *extra: str):
    """``ccharness emulator`` in a subprocess; yields (endpoints, process). Killed on exit."""
    endpoints_file = tmp_path / "endpoints.json"
    cmd = [sys.executable, "-m", "harness.cli", "emulator", "--endpoints-file", str(endpoints_file),
           "--time-scale", str(time_scale), "--seed", "1", *extra]
    if topology is not None:
        cmd += ["--topology", str(topology)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = wait_until(lambda: endpoints_file.exists() or proc.poll() is not None, 30)
        if not ready or proc.poll() is not None:
            raise RuntimeError(f"emulator did not start: {proc.communicate(timeout=5)}")
        yield json.loads(endpoints_file.read_text()), proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Api:
    """A small REST client for tests: one token per client (refetched when asked)."""

    def __init__(self, endpoints: dict, client_id: str = "demo", secret: str = "e2e-secret",
                 scope: str | None = None):
        self.ep = endpoints
        self.http = httpx.Client(base_url=endpoints["rest_base_url"], timeout=10)
        self.client_id, self.secret, self.scope = client_id, secret, scope
        self.token = self.new_token()

    def new_token(self) -> str:
        form = {"grant_type": "client_credentials", "client_id": self.client_id,
                "client_secret": self.secret}
        if self.scope:
            form["scope"] = self.scope
        r = self.http.post("/oauth/token", data=form)
        r.raise_for_status()
        return r.json()["access_token"]

    def request(self, method: str, path: str, **kw) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kw)

    def get(self, path: str, **kw) -> httpx.Response:
        return self.request("GET", path, **kw)

    def trunk_id(self, name: str) -> str:
        return next(t["id"] for t in self.ep["trunks"] if t["name"] == name)

    def sip_port(self, name: str) -> int:
        uri = next(t["sip_uri"] for t in self.ep["trunks"] if t["name"] == name)
        return int(uri.rsplit(":", 1)[1])

    def queue_id(self, name: str) -> str:
        return next(q["id"] for q in self.ep["queues"] if q["name"] == name)

    def truth(self) -> dict:
        return self.get("/twin/v1/ground-truth").json()

    def events(self, until=lambda events: False, timeout: float = 10.0) -> list[dict]:
        """Events from the SSE stream (replayed from the start) until ``until(events)``."""
        deadline = time.monotonic() + timeout
        events: list[dict] = []
        while time.monotonic() < deadline:
            events = []
            try:
                with self.http.stream("GET", "/api/v2/events/stream", params={"replay": "1"},
                                      headers={"Authorization": f"Bearer {self.token}"},
                                      timeout=httpx.Timeout(5, read=0.5)) as stream:
                    assert stream.headers["content-type"].startswith("text/event-stream")
                    for line in stream.iter_lines():
                        if line.startswith("data: "):
                            events.append(json.loads(line[6:]))
                            if until(events):
                                return events
            except httpx.ReadTimeout:
                pass
        return events

    def close(self) -> None:
        self.http.close()


def run_sipp(sipp_bin: str, workdir: Path, port: int, *, calls: int, rate: int = 50,
             codec: tuple[int, str] = (0, "PCMU"), hold_ms: int = 100, tag: str = "e2e",
             scenario: str = "twin_uac_outcome.xml", extra: tuple = (), timeout: int = 30):
    """Run SIPp (bounded by -m and -timeout); codes are final INVITE responses read from
    its -trace_msg log (a call without one is absent)."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"msgs-{time.monotonic_ns()}.log"
    cmd = [sipp_bin, f"127.0.0.1:{port}", "-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1",
           "-p", str(free_udp_port()), "-m", str(calls), "-r", str(rate), "-d", str(hold_ms),
           "-key", "pt", str(codec[0]), "-key", "codec", codec[1], "-key", "tag", tag,
           "-trace_msg", "-message_file", str(log), "-nostdin",
           "-timeout", f"{timeout}s", *extra]
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        proc.communicate(timeout=timeout + 15)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    text = log.read_text() if log.exists() else ""
    finals, invites = parse_messages(text)
    return SippRun(proc.returncode, finals, invites, text)


class SippRun(NamedTuple):
    returncode: int
    finals: dict        # Call-ID -> final INVITE response code
    invites: int        # INVITEs sent, retransmissions included
    log: str

    def count(self, code: int) -> int:
        return sum(1 for c in self.finals.values() if c == code)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_messages(text: str) -> tuple[dict[str, int], int]:
    """From a SIPp -trace_msg log: final INVITE response code per Call-ID, INVITEs sent."""
    finals: dict[str, int] = {}
    invites = 0
    for block in re.split(r"^-{20,}.*$", text, flags=re.M):
        lines = [l.strip() for l in block.strip().splitlines() if l.strip()]
        if not lines:
            continue
        kind = next((l for l in lines if " message " in l), "")
        first = next((l for l in lines if l.startswith(("SIP/2.0 ", "INVITE ", "ACK ", "BYE ", "CANCEL "))), "")
        headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines if ":" in l}
        if "sent" in kind and first.startswith("INVITE "):
            invites += 1
        if "received" in kind and first.startswith("SIP/2.0 ") and headers.get("cseq", "").endswith("INVITE"):
            code = int(first.split()[1])
            if code >= 200:
                finals.setdefault(headers.get("call-id", ""), code)
    return finals, invites