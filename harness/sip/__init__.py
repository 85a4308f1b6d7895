"""The PJSUA2 engine: tagged SIP calls with their outcome and timestamps.

Layout, bottom up:
- ``uri``, ``outcome``, ``profiles``, ``wire``: pure (validation, classification,
  codec/hold profiles, the engine-process protocol);
- ``engine.Engine``: one PJSUA2 Endpoint (one per process), transports on 127.0.0.1,
  admission against the 4-call cap, explicit Call destruction, records per call;
- ``host``: the engine process; a zygote imports pjsua2 once and forks N of them;
- ``pool.EnginePool``: N engine processes behind one gevent process, over sockets.

Why a pool behind each Locust worker rather than one Locust worker per 4 calls
(measured here, 40 calls held): a Locust worker is ~39 MiB PSS, an engine process
forked from the zygote ~11 MiB; so 200 calls cost ~620 MiB (2 workers + 50 engines)
instead of ~2.5 GB (50 workers with PJSUA2 inside), the master talks to 2 workers
instead of 50, and no native PJSUA2 thread ever runs inside a gevent process.
"""
