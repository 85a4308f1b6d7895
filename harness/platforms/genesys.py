"""Genesys Cloud CX adapter: the guide's endpoint map (PATCH trunks, queue realtime).

``real_api=True`` points it at the real Genesys Cloud map (``endpoints.REAL_GENESYS``),
whose bodies differ from the guide's; that path is not exercised here (no real org).
"""

from __future__ import annotations

from harness.platforms.adapter import PlatformAdapter
from harness.platforms.endpoints import endpoint_map


class GenesysAdapter(PlatformAdapter):
    def __init__(self, conn, *, real_api: bool = False, **kwargs):
        kwargs.setdefault("endpoints", endpoint_map("genesys", real=real_api))
        super().__init__(conn, **kwargs)
