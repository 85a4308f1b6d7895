"""The twin's event bus: the model publishes, SSE clients subscribe.

``publish`` is called on the hub by the model (never blocks); every subscriber has its
own bounded queue, so a slow reader loses its oldest events instead of slowing calls.
A short history lets a client that connects late replay what it missed
(``?replay=1``), which keeps tests free of connect-before-act races. Every frame carries an
``id:`` (a sequence number that never goes back, even across a reset), so a client that
reconnects with ``Last-Event-ID`` (the SSE standard) gets exactly what it missed.
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

    def put(self, item: tuple[int, dict]) -> None:
        self._items.append(item)
        self._ready.set()

    def get(self, timeout: float) -> tuple[int, dict] | None:
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
        self.history: collections.deque = collections.deque(maxlen=history)  # (seq, event)
        self._subscribers: set[Subscription] = set()
        self._per_subscriber = per_subscriber
        self._seq = 0

    def publish(self, event: dict) -> None:
        self._seq += 1
        item = (self._seq, event)
        self.history.append(item)
        for sub in list(self._subscribers):
            sub.put(item)

    def subscribe(self, replay: bool = False, after: int | None = None) -> Subscription:
        """New subscription; with ``replay`` (or ``after`` a sequence number) it first gets
        the history (newer than ``after``)."""
        sub = Subscription(self, self._per_subscriber)
        if replay or after is not None:
            for item in self.history:
                if after is None or item[0] > after:
                    sub.put(item)
        self._subscribers.add(sub)
        return sub


def sse_format(item: tuple[int, dict]) -> bytes:
    seq, event = item
    data = json.dumps(event, separators=(',', ':'))
    return f"id: {seq}\nevent: {event['type']}\ndata: {data}\n\n".encode()


def sse_stream(bus: EventBus, replay: bool = False, after: int | None = None,
               keepalive: float = KEEPALIVE_SECONDS) -> Iterator[bytes]:
    """Yield SSE frames forever; a ``: keepalive`` comment after ``keepalive`` idle seconds."""
    sub = bus.subscribe(replay, after)
    try:
        yield b": connected\n\n"
        while True:
            event = sub.get(keepalive)
            yield sse_format(event) if event is not None else b": keepalive\n\n"
    finally:
        sub.close()
