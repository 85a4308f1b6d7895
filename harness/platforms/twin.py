"""The platform twin's adapter: either dialect (``conn.api``) plus the twin-only routes
(faults, ground truth), which the controller uses for twin faults and the summary."""

from __future__ import annotations

from harness.platforms.adapter import PlatformAdapter
from harness.platforms.endpoints import endpoint_map


class TwinAdapter(PlatformAdapter):
    def __init__(self, conn, **kwargs):
        kwargs.setdefault("endpoints", endpoint_map(conn.api, twin=True))
        super().__init__(conn, **kwargs)

    def get_faults(self, essential: bool = False) -> dict:
        return self._call("get_faults", essential=essential)

    def put_faults(self, body: dict, essential: bool = False) -> dict:
        return self._call("put_faults", json=body, essential=essential)

    def ground_truth(self) -> dict:
        return self._call("ground_truth")
