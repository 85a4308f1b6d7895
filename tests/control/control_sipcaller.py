"""A minimal SIP caller for controller tests: real calls into the twin over UDP on
127.0.0.1, producing per-call records (CONTRACTS.md section 6).

It stands in for the load session behind the controller's load seam (subscribe /
start / wait_until_holding / stop) so that the shipped experiments' SIP outcomes (488,
403, 408) come from the real twin. Bounded: ``concurrent`` caller threads, each
placing calls one after another until stopped or ``max_seconds`` pass.
RFC 3261: ACK for a non-2xx final is hop-by-hop (same branch, 17.1.1.3); ACK for a 2xx
is a new transaction (13.2.2.4); the caller then hangs up with BYE.
"""

from __future__ import annotations

import re
import socket
import threading
import time
import uuid

OUTCOMES = {200: "answered", 408: "408", 487: "487", 488: "488", 403: "403", 503: "503"}
SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio 40000 RTP/AVP 0 8 18\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
       "a=rtpmap:18 G729/8000\r\n")


def parse(data: bytes) -> tuple[str, dict[str, str]]:
    head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace").split("\r\n")
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return head[0], headers


class SipCallerLoad:
    def __init__(self, sip_uri: str, concurrent: int = 4, hold_s: float = 1.0, tag: str = "ctl-test",
                 entry_trunk: str | None = None, max_seconds: float = 90.0, max_calls: int = 5000,
                 pace_s: float = 0.05, invite_timeout_s: float = 3.0):
        m = re.match(r"sip:[^@]+@([\d.]+):(\d+)", sip_uri)
        self.uri, self.addr = sip_uri, (m.group(1), int(m.group(2)))
        self.concurrent, self.hold_s, self.tag = concurrent, hold_s, tag
        self.entry_trunk, self.max_seconds = entry_trunk, max_seconds
        self.max_calls, self.pace_s = max_calls, pace_s   # bounded in count, time and rate
        # A dropped INVITE gets no answer: like Timer B (RFC 3261 17.1.1.2, 64*T1), the
        # caller gives up and records a local 408, only sooner (the twin runs scaled).
        self.invite_timeout_s = invite_timeout_s
        self.sinks, self.records = [], []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    # -- the load seam ---------------------------------------------------------------
    def subscribe(self, fn):
        self.sinks.append(fn)

    def start(self):
        deadline = time.time() + self.max_seconds
        for i in range(self.concurrent):
            t = threading.Thread(target=self._caller, args=(deadline,), daemon=True)
            t.start()
            self._threads.append(t)

    def wait_until_holding(self, timeout, stop=lambda: False):
        end = time.time() + timeout
        while time.time() < end and not stop():
            with self._lock:
                if sum(1 for r in self.records if r["outcome"] == "answered") >= self.concurrent:
                    return True
            time.sleep(0.05)
        return False

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)

    # -- calls -------------------------------------------------------------------------
    def _caller(self, deadline):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.2)
        try:
            while not self._stop.is_set() and time.time() < deadline and len(self.records) < self.max_calls:
                started = time.time()
                record = self._call(sock)
                with self._lock:
                    self.records.append(record)
                for sink in self.sinks:
                    sink([record])
                self._stop.wait(max(0.0, self.pace_s - (time.time() - started)))
        finally:
            sock.close()

    def _send(self, sock, text: str):
        sock.sendto(text.encode(), self.addr)

    def _call(self, sock) -> dict:
        port = sock.getsockname()[1]
        call_id, from_tag, branch = uuid.uuid4().hex, uuid.uuid4().hex[:8], "z9hG4bK" + uuid.uuid4().hex[:12]
        common = (f"From: <sip:caller@127.0.0.1>;tag={from_tag}\r\nCall-ID: {call_id}\r\n"
                  f"Max-Forwards: 70\r\n")
        invite = (f"INVITE {self.uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch={branch}\r\n"
                  f"{common}To: <{self.uri}>\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@127.0.0.1:{port}>\r\n"
                  f"X-Chaos-Test: {self.tag}\r\nContent-Type: application/sdp\r\n"
                  f"Content-Length: {len(SDP)}\r\n\r\n{SDP}")
        invite_at = time.time()
        self._send(sock, invite)
        first_18x = None
        status, headers = 0, {}
        while time.time() - invite_at < self.invite_timeout_s and not self._stop.is_set():
            try:
                data, _ = sock.recvfrom(65535)
            except socket.timeout:
                continue
            start, hdrs = parse(data)
            if not start.startswith("SIP/2.0 "):
                self._answer_request(sock, start, hdrs)
                continue
            if hdrs.get("call-id") != call_id or "INVITE" not in hdrs.get("cseq", ""):
                continue
            code = int(start.split()[1])
            if code < 200:
                first_18x = first_18x or (time.time() if code >= 180 else None)
                continue
            status, headers = code, hdrs
            break
        else:
            status = 408   # local timeout, as a UAC reports Timer B expiry
        final_at = time.time()
        record = {"call_id": call_id, "tag": self.tag, "target": self.uri, "entry_trunk": self.entry_trunk,
                  "trunk": headers.get("x-twin-trunk"), "outcome": OUTCOMES.get(status, "other"),
                  "code": status or None, "reason": "", "invite_at": invite_at, "first_18x_at": first_18x,
                  "answered_at": final_at if status == 200 else None, "bye_at": None,
                  "ended_at": final_at, "setup_seconds": final_at - invite_at, "worker": "test"}
        to = headers.get("to", f"<{self.uri}>")
        if status >= 300 and headers:
            self._send(sock, f"ACK {self.uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch={branch}\r\n"
                             f"{common}To: {to}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n")
        elif status == 200:
            self._send(sock, f"ACK {self.uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};"
                             f"branch=z9hG4bK{uuid.uuid4().hex[:12]}\r\n{common}To: {to}\r\nCSeq: 1 ACK\r\n"
                             f"Content-Length: 0\r\n\r\n")
            self._stop.wait(self.hold_s)
            record["bye_at"] = time.time()
            self._send(sock, f"BYE {self.uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};"
                             f"branch=z9hG4bK{uuid.uuid4().hex[:12]}\r\n{common}To: {to}\r\nCSeq: 2 BYE\r\n"
                             f"Content-Length: 0\r\n\r\n")
            self._drain(sock, call_id, "BYE")
            record["ended_at"] = time.time()
        return record

    def _drain(self, sock, call_id, method, timeout=2.0):
        end = time.time() + timeout
        while time.time() < end:
            try:
                data, _ = sock.recvfrom(65535)
            except socket.timeout:
                continue
            start, hdrs = parse(data)
            if not start.startswith("SIP/2.0 "):
                self._answer_request(sock, start, hdrs)
            elif hdrs.get("call-id") == call_id and method in hdrs.get("cseq", ""):
                return

    def _answer_request(self, sock, start, hdrs):
        """The twin may send BYE (handle time) or retransmit; answer requests with 200."""
        if start.startswith("ACK"):
            return
        keys = ("via", "from", "to", "call-id", "cseq")
        lines = "".join(f"{k.title() if k != 'call-id' else 'Call-ID'}: {hdrs[k]}\r\n" for k in keys if k in hdrs)
        self._send(sock, f"SIP/2.0 200 OK\r\n{lines}Content-Length: 0\r\n\r\n")
