"""httpx client for the platform REST API as Locust sees it.

Token from the client-credentials endpoint (renewed on 401 or expiry), every
request tagged with the tag header, each reported with ``events.request`` (type
GET, name = the route template, so labels stay bounded), 429 honoured by sleeping
``Retry-After`` (capped) before the next request.
"""

from __future__ import annotations

import time

import gevent
import httpx

from harness.errors import ConfigError
from harness.load.settings import api_secret

ROUTES = {
    "genesys": {"trunk": "/api/v2/telephony/phone/trunks/{id}",
                "queue": "/api/v2/analytics/queues/{id}/realtime"},
    "cxone": {"trunk": "/api/v2.0/telephony/trunks/{id}",
              "queue": "/api/v2.0/analytics/queues/{id}/realtime"},
}
MAX_RETRY_AFTER = 30.0


class ApiClient:
    def __init__(self, base_url: str, token_url: str, client_id: str, client_secret: str,
                 platform: str, trunk_id: str, queue_id: str, tag_header: str, tag: str,
                 events, transport: httpx.BaseTransport | None = None):
        if not base_url:
            raise ConfigError("no platform API: give --api-base-url", key="api-base-url")
        self.events, self.platform = events, platform
        self.token_url = token_url or base_url.rstrip("/") + "/oauth/token"
        self.client_id, self._secret = client_id, client_secret
        self.trunk_id, self.queue_id = trunk_id, queue_id
        self.http = httpx.Client(base_url=base_url, timeout=10.0, transport=transport,
                                 headers={tag_header: tag})
        self._token, self._expires = None, 0.0
        self.blocked_until = 0.0

    @classmethod
    def from_options(cls, ns, events) -> "ApiClient":
        return cls(ns.api_base_url, ns.api_token_url, ns.api_client_id, api_secret(ns),
                   ns.api_platform, ns.api_trunk_id, ns.api_queue_id, ns.sip_tag_header,
                   ns.sip_tag, events)

    def close(self) -> None:
        self.http.close()

    def token(self) -> str:
        if self._token is None or time.time() > self._expires - 5:
            r = self.http.post(self.token_url, data={
                "grant_type": "client_credentials", "client_id": self.client_id,
                "client_secret": self._secret})
            r.raise_for_status()
            body = r.json()
            self._token = body["access_token"]
            self._expires = time.time() + float(body.get("expires_in", 300))
        return self._token

    def read_trunk(self):
        if self.trunk_id:
            return self._get("trunk", self.trunk_id)

    def read_queue(self):
        if self.queue_id:
            return self._get("queue", self.queue_id)

    def _get(self, kind: str, ident: str):
        wait = self.blocked_until - time.time()
        if wait > 0:
            gevent.sleep(wait)
        route = ROUTES[self.platform][kind]
        start = time.perf_counter()
        exc, resp = None, None
        try:
            resp = self.http.get(route.format(id=ident),
                                 headers={"Authorization": f"Bearer {self.token()}"})
            if resp.status_code == 401:
                self._token = None
            if resp.status_code == 429:
                self.blocked_until = time.time() + _retry_after(resp)
            if resp.status_code >= 400:
                exc = httpx.HTTPStatusError(f"HTTP {resp.status_code}", request=resp.request,
                                            response=resp)
        except httpx.HTTPError as e:
            exc = e
        self.events.request.fire(
            request_type="GET", name=route, response_time=(time.perf_counter() - start) * 1000,
            response_length=len(resp.content) if resp is not None else 0, exception=exc)
        return resp


def _retry_after(resp: httpx.Response) -> float:
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(resp.headers.get("Retry-After", "1"))))
    except ValueError:
        return 1.0
