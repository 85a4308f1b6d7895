"""The PJSUA2 engine: one Endpoint per process, calls admitted against capacity.

Theory of operation. PJSUA2 runs one native worker thread (``threadCnt=1``) that
receives SIP and fires the Call callbacks; the callbacks only take timestamps with
``time.time()`` right there (so they are accurate to the callback, not to a later
hop), push the call onto a queue and call ``wake()``. Everything else (making calls,
hanging up when a hold ends, DTMF, destroying Call objects) happens in the owner's
thread through ``place()`` and ``service()``. Call objects are destroyed explicitly
in ``service()``: upstream reports crashes when Python's GC destroys them at a wrong
time (DESIGN.md), and a call whose ``makeCall`` failed is never kept at all.

Facts this lives with (DESIGN.md): at most 4 calls per process (``CAPACITY``), so
``place()`` refuses over capacity instead of letting ``makeCall`` fail (which
aborts the process); calls need audio, so a null audio device stands in; the SIP
and media transports are bound to 127.0.0.1 unless ``EngineConfig.bind`` (default:
``CCHARNESS_SIP_BIND`` from the environment, else 127.0.0.1) says otherwise, which
only a real deployment does, together with the remote-target opt-in (harness.sip.uri).
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from harness.errors import SipError
from harness.sip.outcome import CallRecord
from harness.sip.uri import parse_target

log = logging.getLogger(__name__)

CAPACITY = 4  # the wheel's compiled-in PJSUA_MAX_CALLS; maxCalls above it is capped
LOOPBACK = "127.0.0.1"
SIP_BIND_ENV = "CCHARNESS_SIP_BIND"
DEFAULT_TAG_HEADER = "X-Chaos-Test"
PJ_ETOOMANY = 70010
RTP_WINDOW = 1000   # RTP/RTCP ports per process: 4 calls plus sockets in PJSIP's delayed close
# PJSIP's select() ioqueue has 64 handles and frees a closed socket only ~500 ms later;
# each call holds 2 (RTP, RTCP). A burst of ~30 call starts aborts the process
# (pj_ioqueue_register_sock2 assertion, DESIGN.md), so starts are admitted by rate too:
# at most 20 in any 1 s window keeps every call's sockets, closed ones included, under 48.
MAX_STARTS = 20
START_WINDOW = 1.0


class CapacityError(SipError):
    """place() was asked for more calls than the process can hold, or faster."""

    retryable = True


class RateGate:
    """Sliding-window admission: at most ``limit`` starts in any ``window`` seconds.
    Pure (the caller passes the clock), so it is testable without PJSIP."""

    def __init__(self, limit: int = MAX_STARTS, window: float = START_WINDOW):
        if limit < 1 or window <= 0:
            raise ValueError("a rate gate needs limit >= 1 and window > 0")
        self.limit, self.window = limit, window
        self._starts: list[float] = []

    def admit(self, now: float) -> bool:
        """Record a start at ``now`` and return True, or return False (nothing recorded)."""
        cutoff = now - self.window
        self._starts = [t for t in self._starts if t > cutoff]
        if len(self._starts) >= self.limit:
            return False
        self._starts.append(now)
        return True


def default_bind() -> str:
    """The SIP/RTP bind address: ``CCHARNESS_SIP_BIND`` if set (a real deployment, set
    from ``--sip-bind``), else 127.0.0.1."""
    return os.environ.get(SIP_BIND_ENV, "").strip() or LOOPBACK


def _unspecified(addr: str) -> bool:
    return addr in ("0.0.0.0", "::", "[::]")


@dataclass(frozen=True)
class EngineConfig:
    sip_port: int = 0               # 0: any free port on the bind address
    bind: str = field(default_factory=default_bind)
    allow_remote: bool = False      # True: targets beyond loopback (else the environment decides)
    codecs: tuple[str, ...] = ("PCMU/8000/1", "PCMA/8000/1")
    user_agent: str = "ccharness"
    media: str = "null"             # "null" (null audio device, clocked) or "none" (no device)
    log_level: int = 0


@dataclass(frozen=True)
class CallSpec:
    """One call to place. ``hold`` seconds after answer, then BYE."""

    target: str
    tag: str
    hold: float = 0.0
    tag_header: str = DEFAULT_TAG_HEADER
    dtmf: str = ""
    dtmf_method: str = "rfc2833"    # or "info" (SIP INFO, application/dtmf-relay)
    ring_timeout: float = 60.0      # CANCEL when no final answer by then (487)
    entry_trunk: str | None = None
    call_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    extra_headers: tuple[tuple[str, str], ...] = ()


def _pj():
    import pjsua2  # noqa: PLC0415 - heavy, only in engine processes

    return pjsua2


def map_pj_error(exc: Exception, doing: str) -> SipError:
    """pjsua2.Error -> SipError with PJSIP's own reason text."""
    info = getattr(exc, "info", None)
    text = info() if callable(info) else (getattr(exc, "reason", None) or str(exc))
    title = getattr(exc, "title", "")
    return SipError(f"{doing} failed: {text or title}".strip())


_TWIN_TRUNK = re.compile(r"^X-Twin-Trunk\s*:\s*(\S+)\s*$", re.I | re.M)


def twin_trunk(whole_msg: str) -> str | None:
    """The effective trunk the twin names in a final response (CONTRACTS.md 5)."""
    m = _TWIN_TRUNK.search(whole_msg or "")
    return m.group(1) if m else None


class _CallState:
    """What the engine tracks per call, shared by the callback and owner threads."""

    def __init__(self, spec: CallSpec, record: CallRecord):
        self.spec, self.record = spec, record
        self.call = None               # the pjsua2 Call, destroyed in service()
        self.hangup_at: float | None = None
        self.dtmf_sent = False
        self.pj_id: int | None = None
        self.done = False


class Engine:
    """One PJSUA2 Endpoint and its calls. Use as a context manager; not thread-safe
    except for the callbacks it installs. ``wake`` is called from the native thread
    whenever ``service()`` has work; ``on_record`` gets each finished call's record
    (a dict, CONTRACTS.md 6) from ``service()``, and ``on_answer`` (if given) a copy
    of the record as it stood when the call was answered, as soon as it was.
    """

    def __init__(self, config: EngineConfig, on_record: Callable[[dict], None],
                 wake: Callable[[], None] = lambda: None,
                 on_answer: Callable[[dict], None] | None = None):
        self.config, self.on_record, self.wake = config, on_record, wake
        self.on_answer = on_answer
        self._calls: dict[str, _CallState] = {}
        self._finished: queue.SimpleQueue = queue.SimpleQueue()
        self._answers: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._ep = None
        self._acc = None
        self.sip_host, self.sip_port = LOOPBACK, 0
        self._retry_at: float | None = None
        self._deferred: list[CallSpec] = []
        self._graveyard: list = []
        self._tries: dict[str, int] = {}
        self._gate = RateGate()

    # -- lifecycle ------------------------------------------------------------
    def __enter__(self) -> "Engine":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        pj = _pj()
        ep = pj.Endpoint()
        try:
            ep.libCreate()
        except pj.Error as exc:
            raise map_pj_error(exc, "creating the PJSUA2 endpoint") from None
        self._ep = ep
        try:
            self._init(pj, ep)
        except pj.Error as exc:
            self.close()
            raise self._init_error(exc) from None

    def _init(self, pj, ep) -> None:
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 1
        cfg.uaConfig.mainThreadOnly = False
        cfg.uaConfig.maxCalls = CAPACITY
        cfg.uaConfig.userAgent = self.config.user_agent
        cfg.logConfig.level = self.config.log_level
        cfg.logConfig.consoleLevel = self.config.log_level
        cfg.medConfig.threadCnt = 0      # media events on the one worker thread
        cfg.medConfig.noVad = True
        ep.libInit(cfg)
        tcfg = pj.TransportConfig()
        tcfg.port = self.config.sip_port
        bind = self.config.bind
        tcfg.boundAddress = "" if _unspecified(bind) else bind
        # On 0.0.0.0 PJSIP publishes the host's default interface address itself.
        tcfg.publicAddress = "" if _unspecified(bind) else bind
        tid = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        self.sip_host, port = ep.transportGetInfo(tid).localName.rsplit(":", 1)
        self.sip_port = int(port)
        ep.libStart()
        if self.config.media == "none":
            ep.audDevManager().setNoDev()
        else:
            ep.audDevManager().setNullDev()
        self._set_codecs(ep)
        self._acc = self._make_account(pj, tid)

    def _init_error(self, exc) -> SipError:
        err = map_pj_error(exc, "starting the SIP engine")
        if "in use" in err.message.lower() or "EADDRINUSE" in err.message:
            return SipError(f"SIP port {self.config.sip_port} on {self.config.bind} is already in use "
                            "(choose another --sip-port or stop what holds it)")
        return err

    def _set_codecs(self, ep) -> None:
        wanted = list(self.config.codecs)
        available = {c.codecId for c in ep.codecEnum2()}
        missing = [c for c in wanted if c not in available]
        if missing:
            raise SipError(f"codec(s) not in this PJSUA2 build: {', '.join(missing)}; "
                           f"available: {', '.join(sorted(available))}")
        for cid in available:
            ep.codecSetPriority(cid, 0)
        for i, cid in enumerate(wanted):
            ep.codecSetPriority(cid, 250 - i)

    def _make_account(self, pj, tid):
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:ccharness@{self.sip_host}:{self.sip_port}"
        acfg.sipConfig.transportId = tid
        # Each process walks its own RTP port window from a random start: engine
        # processes starting alike at PJSUA's default (4000) collide, and PJSUA gives up
        # with EADDRINUSE after its 100 bind retries (seen at ~180 calls/s, 50 processes).
        acfg.mediaConfig.transportConfig.port = random.randrange(10000, 64000 - RTP_WINDOW, 2)
        acfg.mediaConfig.transportConfig.portRange = RTP_WINDOW
        bind = self.config.bind
        acfg.mediaConfig.transportConfig.boundAddress = "" if _unspecified(bind) else bind
        acfg.mediaConfig.transportConfig.publicAddress = "" if _unspecified(bind) else bind
        acfg.natConfig.sdpNatRewriteUse = False
        acfg.natConfig.contactRewriteUse = False
        acc = pj.Account()
        acc.create(acfg, True)
        return acc

    def close(self) -> None:
        """Hang up everything, destroy all Call objects, destroy the library."""
        if self._ep is None:
            return
        try:
            if self._calls:
                self._ep.hangupAllCalls()
                deadline = time.time() + 2.0
                while self._calls and time.time() < deadline:
                    time.sleep(0.02)
                    self.service()
            for st in list(self._calls.values()):
                self._destroy(st)
            self._calls.clear()
            if self._acc is not None:
                self._acc.shutdown()
                self._acc = None
            self._ep.libDestroy()
        except Exception:  # noqa: BLE001 - teardown must not mask the original error
            log.exception("PJSUA2 teardown")
        self._ep = None

    # -- calls ------------------------------------------------------------------
    @property
    def active(self) -> int:
        return len(self._calls)

    @property
    def free(self) -> int:
        return CAPACITY - len(self._calls)

    def place(self, spec: CallSpec) -> None:
        """Send an INVITE for ``spec``. Raises CapacityError when full or when calls come
        faster than ``MAX_STARTS`` per ``START_WINDOW`` (RateGate), SipError when
        the target is malformed or PJSIP refuses; the record comes via ``service()``."""
        target = parse_target(spec.target, allow_remote=self.config.allow_remote or None)
        if self.free - len(self._deferred) <= 0:
            raise CapacityError(f"engine holds {CAPACITY} calls already (PJSUA2 per-process cap)")
        # A deferred retry (PJ_ETOOMANY) was admitted when first placed.
        if spec.call_id not in self._tries and not self._gate.admit(time.time()):
            raise CapacityError(f"engine refused a call: {MAX_STARTS} started in the last "
                                f"{START_WINDOW:g} s already (PJSIP ioqueue limit)")
        pj = _pj()
        record = CallRecord(call_id=spec.call_id, tag=spec.tag, target=target.uri,
                            entry_trunk=spec.entry_trunk)
        st = _CallState(spec, record)
        call = _Call(self, st, self._acc)
        prm = pj.CallOpParam(True)
        prm.txOption.headers = self._headers(pj, spec)
        with self._lock:
            self._calls[spec.call_id] = st
            st.call = call
        record.invite_at = time.time()
        st.hangup_at = record.invite_at + spec.ring_timeout
        try:
            call.makeCall(target.uri, prm)
            st.pj_id = call.getId()
        except pj.Error as exc:
            # The Call never got a PJSUA slot. Destroying it can abort the process
            # (PJSUA2 may leave a stale id in it: DESIGN.md), so it is kept, inert, in
            # a graveyard that is never destroyed (engine processes leave by _exit).
            with self._lock:
                self._calls.pop(spec.call_id, None)
                st.call = None
            call.st = None
            self._graveyard.append(call)
            if exc.status == PJ_ETOOMANY and self._tries.get(spec.call_id, 0) < 50:
                # A slot in PJSUA's reset window (see _slot_busy): retry shortly.
                self._tries[spec.call_id] = self._tries.get(spec.call_id, 0) + 1
                self._deferred.append(spec)
                self._retry_at = time.time() + 0.002
                return
            self._tries.pop(spec.call_id, None)
            raise map_pj_error(exc, f"INVITE to {target.uri}") from None
        self._tries.pop(spec.call_id, None)

    @staticmethod
    def _headers(pj, spec: CallSpec):
        vec = pj.SipHeaderVector()
        for name, value in ((spec.tag_header, spec.tag), *spec.extra_headers):
            h = pj.SipHeader()
            h.hName, h.hValue = name, value
            vec.append(h)
        return vec

    def hangup(self, call_id: str) -> None:
        """End a call at the next service(): BYE if answered, CANCEL if ringing."""
        st = self._calls.get(call_id)
        if st is not None and not st.done:
            st.hangup_at = time.time()

    def next_deadline(self) -> float | None:
        """Earliest time service() must run for a hangup (hold end or ring timeout)."""
        times = [st.hangup_at for st in self._calls.values() if st.hangup_at and not st.done]
        if self._retry_at:
            times.append(self._retry_at)
        return min(times) if times else None

    def service(self) -> int:
        """Owner-thread work: hang up due calls, send DTMF, destroy finished calls and
        emit their records. Returns how many records were emitted."""
        now = time.time()
        for st in list(self._calls.values()):
            if st.hangup_at is not None and now >= st.hangup_at and not st.done:
                st.hangup_at = None
                self._hangup(st)
        while self.on_answer is not None and not self._answers.empty():
            self.on_answer(self._answers.get_nowait())
        emitted, later = 0, []
        while True:
            try:
                st = self._finished.get_nowait()
            except queue.Empty:
                break
            if self._slot_busy(st):
                later.append(st)
                continue
            self._destroy(st)
            self.on_record(st.record.to_dict())
            emitted += 1
        for st in later:
            self._finished.put(st)
        deferred, self._deferred = self._deferred, []
        self._retry_at = time.time() + 0.002 if later else None
        for spec in deferred:
            self._place_deferred(spec)
        return emitted

    def _place_deferred(self, spec: CallSpec) -> None:
        try:
            self.place(spec)
        except SipError as exc:
            rec = CallRecord(call_id=spec.call_id, tag=spec.tag, target=spec.target,
                             entry_trunk=spec.entry_trunk, invite_at=time.time())
            rec.finish(0, exc.message, None, time.time())
            self.on_record(rec.to_dict())

    def _slot_busy(self, st: _CallState) -> bool:
        """True while PJSUA2 is still inside the DISCONNECTED dispatch of this call.

        The callback runs before PJSUA frees the slot; PJSUA2 clears the slot's user
        data (our Call) once the callback has returned, just before PJSUA's reset. A
        record emitted (and a new call admitted) earlier makes ``makeCall`` fail with
        PJ_ETOOMANY; the short rest of the window is covered by the retry in place()."""
        if st.pj_id is None or st.call is None:
            return False
        found = _pj().Call.lookup(st.pj_id)
        return found is not None and getattr(found, "st", None) is st

    def _hangup(self, st: _CallState) -> None:
        pj = _pj()
        if st.call is None:
            return
        prm = pj.CallOpParam(True)
        if st.record.answered_at is not None:
            st.record.bye_at = time.time()
        try:
            st.call.hangup(prm)
        except pj.Error as exc:
            log.debug("hangup %s: %s", st.spec.call_id, map_pj_error(exc, "hangup"))

    def _destroy(self, st: _CallState) -> None:
        with self._lock:
            self._calls.pop(st.spec.call_id, None)
            call, st.call = st.call, None
        if call is not None:
            call.st = None
            del call  # last reference: the C++ Call is destroyed here, in this thread

    # -- callbacks (native thread) ---------------------------------------------
    def _on_state(self, st: _CallState, info, whole_msg: str) -> None:
        pj = _pj()
        now = time.time()
        rec, state = st.record, info.state
        if state == pj.PJSIP_INV_STATE_EARLY and rec.first_18x_at is None \
                and 180 <= info.lastStatusCode < 190:
            rec.first_18x_at = now
        elif state in (pj.PJSIP_INV_STATE_CONNECTING, pj.PJSIP_INV_STATE_CONFIRMED) \
                and rec.answered_at is None:
            rec.answered_at = now
            rec.finish(info.lastStatusCode or 200, info.lastReason, now, now)
            rec.trunk = twin_trunk(whole_msg) or rec.trunk
            st.hangup_at = now + st.spec.hold
            if self.on_answer is not None:
                self._answers.put(rec.to_dict())     # snapshot now, sent by service()
            self.wake()
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self._on_disconnected(st, info, whole_msg, now)

    def _on_disconnected(self, st: _CallState, info, whole_msg: str, now: float) -> None:
        rec = st.record
        if rec.answered_at is None:
            rec.finish(info.lastStatusCode, info.lastReason, now, now)
            rec.trunk = twin_trunk(whole_msg) or rec.trunk
        else:
            rec.ended_at = now
            if rec.bye_at is None:       # the far end hung up first
                rec.bye_at = now
        st.done = True
        self._finished.put(st)
        self.wake()

    def _on_media(self, st: _CallState) -> None:
        if st.spec.dtmf and not st.dtmf_sent and st.call is not None:
            st.dtmf_sent = True
            pj = _pj()
            try:
                if st.spec.dtmf_method == "info":
                    prm = pj.CallSendDtmfParam()
                    prm.method = pj.PJSUA_DTMF_METHOD_SIP_INFO
                    prm.digits = st.spec.dtmf
                    st.call.sendDtmf(prm)
                else:   # RFC 4733 events in RTP, when telephone-event was negotiated
                    st.call.dialDtmf(st.spec.dtmf)
            except pj.Error as exc:
                log.debug("DTMF on %s: %s", st.spec.call_id, map_pj_error(exc, "DTMF"))


def _event_msg(prm) -> str:
    """The whole received message behind a call-state event, or ''."""
    try:
        ev = prm.e
        pj = _pj()
        if ev.type == pj.PJSIP_EVENT_TSX_STATE and ev.body.tsxState.type == pj.PJSIP_EVENT_RX_MSG:
            return ev.body.tsxState.src.rdata.wholeMsg
    except Exception:  # noqa: BLE001 - a missing header is not worth a crash
        pass
    return ""


@functools.cache
def _call_class():
    """The pjsua2.Call subclass, built on first use so importing this module stays cheap."""
    pj = _pj()

    class Call(pj.Call):
        """Forwards callbacks to the engine; holds no reference cycle to itself."""

        def __init__(self, engine: Engine, st: _CallState, acc):
            super().__init__(acc)
            self.engine, self.st = engine, st

        def onCallState(self, prm):
            st = self.st
            if st is None:
                return
            try:
                info = self.getInfo()
                # Only answers and endings need the message text (X-Twin-Trunk): skip
                # the copy for the provisional states.
                msg = _event_msg(prm) if info.state >= _FINAL_STATES else ""
                self.engine._on_state(st, info, msg)
            except Exception:  # noqa: BLE001 - never raise into PJSIP's thread
                log.exception("onCallState")

        def onCallMediaState(self, prm):
            st = self.st
            if st is not None:
                self.engine._on_media(st)

    return Call


_FINAL_STATES = 4   # PJSIP_INV_STATE_CONNECTING (pjsip_inv_state is a stable C enum)


def _Call(engine: Engine, st: _CallState, acc):  # noqa: N802 - reads as a constructor
    return _call_class()(engine, st, acc)
