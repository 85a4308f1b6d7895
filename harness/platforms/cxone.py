"""NICE CXone adapter: the guide's endpoint map (PUT trunks, queue realtime)."""

from __future__ import annotations

from harness.platforms.adapter import PlatformAdapter
from harness.platforms.endpoints import endpoint_map


class CxoneAdapter(PlatformAdapter):
    def __init__(self, conn, **kwargs):
        kwargs.setdefault("endpoints", endpoint_map("cxone"))
        super().__init__(conn, **kwargs)
