"""Trunk configuration as the API and routing see it, and the REST body <-> config mapping.

Each trunk has two ``TrunkConfig`` views in the model: the API view (what GET returns at
once after PATCH/PUT) and the routed view (what routing sees after propagation). The
mapping between the platform's JSON and the config lives here, as tables, so the model
and the REST layer agree on field names.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from harness.twin.topology import STATUSES, Trunk


class UpdateError(ValueError):
    """A trunk body the platform would refuse (400)."""


@dataclass(frozen=True)
class TrunkConfig:
    name: str
    status: str
    routing_enabled: bool
    failover_priority: int
    max_concurrent_calls: int
    throttle_percentage: float
    health_score: float
    failover_trunk_id: str | None
    codecs: tuple[str, ...]
    media_server_pool_id: str
    invite_timeout: float

    @classmethod
    def from_trunk(cls, t: Trunk) -> "TrunkConfig":
        return cls(**{f.name: getattr(t, f.name) for f in fields(cls)})

    def updated(self, changes: dict[str, Any]) -> "TrunkConfig":
        return replace(self, **changes)

    @property
    def in_service(self) -> bool:
        """Routing may send calls to it at all (Inactive or disabled: no)."""
        return self.status != "Inactive" and self.routing_enabled


def _status(v):
    if v not in STATUSES:
        raise UpdateError(f"status must be one of {', '.join(STATUSES)}")
    return v


def _bool(v):
    if not isinstance(v, bool):
        raise UpdateError("expected a boolean")
    return v


def _int(low, high=None):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, int) or v < low or (high is not None and v > high):
            raise UpdateError(f"expected an integer in [{low}, {high if high is not None else 'inf'}]")
        return v
    return check


def _num(low, high=None):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < low or (high is not None and v > high):
            raise UpdateError(f"expected a number in [{low}, {high if high is not None else 'inf'}]")
        return float(v)
    return check


def _str(v):
    if not isinstance(v, str) or not v:
        raise UpdateError("expected a non-empty string")
    return v


def _opt_str(v):
    return None if v is None else _str(v)


def _codecs(v):
    if not isinstance(v, list) or not v or not all(isinstance(c, str) and c for c in v):
        raise UpdateError("expected a non-empty list of codec names")
    return tuple(c.upper() for c in v)


# JSON path -> (config attribute, validator). Nested paths use dots.
GENESYS_FIELDS = {
    "name": ("name", _str),
    "status": ("status", _status),
    "routing.enabled": ("routing_enabled", _bool),
    "routing.failoverPriority": ("failover_priority", _int(0)),
    "capacity.maxConcurrentCalls": ("max_concurrent_calls", _int(0)),
    "capacity.throttlePercentage": ("throttle_percentage", _num(0, 100)),
    "codecs": ("codecs", _codecs),
    "mediaServerPoolId": ("media_server_pool_id", _str),
    "inviteTimeout": ("invite_timeout", _num(0)),
}
CXONE_FIELDS = {
    "name": ("name", _str),
    "status": ("status", _status),
    "healthScore": ("health_score", _num(0, 100)),
    "failoverTrunkId": ("failover_trunk_id", _opt_str),
    "mediaServerPoolId": ("media_server_pool_id", _str),
    "codecs": ("codecs", _codecs),
    "inviteTimeout": ("invite_timeout", _num(0)),
}
FIELDS = {"genesys": GENESYS_FIELDS, "cxone": CXONE_FIELDS}
_READ_ONLY = {"id", "version"}


def _flatten(body: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in body.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, path + "."))
        else:
            out[path] = value
    return out


def parse_update(platform: str, trunk_id: str, body: Any) -> dict[str, Any]:
    """Validate a PATCH/PUT body into config changes; unknown fields give UpdateError."""
    if not isinstance(body, dict):
        raise UpdateError("body must be a JSON object")
    table = FIELDS[platform]
    changes: dict[str, Any] = {}
    for path, value in _flatten(body).items():
        if path in _READ_ONLY:
            if path == "id" and value != trunk_id:
                raise UpdateError("id does not match the trunk in the URL")
            continue
        if path not in table:
            raise UpdateError(f"unknown field {path!r}")
        attr, check = table[path]
        try:
            changes[attr] = check(value)
        except UpdateError as exc:
            raise UpdateError(f"{path}: {exc}") from None
    return changes


def render(platform: str, trunk_id: str, cfg: TrunkConfig, version: int) -> dict[str, Any]:
    """The platform's JSON for one trunk view."""
    if platform == "genesys":
        return {
            "id": trunk_id, "name": cfg.name, "status": cfg.status,
            "routing": {"enabled": cfg.routing_enabled, "failoverPriority": cfg.failover_priority},
            "capacity": {"maxConcurrentCalls": cfg.max_concurrent_calls,
                         "throttlePercentage": _plain(cfg.throttle_percentage)},
            "codecs": list(cfg.codecs), "mediaServerPoolId": cfg.media_server_pool_id,
            "inviteTimeout": _plain(cfg.invite_timeout), "version": version,
        }
    return {
        "id": trunk_id, "name": cfg.name, "status": cfg.status,
        "healthScore": _plain(cfg.health_score), "failoverTrunkId": cfg.failover_trunk_id,
        "mediaServerPoolId": cfg.media_server_pool_id, "codecs": list(cfg.codecs),
        "inviteTimeout": _plain(cfg.invite_timeout), "version": version,
    }


def _plain(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x
