from __future__ import annotations

import itertools

import pytest

from voxmesh.autoscale.lifecycle import (
    LIVE_STATES,
    TRANSITIONS,
    BackoffPolicy,
    BackoffState,
    IllegalTransition,
    ReplicaState,
    RestartBackoff,
    next_restart,
    restart_delay,
    transition,
)
from voxmesh.clock import FakeClock
from voxmesh.errors import VoxmeshError

S = ReplicaState

EXPECTED = {
    (S.STARTING, S.LOADING), (S.STARTING, S.CRASHED), (S.STARTING, S.STOPPED),
    (S.LOADING, S.WARM), (S.LOADING, S.CRASHED), (S.LOADING, S.STOPPED),
    (S.WARM, S.SERVING), (S.WARM, S.CRASHED), (S.WARM, S.STOPPED),
    (S.SERVING, S.DRAINING), (S.SERVING, S.WARM), (S.SERVING, S.CRASHED), (S.SERVING, S.STOPPED),
    (S.DRAINING, S.STOPPED), (S.DRAINING, S.WARM), (S.DRAINING, S.CRASHED),
    (S.CRASHED, S.STARTING), (S.CRASHED, S.STOPPED),
}


def test_every_pair_of_states() -> None:
    """Walk all 49 pairs: the allowed ones return the target, the rest raise."""
    for src, dst in itertools.product(ReplicaState, ReplicaState):
        if (src, dst) in EXPECTED:
            assert transition(src, dst) is dst
        else:
            with pytest.raises(IllegalTransition, match=f"{src.value} -> {dst.value}"):
                transition(src, dst)
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == EXPECTED


def test_happy_path_and_crash_restart() -> None:
    state = S.STARTING
    for nxt in (S.LOADING, S.WARM, S.SERVING, S.DRAINING, S.STOPPED):
        state = transition(state, nxt)
    assert state is S.STOPPED
    for live in LIVE_STATES:
        assert transition(transition(live, S.CRASHED), S.STARTING) is S.STARTING


def test_illegal_transition_is_a_voxmesh_error_with_the_allowed_moves() -> None:
    with pytest.raises(VoxmeshError, match="allowed: crashed, loading, stopped"):
        transition(S.STARTING, S.SERVING)
    with pytest.raises(IllegalTransition, match="nothing"):
        transition(S.STOPPED, S.STARTING)


def test_state_values_are_metric_labels() -> None:
    assert [s.value for s in ReplicaState] == [
        "starting", "loading", "warm", "serving", "draining", "stopped", "crashed"
    ]


def test_restart_delay_doubles_to_60() -> None:
    assert [restart_delay(n) for n in range(0, 9)] == [0.0, 1, 2, 4, 8, 16, 32, 60, 60]
    assert restart_delay(10_000) == 60.0


def test_next_restart_resets_after_a_stable_run() -> None:
    policy = BackoffPolicy(stable_after_s=60.0)
    delay, st = next_restart(BackoffState(3, started_at=100.0), 110.0, policy)
    assert (delay, st.consecutive_crashes) == (8.0, 4)
    delay, st = next_restart(BackoffState(3, started_at=100.0), 160.0, policy)
    assert (delay, st.consecutive_crashes) == (1.0, 1)


def test_restart_backoff_with_fake_clock() -> None:
    clock = FakeClock()
    backoff = RestartBackoff(clock=clock)
    delays = []
    for _ in range(8):
        backoff.started()
        clock.advance(2.0)  # crashes 2 s after each start
        delays.append(backoff.crashed())
        clock.advance(delays[-1])
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60]
    backoff.started()
    clock.advance(61.0)  # a stable minute
    assert backoff.crashed() == 1.0
    assert backoff.consecutive_crashes == 1
