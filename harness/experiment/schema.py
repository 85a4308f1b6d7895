"""Typed, frozen experiment model. Built once by ``harness.experiment.loader``.

The YAML schema is documented in experiments/README.md; every field here has a line
there. Durations are seconds (float); trunk and queue references are names or ids as
written in the file and are resolved to ids at run time (see harness.control.targets).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class PlatformName(enum.Enum):
    TWIN = "twin"
    GENESYS = "genesys"
    CXONE = "cxone"


class Api(enum.Enum):
    """Which REST dialect the platform speaks (the twin speaks both)."""

    GENESYS = "genesys"
    CXONE = "cxone"


class FaultKind(enum.Enum):
    TRUNK = "trunk"              # partial trunk update (PATCH Genesys / PUT CXone)
    TWIN_FAULTS = "twin_faults"  # PUT /twin/v1/faults (twin only)


class Metric(enum.Enum):
    ANSWER_RATIO = "answer_ratio"
    RATE_408 = "rate_408"
    RATE_487 = "rate_487"
    RATE_488 = "rate_488"
    RATE_403 = "rate_403"
    SETUP_SECONDS = "setup_seconds"   # the hypothesis' setup percentile
    MTTR_SECONDS = "mttr_seconds"


class Expect(enum.Enum):
    """Evidence that routing took a change (event stream first, queue stats second)."""

    CONFIG_APPLIED = "trunk_config_applied"
    FAILOVER = "failover"
    FAILBACK = "failback"
    QUEUE_STATS = "queue_stats"


@dataclass(frozen=True)
class Credentials:
    """Where the OAuth client credentials come from; never the secret itself."""

    client_id: str | None = None
    client_id_env: str | None = None
    client_secret_env: str | None = None
    client_secret_file: str | None = None
    from_endpoints_file: bool = False
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Platform:
    name: PlatformName
    api: Api
    base_url: str | None
    token_url: str | None
    events_url: str | None
    endpoints_file: str | None
    credentials: Credentials
    api_call_budget: int = 1000
    request_timeout_s: float = 5.0
    max_retries: int = 5


@dataclass(frozen=True)
class BlastRadius:
    """What the experiment may touch: listed references AND a live name with a prefix."""

    name_prefixes: tuple[str, ...]
    trunks: tuple[str, ...]
    queues: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadPhase:
    name: str
    duration_s: float
    concurrent: int


@dataclass(frozen=True)
class Load:
    target: str                  # the entry trunk (name or id)
    concurrent: int
    rate_per_s: float | None
    hold_s: float
    duration_s: float
    api_users: int = 0
    tag: str = "ccharness"
    phases: tuple[LoadPhase, ...] = ()
    ready_timeout_s: float = 30.0


@dataclass(frozen=True)
class Hypothesis:
    window_s: float = 10.0
    min_calls: int = 5
    answer_ratio_min: float | None = None
    rate_408_max: float | None = None
    rate_487_max: float | None = None
    rate_488_max: float | None = None
    rate_403_max: float | None = None
    setup_percentile: float = 95.0
    setup_seconds_max: float | None = None
    mttr_max_s: float | None = None
    check_interval_s: float = 1.0


@dataclass(frozen=True)
class Step:
    """One change after the baseline, ``at_s`` seconds after injection starts."""

    at_s: float
    kind: FaultKind
    target: str | None           # trunk reference for TRUNK steps
    body: dict[str, Any] = field(default_factory=dict)
    line: int = 0
    note: str = ""               # e.g. "ramp 3/4" for the plan


@dataclass(frozen=True)
class Method:
    baseline_s: float
    steps: tuple[Step, ...]
    hold_s: float


@dataclass(frozen=True)
class Convergence:
    timeout_s: float
    expect: tuple[Expect, ...]
    queue: str | None = None
    poll_s: float = 1.0


@dataclass(frozen=True)
class Guardrail:
    metric: Metric
    min: float | None
    max: float | None
    consecutive: int = 3


@dataclass(frozen=True)
class Window:
    start: datetime | None = None
    end: datetime | None = None
    wfm_queue: str | None = None
    min_agents: int | None = None


@dataclass(frozen=True)
class Experiment:
    name: str
    path: str
    description: str
    platform: Platform
    blast_radius: BlastRadius
    load: Load | None
    hypothesis: Hypothesis
    method: Method
    convergence: Convergence
    recovery: Convergence
    guardrails: tuple[Guardrail, ...]
    window: Window
    runs_dir: str | None = None

    @property
    def trunk_targets(self) -> tuple[str, ...]:
        """Every trunk reference the method changes, in first-use order."""
        seen: list[str] = []
        for step in self.method.steps:
            if step.target and step.target not in seen:
                seen.append(step.target)
        return tuple(seen)
