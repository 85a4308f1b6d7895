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


def open_load(exp, plan, conn, run_dir: Path, workers: int = 2) -> LoadLink:
    from harness.platforms.credentials import read_endpoints
    LoadSession = session_class()
    endpoints = read_endpoints(conn.endpoints_file) if conn.endpoints_file else None
    load = exp.load
    session = LoadSession([sip_target(exp, plan, endpoints)], concurrent=load.concurrent,
                          hold=f"fixed:{load.hold_s:g}", duration=load.duration_s, tag=load.tag,
                          workers=workers, out_dir=str(run_dir / "load"),
                          endpoints_file=conn.endpoints_file or "")
    return LoadLink(session)
