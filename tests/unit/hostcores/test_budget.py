"""The host budget's grant rule: free cores when alone, weighted shares under contention."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from voxmesh.hostcores.budget import BudgetState, Lease, Share, entitlement, grant


def test_an_idle_neighbour_leaves_its_cores_to_a_busy_deployment() -> None:
    state = BudgetState(16, (Lease(1, "piper", 12),))
    assert grant(state, "piper", 8, {}) == 4  # nobody waits: whatever is free
    assert grant(BudgetState(16), "kokoro", 16, {}) == 16


def test_under_contention_each_gets_its_weighted_share() -> None:
    shares = {"piper": Share(weight=3), "kokoro": Share(weight=1)}
    assert entitlement(16, "piper", frozenset({"kokoro"}), shares) == 12
    assert entitlement(16, "kokoro", frozenset({"piper"}), shares) == 4
    # piper holds 12, kokoro waits: piper may not take the 4 free cores
    state = BudgetState(16, (Lease(1, "piper", 12),), frozenset({"kokoro"}))
    assert grant(state, "piper", 4, shares) == 0
    assert grant(state, "kokoro", 16, shares) == 4


def test_a_guaranteed_minimum_comes_before_the_weights() -> None:
    shares = {"llm": Share(weight=1, min_cores=6), "tts": Share(weight=1)}
    assert entitlement(8, "llm", frozenset({"tts"}), shares) == 7  # 6 + 2 // 2
    assert entitlement(8, "tts", frozenset({"llm"}), shares) == 1


@settings(max_examples=300)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 20), st.booleans()), max_size=60),
       st.integers(1, 32), st.dictionaries(st.sampled_from("abc"),
                                           st.builds(Share, st.floats(0.1, 10), st.integers(0, 8))))
def test_leases_never_exceed_the_budget(ops: list[tuple[str, int, bool]], total: int,
                                        shares: dict[str, Share]) -> None:
    state = BudgetState(total)
    for n, (dep, want, release) in enumerate(ops):
        if release and state.leases:
            state = BudgetState(total, state.leases[1:], state.waiting)
            continue
        cores = grant(state, dep, want, shares)
        assert 0 <= cores <= max(want, 0)
        if cores:
            state = BudgetState(total, (*state.leases, Lease(n, dep, cores)), state.waiting - {dep})
        elif want > 0:
            state = BudgetState(total, state.leases, state.waiting | {dep})
        assert state.granted <= total
