"""The assembled twin: routing model + SIP listeners + REST API on one gevent hub.

``Twin(topology).start()`` binds everything on loopback and returns the endpoints
dict (CONTRACTS.md section 1); ``stop()`` closes it all. Everything runs in the
calling process's hub, so the model needs no locks.
"""

from __future__ import annotations

import logging
import os

from harness.errors import ConfigError
from harness.twin.auth import Authority
from harness.twin.clock import GeventScheduler
from harness.twin.events import EventBus
from harness.twin.model import TwinModel
from harness.twin.topology import Topology

log = logging.getLogger(__name__)


class _QuietLog:
    """pywsgi access log to the debug logger (a line per request is noise at 300 req/min)."""

    def write(self, line: str) -> None:
        log.debug(line.rstrip())


def _nodelay_server():
    """WSGIServer with TCP_NODELAY on each connection: pywsgi writes headers and body in
    separate sends, and Nagle plus delayed ACK would add 40 ms to every request."""
    import socket

    from gevent.pywsgi import WSGIServer

    class NoDelayWSGIServer(WSGIServer):
        def handle(self, sock, address):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            return super().handle(sock, address)

    return NoDelayWSGIServer


class Twin:
    def __init__(self, topology: Topology, time_scale: float = 1.0, host: str = "127.0.0.1",
                 rest_port: int = 0, seed: int | None = None, allow_non_loopback: bool = False,
                 advertise_host: str | None = None):
        if time_scale <= 0:
            raise ConfigError(f"--time-scale must be > 0, got {time_scale}")
        if host not in ("127.0.0.1", "localhost") and not allow_non_loopback:
            raise ConfigError(f"refusing to bind the twin on non-loopback host {host!r}")
        self.topology, self.time_scale, self.host, self.rest_port = topology, time_scale, host, rest_port
        self.seed = seed
        self.allow_non_loopback = allow_non_loopback
        if host in ("0.0.0.0", "::") and not advertise_host:
            raise ConfigError("binding a wildcard address needs --advertise-host (the name callers reach)")
        self.advertise_host = advertise_host or ("127.0.0.1" if host == "localhost" else host)
        self.bus = EventBus()
        self.model: TwinModel | None = None
        self.sip = None
        self._http = None
        self.endpoints: dict | None = None

    def start(self) -> dict:
        import gevent
        from harness.twin.api import TwinApi
        from harness.twin.sip import SipServer

        scheduler = GeventScheduler()
        self.model = TwinModel(self.topology, scheduler, self.bus.publish,
                               time_scale=self.time_scale, seed=self.seed)
        self.sip = SipServer(self.model, scheduler, self.host,
                             allow_non_loopback=self.allow_non_loopback,
                             advertise_host=self.advertise_host)
        ports = {t.id: self.sip.add_listener(t.id, t.port) for t in self.topology.trunks}
        authority = Authority(self.topology.clients, self.topology.delays.token_lifetime)
        api = TwinApi(self.model, self.bus, authority, clock=scheduler.now, sleep=gevent.sleep)
        try:
            self._http = _nodelay_server()((self.host, self.rest_port), api, log=_QuietLog(), error_log=_QuietLog())
            self._http.start()
        except OSError as exc:
            self.sip.stop()
            raise ConfigError(f"cannot bind REST port {self.rest_port}: {exc.strerror}") from exc
        self.sip.start()
        self.model.start()
        self.endpoints = self._endpoints(ports, self._http.server_port)
        return self.endpoints

    def _endpoints(self, ports: dict[str, int], rest_port: int) -> dict:
        base = f"http://{self.advertise_host}:{rest_port}"
        client = self.topology.clients[0]
        return {
            "rest_base_url": base,
            "token_url": f"{base}/oauth/token",
            "events_url": f"{base}/api/v2/events/stream",
            "ground_truth_url": f"{base}/twin/v1/ground-truth",
            "client_id": client.id,
            "client_secret": client.secret,
            "time_scale": self.time_scale,
            "pid": os.getpid(),
            "media_port": self.sip.media_port,
            "trunks": [{"id": t.id, "name": t.name, "platform": t.platform,
                        "sip_uri": f"sip:chaos@{self.advertise_host}:{ports[t.id]}", "queue_id": t.queue_id}
                       for t in self.topology.trunks],
            "queues": [{"id": q.id, "name": q.name, "platform": q.platform}
                       for q in self.topology.queues],
        }

    def stop(self) -> None:
        if self.model is not None:
            self.model.stop()
        if self._http is not None:
            self._http.stop(timeout=1)
            self._http = None
        if self.sip is not None:
            self.sip.stop()
            self.sip = None
