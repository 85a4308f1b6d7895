"""Is anything listening at a SIP target? A cheap loopback probe before a run.

A connected UDP socket sends a CRLF keep-alive (RFC 5626 section 4.4.1: SIP stacks
ignore it) and waits briefly: on loopback a closed port answers at once with ICMP
port unreachable, which Linux reports as ECONNREFUSED. Silence means something
is bound there, which is all a probe can tell without placing a call.
"""

from __future__ import annotations

import socket

from harness.errors import SipError
from harness.sip.uri import parse_target


def check_reachable(uri: str, wait: float = 0.3) -> None:
    target = parse_target(uri)
    host, port = target.address
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(wait)
        try:
            s.connect((host, port))
            s.send(b"\r\n\r\n")
            s.recv(2048)
        except ConnectionRefusedError:
            raise SipError(f"SIP target {uri} is unreachable: nothing listens on UDP "
                           f"{host}:{port}") from None
        except (TimeoutError, socket.timeout):
            pass
        except OSError as exc:
            raise SipError(f"SIP target {uri} is unreachable: {exc.strerror or exc}") from None
