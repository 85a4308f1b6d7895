"""The twin's SIP side: parser (message), SDP (sdp), sans-I/O UAS (uas), UDP edge (server).

The routing model talks to it only through ``harness.twin.legs`` (CallLeg, CallRouter).
"""

from .message import SipMessage, SipParseError, build_request, build_response, parse
from .server import SipServer
from .uas import Leg, UasCore

__all__ = ["SipMessage", "SipParseError", "build_request", "build_response", "parse",
           "SipServer", "Leg", "UasCore"]
