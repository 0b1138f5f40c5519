from __future__ import annotations

from voxmesh.gateway.canary import (
    CanaryConfig,
    CanaryPhase,
    CanaryState,
    Decision,
    Snapshot,
    decide,
    split_weights,
)

CFG = CanaryConfig(interval_s=60, threshold=2, step_weight=10, max_weight=30, min_success_rate=0.99,
                   max_p99_ms=500, min_requests=10)  # fmt: skip


def good(now: float) -> Snapshot:
    return Snapshot(now=now, success_rate=0.999, p99_ms=120, requests=100)


def test_healthy_canary_is_promoted_step_by_step() -> None:
    state = CanaryState()
    decisions = []
    for now in (0, 30, 60, 120, 180, 240):
        d, new = decide(CFG, good(now), state)
        assert new is not state or d in (Decision.WAIT, Decision.NONE)
        decisions.append((d, new.weight))
        state = new
    assert decisions == [
        (Decision.ADVANCE, 10),  # start
        (Decision.WAIT, 10),  # before the interval
        (Decision.ADVANCE, 20),
        (Decision.ADVANCE, 30),
        (Decision.PROMOTE, 100),
        (Decision.NONE, 100),
    ]
    assert state.phase is CanaryPhase.PROMOTED
    assert [e.decision for e in state.log] == [Decision.ADVANCE] * 3 + [Decision.PROMOTE]
    assert "20% -> 30%" in state.log[2].reason and state.log[2].inputs == good(120)


def test_failing_canary_rolls_back_to_zero_and_logs_why() -> None:
    state = CanaryState()
    _, state = decide(CFG, good(0), state)
    _, state = decide(CFG, good(60), state)
    bad = Snapshot(now=120, success_rate=0.80, p99_ms=900, requests=50)
    d, state = decide(CFG, bad, state)
    assert d is Decision.HOLD and state.weight == 20 and state.failed_checks == 1
    d, state = decide(CFG, Snapshot(now=150, success_rate=0.5, p99_ms=1, requests=50), state)
    assert d is Decision.WAIT  # the interval gates checks
    d, state = decide(CFG, Snapshot(now=180, success_rate=0.5, p99_ms=1, requests=50), state)
    assert d is Decision.ROLLBACK and state.weight == 0 and state.phase is CanaryPhase.ROLLED_BACK
    assert "success rate 50.00% < 99.00%" in state.log[-1].reason
    assert "p99 900 ms > 500 ms" in state.log[-2].reason
    assert decide(CFG, good(999), state) == (Decision.NONE, state)
    assert split_weights("v1", "v2", state.weight) == {"v1": 100.0, "v2": 0.0}


def test_too_little_traffic_holds_without_counting_a_failure() -> None:
    state = CanaryState()
    _, state = decide(CFG, good(0), state)
    d, new = decide(CFG, Snapshot(now=60, success_rate=0.0, p99_ms=0, requests=3), state)
    assert d is Decision.HOLD and new.failed_checks == 0 and new.weight == 10
    assert "only 3 requests" in new.log[-1].reason
    assert state.log != new.log  # the input state was not mutated
