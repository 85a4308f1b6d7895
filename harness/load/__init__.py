"""Locust integration: tagged SIP and API load, reported through Locust's events.

- ``users``: SipCaller (one call at a time through the worker's EnginePool) and
  ApiUser (``api.ApiClient``: token, tag header, 429 Retry-After);
- ``settings``: Locust command-line options, validated into ``LoadSettings``;
- ``reporting``: ``events.request`` per call, worker -> master record batches;
- ``sink.CallSink``: on the master, calls.jsonl + ``subscribe(fn(records))``;
- ``plugin.install(environment)``: wires the above by runner type;
- ``session.LoadSession``: a distributed run on this machine from Python;
- ``cli``: ``ccharness load``. ``locustfile`` is what ``locust -f`` and the workers run.
"""
