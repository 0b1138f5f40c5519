"""Replica lifecycle: a transition table, and the restart backoff for crashed replicas.

Rules:
- A replica starts in STARTING (process spawned), moves to LOADING once the process answers
  ``/healthz``, and to WARM once ``/readyz`` says the model is loaded and warmed.
- Only WARM replicas are promoted to SERVING (routed: the gateway got ``Add``). Promotion
  costs a discovery event, not a model load.
- A SERVING replica leaves rotation (``Remove``) before anything else: to DRAINING (in-flight
  requests finish, then STOPPED) or straight back to WARM (it keeps its model for the next
  scale-up; its in-flight requests finish there, since WARM is simply "not routed").
- A DRAINING replica ends STOPPED, or WARM when the pool needs it.
- Any live state may go to CRASHED (the process exited on its own). CRASHED goes back to
  STARTING after the restart backoff (1 s doubling to 60 s, reset after a stable run), or to
  STOPPED when the supervisor gives up or shuts down.
- STOPPED is final; any other state may go to STOPPED on shutdown or when a boot or a warm
  replica is no longer needed. Scale-down of a SERVING replica goes through DRAINING or WARM
  so that no request is lost; SERVING -> STOPPED is for shutdown only.
- Anything else raises :class:`IllegalTransition`: a bug in the caller, never user input.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from voxmesh.errors import VoxmeshError

__all__ = [
    "LIVE_STATES",
    "TRANSITIONS",
    "BackoffPolicy",
    "BackoffState",
    "IllegalTransition",
    "ReplicaState",
    "RestartBackoff",
    "next_restart",
    "restart_delay",
    "transition",
]


class ReplicaState(enum.Enum):
    STARTING = "starting"
    LOADING = "loading"
    WARM = "warm"
    SERVING = "serving"
    DRAINING = "draining"
    STOPPED = "stopped"
    CRASHED = "crashed"


S = ReplicaState

TRANSITIONS: Mapping[ReplicaState, frozenset[ReplicaState]] = MappingProxyType({
    S.STARTING: frozenset({S.LOADING, S.CRASHED, S.STOPPED}),
    S.LOADING: frozenset({S.WARM, S.CRASHED, S.STOPPED}),
    S.WARM: frozenset({S.SERVING, S.CRASHED, S.STOPPED}),
    S.SERVING: frozenset({S.DRAINING, S.WARM, S.CRASHED, S.STOPPED}),
    S.DRAINING: frozenset({S.STOPPED, S.WARM, S.CRASHED}),
    S.CRASHED: frozenset({S.STARTING, S.STOPPED}),
    S.STOPPED: frozenset(),
})

LIVE_STATES = frozenset({S.STARTING, S.LOADING, S.WARM, S.SERVING, S.DRAINING})


class IllegalTransition(VoxmeshError):
    """A lifecycle move the table does not allow (a controller bug)."""


def transition(state: ReplicaState, to: ReplicaState) -> ReplicaState:
    """Return ``to`` if the table allows ``state -> to``; raise :class:`IllegalTransition` otherwise."""
    if to not in TRANSITIONS[state]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[state])) or "nothing (final)"
        raise IllegalTransition(f"replica cannot go {state.value} -> {to.value}; allowed: {allowed}")
    return to


# ---- restart backoff ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Exponential restart delay: ``initial_s * factor**(n-1)`` capped at ``max_s`` for the
    n-th consecutive crash; a run of ``stable_after_s`` without crashing resets n.
    """

    initial_s: float = 1.0
    factor: float = 2.0
    max_s: float = 60.0
    stable_after_s: float = 60.0


@dataclass(frozen=True, slots=True)
class BackoffState:
    consecutive_crashes: int = 0
    started_at: float | None = None


def restart_delay(consecutive_crashes: int, policy: BackoffPolicy = BackoffPolicy()) -> float:
    if consecutive_crashes <= 0:
        return 0.0
    # cap the exponent too: 2.0**2000 overflows a float
    exponent = min(consecutive_crashes - 1, 64)
    return min(policy.max_s, policy.initial_s * policy.factor**exponent)


def next_restart(state: BackoffState, now: float, policy: BackoffPolicy = BackoffPolicy()) -> tuple[float, BackoffState]:
    """A crash at ``now``: the delay before restarting, and the new state (pure)."""
    crashes = state.consecutive_crashes
    if state.started_at is not None and now - state.started_at >= policy.stable_after_s:
        crashes = 0  # it ran long enough: this crash starts a new series
    crashes += 1
    return restart_delay(crashes, policy), replace(state, consecutive_crashes=crashes)


class RestartBackoff:
    """Per-replica restart backoff with an injected clock.

    Call :meth:`started` when the process starts and :meth:`crashed` when it exits on its
    own; ``crashed`` returns how long to wait before the next start.
    """

    def __init__(self, policy: BackoffPolicy | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or BackoffPolicy()
        self.clock = clock
        self.state = BackoffState()

    def started(self) -> None:
        self.state = replace(self.state, started_at=self.clock())

    def crashed(self) -> float:
        delay, self.state = next_restart(self.state, self.clock(), self.policy)
        return delay

    @property
    def consecutive_crashes(self) -> int:
        return self.state.consecutive_crashes
