"""Outcome classification and the per-call record (docs/CONTRACTS.md section 6).

Pure functions: the engine feeds them timestamps and the final response; tests
feed them numbers.
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass, field

OUTCOMES = ("answered", "408", "487", "488", "403", "503", "other")

# Final SIP status code -> outcome class. 2xx answers; the codes the issue names
# are kept apart because each means something else to a contact centre:
# 408 no answer in time (RFC 3261 17.1.1.2 Timer B), 487 cancelled (RFC 3261 9.1),
# 488 no common codec (RFC 3261 21.4.26), 403 license ceiling, 503 trunk down.
_BY_CODE = {408: "408", 487: "487", 488: "488", 403: "403", 503: "503"}


def classify(code: int | None) -> str:
    """Outcome class of a final response code (None or 0: no response at all)."""
    if code is not None and 200 <= code < 300:
        return "answered"
    return _BY_CODE.get(code or 0, "other")


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class CallRecord:
    """One call, as CONTRACTS.md section 6 spells it. Times are epoch seconds."""

    call_id: str
    tag: str
    target: str
    entry_trunk: str | None = None
    trunk: str | None = None
    outcome: str = "other"
    code: int = 0
    reason: str = ""
    invite_at: float = 0.0
    first_18x_at: float | None = None
    answered_at: float | None = None
    bye_at: float | None = None
    ended_at: float = 0.0
    setup_seconds: float = 0.0
    worker: str = field(default_factory=worker_id)

    def finish(self, code: int, reason: str, final_at: float | None, ended_at: float) -> "CallRecord":
        """Set the final response and derived fields; ``final_at`` None means none came."""
        self.code, self.reason = int(code or 0), reason or ""
        self.outcome = classify(self.code)
        self.ended_at = ended_at
        self.setup_seconds = max(0.0, (final_at or ended_at) - self.invite_at)
        return self

    def to_dict(self) -> dict:
        return asdict(self)
