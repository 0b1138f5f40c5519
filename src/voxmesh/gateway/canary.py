"""Automated canary analysis (Flagger's algorithm) as a pure state machine.

Rules
    INITIALIZED --first decide-->                 PROGRESSING  weight = step
    PROGRESSING --before interval-->              PROGRESSING  WAIT (nothing logged)
    PROGRESSING --too few requests-->             PROGRESSING  HOLD (no verdict without data)
    PROGRESSING --check fails, failed < threshold-->  PROGRESSING  HOLD, failed += 1
    PROGRESSING --check fails, failed = threshold-->  ROLLED_BACK  weight = 0
    PROGRESSING --check passes, weight < max-->   PROGRESSING  weight += step (capped at max)
    PROGRESSING --check passes, weight = max-->   PROMOTED     weight = 100
    PROMOTED / ROLLED_BACK: terminal; decide answers NONE.

A check passes when the canary's success rate is at least ``min_success_rate`` and its p99
latency at most ``max_p99_ms``. Failed checks add up over the whole analysis, as in Flagger
(a flapping canary is rolled back too). Every decision except WAIT appends a
:class:`LogEntry` with the reason and the inputs that led to it.

``decide(snapshot, state) -> (decision, new_state)`` never mutates ``state``; the caller
applies ``new_state.weight`` to the traffic split (:func:`split_weights`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum

__all__ = [
    "CanaryConfig",
    "CanaryPhase",
    "CanaryState",
    "Decision",
    "LogEntry",
    "Snapshot",
    "decide",
    "split_weights",
]


class CanaryPhase(Enum):
    INITIALIZED = "initialized"
    PROGRESSING = "progressing"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"


class Decision(Enum):
    NONE = "none"
    WAIT = "wait"
    HOLD = "hold"
    ADVANCE = "advance"
    PROMOTE = "promote"
    ROLLBACK = "rollback"


@dataclass(frozen=True)
class CanaryConfig:
    interval_s: float = 60.0
    threshold: int = 5
    step_weight: float = 10.0
    max_weight: float = 50.0
    min_success_rate: float = 0.99
    max_p99_ms: float = 500.0
    min_requests: int = 10

    def __post_init__(self) -> None:
        if self.interval_s <= 0 or self.threshold < 1 or self.min_requests < 0:
            raise ValueError("interval_s > 0, threshold >= 1, min_requests >= 0")
        if not 0 < self.step_weight <= self.max_weight <= 100:
            raise ValueError("need 0 < step_weight <= max_weight <= 100")


@dataclass(frozen=True)
class Snapshot:
    now: float
    success_rate: float  # of the canary over the last interval, 0..1
    p99_ms: float
    requests: int


@dataclass(frozen=True)
class LogEntry:
    at: float
    decision: Decision
    weight: float
    failed_checks: int
    reason: str
    inputs: Snapshot


@dataclass(frozen=True)
class CanaryState:
    phase: CanaryPhase = CanaryPhase.INITIALIZED
    weight: float = 0.0
    failed_checks: int = 0
    last_check: float = float("-inf")
    log: tuple[LogEntry, ...] = field(default=())


def _check(cfg: CanaryConfig, snap: Snapshot) -> str | None:
    """None when the check passes, else why it failed."""
    problems = []
    if snap.success_rate < cfg.min_success_rate:
        problems.append(f"success rate {snap.success_rate:.2%} < {cfg.min_success_rate:.2%}")
    if snap.p99_ms > cfg.max_p99_ms:
        problems.append(f"p99 {snap.p99_ms:.0f} ms > {cfg.max_p99_ms:.0f} ms")
    return "; ".join(problems) or None


def _log(
    state: CanaryState, snap: Snapshot, decision: Decision, reason: str, **changes: object
) -> CanaryState:
    new = replace(state, last_check=snap.now, **changes)  # type: ignore[arg-type]
    entry = LogEntry(snap.now, decision, new.weight, new.failed_checks, reason, snap)
    return replace(new, log=(*state.log, entry))


def decide(cfg: CanaryConfig, snap: Snapshot, state: CanaryState) -> tuple[Decision, CanaryState]:
    if state.phase in (CanaryPhase.PROMOTED, CanaryPhase.ROLLED_BACK):
        return Decision.NONE, state
    if state.phase is CanaryPhase.INITIALIZED:
        new = _log(state, snap, Decision.ADVANCE, "analysis started", phase=CanaryPhase.PROGRESSING,
                   weight=cfg.step_weight)  # fmt: skip
        return Decision.ADVANCE, new
    if snap.now - state.last_check < cfg.interval_s:
        return Decision.WAIT, state
    if snap.requests < cfg.min_requests:
        reason = f"only {snap.requests} requests in the interval (< {cfg.min_requests}): no verdict"
        return Decision.HOLD, _log(state, snap, Decision.HOLD, reason)
    problem = _check(cfg, snap)
    if problem is not None:
        failed = state.failed_checks + 1
        if failed >= cfg.threshold:
            reason = f"check failed ({problem}); {failed} failed checks reach threshold {cfg.threshold}"
            new = _log(state, snap, Decision.ROLLBACK, reason, phase=CanaryPhase.ROLLED_BACK, weight=0.0,
                       failed_checks=failed)  # fmt: skip
            return Decision.ROLLBACK, new
        reason = f"check failed ({problem}); {failed}/{cfg.threshold} failed checks"
        return Decision.HOLD, _log(state, snap, Decision.HOLD, reason, failed_checks=failed)
    if state.weight >= cfg.max_weight:
        reason = f"checks passed at max weight {cfg.max_weight:g}%: promoted"
        return Decision.PROMOTE, _log(
            state, snap, Decision.PROMOTE, reason, phase=CanaryPhase.PROMOTED, weight=100.0
        )
    weight = min(cfg.max_weight, state.weight + cfg.step_weight)
    reason = f"check passed: weight {state.weight:g}% -> {weight:g}%"
    return Decision.ADVANCE, _log(state, snap, Decision.ADVANCE, reason, weight=weight)


def split_weights(primary: str, canary: str, weight: float) -> dict[str, float]:
    """Traffic split weights for a canary at ``weight`` percent."""
    return {primary: 100.0 - weight, canary: weight}
