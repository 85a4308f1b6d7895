"""Endpoint maps, one place per platform dialect.

Each map names an operation and gives (HTTP method, path template, scope). The
guide's maps are what the twin implements (docs/CONTRACTS.md section 2). The real
Genesys Cloud API differs (trunks are read-only there; degradation goes through trunk
base settings, queue figures through an observations query, events through
notification channels): ``REAL_GENESYS`` sits beside the guide's map so an adapter can
be pointed at it; it is not exercised by the tests (no access to a real org).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    scope: str


GUIDE_GENESYS: dict[str, Endpoint] = {
    "get_trunk": Endpoint("GET", "/api/v2/telephony/phone/trunks/{id}", "view:telephony"),
    "update_trunk": Endpoint("PATCH", "/api/v2/telephony/phone/trunks/{id}", "edit:telephony"),
    "queue_realtime": Endpoint("GET", "/api/v2/analytics/queues/{id}/realtime", "view:analytics"),
    "schedules": Endpoint("GET", "/api/v2/workforcemanagement/schedules", "view:workforcemanagement"),
    "events": Endpoint("GET", "/api/v2/events/stream", "view:analytics"),
}

GUIDE_CXONE: dict[str, Endpoint] = {
    "get_trunk": Endpoint("GET", "/api/v2.0/telephony/trunks/{id}", "manage:trunks"),
    "update_trunk": Endpoint("PUT", "/api/v2.0/telephony/trunks/{id}", "manage:trunks"),
    "queue_realtime": Endpoint("GET", "/api/v2.0/analytics/queues/{id}/realtime", "read:analytics"),
    "schedules": Endpoint("GET", "/api/v2/workforcemanagement/schedules", "read:system"),
    "events": Endpoint("GET", "/api/v2/events/stream", "read:analytics"),
}

TWIN_EXTRAS: dict[str, Endpoint] = {
    "get_faults": Endpoint("GET", "/twin/v1/faults", "twin:admin"),
    "put_faults": Endpoint("PUT", "/twin/v1/faults", "twin:admin"),
    "ground_truth": Endpoint("GET", "/twin/v1/ground-truth", "twin:admin"),
}

# Real Genesys Cloud (not the guide): kept here so the divergence lives in one place.
REAL_GENESYS: dict[str, Endpoint] = {
    "get_trunk": Endpoint("GET", "/api/v2/telephony/providers/edges/trunkbasesettings/{id}",
                          "telephony:plugin:all"),
    "update_trunk": Endpoint("PUT", "/api/v2/telephony/providers/edges/trunkbasesettings/{id}",
                             "telephony:plugin:all"),
    "queue_realtime": Endpoint("POST", "/api/v2/analytics/queues/observations/query", "analytics"),
    "schedules": Endpoint("GET", "/api/v2/workforcemanagement/schedules", "workforce-management"),
    "events": Endpoint("POST", "/api/v2/notifications/channels", "notifications"),
}


def endpoint_map(api: str, twin: bool = False, real: bool = False) -> dict[str, Endpoint]:
    """The map for an API dialect ('genesys'/'cxone'); the twin adds its own routes."""
    if real and api == "genesys":
        base = dict(REAL_GENESYS)
    else:
        base = dict(GUIDE_GENESYS if api == "genesys" else GUIDE_CXONE)
    if twin:
        base.update(TWIN_EXTRAS)
    return base
