"""EnginePool: many PJSUA2 engine processes behind one gevent process.

A Locust worker (or any gevent program) owns one pool. ``call(spec)`` blocks only
the calling greenlet: it waits for a free call slot across all engine processes
(admission: a process never gets more than its capacity, so ``makeCall`` is never
tried over capacity), sends the spec over that process's socket and returns the
record (CONTRACTS.md 6) when the call ends. All socket I/O is gevent's, so the hub
is never blocked, and no native thread ever runs in the pool's process.

The engine processes are forked by one zygote (``harness.sip.host``); closing the
pool (or the pool's process dying) closes their sockets and they exit.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys

import gevent
import gevent.event
import gevent.lock
import gevent.socket

from harness.errors import SipError
from harness.sip import wire
from harness.sip.engine import CAPACITY, CallSpec, EngineConfig
from harness.sip.outcome import worker_id

log = logging.getLogger(__name__)


class _Proc:
    """One engine process as the pool sees it."""

    def __init__(self, index: int, sock):
        self.index, self.sock = index, sock
        self.capacity = 0
        self.in_flight: dict[str, gevent.event.AsyncResult] = {}
        self.ready = gevent.event.AsyncResult()
        self.pid = None
        self.sip_port = None
        self.alive = True

    @property
    def free(self) -> int:
        return self.capacity - len(self.in_flight) if self.alive else 0


class EnginePool:
    """``processes`` engine processes of 4 calls each. Context manager."""

    def __init__(self, processes: int, config: EngineConfig | None = None,
                 start_timeout: float = 30.0):
        if processes < 0:
            raise SipError("an engine pool cannot have a negative size")
        self.config = config or EngineConfig()
        self.n = processes
        self.start_timeout = start_timeout
        self._procs: list[_Proc] = []
        self._zygotes: list[subprocess.Popen] = []
        self._slots = gevent.lock.Semaphore(0)
        self._readers: list = []
        self._closing = False
        self._growing = gevent.lock.RLock()
        # Records of calls whose caller stopped waiting (user killed at test stop):
        # the call is hung up and its record handed here instead of being lost.
        self.on_orphan = None
        # Answer events: the record as it stood at the answer, as soon as it came.
        self.on_answer = None
        self.worker = worker_id()

    def __enter__(self) -> "EnginePool":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> None:
        if self.n:
            self.grow(self.n)

    def ensure_capacity(self, calls: int) -> None:
        """Grow (never shrink) until ``calls`` calls fit; one grower at a time."""
        with self._growing:
            missing = calls - self.capacity
            if missing > 0:
                per = max(1, self.config_capacity)
                self.grow(-(-missing // per))

    config_capacity = CAPACITY  # calls per engine process, known before any has started

    def grow(self, processes: int) -> None:
        """Start ``processes`` more engine processes (one zygote forks them)."""
        new, theirs = [], []
        for _ in range(processes):
            ours, their = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            theirs.append(their)
            new.append(_Proc(len(self._procs) + len(new), gevent.socket.socket(fileno=ours.detach())))
        self._procs.extend(new)
        fds = [s.fileno() for s in theirs]
        cmd = [sys.executable, "-m", "harness.sip.host",
               json.dumps(wire.config_to_dict(self.config)), *map(str, fds)]
        self._zygotes.append(subprocess.Popen(
            cmd, pass_fds=fds, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            start_new_session=True))
        for s in theirs:
            s.close()
        self._readers.extend(gevent.spawn(self._read, p) for p in new)
        try:
            self._await_ready(new)
        except BaseException:
            self.close()
            raise
        for p in new:
            for _ in range(p.capacity):
                self._slots.release()

    def _await_ready(self, procs) -> None:
        with gevent.Timeout(self.start_timeout, SipError(
                f"engine processes did not start within {self.start_timeout:.0f} s")):
            for p in procs:
                msg = p.ready.get()
                if msg.get("ev") == "error":
                    raise SipError(msg["message"])

    def close(self) -> None:
        """Stop every engine process (live calls get BYE/CANCEL) and reap the zygotes."""
        self._closing = True
        for p in self._procs:
            try:
                p.sock.sendall(wire.encode({"op": "quit"}))
            except OSError:
                pass
        zygotes, self._zygotes = self._zygotes, []
        for z in zygotes:
            self._wait_zygote(z, 5.0)
        for p in self._procs:
            p.alive = False
            p.sock.close()
            for res in p.in_flight.values():
                if not res.ready():
                    res.set_exception(SipError("engine pool closed"))
        gevent.killall(self._readers, block=False)

    @staticmethod
    def _wait_zygote(z: subprocess.Popen, timeout: float) -> None:
        for sig, wait in ((None, timeout), (15, 2.0), (9, 5.0)):
            if sig is not None and z.poll() is None:
                try:
                    os.killpg(z.pid, sig)
                except ProcessLookupError:
                    pass
            with gevent.Timeout(wait, False):
                while z.poll() is None:
                    gevent.sleep(0.05)
            if z.poll() is not None:
                return

    # -- properties -------------------------------------------------------------
    @property
    def capacity(self) -> int:
        return sum(p.capacity for p in self._procs if p.alive)

    @property
    def active(self) -> int:
        return sum(len(p.in_flight) for p in self._procs)

    @property
    def pids(self) -> list[int]:
        return [z.pid for z in self._zygotes] + [p.pid for p in self._procs if p.pid]

    @property
    def sip_ports(self) -> list[int]:
        return [p.sip_port for p in self._procs if p.sip_port]

    # -- calls ------------------------------------------------------------------
    def call(self, spec: CallSpec) -> dict:
        """Place one call and return its record when it ends (blocks this greenlet
        while all slots are taken, then while the call lasts). If the greenlet is
        killed meanwhile, the call is hung up and its record goes to ``on_orphan``."""
        if self._closing:
            raise SipError("engine pool closed")
        self._slots.acquire()
        return self._call(spec)   # _call releases the slot, now or when abandoned

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no call is in flight (abandoned ones included)."""
        with gevent.Timeout(timeout, False):
            while self.active:
                gevent.sleep(0.02)
        return not self.active

    def _call(self, spec: CallSpec) -> dict:
        proc = max(self._procs, key=lambda p: p.free)
        if proc.free <= 0:
            self._slots.release()
            raise SipError("no live engine process has a free call slot")
        result = gevent.event.AsyncResult()
        proc.in_flight[spec.call_id] = result
        done = False
        try:
            proc.sock.sendall(wire.encode({"op": "call", "spec": wire.spec_to_dict(spec)}))
            record = result.get()
            done = True
            return record
        except SipError:
            done = True
            raise
        finally:
            if done or not proc.alive:
                proc.in_flight.pop(spec.call_id, None)
                self._slots.release()
            else:
                self._abandon(proc, spec.call_id, result)

    def _abandon(self, proc: _Proc, call_id: str, result) -> None:
        """The caller stopped waiting: end the call now, route its record to on_orphan.
        The slot stays taken until the record arrives (admission stays exact)."""
        def deliver(res):
            proc.in_flight.pop(call_id, None)
            self._slots.release()
            if res.successful() and self.on_orphan is not None:
                self.on_orphan(res.value)

        result.rawlink(deliver)
        try:
            proc.sock.sendall(wire.encode({"op": "hangup", "call_id": call_id}))
        except OSError:
            pass

    def _read(self, proc: _Proc) -> None:
        buf = wire.LineBuffer()
        try:
            while True:
                data = proc.sock.recv(65536)
                if not data:
                    break
                for msg in buf.feed(data):
                    self._dispatch(proc, msg)
        except OSError:
            pass
        finally:
            self._lost(proc)

    def _dispatch(self, proc: _Proc, msg: dict) -> None:
        ev = msg.get("ev")
        if ev == "ready":
            proc.pid, proc.sip_port, proc.capacity = msg["pid"], msg["sip_port"], msg["capacity"]
            proc.ready.set(msg)
        elif ev == "error":
            proc.ready.set(msg)
        elif ev == "record":
            rec = msg["record"]
            # "worker" names this process (the Locust worker); the engine keeps its pid.
            rec["engine_pid"], rec["worker"] = proc.pid, self.worker
            res = proc.in_flight.get(rec["call_id"])
            if res is not None:
                res.set(rec)
        elif ev == "answer":
            if self.on_answer is not None:
                rec = msg["record"]
                rec["engine_pid"], rec["worker"] = proc.pid, self.worker
                self.on_answer(rec)
        elif ev == "rejected":
            res = proc.in_flight.get(msg["call_id"])
            if res is not None:
                res.set_exception(SipError(msg["message"]))

    def _lost(self, proc: _Proc) -> None:
        if proc.alive and not self._closing:
            log.warning("engine process %s (pid %s) went away", proc.index, proc.pid)
        proc.alive = False
        if not proc.ready.ready():
            proc.ready.set({"ev": "error", "message": "engine process exited during start-up"})
        for res in proc.in_flight.values():
            if not res.ready():
                res.set_exception(SipError(f"engine process {proc.pid} exited mid-call"))
