"""Steady-state hypothesis and guardrails over live figures; pure functions.

A ``Check`` is one tolerance evaluated in one phase (before / during / after). With
fewer than ``min_calls`` calls in the window a check is ``ok=None`` (not measured),
which neither holds nor breaks the hypothesis; API-only experiments rely on the
convergence outcomes instead. ``GuardrailMonitor`` counts consecutive breaches per
rule and reports the first rule that reaches its ``consecutive`` limit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from harness.control.aggregator import Figures
from harness.experiment.schema import Guardrail, Hypothesis, Metric


@dataclass(frozen=True)
class Check:
    name: str
    phase: str
    ok: bool | None
    value: float | None
    limit: float | None
    bound: str              # "min" or "max"
    detail: str = ""

    def to_json(self) -> dict:
        return asdict(self)


def metric_value(metric: Metric, fig: Figures, setup_pct: float = 95.0,
                 mttr_s: float | None = None) -> float | None:
    if metric is Metric.ANSWER_RATIO:
        return fig.answer_ratio
    if metric is Metric.SETUP_SECONDS:
        return fig.setup_percentile(setup_pct)
    if metric is Metric.MTTR_SECONDS:
        return mttr_s
    return fig.rate(metric.value.removeprefix("rate_"))


def _tolerances(h: Hypothesis) -> list[tuple[str, Metric, str, float]]:
    pairs = [("answer_ratio", Metric.ANSWER_RATIO, "min", h.answer_ratio_min),
             ("rate_408", Metric.RATE_408, "max", h.rate_408_max),
             ("rate_487", Metric.RATE_487, "max", h.rate_487_max),
             ("rate_488", Metric.RATE_488, "max", h.rate_488_max),
             ("rate_403", Metric.RATE_403, "max", h.rate_403_max),
             (f"setup_p{h.setup_percentile:g}_seconds", Metric.SETUP_SECONDS, "max", h.setup_seconds_max)]
    return [(n, m, b, lim) for n, m, b, lim in pairs if lim is not None]


def evaluate(h: Hypothesis, fig: Figures, phase: str) -> list[Check]:
    """One check per configured tolerance (MTTR is checked separately, once)."""
    checks = []
    for name, metric, bound, limit in _tolerances(h):
        if fig.calls < h.min_calls:
            checks.append(Check(name, phase, None, None, limit, bound,
                                f"{fig.calls} calls in window, fewer than min_calls {h.min_calls}"))
            continue
        value = metric_value(metric, fig, h.setup_percentile)
        ok = value is not None and (value >= limit if bound == "min" else value <= limit)
        checks.append(Check(name, phase, ok, value, limit, bound, f"{fig.calls} calls"))
    return checks


def mttr_check(h: Hypothesis, mttr_s: float | None, detail: str) -> Check | None:
    if h.mttr_max_s is None:
        return None
    ok = None if mttr_s is None and "no load" in detail else (mttr_s is not None and mttr_s <= h.mttr_max_s)
    return Check("mttr_seconds", "during", ok, mttr_s, h.mttr_max_s, "max", detail)


def worst_per_name(checks: list[Check]) -> list[Check]:
    """Keep, per (name, phase), the first failing check or else the last measured one."""
    out: dict[tuple[str, str], Check] = {}
    for c in checks:
        key = (c.name, c.phase)
        prev = out.get(key)
        if prev is None or (prev.ok is not False and (c.ok is False or c.ok is not None)):
            out[key] = c
    return list(out.values())


class GuardrailMonitor:
    def __init__(self, rules: tuple[Guardrail, ...], min_calls: int, setup_pct: float = 95.0):
        self.rules, self.min_calls, self.setup_pct = rules, min_calls, setup_pct
        self.streaks = [0] * len(rules)

    def observe(self, fig: Figures) -> Guardrail | None:
        """Feed one window of figures; return a rule breached ``consecutive`` times in a row."""
        for i, rule in enumerate(self.rules):
            value = metric_value(rule.metric, fig, self.setup_pct) if fig.calls >= self.min_calls else None
            breached = value is not None and (
                (rule.min is not None and value < rule.min) or (rule.max is not None and value > rule.max))
            self.streaks[i] = self.streaks[i] + 1 if breached else 0
            if self.streaks[i] >= rule.consecutive:
                return rule
        return None
