"""Sans-I/O SIP message parser and serializer (RFC 3261 sections 7 and 20).

Theory of operation: ``parse(datagram)`` turns one UDP datagram into a
``SipMessage`` or raises ``SipParseError``; it raises nothing else, whatever the
input (the fuzz tests hold it to that). Header names are stored lower-case in
their long form (compact ``i``, ``v``, ``f``... expanded, RFC 3261 7.3.3), each
name mapping to its values in arrival order, one per header line. Values are not
split on commas: the UAS only needs the top Via, and copying Via lines verbatim
into responses keeps their order (RFC 3261 8.2.6.2).

This is the twin's hot path, so it is plain string slicing, no regex per line
beyond one token check.
"""

from __future__ import annotations

import re

from harness.errors import SipError

MAX_DATAGRAM = 65_507  # largest UDP payload over IPv4
MAX_HEADER_LINES = 256  # far above any real message; bounds the work per datagram

COMPACT = {
    "i": "call-id", "v": "via", "f": "from", "t": "to", "m": "contact",
    "l": "content-length", "c": "content-type", "k": "supported", "s": "subject",
    "e": "content-encoding", "o": "event", "r": "refer-to", "u": "allow-events",
    "x": "session-expires",
}
_CANONICAL = {
    "call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version",
}
_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~\-]+")
_CTL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CRLF = re.compile(r"[\r\n]+")


class SipParseError(SipError):
    """A datagram is not a well-formed SIP message (the only error ``parse`` raises)."""


class SipMessage:
    """A parsed request (``method``/``uri`` set) or response (``status``/``reason`` set)."""

    __slots__ = ("method", "uri", "status", "reason", "headers", "body")

    def __init__(self, method=None, uri=None, status=None, reason=None, headers=None, body=b""):
        self.method: str | None = method
        self.uri: str | None = uri
        self.status: int | None = status
        self.reason: str | None = reason
        self.headers: dict[str, list[str]] = headers if headers is not None else {}
        self.body: bytes = body

    @property
    def is_request(self) -> bool:
        return self.method is not None

    def get(self, name: str) -> str | None:
        """First value of header ``name`` (lower-case long form), or None."""
        values = self.headers.get(name)
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        return list(self.headers.get(name, ()))

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        first = f"{self.method} {self.uri}" if self.method else f"{self.status} {self.reason}"
        return f"<SipMessage {first} call-id={self.get('call-id')!r}>"


def parse(data: bytes) -> SipMessage:
    """Parse one datagram. Raises ``SipParseError`` and nothing else."""
    try:
        return _parse(data)
    except SipParseError:
        raise
    except Exception as exc:  # the contract is "never anything else": belt and braces
        raise SipParseError(f"malformed message ({type(exc).__name__})") from None


def _parse(data) -> SipMessage:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SipParseError("a datagram must be bytes")
    if len(data) > MAX_DATAGRAM:
        raise SipParseError(f"datagram of {len(data)} bytes exceeds {MAX_DATAGRAM}")
    data = bytes(data).lstrip(b"\r\n")  # RFC 3261 7.5: ignore CRLFs before the start line
    head, body = _split_head(data)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("header section is not UTF-8 text") from None
    if _CTL.search(text):
        raise SipParseError("control characters in the header section")
    lines = text.replace("\r\n", "\n").split("\n")
    if len(lines) > MAX_HEADER_LINES:
        raise SipParseError(f"more than {MAX_HEADER_LINES} header lines")
    msg = _start_line(lines[0])
    msg.headers = _headers(lines)
    msg.body = _body(msg.headers, body)
    return msg


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    sep = data.find(b"\r\n\r\n")
    if sep >= 0:
        return data[:sep], data[sep + 4:]
    sep = data.find(b"\n\n")
    if sep >= 0:
        return data[:sep], data[sep + 2:]
    raise SipParseError("no empty line after the headers" if data else "empty datagram")


def _start_line(line: str) -> SipMessage:
    if line.startswith("SIP/2.0 "):
        parts = line.split(" ", 2)
        code = parts[1]
        if len(code) != 3 or not (code.isascii() and code.isdigit()) or code[0] not in "123456":
            raise SipParseError(f"bad status code {code[:10]!r}")
        return SipMessage(status=int(code), reason=parts[2] if len(parts) > 2 else "")
    parts = line.split(" ")
    if len(parts) != 3 or parts[2] != "SIP/2.0":
        raise SipParseError("bad request line")
    if not _TOKEN.fullmatch(parts[0]) or not parts[1] or ":" not in parts[1]:
        raise SipParseError("bad method or Request-URI")
    return SipMessage(method=parts[0], uri=parts[1])


def _headers(lines: list[str]) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    last: list[str] | None = None
    for i in range(1, len(lines)):
        line = lines[i]
        if not line:
            continue
        if line[0] == " " or line[0] == "\t":  # folded continuation (RFC 3261 7.3.1)
            if last is None:
                raise SipParseError("continuation line before any header")
            last[-1] = (last[-1] + " " + line.strip()).strip()
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t").lower()
        if not colon or not _TOKEN.fullmatch(name):
            raise SipParseError("bad header line")
        name = COMPACT.get(name, name)
        last = headers.get(name)
        if last is None:
            last = headers[name] = []
        last.append(value.strip())
    return headers


def _body(headers: dict[str, list[str]], body: bytes) -> bytes:
    values = headers.get("content-length")
    if values is None:
        return body  # UDP: the body runs to the end of the datagram (RFC 3261 18.3)
    if len(set(values)) != 1:
        raise SipParseError("conflicting Content-Length headers")
    value = values[0]
    if not value or len(value) > 6 or not (value.isascii() and value.isdigit()):
        raise SipParseError(f"bad Content-Length {value[:10]!r}")
    length = int(value)
    if length > len(body):
        raise SipParseError(f"body of {len(body)} bytes shorter than Content-Length {length}")
    return body[:length]  # extra bytes in a datagram are discarded (RFC 3261 18.3)


# --- header value helpers -------------------------------------------------------------

def param(value: str | None, name: str) -> str | None:
    """Header parameter ``name`` (e.g. ``tag``, ``branch``) of a name-addr or Via value."""
    if not value:
        return None
    close = value.rfind(">")
    tail = value[close + 1:] if close >= 0 else value
    if ";" not in tail:
        return None
    name = name.lower()
    for item in tail.split(";")[1:]:
        key, _, val = item.partition("=")
        if key.strip().lower() == name:
            return val.strip()
    return None


def uri_of(value: str | None) -> str:
    """The URI inside a name-addr (``"A" <sip:a@h>;tag=1``) or addr-spec value."""
    if not value:
        return ""
    open_ = value.find("<")
    if open_ >= 0:
        close = value.find(">", open_)
        return value[open_ + 1:close if close >= 0 else None].strip()
    return value.split(";", 1)[0].strip()


def top_via(msg: SipMessage) -> str | None:
    """The topmost Via value (the first of a comma-separated line)."""
    value = msg.get("via")
    if value is None:
        return None
    return value.split(",", 1)[0].strip() if "," in value else value


def cseq(msg: SipMessage) -> tuple[int, str]:
    """(sequence number, method) of the CSeq header; ``SipParseError`` when malformed."""
    value = msg.get("cseq") or ""
    num, _, method = value.partition(" ")
    method = method.strip()
    if not (num.isascii() and num.isdigit()) or len(num) > 10 or not method:
        raise SipParseError(f"bad CSeq {value[:30]!r}")
    return int(num), method


def canonical(name: str) -> str:
    """Conventional spelling of a lower-case header name (``call-id`` -> ``Call-ID``)."""
    return _CANONICAL.get(name) or "-".join(p.capitalize() for p in name.split("-"))


def clean(value: str) -> str:
    """A header value with CR/LF removed, so a caller-supplied value cannot inject lines."""
    return _CRLF.sub(" ", str(value)) if ("\r" in value or "\n" in value) else value


# --- serializers ----------------------------------------------------------------------

def build_response(req: SipMessage, code: int, reason: str, *, to_tag: str | None = None,
                   contact: str | None = None, extra_headers: dict[str, str] | None = None,
                   body: bytes = b"", content_type: str = "application/sdp") -> bytes:
    """A response to ``req`` (RFC 3261 8.2.6): Via, From, To, Call-ID and CSeq copied,
    ``;tag=to_tag`` added to To when it has none (not on 100), Contact, the extra
    headers, and Content-Length. Missing request headers are left out (400 answers)."""
    h = req.headers
    out = [f"SIP/2.0 {code} {clean(reason)}"]
    for via in h.get("via", ()):
        out.append("Via: " + via)
    from_ = req.get("from")
    if from_ is not None:
        out.append("From: " + from_)
    to = req.get("to")
    if to is not None:
        if to_tag and code != 100 and param(to, "tag") is None:
            to = f"{to};tag={to_tag}"
        out.append("To: " + to)
    for name, label in (("call-id", "Call-ID"), ("cseq", "CSeq")):
        value = req.get(name)
        if value is not None:
            out.append(label + ": " + value)
    if contact:
        out.append(f"Contact: <{contact}>")
    if extra_headers:
        out.extend(_extra_lines(extra_headers))
    if body:
        out.append("Content-Type: " + content_type)
    out.append(f"Content-Length: {len(body)}")
    out.append("\r\n")
    return "\r\n".join(out).encode("utf-8") + body


def build_request(method: str, uri: str, headers: list[tuple[str, str]], body: bytes = b"",
                  content_type: str = "application/sdp") -> bytes:
    """A request with the given header lines (in order), Content-Type and Content-Length."""
    out = [f"{method} {uri} SIP/2.0"]
    out.extend(f"{name}: {clean(value)}" for name, value in headers)
    if body:
        out.append("Content-Type: " + content_type)
    out.append(f"Content-Length: {len(body)}")
    out.append("\r\n")
    return "\r\n".join(out).encode("utf-8") + body


def serialize(msg: SipMessage) -> bytes:
    """Bytes for any ``SipMessage`` (Content-Length recomputed from the body)."""
    if msg.method is not None:
        first = f"{msg.method} {msg.uri} SIP/2.0"
    else:
        first = f"SIP/2.0 {msg.status} {msg.reason}"
    out = [first]
    for name, values in msg.headers.items():
        if name == "content-length":
            continue
        label = canonical(name)
        out.extend(f"{label}: {value}" for value in values)
    out.append(f"Content-Length: {len(msg.body)}")
    out.append("\r\n")
    return "\r\n".join(out).encode("utf-8") + msg.body


def _extra_lines(extra: dict[str, str]) -> list[str]:
    lines = []
    for name, value in extra.items():
        if _TOKEN.fullmatch(str(name)):  # a bad name from the model is skipped, never sent
            lines.append(f"{name}: {clean(str(value))}")
    return lines
