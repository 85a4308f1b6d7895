"""The engine-process protocol: JSON lines over a stream socket, without I/O.

client -> engine: {"op": "call", "spec": {...CallSpec...}} | {"op": "quit"}
engine -> client: {"ev": "ready", "pid", "sip_port", "capacity"}
                  {"ev": "answer", "record": {...as at the answer...}}
                  {"ev": "record", "record": {...CONTRACTS.md 6...}}
                  {"ev": "rejected", "call_id", "message", "retryable"}
                  {"ev": "error", "message"}   (startup failed; the process exits)
"""

from __future__ import annotations

import dataclasses
import json

from harness.sip.engine import CallSpec, EngineConfig


def encode(msg: dict) -> bytes:
    return (json.dumps(msg, separators=(",", ":")) + "\n").encode()


class LineBuffer:
    """Feed bytes, get complete decoded messages."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[dict]:
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]


def spec_to_dict(spec: CallSpec) -> dict:
    return dataclasses.asdict(spec)


def spec_from_dict(d: dict) -> CallSpec:
    d = dict(d)
    d["extra_headers"] = tuple(tuple(h) for h in d.get("extra_headers", ()))
    return CallSpec(**d)


def config_to_dict(cfg: EngineConfig) -> dict:
    return dataclasses.asdict(cfg)


def config_from_dict(d: dict) -> EngineConfig:
    d = dict(d)
    d["codecs"] = tuple(d.get("codecs", ()))
    return EngineConfig(**d)
