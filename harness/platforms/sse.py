"""Server-Sent Events: a pure parser and a background reader with a searchable buffer.

``SseParser.feed(line)`` takes one decoded line (without its newline) and returns an
event dict when a blank line ends one (WHATWG HTML, "Interpreting an event stream").
``EventFeed`` runs a daemon thread that keeps reading the platform's event stream,
reconnecting with backoff (and ``Last-Event-ID``, so events sent while it was
disconnected are replayed), renewing the token on 401, and stores events so that
convergence checks can ask "has an event like this arrived since time T?".
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable

import httpx

log = logging.getLogger(__name__)


class SseParser:
    def __init__(self) -> None:
        self._data: list[str] = []
        self._type = "message"
        self.last_id: str | None = None   # the stream's ``id:``; sent back as Last-Event-ID

    def feed(self, line: str) -> dict | None:
        if line == "":
            if not self._data:
                self._type = "message"
                return None
            raw, kind = "\n".join(self._data), self._type
            self._data, self._type = [], "message"
            try:
                event = json.loads(raw)
            except ValueError:
                event = {"data": raw}
            if isinstance(event, dict):
                event.setdefault("type", kind)
                return event
            return {"type": kind, "data": event}
        if line.startswith(":"):
            return None  # comment (keepalive)
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self._type = value
        elif name == "id" and "\0" not in value:
            self.last_id = value
        elif name == "data":
            self._data.append(value)
        return None


class EventFeed:
    """Background reader of an SSE URL; use as a context manager."""

    def __init__(self, http: httpx.Client, url: str, auth_header: Callable[[], dict],
                 invalidate: Callable[[], None], on_event: Callable[[dict], None] | None = None):
        self.http, self.url = http, url
        self.auth_header, self.invalidate = auth_header, invalidate
        self.on_event = on_event
        self.events: list[dict] = []
        self.last_id: str | None = None
        self.connected = threading.Event()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="event-feed", daemon=True)

    def __enter__(self) -> "EventFeed":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    def find(self, predicate: Callable[[dict], bool], since: float = 0.0) -> dict | None:
        with self._cond:
            for event in self.events:
                if event.get("timestamp", 0.0) >= since and predicate(event):
                    return event
        return None

    def wait_for(self, predicate: Callable[[dict], bool], since: float, timeout: float,
                 stop: Callable[[], bool] = lambda: False) -> dict | None:
        deadline = time.time() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if event.get("timestamp", 0.0) >= since and predicate(event):
                        return event
                left = deadline - time.time()
                if left <= 0 or stop():
                    return None
                self._cond.wait(min(left, 0.2))

    def _run(self) -> None:
        delay = 0.1
        while not self._stop.is_set():
            try:
                self._read_once()
                delay = 0.1
            except httpx.HTTPError as exc:
                log.debug("event stream dropped: %s", type(exc).__name__)
            except Exception:  # keep the feed alive whatever the stream sends
                log.exception("event stream reader failed")
            self.connected.clear()
            self._stop.wait(delay)
            delay = min(delay * 2, 2.0)

    def _read_once(self) -> None:
        timeout = httpx.Timeout(5.0, read=15.0)  # keepalives arrive every 5 s
        headers = self.auth_header()
        if self.last_id is not None:
            headers["Last-Event-ID"] = self.last_id
        with self.http.stream("GET", self.url, headers=headers, timeout=timeout) as resp:
            if resp.status_code == 401:
                self.invalidate()
                return
            if resp.status_code != 200:
                log.debug("event stream answered %s", resp.status_code)
                return
            self.connected.set()
            parser = SseParser()
            for line in resp.iter_lines():
                if self._stop.is_set():
                    return
                event = parser.feed(line.rstrip("\r"))
                if event is not None:
                    self.last_id = parser.last_id
                    self._add(event)

    def _add(self, event: dict) -> None:
        event.setdefault("timestamp", time.time())
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()
        if self.on_event:
            self.on_event(event)
