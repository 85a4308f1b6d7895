"""Resolve trunk/queue references to ids and enforce the blast radius on live names.

A reference is a name (looked up in the twin's endpoints file) or an id. The blast
radius holds twice: the resolved id must be one the experiment lists, and the live
name read from the platform must start with one of the required prefixes. Both are
checked before any mutating call; a violation is a GuardError (exit 3).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import ConfigError, GuardError
from harness.experiment.schema import Experiment, FaultKind
from harness.platforms.credentials import read_endpoints


@dataclass(frozen=True)
class Resolver:
    trunks: dict[str, str]      # name -> id
    queues: dict[str, str]

    @classmethod
    def from_endpoints(cls, path: str | None) -> "Resolver":
        if not path:
            return cls({}, {})
        data = read_endpoints(path)
        return cls({t["name"]: t["id"] for t in data.get("trunks", [])},
                   {q["name"]: q["id"] for q in data.get("queues", [])})

    def trunk(self, ref: str) -> str:
        return self._one(ref, self.trunks, "trunk")

    def queue(self, ref: str) -> str:
        return self._one(ref, self.queues, "queue")

    @staticmethod
    def _one(ref: str, names: dict[str, str], kind: str) -> str:
        if ref in names:
            return names[ref]
        if ref in names.values() or not names:
            return ref
        raise ConfigError(f"{kind} {ref!r} is neither a known name nor an id on this platform "
                          f"(known: {', '.join(sorted(names))})")


def resolve_body(body: dict, resolver: Resolver) -> dict:
    """Replace trunk names inside a change body (failoverTrunkId, blackholeTrunks) by ids."""
    out = dict(body)
    if "failoverTrunkId" in out:
        out["failoverTrunkId"] = resolver.trunk(out["failoverTrunkId"])
    if "blackholeTrunks" in out:
        out["blackholeTrunks"] = [resolver.trunk(r) for r in out["blackholeTrunks"]]
    return out


def radius_ids(exp: Experiment, resolver: Resolver) -> set[str]:
    return {resolver.trunk(r) for r in exp.blast_radius.trunks}


def check_blast_radius(exp: Experiment, resolver: Resolver, live: dict[str, dict]) -> None:
    """``live`` maps each target trunk id to its GET body. Raises GuardError on a violation."""
    allowed = radius_ids(exp, resolver)
    prefixes = exp.blast_radius.name_prefixes
    for trunk_id, body in live.items():
        name = str(body.get("name", ""))
        if trunk_id not in allowed:
            raise GuardError(f"trunk {trunk_id} ({name}) is outside the blast radius; refused before any change")
        if not name.startswith(prefixes):
            raise GuardError(f"trunk {trunk_id} is named {name!r}, which lacks a required prefix "
                             f"({', '.join(prefixes)}); refused before any change")


def referenced_trunks(exp: Experiment, resolver: Resolver) -> list[str]:
    """Ids of every trunk the method changes or points traffic at, in first-use order."""
    ids: list[str] = []
    for step in exp.method.steps:
        refs = [step.target] if step.target else []
        if step.kind is FaultKind.TRUNK and "failoverTrunkId" in step.body:
            refs.append(step.body["failoverTrunkId"])
        refs += list(step.body.get("blackholeTrunks", []))
        for ref in refs:
            tid = resolver.trunk(ref)
            if tid not in ids:
                ids.append(tid)
    return ids
