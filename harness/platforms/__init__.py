"""Platform adapters: one small interface over the twin, Genesys and CXone REST APIs."""

from harness.platforms.adapter import PlatformAdapter, open_adapter
from harness.platforms.credentials import Connection, connection_for

__all__ = ["PlatformAdapter", "open_adapter", "Connection", "connection_for"]
