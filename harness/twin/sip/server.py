"""The twin's SIP I/O edge: UDP sockets on the gevent hub around a ``UasCore``.

One UDP socket per trunk (its ``sip_uri``), one reader greenlet per socket, and one
media socket that is bound but never read: RTP sent to the answer's media port is
dropped by the kernel when its buffer fills, instead of drawing ICMP
port-unreachable back at the caller.

Sockets are plain non-blocking stdlib sockets: reads wait on a gevent io watcher,
and writes never block (a full send buffer drops the datagram, as UDP may), so
``send`` is safe from timer callbacks running in the hub itself.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket

from harness.errors import ConfigError
from harness.twin.legs import CallRouter, Scheduler

from .uas import UasCore

log = logging.getLogger(__name__)
RECV_BUFFER = 4 * 1024 * 1024  # absorbs bursts of 300 calls/s while the hub is busy


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SipServer:
    """``add_listener`` per trunk, then ``start()``; ``stop()`` closes everything."""

    def __init__(self, router: CallRouter, scheduler: Scheduler, host: str = "127.0.0.1", *,
                 allow_non_loopback: bool = False, advertise_host: str | None = None):
        if not allow_non_loopback and not is_loopback(host):
            raise ConfigError(f"refusing to bind SIP on non-loopback host {host!r} "
                              "(pass allow_non_loopback=True to mean it)")
        self.host = "127.0.0.1" if host == "localhost" else host
        # The address put in Via/Contact/SDP: the bound one, unless the twin binds a
        # wildcard for a deployment and callers must be told a reachable name.
        self.advertise_host = advertise_host or self.host
        self.core = UasCore(router, scheduler, self._send, local_host=self.advertise_host)
        self._socks: dict[str, socket.socket] = {}
        self._greenlets: list = []
        self._io: dict[str, object] = {}
        self._counters = {"datagrams_sent": 0, "send_errors": 0, "recv_errors": 0, "internal_errors": 0}
        self._started = False
        self._media = self._bind(0)
        self.media_port: int = self._media.getsockname()[1]
        self.core.media_port = self.media_port

    # --- lifecycle ----------------------------------------------------------------

    def add_listener(self, trunk_id: str, port: int = 0) -> int:
        """Bind a UDP listener for ``trunk_id``; returns the bound port."""
        if trunk_id in self._socks:
            raise ConfigError(f"trunk {trunk_id} already has a SIP listener")
        sock = self._bind(port)
        bound = sock.getsockname()[1]
        self._socks[trunk_id] = sock
        self.core.add_trunk(trunk_id, (self.advertise_host, bound))
        if self._started:
            self._spawn(trunk_id, sock)
        return bound

    def start(self) -> None:
        """Start one reader greenlet per listener (on the current thread's hub)."""
        if self._started:
            return
        self._started = True
        for trunk_id, sock in self._socks.items():
            self._spawn(trunk_id, sock)

    def stop(self) -> None:
        """Stop readers and timers, close every socket. Idempotent."""
        import gevent

        self._started = False
        # block until the readers are gone, unless called from the hub itself (a timer)
        in_hub = gevent.getcurrent() is gevent.get_hub()
        gevent.killall(self._greenlets, block=not in_hub, timeout=None if in_hub else 2)
        self._greenlets.clear()
        for watcher in self._io.values():
            watcher.close()
        self._io.clear()
        self.core.close()
        for sock in self._socks.values():
            sock.close()
        self._socks.clear()
        self._media.close()

    @property
    def stats(self) -> dict[str, int]:
        return {**self.core.stats, **self._counters}

    def port_of(self, trunk_id: str) -> int:
        return self._socks[trunk_id].getsockname()[1]

    # --- I/O ----------------------------------------------------------------------

    def _bind(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET,
                             socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
            sock.bind((self.host, port))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"UDP port {port} on {self.host} is already in use") from None
            raise ConfigError(f"cannot bind UDP {self.host}:{port}: {exc.strerror}") from None
        sock.setblocking(False)
        return sock

    def _spawn(self, trunk_id: str, sock: socket.socket) -> None:
        import gevent

        self._greenlets.append(gevent.spawn(self._reader, trunk_id, sock))

    def _reader(self, trunk_id: str, sock: socket.socket) -> None:
        from gevent import get_hub

        hub = get_hub()
        watcher = self._io[trunk_id] = hub.loop.io(sock.fileno(), 1)
        received = self.core.datagram_received
        while True:
            try:
                data, addr = sock.recvfrom(65535)
            except BlockingIOError:
                hub.wait(watcher)
                continue
            except OSError as exc:
                if exc.errno == errno.EBADF:
                    return  # closed by stop()
                # ECONNREFUSED and friends: an ICMP error from an earlier send; go on
                self._counters["recv_errors"] += 1
                continue
            try:
                received(data, addr, trunk_id)
            except Exception:  # a bug in the model must not kill the listener
                self._counters["internal_errors"] += 1
                log.exception("twin SIP: error handling a datagram on trunk %s", trunk_id)

    def _send(self, data: bytes, addr: tuple, trunk_id: str) -> None:
        sock = self._socks.get(trunk_id)
        if sock is None:
            return
        try:
            sock.sendto(data, addr)
            self._counters["datagrams_sent"] += 1
        except OSError:  # full buffer, ICMP from a gone peer: UDP may lose it
            self._counters["send_errors"] += 1
