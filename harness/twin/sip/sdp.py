"""SDP offer/answer for the twin (RFC 4566, RFC 3264), audio only.

``parse_offer`` reads the first ``m=audio`` line of an offer and never raises: a body
it cannot read is an offer with no codecs (the model then answers 488). ``build_answer``
writes the twin's answer: ``c=IN IP4 127.0.0.1``, the media port that swallows RTP,
the chosen codec, plus telephone-event when the offer had it (RFC 4733).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# RFC 3551 static payload types the twin knows by number
STATIC = {0: ("PCMU", 8000), 3: ("GSM", 8000), 8: ("PCMA", 8000), 9: ("G722", 8000),
          18: ("G729", 8000)}
_BY_NAME = {name: (pt, rate) for pt, (name, rate) in STATIC.items()}
_NOT_CODECS = ("TELEPHONE-EVENT", "CN")  # DTMF and comfort noise are not voice codecs


@dataclass
class Codec:
    pt: int
    name: str  # upper case
    rate: int


@dataclass
class SdpOffer:
    codecs: list[Codec] = field(default_factory=list)  # voice codecs in offer order
    telephone_event: Codec | None = None
    address: str = ""
    port: int = 0

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.codecs]

    def find(self, name: str) -> Codec | None:
        name = name.upper()
        return next((c for c in self.codecs if c.name == name), None)


def parse_offer(body: bytes) -> SdpOffer:
    """The audio codecs of an SDP offer; an empty ``SdpOffer`` when unreadable."""
    try:
        return _parse(body.decode("utf-8", "replace"))
    except Exception:  # an unreadable offer is "no codecs", never a crash
        return SdpOffer()


def _parse(text: str) -> SdpOffer:
    offer = SdpOffer()
    pts: list[int] = []
    rtpmap: dict[int, tuple[str, int]] = {}
    in_audio = seen_audio = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("c=") and (in_audio or not seen_audio):
            offer.address = line[2:].split()[-1] if line[2:].split() else ""
        elif line.startswith("m="):
            parts = line[2:].split()
            in_audio = not seen_audio and len(parts) >= 3 and parts[0] == "audio"
            if in_audio:
                seen_audio = True
                offer.port = int(parts[1].split("/")[0]) if parts[1].split("/")[0].isdigit() else 0
                pts = [int(p) for p in parts[3:] if p.isdigit() and int(p) < 128]
        elif in_audio and line.startswith("a=rtpmap:"):
            pt_text, _, enc = line[9:].partition(" ")
            name, _, rest = enc.strip().partition("/")
            rate = rest.split("/")[0]
            if pt_text.isdigit() and name:
                rtpmap[int(pt_text)] = (name.upper(), int(rate) if rate.isdigit() else 8000)
    for pt in pts:
        name, rate = rtpmap.get(pt) or STATIC.get(pt) or ("", 0)
        if not name:
            continue
        if name == "TELEPHONE-EVENT":
            offer.telephone_event = offer.telephone_event or Codec(pt, name, rate)
        elif name not in _NOT_CODECS:
            offer.codecs.append(Codec(pt, name, rate))
    return offer


def build_answer(offer: SdpOffer, codec: str, media_port: int, session_id: int,
                 address: str = "127.0.0.1") -> bytes:
    """The twin's SDP answer with ``codec`` (payload type taken from the offer)."""
    chosen = offer.find(codec) or _default(codec)
    fmts = [str(chosen.pt)]
    attrs = [f"a=rtpmap:{chosen.pt} {_encoding(chosen)}"]
    te = offer.telephone_event
    if te is not None:
        fmts.append(str(te.pt))
        attrs.append(f"a=rtpmap:{te.pt} telephone-event/{te.rate}")
        attrs.append(f"a=fmtp:{te.pt} 0-16")
    lines = [
        "v=0",
        f"o=twin {session_id} {session_id} IN IP4 {address}",
        "s=ccharness twin",
        f"c=IN IP4 {address}",
        "t=0 0",
        f"m=audio {media_port} RTP/AVP {' '.join(fmts)}",
        *attrs,
        "a=sendrecv",
        "",
    ]
    return "\r\n".join(lines).encode("ascii", "replace")


def _default(codec: str) -> Codec:
    name = codec.upper()
    pt, rate = _BY_NAME.get(name, (96, 48000 if name == "OPUS" else 8000))
    return Codec(pt, name, rate)


def _encoding(codec: Codec) -> str:
    if codec.name == "OPUS":
        return f"opus/{codec.rate}/2"  # RFC 7587: opus is always declared with 2 channels
    return f"{codec.name}/{codec.rate}"
