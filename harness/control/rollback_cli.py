"""``ccharness rollback --journal FILE``: restore every target a run journal saved.

For a run that was killed (SIGKILL, power loss) or whose rollback failed. Reads the
``start`` record for the platform connection (the secret is read again from its
environment variable or file), restores each saved target to its original (the first
``saved`` record per target, newest target first), verifies it, and appends
``resolved`` to the same journal. Exit 0 when everything is restored, 4 otherwise
(naming what is still changed and how to undo it).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from harness.control.journal import Journal, read_journal
from harness.control.rollback import Restorer, Saved
from harness.errors import ConfigError, RollbackError
from harness.platforms.adapter import open_adapter
from harness.platforms.credentials import Connection


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--journal", required=True, metavar="FILE", help="journal.jsonl of the run")
    parser.add_argument("--routing-timeout", type=float, default=60.0, metavar="S",
                        help="seconds to wait for routing to take each restore (default 60)")


def saved_stack(records: list[dict]) -> list[Saved]:
    """The first saved original per target, in the order they were saved."""
    stack, seen = [], set()
    for r in records:
        if r.get("type") == "saved" and r.get("target") not in seen:
            seen.add(r["target"])
            stack.append(Saved.from_json(r))
    return stack


def run(args: argparse.Namespace) -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise here
    path = Path(args.journal)
    try:
        records = read_journal(path)
    except OSError as exc:
        raise ConfigError(f"cannot read the journal: {exc.strerror}", path=str(path)) from None
    start = next((r for r in records if r.get("type") == "start" and "connection" in r), None)
    if start is None:
        raise ConfigError("not a run journal (no start record with a connection)", path=str(path))
    stack = saved_stack(records)
    journal = Journal(path)
    try:
        journal.write("rollback_cli", targets=[s.target for s in stack])
        if not stack:
            journal.write("resolved", why="nothing was saved, so nothing was changed")
            print(f"{path}: nothing to roll back")
            return 0
        remaining = restore(Connection.from_json(start["connection"]), stack, journal, args, path)
        if remaining:
            raise RollbackError("still changed: " + "; ".join(
                f"{r['name']} ({r['target']}): {r['problem']}; undo: {r['undo']}" for r in remaining),
                remaining)
        journal.write("resolved", why="ccharness rollback restored every target")
    finally:
        journal.close()
    for s in reversed(stack):
        print(f"restored {s.name} ({s.target})")
    return 0


def restore(conn: Connection, stack: list[Saved], journal: Journal, args, path: Path) -> list[dict]:
    with open_adapter(conn, on_call=lambda c: journal.write("call", **c)) as adapter:
        with adapter.event_feed() as feed:
            feed.wait_connected(5.0)
            restorer = Restorer(adapter, journal, feed if feed.connected.is_set() else None,
                                routing_timeout_s=args.routing_timeout, journal_path=str(path))
            return restorer.restore_all(stack)
