"""Append-only run journal: one JSON object per line, flushed and fsync'd per record.

Record types (``type`` field) the controller and ``ccharness rollback`` rely on:
- ``start``: experiment, run id, the platform ``connection`` (no secret);
- ``transition``: ``from``, ``to``, ``why``;
- ``call``: one platform request attempt (method, path, status, duration);
- ``saved``: a target's original configuration, written BEFORE the first call that
  changes it: ``target`` (``trunk:ID`` or ``twin_faults``), ``kind``, ``id``, ``name``,
  ``original`` (full GET body), ``restore`` (the body that undoes the change);
- ``change``: a change about to be sent (``target``, ``body``, ``step``);
- ``convergence``: outcome of a convergence check (``converged`` bool, evidence);
- ``restored``: a target verified back to its original;
- ``rollback_failed``: what is still changed and how to undo it;
- ``resolved``: nothing remains changed (rollback verified or nothing was changed).
A journal with ``saved`` records and no ``resolved`` record is unresolved: a later
``ccharness run`` refuses to start until ``ccharness rollback --journal`` resolves it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Iterator


class Journal:
    def __init__(self, path: str | Path, listener=None):
        """``listener(record)`` is told of every record after it is on disk (metrics)."""
        self.path = Path(path)
        self.listener = listener
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file = open(self.path, "a", encoding="utf-8")
        self._end_torn_line()

    def _end_torn_line(self) -> None:
        """A run killed mid-write leaves a partial last line; start ours on a fresh one."""
        if self.path.stat().st_size == 0:
            return
        with open(self.path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                self._file.write("\n")
                self._file.flush()

    def write(self, type: str, **fields: Any) -> dict:
        record = {**fields, "type": type, "at": time.time()}   # "at" is always the write time
        line = json.dumps(record, sort_keys=True, default=str)
        with self._lock:
            if self._file.closed:
                return record
            self._file.write(line + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        if self.listener is not None:
            try:
                self.listener(record)
            except Exception:  # an observer must never break the journal
                logging.getLogger(__name__).exception("journal listener failed")
        return record

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_journal(path: str | Path) -> list[dict]:
    """All complete records; a torn last line (killed mid-write) is ignored."""
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def is_unresolved(records: list[dict]) -> bool:
    saved = any(r.get("type") == "saved" for r in records)
    return saved and not any(r.get("type") == "resolved" for r in records)


def unresolved_journals(runs_dir: str | Path) -> Iterator[Path]:
    root = Path(runs_dir)
    if not root.is_dir():
        return
    for path in sorted(root.glob("*/journal.jsonl")):
        try:
            if is_unresolved(read_journal(path)):
                yield path
        except OSError:
            continue
