"""The twin's event bus: the model publishes, SSE clients subscribe.

``publish`` is called on the hub by the model (never blocks); every subscriber has its
own bounded queue, so a slow reader loses its oldest events instead of slowing calls.
A short history lets a client that connects late replay what it missed
(``?replay=1``), which keeps tests free of connect-before-act races.
"""

from __future__ import annotations

import collections
import json
from typing import Iterator

KEEPALIVE_SECONDS = 5.0


class Subscription:
    def __init__(self, bus: "EventBus", maxlen: int):
        import gevent.event

        self._bus = bus
        self._items: collections.deque = collections.deque(maxlen=maxlen)
        self._ready = gevent.event.Event()
        self.closed = False

    def put(self, event: dict) -> None:
        self._items.append(event)
        self._ready.set()

    def get(self, timeout: float) -> dict | None:
        """The next event, or None after ``timeout`` seconds without one."""
        if not self._items:
            self._ready.clear()
            self._ready.wait(timeout)
        return self._items.popleft() if self._items else None

    def close(self) -> None:
        self.closed = True
        self._bus._subscribers.discard(self)


class EventBus:
    def __init__(self, history: int = 20_000, per_subscriber: int = 50_000):
        self.history: collections.deque = collections.deque(maxlen=history)
        self._subscribers: set[Subscription] = set()
        self._per_subscriber = per_subscriber

    def publish(self, event: dict) -> None:
        self.history.append(event)
        for sub in list(self._subscribers):
            sub.put(event)

    def subscribe(self, replay: bool = False) -> Subscription:
        sub = Subscription(self, self._per_subscriber)
        if replay:
            for event in self.history:
                sub.put(event)
        self._subscribers.add(sub)
        return sub


def sse_format(event: dict) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


def sse_stream(bus: EventBus, replay: bool = False,
               keepalive: float = KEEPALIVE_SECONDS) -> Iterator[bytes]:
    """Yield SSE frames forever; a ``: keepalive`` comment after ``keepalive`` idle seconds."""
    sub = bus.subscribe(replay)
    try:
        yield b": connected\n\n"
        while True:
            event = sub.get(keepalive)
            yield sse_format(event) if event is not None else b": keepalive\n\n"
    finally:
        sub.close()
