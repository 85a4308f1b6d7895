"""Sans-I/O SIP user agent server for the twin (RFC 3261 sections 12, 15, 17.2).

Theory of operation: ``UasCore.datagram_received(data, addr, trunk_id)`` parses one
datagram and dispatches it through a method table; it sends through the injected
``send(data, addr, trunk_id)`` and keeps time through the injected ``Scheduler``, so
unit tests drive it with a ``FakeScheduler`` and no sockets.

Each new INVITE becomes a ``Leg`` (the ``CallLeg`` of legs.py) keyed by
(Call-ID, caller's From tag), handed to ``router.on_invite``. The leg's model-facing
state follows ``LEG_TRANSITIONS``; beside it, one retransmission slot per leg carries
whatever the leg must repeat until the peer reacts:

- a 2xx until ACK, T1 doubling to T2, giving up at 64*T1 (RFC 3261 13.3.1.4), which
  calls ``router.on_failed`` and sends BYE;
- a non-2xx final until ACK (Timers G and H, 17.2.1);
- our BYE until any final response (Timers E and F, 17.1.2.2).

Retransmitted INVITEs get the last response again (17.2.1); a dropped leg absorbs
them silently so the caller's Timer B fires. Only legs still in "proceeding" after
``on_invite`` returns get 100 Trying: a model that drops must do it inside
``on_invite``, otherwise the caller has seen 100, left Timer B behind (17.1.1.2) and
will not time out by itself. Ended legs linger ``LINGER`` seconds to absorb late
retransmissions, then are forgotten, so memory tracks the call rate, not history.
Responses and BYEs go to the datagram's source address (symmetric response
routing, RFC 3581), which on loopback is where every peer listens.
"""

from __future__ import annotations

import itertools
import os
from typing import Callable

from harness.errors import SipError
from harness.twin.legs import CallRouter, InviteInfo, Scheduler

from .message import (SipMessage, SipParseError, build_request, build_response, clean, cseq,
                      param, parse, top_via, uri_of)
from .sdp import SdpOffer, build_answer, parse_offer

T1, T2 = 0.5, 4.0  # RFC 3261 17.1.1.1 defaults
TIMEOUT = 64 * T1  # Timers B, F, H and the 2xx give-up
LINGER = TIMEOUT + 1.0
MANDATORY = ("via", "from", "to", "call-id", "cseq")  # RFC 3261 8.1.1 (Max-Forwards tolerated)
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO"

# (state, event) -> next state; a missing pair means the event is ignored in that state
LEG_TRANSITIONS = {
    ("proceeding", "answer"): "answered",
    ("proceeding", "reject"): "ended",
    ("proceeding", "drop"): "ended",
    ("proceeding", "cancel"): "ended",
    ("proceeding", "hangup"): "ended",
    ("answered", "ack"): "confirmed",
    ("answered", "bye"): "ended",
    ("answered", "hangup"): "ended",
    ("answered", "no_ack"): "ended",
    ("confirmed", "bye"): "ended",
    ("confirmed", "hangup"): "ended",
}

Send = Callable[[bytes, tuple, str], None]


class UasCore:
    """All inbound dialogs of the twin, across trunks. See the module docstring."""

    def __init__(self, router: CallRouter, scheduler: Scheduler, send: Send, *,
                 media_port: int = 0, local_host: str = "127.0.0.1", max_legs: int = 50_000):
        self.router = router
        self.scheduler = scheduler
        self.send = send
        self.media_port = media_port
        self.local_host = local_host
        self.max_legs = max_legs
        self.legs: dict[tuple[str, str], Leg] = {}
        self.active = 0
        self.stats: dict[str, int] = dict.fromkeys((
            "datagrams", "garbage", "bad_requests", "dropped_invalid", "requests", "responses",
            "invites", "retransmissions_absorbed", "retransmissions_sent", "cancels", "byes",
            "options", "infos", "unsupported", "no_dialog", "no_ack_timeouts", "overload",
            "stray", "purged", "active_dialogs", "peak_dialogs"), 0)
        self._contacts: dict[str, str] = {}
        self._prefix = os.urandom(3).hex()
        self._ids = itertools.count(1)
        self._handlers = {"INVITE": self._on_invite, "ACK": self._on_ack,
                          "CANCEL": self._on_cancel, "BYE": self._on_bye,
                          "OPTIONS": self._on_options, "INFO": self._on_info}

    # --- wiring -------------------------------------------------------------------

    def add_trunk(self, trunk_id: str, addr: tuple[str, int]) -> None:
        """Declare the local address of ``trunk_id`` (for Contact and our BYE's Via)."""
        self._contacts[trunk_id] = f"{addr[0]}:{addr[1]}"

    def hostport(self, trunk_id: str) -> str:
        return self._contacts.get(trunk_id, self.local_host)

    def new_id(self) -> str:
        return f"{self._prefix}{next(self._ids):x}"

    def close(self) -> None:
        """Stop every timer and forget every leg (server shutdown)."""
        for leg in list(self.legs.values()):
            leg.close()
        self.legs.clear()
        self.active = 0

    # --- inbound ------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: tuple, trunk_id: str) -> None:
        """Handle one datagram from ``addr`` on ``trunk_id``'s listener. Garbage is counted
        and dropped; only the router's own exceptions can escape."""
        self.stats["datagrams"] += 1
        try:
            msg = parse(data)
        except SipParseError:
            self.stats["garbage"] += 1
            return
        if msg.status is not None:
            self.stats["responses"] += 1
            self._on_response(msg)
            return
        self.stats["requests"] += 1
        missing = [name for name in MANDATORY if not msg.get(name)]
        if missing:
            self._bad_request(msg, addr, trunk_id, "Missing " + ", ".join(missing))
            return
        try:
            seq, method = cseq(msg)
        except SipParseError:
            self._bad_request(msg, addr, trunk_id, "Bad CSeq")
            return
        if method != msg.method:
            self._bad_request(msg, addr, trunk_id, "CSeq method mismatch")
            return
        handler = self._handlers.get(msg.method, self._on_unsupported)
        handler(msg, addr, trunk_id, seq)

    def _bad_request(self, msg: SipMessage, addr, trunk_id: str, why: str) -> None:
        via = top_via(msg)
        if msg.method == "ACK" or not via or not via.upper().startswith("SIP/2.0/"):
            self.stats["dropped_invalid"] += 1  # nowhere sensible to answer (RFC 3261 8.2.6)
            return
        self.stats["bad_requests"] += 1
        self.reply(msg, addr, trunk_id, 400, f"Bad Request ({why})")

    def reply(self, msg: SipMessage, addr, trunk_id: str, code: int, reason: str,
              to_tag: str | None = None, **kw) -> bytes:
        """Build and send a response to ``msg``; returns its bytes."""
        data = build_response(msg, code, reason, to_tag=to_tag or self.new_id(), **kw)
        self.send(data, addr, trunk_id)
        return data

    def _key(self, msg: SipMessage) -> tuple[str, str]:
        return msg.get("call-id") or "", param(msg.get("from"), "tag") or ""

    def _on_invite(self, msg: SipMessage, addr, trunk_id: str, seq: int) -> None:
        key = self._key(msg)
        leg = self.legs.get(key)
        if leg is not None:
            leg.invite_again(msg, addr, seq)
            return
        if param(msg.get("to"), "tag") is not None:
            self.stats["no_dialog"] += 1  # re-INVITE for a dialog we do not know
            self.reply(msg, addr, trunk_id, 481, "Call/Transaction Does Not Exist")
            return
        if len(self.legs) >= self.max_legs:
            self.stats["overload"] += 1
            self.reply(msg, addr, trunk_id, 503, "Service Unavailable",
                       extra_headers={"Retry-After": "5"})
            return
        self.stats["invites"] += 1
        leg = Leg(self, msg, addr, trunk_id, key, seq)
        self.legs[key] = leg
        self._count_active(+1)
        self.router.on_invite(leg)
        leg.trying_if_pending()

    def _on_ack(self, msg: SipMessage, addr, trunk_id: str, seq: int) -> None:
        leg = self.legs.get(self._key(msg))
        if leg is None:
            self.stats["stray"] += 1  # ACK is never answered (RFC 3261 17.2.3)
            return
        leg.ack_received()

    def _on_cancel(self, msg: SipMessage, addr, trunk_id: str, seq: int) -> None:
        self.stats["cancels"] += 1
        leg = self.legs.get(self._key(msg))
        if leg is None:
            self.stats["no_dialog"] += 1
            self.reply(msg, addr, trunk_id, 481, "Call/Transaction Does Not Exist")
            return
        leg.cancel_received(msg, addr)

    def _on_bye(self, msg: SipMessage, addr, trunk_id: str, seq: int) -> None:
        self.stats["byes"] += 1
        leg = self.legs.get(self._key(msg))
        if leg is None or not leg.bye_received(msg, addr):
            self.stats["no_dialog"] += 1
            self.reply(msg, addr, trunk_id, 481, "Call/Transaction Does Not Exist")

    def _on_options(self, msg: SipMessage, addr, trunk_id: str, seq: int) -> None:
        self.stats["options"] += 1
        code, reason = self.router.options_status(trunk_id)
        self.reply(msg, addr, trunk_id, code, reason, contact=self.contact(trunk_id),
                   extra_headers={"Allow": ALLOW, "Accept": "application/sdp"})

    def _on_info(self, msg: SipMessage, addr, trunk_id: str, seq: int) -> None:
        self.stats["infos"] += 1
        leg = self.legs.get(self._key(msg))
        if leg is None or leg.state == "ended":
            self.stats["no_dialog"] += 1
            self.reply(msg, addr, trunk_id, 481, "Call/Transaction Does Not Exist")
            return
        self.reply(msg, addr, trunk_id, 200, "OK", to_tag=leg.to_tag)
        on_info = getattr(self.router, "on_info", None)
        if on_info is not None:
            on_info(leg, msg.body)

    def _on_unsupported(self, msg: SipMessage, addr, trunk_id: str, seq: int) -> None:
        self.stats["unsupported"] += 1
        self.reply(msg, addr, trunk_id, 501, "Not Implemented", extra_headers={"Allow": ALLOW})

    def _on_response(self, msg: SipMessage) -> None:
        # responses only ever answer our BYE: From is us, To carries the caller's tag
        key = (msg.get("call-id") or "", param(msg.get("to"), "tag") or "")
        leg = self.legs.get(key)
        if leg is None or not leg.response_received(msg):
            self.stats["stray"] += 1

    def contact(self, trunk_id: str) -> str:
        return f"sip:twin@{self.hostport(trunk_id)}"

    # --- bookkeeping used by legs -------------------------------------------------

    def _count_active(self, delta: int) -> None:
        self.active += delta
        self.stats["active_dialogs"] = self.active
        if self.active > self.stats["peak_dialogs"]:
            self.stats["peak_dialogs"] = self.active

    def forget(self, leg: "Leg") -> None:
        if self.legs.get(leg.key) is leg:
            del self.legs[leg.key]
            self.stats["purged"] += 1


class Leg:
    """One inbound INVITE and the dialog it creates: the SIP side's ``CallLeg``."""

    def __init__(self, core: UasCore, msg: SipMessage, addr, trunk_id: str,
                 key: tuple[str, str], seq: int):
        self.core = core
        self.key = key
        self.addr = addr
        self.trunk_id = trunk_id
        self.invite: SipMessage | None = msg  # released once the leg ends
        self.invite_seq = seq
        self.to_tag = core.new_id()
        self.offer: SdpOffer = parse_offer(msg.body)
        self.info = InviteInfo(
            call_id=key[0], trunk_id=trunk_id, from_uri=uri_of(msg.get("from")),
            to_uri=uri_of(msg.get("to")), request_uri=msg.uri or "", source=tuple(addr),
            offered_codecs=self.offer.names,
            headers={name: values[0] for name, values in msg.headers.items()},
            received_at=core.scheduler.now())
        self._state = "proceeding"
        self.dropped = False
        self.rang = False
        self.last: bytes | None = None  # last response to the INVITE, re-sent on retransmission
        self.sdp: bytes = b""
        self.awaiting_ack = False
        self.bye_pending = False
        self.bye_reason = ""
        self.bye_done = False
        self.bye_branch: str | None = None
        self.dialog: tuple[str, str, str] | None = None  # (To, From, remote target) once 2xx sent
        self._retx_data: bytes | None = None
        self._retx_timer = None
        self._retx_started = 0.0
        self._retx_interval = T1
        self._retx_giveup: Callable[[], None] | None = None
        self._linger = None

    # --- CallLeg (called by the model) ---------------------------------------------

    @property
    def state(self) -> str:
        return self._state

    def ringing(self) -> None:
        """Send 180 Ringing (once)."""
        if self._state == "proceeding" and not self.rang:
            self.rang = True
            self._respond(180, "Ringing")

    def answer(self, codec: str, extra_headers: dict[str, str] | None = None) -> None:
        """200 OK with an SDP answer using ``codec``, retransmitted until ACK."""
        if not self._move("answer"):
            return
        self.sdp = build_answer(self.offer, codec, self.core.media_port,
                                session_id=next(self.core._ids), address=self.core.local_host)
        invite = self.invite
        self.dialog = (invite.get("to") or "", invite.get("from") or "",
                       uri_of(invite.get("contact")) or uri_of(invite.get("from")))
        self.awaiting_ack = True
        data = self._respond(200, "OK", extra_headers, body=self.sdp)
        self._retransmit(data, self._no_ack)

    def reject(self, code: int, reason: str, extra_headers: dict[str, str] | None = None) -> None:
        """A final non-2xx response, retransmitted until ACK (Timers G/H)."""
        if not 300 <= int(code) <= 699:
            raise SipError(f"reject needs a 3xx-6xx code, not {code}")
        if self._move("reject"):
            self._final(int(code), reason, extra_headers)
            self._end()

    def drop(self) -> None:
        """Never answer; later retransmissions are absorbed silently."""
        if self._move("drop"):
            self.dropped = True
            self._end()

    def hangup(self, reason: str = "") -> None:
        """487 on an unanswered leg; BYE on an answered one (after its ACK, RFC 3261 15)."""
        state = self._state
        if not self._move("hangup"):
            return
        if state == "proceeding":
            self._final(487, "Request Terminated")
        elif state == "answered":
            self.bye_pending = True  # sent when the ACK (or the 2xx give-up) comes
            self.bye_reason = reason
            self._end()
            return
        else:
            self._send_bye(reason)
        self._end()

    # --- events from the core ------------------------------------------------------

    def trying_if_pending(self) -> None:
        if self._state == "proceeding" and self.last is None:
            self._respond(100, "Trying")

    def invite_again(self, msg: SipMessage, addr, seq: int) -> None:
        if param(msg.get("to"), "tag") is not None:
            self._reinvite(msg, addr)
            return
        self.core.stats["retransmissions_absorbed"] += 1
        if self.last is not None and not self.dropped and seq == self.invite_seq:
            self.core.send(self.last, self.addr, self.trunk_id)

    def _reinvite(self, msg: SipMessage, addr) -> None:
        # a target refresh / session timer re-INVITE: confirm the same session
        if self._state == "confirmed" and param(msg.get("to"), "tag") == self.to_tag:
            self.core.reply(msg, addr, self.trunk_id, 200, "OK", to_tag=self.to_tag,
                            contact=self.core.contact(self.trunk_id), body=self.sdp)
        else:
            self.core.reply(msg, addr, self.trunk_id, 491 if self.dialog else 481,
                            "Request Pending" if self.dialog else "Call/Transaction Does Not Exist")

    def ack_received(self) -> None:
        if not self.awaiting_ack:
            return  # a retransmitted ACK, or one for a response we never sent
        self.awaiting_ack = False
        self._stop_retx()
        if self._move("ack"):
            self.core.router.on_confirmed(self)
        elif self.bye_pending:
            self._send_bye(self.bye_reason)

    def cancel_received(self, msg: SipMessage, addr) -> None:
        if self.dropped:
            return  # a blackhole answers nothing, CANCEL included
        self.core.reply(msg, addr, self.trunk_id, 200, "OK", to_tag=self.to_tag)
        if self._move("cancel"):  # only while the INVITE is pending (RFC 3261 9.2)
            self._final(487, "Request Terminated")
            self._end()
            self.core.router.on_cancel(self)

    def bye_received(self, msg: SipMessage, addr) -> bool:
        """200 for a BYE in this dialog; False when it is not ours (caller sends 481)."""
        if not self.dialog or param(msg.get("to"), "tag") != self.to_tag:
            return False
        self.core.reply(msg, addr, self.trunk_id, 200, "OK", to_tag=self.to_tag)
        if self.awaiting_ack:  # BYE before ACK: the 2xx needs no more retransmission
            self.awaiting_ack = False
            self._stop_retx()
        if self._move("bye"):
            self._end()
            self.core.router.on_bye(self)
        return True

    def response_received(self, msg: SipMessage) -> bool:
        if self.bye_branch is None or param(top_via(msg), "branch") != self.bye_branch:
            return False
        if msg.status >= 200:
            self.bye_done = True
            self._stop_retx()
        return True

    # --- internals -----------------------------------------------------------------

    def _move(self, event: str) -> bool:
        nxt = LEG_TRANSITIONS.get((self._state, event))
        if nxt is None:
            return False
        self._state = nxt
        return True

    def _respond(self, code: int, reason: str, extra_headers=None, body: bytes = b"") -> bytes:
        data = build_response(self.invite, code, reason, to_tag=self.to_tag,
                              contact=self.core.contact(self.trunk_id) if code > 100 else None,
                              extra_headers=extra_headers, body=body)
        self.last = data
        self.core.send(data, self.addr, self.trunk_id)
        return data

    def _final(self, code: int, reason: str, extra_headers=None) -> None:
        self.awaiting_ack = True
        self._retransmit(self._respond(code, reason, extra_headers), None)

    def _no_ack(self) -> None:
        """64*T1 without ACK for our 2xx (RFC 3261 13.3.1.4): end the dialog with BYE."""
        self.awaiting_ack = False
        self.core.stats["no_ack_timeouts"] += 1
        if self.bye_pending:
            self._send_bye(self.bye_reason)
            return
        if self._move("no_ack"):
            self._end()
            self.core.router.on_failed(self, "no ACK for 200 OK within 64*T1")
            self._send_bye("no ACK")

    def _send_bye(self, reason: str = "") -> None:
        self.bye_pending = False
        if self.dialog is None or self.bye_branch is not None:
            return
        self.bye_branch = "z9hG4bK" + self.core.new_id()
        ours, theirs, target = self.dialog
        if param(ours, "tag") is None:
            ours = f"{ours};tag={self.to_tag}"
        headers = [
            ("Via", f"SIP/2.0/UDP {self.core.hostport(self.trunk_id)};branch={self.bye_branch};rport"),
            ("Max-Forwards", "70"),
            ("From", ours),
            ("To", theirs),
            ("Call-ID", self.key[0]),
            ("CSeq", "1 BYE"),
        ]
        if reason:
            headers.append(("Reason", f'SIP;cause=200;text="{clean(reason).replace(chr(34), "")}"'))
        data = build_request("BYE", target, headers)
        self.core.send(data, self.addr, self.trunk_id)
        self._retransmit(data, None)

    def _retransmit(self, data: bytes, giveup: Callable[[], None] | None) -> None:
        self._stop_retx()
        self._retx_data = data
        self._retx_giveup = giveup
        self._retx_started = self.core.scheduler.now()
        self._retx_interval = T1
        self._retx_timer = self.core.scheduler.call_later(T1, self._retx_fire)

    def _retx_fire(self) -> None:
        data = self._retx_data
        if data is None:
            return
        sched = self.core.scheduler
        left = self._retx_started + TIMEOUT - sched.now()
        if left <= 1e-6:
            giveup = self._retx_giveup
            self._stop_retx()
            self.awaiting_ack = False
            if giveup is not None:
                giveup()
            return
        self.core.stats["retransmissions_sent"] += 1
        self.core.send(data, self.addr, self.trunk_id)
        self._retx_interval = min(self._retx_interval * 2, T2)
        self._retx_timer = sched.call_later(min(self._retx_interval, left), self._retx_fire)

    def _stop_retx(self) -> None:
        self._retx_data = None
        self._retx_giveup = None
        if self._retx_timer is not None:
            self._retx_timer.cancel()
            self._retx_timer = None

    def _end(self) -> None:
        # every response to the INVITE is built by now: keep only bytes and dialog strings,
        # so a lingering leg costs a few hundred bytes (300 calls/s x 33 s of them)
        self.invite = None
        self.offer = None
        self.core._count_active(-1)
        self._linger = self.core.scheduler.call_later(LINGER, self._purge)

    def _purge(self) -> None:
        self._linger = None
        self.close()
        self.core.forget(self)

    def close(self) -> None:
        self._stop_retx()
        self.invite = None
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
