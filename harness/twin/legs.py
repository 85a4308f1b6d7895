"""The seam between the twin's SIP side and its routing model.

Theory of operation: the SIP side (``harness.twin.sip``) owns sockets, parsing,
transactions and retransmissions (RFC 3261 17.2.1: 100 Trying, 2xx retransmitted
until ACK, INVITE retransmissions absorbed, CANCEL -> 200 + 487). It knows nothing
of trunks' health, queues or agents. For each new INVITE it creates a ``CallLeg``
and hands it to the ``CallRouter`` (the routing model). From then on the model
decides what happens to the call and tells the leg (ring, answer, reject, drop,
hang up); the SIP side tells the model what the caller did (ACK, CANCEL, BYE,
timeout) through the router's callbacks.

Both sides are single-threaded on the gevent hub. ``Scheduler`` abstracts timers
so the model runs under a fake clock in unit tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol


@dataclass
class InviteInfo:
    """What the model needs from an INVITE, parsed once by the SIP side."""

    call_id: str
    trunk_id: str            # the trunk whose listener received it (entry trunk)
    from_uri: str
    to_uri: str
    request_uri: str
    source: tuple[str, int]
    offered_codecs: list[str]  # encoding names in offer order, upper case: "PCMU", "PCMA", "G722", "OPUS"
    headers: dict[str, str] = field(default_factory=dict)  # lower-case name -> value (first value)
    received_at: float = 0.0

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class CallLeg(Protocol):
    """One inbound call as the model sees it. Methods are no-ops once the leg ended."""

    info: InviteInfo

    def ringing(self) -> None:
        """Send 180 Ringing (once)."""

    def answer(self, codec: str, extra_headers: dict[str, str] | None = None) -> None:
        """Send 200 OK with an SDP answer using ``codec``; retransmitted until ACK."""

    def reject(self, code: int, reason: str, extra_headers: dict[str, str] | None = None) -> None:
        """Send a final non-2xx response (403, 408, 480, 486, 487, 488, 503, ...)."""

    def drop(self) -> None:
        """Never answer: absorb retransmissions silently so the caller's Timer B fires (408)."""

    def hangup(self, reason: str = "") -> None:
        """End an answered call with BYE, or an unanswered one with 487 (abrupt removal)."""

    @property
    def state(self) -> str:
        """"proceeding", "answered", "confirmed" (ACKed), "ended"."""


class CallRouter(Protocol):
    """Implemented by the twin's routing model; called by the SIP side."""

    def on_invite(self, leg: CallLeg) -> None:
        """A new INVITE arrived. The model must eventually answer, reject, drop or wait."""

    def on_confirmed(self, leg: CallLeg) -> None:
        """The ACK for our 2xx arrived."""

    def on_cancel(self, leg: CallLeg) -> None:
        """The caller cancelled; the SIP side already sent 200 (CANCEL) and 487 (INVITE)."""

    def on_bye(self, leg: CallLeg) -> None:
        """The caller hung up; the SIP side already answered 200."""

    def on_failed(self, leg: CallLeg, reason: str) -> None:
        """Timer H/B-style give-up (no ACK for 2xx) or transport error: the leg is gone."""

    def options_status(self, trunk_id: str) -> tuple[int, str]:
        """Answer for OPTIONS on ``trunk_id`` according to its routed health."""


class Scheduler(Protocol):
    def now(self) -> float:
        """Epoch seconds."""

    def call_later(self, delay: float, fn: Callable[[], None]) -> "TimerHandle":
        """Run ``fn`` after ``delay`` seconds on the hub."""


class TimerHandle(Protocol):
    def cancel(self) -> None: ...
