"""Link the controller to the load side (harness.load.session.LoadSession).

The controller needs four things from a load: ``subscribe(fn(records))`` (the
master-side record sink), ``start()``, ``wait_until_holding(timeout, stop)`` (the fault
schedule follows the load: inject only once the load holds its target) and ``stop()``.
``open_load`` builds that from the experiment; it raises ConfigError when this build
has no load session.
"""

from __future__ import annotations

from harness.errors import ConfigError


def open_load(exp, plan, conn):
    try:
        from harness.load.session import LoadSession  # noqa: F401
    except ImportError:
        raise ConfigError("this experiment has a load section but this build has no load session "
                          "(harness.load.session); remove `load:` for an API-only run") from None
    raise ConfigError("load sessions are not wired to the controller yet")
