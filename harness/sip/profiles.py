"""Codec profiles and hold-time distributions (validated into typed objects).

A codec profile is an ordered offer: PJSUA2 offers codecs by priority, so the
engine gives the listed codecs falling priorities and every other codec 0
(disabled). A hold distribution is written ``fixed:30``, ``uniform:10:60``,
``exp:45`` (mean) or ``normal:60:15`` (mean, sd; clipped at 0); a bare number
means fixed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from harness.errors import ConfigError

# profile name -> PJMEDIA codec ids
CODECS = {
    "pcmu": "PCMU/8000/1", "g711u": "PCMU/8000/1",
    "pcma": "PCMA/8000/1", "g711a": "PCMA/8000/1",
    "g722": "G722/16000/1",
    "gsm": "GSM/8000/1",
    "speex": "speex/8000/1",
    "ilbc": "iLBC/8000/1",
    "opus": "opus/48000/2",
}


def codec_ids(names: str | list[str]) -> tuple[str, ...]:
    """Validate a codec profile (``"pcmu,g722"`` or a list) into PJMEDIA codec ids."""
    items = names.split(",") if isinstance(names, str) else list(names)
    items = [n.strip().lower() for n in items if n and n.strip()]
    if not items:
        raise ConfigError("empty codec profile", key="codecs")
    unknown = [n for n in items if n not in CODECS]
    if unknown:
        raise ConfigError(f"unknown codec(s) {', '.join(unknown)}; known: {', '.join(sorted(CODECS))}",
                          key="codecs")
    return tuple(dict.fromkeys(CODECS[n] for n in items))


@dataclass(frozen=True)
class HoldDistribution:
    kind: str
    a: float
    b: float = 0.0

    def draw(self, rng: random.Random | None = None) -> float:
        r = rng or random
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return r.uniform(self.a, self.b)
        if self.kind == "exp":
            return r.expovariate(1.0 / self.a) if self.a > 0 else 0.0
        return max(0.0, r.gauss(self.a, self.b))

    @property
    def mean(self) -> float:
        return (self.a + self.b) / 2 if self.kind == "uniform" else self.a


_ARITY = {"fixed": 1, "uniform": 2, "exp": 1, "normal": 2}


def parse_hold(text: str | float) -> HoldDistribution:
    """Parse a hold distribution; ConfigError on anything unclear or negative."""
    if isinstance(text, (int, float)):
        text = f"fixed:{text}"
    parts = str(text).strip().split(":")
    if len(parts) == 1:
        parts = ["fixed", parts[0]]
    kind, args = parts[0].lower(), parts[1:]
    if kind not in _ARITY or len(args) != _ARITY[kind]:
        raise ConfigError(f"bad hold distribution {text!r}: use fixed:S, uniform:A:B, exp:MEAN "
                          "or normal:MEAN:SD", key="hold")
    try:
        nums = [float(a) for a in args]
    except ValueError:
        raise ConfigError(f"bad hold distribution {text!r}: numbers expected", key="hold") from None
    if any(n < 0 for n in nums) or (kind == "uniform" and nums[1] < nums[0]):
        raise ConfigError(f"bad hold distribution {text!r}: negative or reversed bounds", key="hold")
    return HoldDistribution(kind, *nums)
