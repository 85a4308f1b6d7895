"""The fault lifecycle as a table.

Theory of operation: a run starts in BASELINE (steady state measured, nothing
changed). INJECTING applies one step; CONVERGING waits for evidence that routing took
it (event stream first, queue stats second) and returns to INJECTING for the next
step; HOLDING keeps the fault while the hypothesis and guardrails are checked.
ROLLING_BACK undoes every saved target (LIFO) and verifies it; RECOVERING waits for
routing to come back and checks the hypothesis after the fault. DONE and ABORTED are
final. Any state may go to ROLLING_BACK (guardrail, exception, signal) and a run that
never changed anything may go straight to ABORTED. Transitions not in the table are
bugs and raise.
"""

from __future__ import annotations

import enum


class State(enum.Enum):
    IDLE = "idle"
    BASELINE = "baseline"
    INJECTING = "injecting"
    CONVERGING = "converging"
    HOLDING = "holding"
    ROLLING_BACK = "rolling_back"
    RECOVERING = "recovering"
    DONE = "done"
    ABORTED = "aborted"


S = State
TRANSITIONS: dict[State, frozenset[State]] = {
    S.IDLE: frozenset({S.BASELINE, S.ABORTED}),
    S.BASELINE: frozenset({S.INJECTING, S.ROLLING_BACK, S.ABORTED}),
    S.INJECTING: frozenset({S.CONVERGING, S.ROLLING_BACK}),
    S.CONVERGING: frozenset({S.INJECTING, S.HOLDING, S.ROLLING_BACK}),
    S.HOLDING: frozenset({S.ROLLING_BACK}),
    S.ROLLING_BACK: frozenset({S.RECOVERING, S.ABORTED}),
    S.RECOVERING: frozenset({S.DONE, S.ABORTED}),
    S.DONE: frozenset(),
    S.ABORTED: frozenset(),
}
FINAL = frozenset({S.DONE, S.ABORTED})


class StateMachine:
    """Current state plus a listener called as ``on_transition(old, new, why)``."""

    def __init__(self, on_transition=None):
        self.state = State.IDLE
        self.on_transition = on_transition
        self.history: list[tuple[State, State, str]] = []

    def go(self, new: State, why: str = "") -> None:
        if new not in TRANSITIONS[self.state]:
            raise RuntimeError(f"illegal transition {self.state.value} -> {new.value}")
        old, self.state = self.state, new
        self.history.append((old, new, why))
        if self.on_transition:
            self.on_transition(old, new, why)

    @property
    def final(self) -> bool:
        return self.state in FINAL
