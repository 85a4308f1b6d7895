"""The one small platform interface the controller uses, for the twin, Genesys and CXone.

``PlatformAdapter`` wraps a RetryingClient and an endpoint map. The platforms differ
only in their map and in how queue figures are named (``GenesysAdapter``,
``CxoneAdapter``); ``TwinAdapter`` speaks either dialect and adds its fault and ground
truth routes. ``open_adapter(conn)`` picks the class. Use it with ``with`` so the HTTP
client is closed. Tests pass an ``httpx.MockTransport`` as ``transport``.
"""

from __future__ import annotations

from typing import Any, Callable

import httpx

from harness.errors import PlatformError
from harness.platforms.auth import TokenManager
from harness.platforms.credentials import Connection
from harness.platforms.endpoints import Endpoint, endpoint_map
from harness.platforms.http import RetryingClient
from harness.platforms.sse import EventFeed


class PlatformAdapter:
    # (wait, agents) keys of the queue realtime body, per dialect
    QUEUE_KEYS = {"genesys": ("waitTime", "availableAgents"), "cxone": ("avgWait", "agentCount")}

    def __init__(self, conn: Connection, *, transport: httpx.BaseTransport | None = None,
                 on_call: Callable[[dict], None] | None = None, sleep=None,
                 clock=None, endpoints: dict[str, Endpoint] | None = None):
        self.conn = conn
        self.is_twin = conn.platform == "twin"
        self.endpoints = endpoints or endpoint_map(conn.api, twin=self.is_twin)
        self.http = httpx.Client(transport=transport, timeout=conn.request_timeout_s)
        kwargs = {"clock": clock} if clock else {}
        self.tokens = TokenManager(self.http, conn.token_url, conn.credentials(), **kwargs)
        extra = {"sleep": sleep} if sleep else {}
        self.client = RetryingClient(self.http, conn.base_url, self.tokens,
                                     max_retries=conn.max_retries, budget=conn.api_call_budget,
                                     on_call=on_call, **extra)

    def __enter__(self) -> "PlatformAdapter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # -- operations -----------------------------------------------------------------
    def _call(self, op: str, *, id: str | None = None, json: Any = None, params=None,
              essential: bool = False) -> Any:
        ep = self.endpoints.get(op)
        if ep is None:
            raise PlatformError(f"{self.conn.platform} has no {op} operation")
        path = ep.path.format(id=id) if id else ep.path
        return self.client.request(ep.method, path, json=json, params=params, essential=essential)

    def get_trunk(self, trunk_id: str, essential: bool = False) -> dict:
        return self._call("get_trunk", id=trunk_id, essential=essential)

    def update_trunk(self, trunk_id: str, body: dict, essential: bool = False) -> dict:
        return self._call("update_trunk", id=trunk_id, json=body, essential=essential)

    def queue_realtime(self, queue_id: str) -> dict:
        """Queue figures normalized to ``{"waiting_s", "agents", "answered", "offered"}``."""
        raw = self._call("queue_realtime", id=queue_id)
        wait_key, agents_key = self.QUEUE_KEYS[self.conn.api]
        waiting, agents = raw.get(wait_key), raw.get(agents_key)
        return {"waiting_s": waiting, "agents": agents, "answered": raw.get("answeredCalls"),
                "offered": raw.get("offeredCalls"), "as_of": raw.get("asOf"), "raw": raw}

    def schedules(self, queue_id: str, start: str, end: str) -> list[dict]:
        body = self._call("schedules", params={"queueId": queue_id, "from": start, "to": end})
        return list(body.get("intervals", []))

    def get_faults(self, essential: bool = False) -> dict:
        raise PlatformError(f"{self.conn.platform} has no twin faults")

    def put_faults(self, body: dict, essential: bool = False) -> dict:
        raise PlatformError(f"{self.conn.platform} has no twin faults")

    def granted_scopes(self) -> frozenset[str]:
        self.tokens.header()
        return self.tokens.granted_scopes

    def required_scopes(self, ops: list[str]) -> set[str]:
        return {self.endpoints[op].scope for op in ops if op in self.endpoints}

    def event_feed(self, on_event=None) -> EventFeed:
        return EventFeed(self.http, self.conn.events_url, self.tokens.header,
                         self.tokens.invalidate, on_event=on_event)


def open_adapter(conn: Connection, **kwargs) -> PlatformAdapter:
    """The adapter class for ``conn.platform`` (twin, genesys, cxone)."""
    from harness.platforms.cxone import CxoneAdapter
    from harness.platforms.genesys import GenesysAdapter
    from harness.platforms.twin import TwinAdapter
    classes = {"twin": TwinAdapter, "genesys": GenesysAdapter, "cxone": CxoneAdapter}
    return classes[conn.platform](conn, **kwargs)
