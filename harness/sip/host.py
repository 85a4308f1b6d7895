"""Engine processes: a zygote that forks one PJSUA2 engine per socket it is given.

``python -m harness.sip.host CONFIG_JSON FD [FD ...]`` imports pjsua2 once, then forks
one child per inherited socket fd; each child creates its own Endpoint (one per
process, DESIGN.md) and serves the wire protocol on its socket until EOF or "quit".
Forking after the import and before ``libCreate`` shares the interpreter and the
module's pages copy-on-write, which is what keeps the summed PSS low; no thread
exists yet at fork time, so forking is safe. The zygote waits for its children and
kills them on SIGTERM; a child exits on EOF, so a dead client leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import sys
import time

from harness.errors import SipError
from harness.sip import wire
from harness.sip.engine import CAPACITY, Engine


def serve(sock: socket.socket, config: dict) -> int:
    """Run one engine on ``sock`` until EOF or quit. Returns an exit status."""
    cfg = wire.config_from_dict(config)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)

    def wake() -> None:
        try:
            os.write(wake_w, b"x")
        except BlockingIOError:
            pass  # already pending

    def send(msg: dict) -> None:
        try:
            sock.sendall(wire.encode(msg))
        except OSError:
            pass   # the client is gone (EOF follows); records of a dead client are moot

    engine = Engine(cfg, lambda rec: send({"ev": "record", "record": rec}), wake,
                    on_answer=lambda rec: send({"ev": "answer", "record": rec}))
    try:
        engine.start()
    except SipError as exc:
        send({"ev": "error", "message": exc.message})
        return 2
    try:
        send({"ev": "ready", "pid": os.getpid(), "sip_port": engine.sip_port, "capacity": CAPACITY})
        _loop(sock, engine, wake_r, send)
    finally:
        engine.close()
    return 0


def _loop(sock, engine: Engine, wake_r: int, send) -> None:
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ, "sock")
    sel.register(wake_r, selectors.EVENT_READ, "wake")
    buf = wire.LineBuffer()
    while True:
        deadline = engine.next_deadline()
        timeout = None if deadline is None else max(0.0, deadline - time.time())
        for key, _ in sel.select(timeout):
            if key.data == "wake":
                _drain(wake_r)
                continue
            data = sock.recv(65536)
            if not data:
                return
            for msg in buf.feed(data):
                if msg.get("op") == "quit":
                    return
                _handle(engine, msg, send)
        engine.service()


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _handle(engine: Engine, msg: dict, send) -> None:
    if msg.get("op") == "hangup":
        engine.hangup(msg["call_id"])
        return
    if msg.get("op") != "call":
        return
    spec = wire.spec_from_dict(msg["spec"])
    try:
        engine.place(spec)
    except SipError as exc:
        send({"ev": "rejected", "call_id": spec.call_id, "message": exc.message,
              "retryable": exc.retryable})


def main(argv: list[str]) -> int:
    config = json.loads(argv[0])
    fds = [int(a) for a in argv[1:]]
    import pjsua2  # noqa: F401,PLC0415 - loaded once here, shared by the forked children

    children = []
    for i, fd in enumerate(fds):
        pid = os.fork()
        if pid == 0:
            for other in fds:
                if other != fd:
                    os.close(other)
            cfg = dict(config)
            if cfg.get("sip_port"):
                cfg["sip_port"] = int(cfg["sip_port"]) + i
            os._exit(_child(fd, cfg))
        children.append(pid)
    for fd in fds:
        os.close(fd)
    return _wait(children)


def _child(fd: int, cfg: dict) -> int:
    # SIGTERM: leave through engine.close() so live calls get their BYE/CANCEL.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return serve(socket.socket(fileno=fd), cfg)
    except SystemExit:
        return 0
    except Exception:  # noqa: BLE001 - report, never hang the client
        import traceback

        traceback.print_exc()
        return 1


def _wait(children: list[int]) -> int:
    def stop(_sig, _frame):
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the client decides when we stop
    status = 0
    for pid in children:
        while True:
            try:
                _, st = os.waitpid(pid, 0)
                status = max(status, os.waitstatus_to_exitcode(st) if st else 0)
                break
            except ChildProcessError:
                break
            except InterruptedError:
                continue
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
