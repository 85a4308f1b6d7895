"""Target URI validation, without I/O.

By default the engine binds its SIP and media transports to 127.0.0.1 (DESIGN.md:
loopback only), so a target must be a ``sip:`` URI whose host is on loopback; anything
else is refused here with a message that says why, before PJSUA2 sees it.

A real deployment (workers in containers calling ``sip:...@twin:PORT`` or a DR org's
SBC) opts in explicitly: ``allow_remote=True`` (Locust ``--sip-allow-remote``) or the
environment variable ``CCHARNESS_ALLOW_REMOTE_TARGETS=1``. Only then are other hosts,
names included, accepted; the engine must also bind beyond loopback (``--sip-bind``).
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass

from harness.errors import SipError

# RFC 3261 section 19.1.1: sip:user@host:port;params (user part optional).
_SIP_URI = re.compile(
    r"^sip:(?:(?P<user>[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+)@)?"
    r"(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>\d{1,5}))?"
    r"(?P<params>(?:;[A-Za-z0-9\-_.!~*'()%]+(?:=[A-Za-z0-9\-_.!~*'()%]*)?)*)$"
)
_LOOPBACK_NAMES = {"localhost"}
ALLOW_REMOTE_ENV = "CCHARNESS_ALLOW_REMOTE_TARGETS"


def remote_allowed(allow_remote: bool | None = None) -> bool:
    """The opt-in: ``allow_remote`` when given, else ``CCHARNESS_ALLOW_REMOTE_TARGETS=1``."""
    if allow_remote is not None:
        return bool(allow_remote)
    return os.environ.get(ALLOW_REMOTE_ENV, "").strip() == "1"


@dataclass(frozen=True)
class SipTarget:
    """A validated target: the URI as given plus the host and port to reach."""

    uri: str
    user: str | None
    host: str
    port: int

    @property
    def address(self) -> tuple[str, int]:
        host = "127.0.0.1" if self.host in _LOOPBACK_NAMES else self.host
        return host, self.port


def parse_target(uri: str, allow_remote: bool | None = None) -> SipTarget:
    """Validate ``uri`` as a ``sip:`` URI on loopback (or anywhere, with the explicit
    opt-in: ``allow_remote``, else the environment, see ``remote_allowed``); raise
    SipError naming the fault."""
    text = (uri or "").strip()
    if not text:
        raise SipError("empty SIP target URI (expected e.g. sip:chaos@127.0.0.1:5060)")
    if text.lower().startswith("sips:"):
        raise SipError(f"malformed SIP target {uri!r}: sips: (TLS) is not supported, use sip:")
    m = _SIP_URI.match(text)
    if not m:
        raise SipError(f"malformed SIP target {uri!r}: expected sip:[user@]host[:port] "
                       "(e.g. sip:chaos@127.0.0.1:5060)")
    port = int(m.group("port") or 5060)
    if not 1 <= port <= 65535:
        raise SipError(f"malformed SIP target {uri!r}: port {port} is out of range 1-65535")
    host = m.group("host")
    if not _is_loopback(host) and not remote_allowed(allow_remote):
        raise SipError(f"SIP target {uri!r} is not on loopback: the engine binds to 127.0.0.1 "
                       "and sends traffic nowhere else (for a real deployment opt in with "
                       f"--sip-allow-remote or {ALLOW_REMOTE_ENV}=1)")
    return SipTarget(uri=text, user=m.group("user"), host=host, port=port)


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
