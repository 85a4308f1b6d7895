"""The SSE stream: frames, keepalive comments, replay of history."""

from __future__ import annotations

import json

from harness.twin.events import EventBus, sse_stream


def test_stream_sends_keepalive_when_idle_and_events_as_frames():
    bus = EventBus()
    stream = sse_stream(bus, keepalive=0.01)
    assert next(stream) == b": connected\n\n"
    assert next(stream) == b": keepalive\n\n"
    bus.publish({"type": "answer", "timestamp": 1.5, "platform": "genesys", "callId": "c1"})
    frame = next(stream).decode()
    assert frame.startswith("id: 1\nevent: answer\ndata: ") and frame.endswith("\n\n")
    assert json.loads(frame.split("data: ", 1)[1])["callId"] == "c1"
    stream.close()
    assert bus._subscribers == set()


def test_replay_gives_history_first():
    bus = EventBus()
    bus.publish({"type": "failover", "timestamp": 1.0, "platform": "cxone"})
    stream = sse_stream(bus, replay=True, keepalive=0.01)
    next(stream)
    assert next(stream).startswith(b"id: 1\nevent: failover\n")
    stream.close()


def test_last_event_id_resumes_after_that_event():
    bus = EventBus()
    for i in range(3):
        bus.publish({"type": "callEnded", "timestamp": float(i), "platform": "genesys", "n": i})
    stream = sse_stream(bus, after=2, keepalive=0.01)
    next(stream)
    assert next(stream).startswith(b"id: 3\n")
    assert next(stream) == b": keepalive\n\n"
    stream.close()
