"""Link the controller to the load side (``harness.load.session.LoadSession``).

The controller needs four things from a load: ``subscribe(fn(records))`` (the
master-side record sink), ``start()``, ``wait_until_holding(timeout, stop)`` (the fault
schedule follows the load: inject only once every caller has a call up) and
``stop()``. ``LoadLink`` adapts a LoadSession (Locust master in this process, local
worker processes) to that seam. Import order matters: Locust monkey-patches gevent,
so ``ccharness run`` imports this module before httpx for experiments with load.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import ConfigError


def session_class():
    try:
        from harness.load.session import LoadSession
    except ImportError:
        raise ConfigError("this experiment has a load section but this build has no load session "
                          "(harness.load.session); remove `load:` for an API-only run") from None
    return LoadSession


class LoadLink:
    def __init__(self, session):
        self.session = session
        self._entered = False

    def subscribe(self, fn) -> None:
        self.session.sink.subscribe(fn)

    def start(self) -> None:
        self.session.__enter__()          # master + workers up (raises on failure)
        self._entered = True
        self.session.start()

    def interrupted(self) -> bool:
        """The session's own SIGTERM handler fired (it replaces the controller's)."""
        return self._entered and self.session.stop_requested.is_set()

    def wait_until_holding(self, timeout: float, stop=lambda: False) -> bool:
        return self.session.wait_until_steady(timeout)

    def stop(self) -> None:
        if not self._entered:
            return
        try:
            self.session.stop()
        finally:
            self.session.close()
            self._entered = False


def sip_target(exp, plan, endpoints: dict | None) -> str:
    """The entry trunk's SIP URI, from the twin's endpoints file."""
    trunk_id = plan.entry_trunk_id
    for t in (endpoints or {}).get("trunks", []):
        if t.get("id") == trunk_id:
            return t["sip_uri"]
    raise ConfigError(f"no SIP URI known for the load target {exp.load.target!r}: "
                      "load runs need the twin's endpoints file")


def api_users(exp, plan, conn, endpoints: dict | None) -> dict | None:
    """LoadSession's ``api`` dict for ``load.api_users`` ApiUsers, or None for none.

    They read the entry trunk and its queue (the endpoints file's ``queue_id``, else
    the experiment's convergence queue) on the experiment's platform API with the
    run's own client credentials; the secret goes to the workers in the spawn
    message, never on a command line (LoadSession)."""
    users = int(exp.load.api_users or 0)
    if users <= 0:
        return None
    trunk_id = plan.entry_trunk_id or ""
    queue_id = next((t.get("queue_id") for t in (endpoints or {}).get("trunks", [])
                     if t.get("id") == trunk_id), None) or plan.queue_id or ""
    creds = conn.credentials()
    return {"base_url": conn.base_url, "token_url": conn.token_url,
            "client_id": creds.client_id, "client_secret": creds.client_secret,
            "platform": conn.api, "trunk_id": trunk_id, "queue_id": queue_id, "users": users}


def min_interval(load) -> float:
    """Each caller's pacing: ``rate_per_second`` spread over the callers, else the
    default (1 s); never below the load side's floor."""
    from harness.load.settings import DEFAULT_MIN_INTERVAL, MIN_INTERVAL_FLOOR
    if load.rate_per_s:
        return max(MIN_INTERVAL_FLOOR, load.concurrent / load.rate_per_s)
    return DEFAULT_MIN_INTERVAL


def session_kwargs(exp, plan, conn, run_dir: Path, workers: int = 2) -> dict:
    """LoadSession's arguments for an experiment (pure but for reading files)."""
    from harness.platforms.credentials import read_endpoints
    endpoints = read_endpoints(conn.endpoints_file) if conn.endpoints_file else None
    load = exp.load
    return {"targets": [sip_target(exp, plan, endpoints)], "concurrent": load.concurrent,
            "hold": f"fixed:{load.hold_s:g}", "duration": load.duration_s, "tag": load.tag,
            "workers": workers, "out_dir": str(run_dir / "load"),
            "endpoints_file": conn.endpoints_file or "", "min_interval": min_interval(load),
            "api": api_users(exp, plan, conn, endpoints)}


# LoadSession's deployment options (`ccharness run --master-bind-host ...`); all default
# to loopback, a free port and local workers only.
DEPLOY_KEYS = ("master_host", "master_port", "expect_workers", "local_workers")


def deploy_kwargs(**options) -> dict:
    """The deployment options that were given (None means: LoadSession's default)."""
    unknown = set(options) - set(DEPLOY_KEYS)
    if unknown:
        raise TypeError(f"unknown load deployment option(s): {', '.join(sorted(unknown))}")
    return {k: v for k, v in options.items() if v is not None}


def open_load(exp, plan, conn, run_dir: Path, workers: int = 2, *, master_host: str | None = None,
              master_port: int | None = None, expect_workers: int | None = None,
              local_workers: int | None = None) -> LoadLink:
    """A LoadLink for ``exp``. ``workers`` local worker processes, unless ``local_workers``
    says otherwise; ``master_host``/``master_port``/``expect_workers`` are for a real
    deployment with external workers (LoadSession); None keeps LoadSession's default."""
    LoadSession = session_class()
    kwargs = session_kwargs(exp, plan, conn, run_dir, workers)
    kwargs.update(deploy_kwargs(master_host=master_host, master_port=master_port,
                                expect_workers=expect_workers, local_workers=local_workers))
    return LoadLink(LoadSession(**kwargs))
