"""The host budget's grant rule: free cores when alone, weighted shares under contention,
waiting demand counted, FIFO among waiters, never more than the budget."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from voxmesh.hostcores.budget import (
    BudgetState,
    Lease,
    Share,
    Waiter,
    allocate,
    by_entitlement,
    entitlement,
    work_conserving,
)

SHARES = {"piper": Share(weight=3), "kokoro": Share(weight=1)}


def test_an_idle_neighbour_leaves_its_cores_to_a_busy_deployment() -> None:
    state = BudgetState(16, (Lease(1, "piper", 12),), (Waiter(7, 1, "piper", 8),))
    assert allocate(state, {})[1] == {7: 4}  # nobody else wants cores: whatever is free
    assert allocate(BudgetState(16, (), (Waiter(1, 2, "kokoro", 16),)), {})[1] == {1: 16}


def test_entitlement_splits_by_weight_after_the_guarantees() -> None:
    assert entitlement(16, "piper", frozenset({"kokoro"}), SHARES) == 12
    assert entitlement(16, "kokoro", frozenset({"piper"}), SHARES) == 4
    shares = {"llm": Share(weight=1, min_cores=6), "tts": Share(weight=1)}
    assert entitlement(8, "llm", frozenset({"tts"}), shares) == 7  # 6 + 2 // 2
    assert entitlement(8, "tts", frozenset({"llm"}), shares) == 1


def test_under_contention_each_gets_its_weighted_share() -> None:
    # piper holds 12, both wait: the 4 free cores are kokoro's, whatever the ticket order
    state = BudgetState(16, (Lease(1, "piper", 12),), (Waiter(5, 1, "piper", 4), Waiter(6, 2, "kokoro", 16)))
    after, grants = allocate(state, SHARES)
    assert grants == {6: 4} and after.waiters == (Waiter(5, 1, "piper", 4),)


def test_waiting_demand_binds_the_weights_with_no_lease_held() -> None:
    """Short segments: between two segments nobody holds a lease, yet both deployments want
    cores. One-core tickets of both, kokoro's first: piper still gets 3 of 4."""
    waiters = tuple(Waiter(t, t, dep, 1) for t, dep in enumerate(["kokoro"] * 4 + ["piper"] * 4))
    after, grants = allocate(BudgetState(4, (), waiters), SHARES)
    assert after.held("piper") == 3 and after.held("kokoro") == 1
    assert grants == {0: 1, 4: 1, 5: 1, 6: 1}  # FIFO within a deployment


def test_a_returned_core_goes_to_the_deployment_below_its_share() -> None:
    leases = (Lease(1, "piper", 1, 1), Lease(1, "piper", 1, 2), Lease(2, "kokoro", 1, 3))
    waiters = (Waiter(4, 2, "kokoro", 1), Waiter(5, 1, "piper", 1))
    assert allocate(BudgetState(4, leases, waiters), SHARES)[1] == {5: 1}


def test_named_steps() -> None:
    state = BudgetState(4, (Lease(1, "kokoro", 1),), (Waiter(1, 2, "kokoro", 4),))
    after, grants = by_entitlement(state, SHARES)  # kokoro alone contends: entitled to all 4
    assert grants == {1: 3} and after.free == 0
    state = BudgetState(4, (Lease(1, "piper", 3),), (Waiter(2, 2, "kokoro", 1), Waiter(3, 1, "piper", 2)))
    after, grants = by_entitlement(state, {"piper": Share(weight=1), "kokoro": Share(weight=1)})
    assert grants == {2: 1}
    assert work_conserving(BudgetState(4, (Lease(1, "piper", 2),), (Waiter(3, 1, "piper", 4),)))[1] == {3: 2}


def test_a_guaranteed_minimum_is_served_first() -> None:
    shares = {"llm": Share(weight=1, min_cores=3), "tts": Share(weight=3)}
    waiters = (Waiter(1, 1, "tts", 4), Waiter(2, 2, "llm", 3))
    assert allocate(BudgetState(4, (), waiters), shares)[1] == {1: 1, 2: 3}


@settings(max_examples=300)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(1, 20), st.booleans(), st.booleans()), max_size=60),
       st.integers(1, 32), st.dictionaries(st.sampled_from("abc"),
                                           st.builds(Share, st.floats(0.1, 10), st.integers(0, 8))))
def test_leases_never_exceed_the_budget(ops: list[tuple[str, int, bool, bool]], total: int,
                                        shares: dict[str, Share]) -> None:
    """Random tickets (some with thread-class sizes) and returns: leases within budget, each
    grant a usable size within its want, and no core idle while anyone waits (work-conserving)."""
    state = BudgetState(total)
    for n, (dep, want, release, classes) in enumerate(ops):
        if release and state.leases:
            state = BudgetState(total, state.leases[1:], state.waiters)
        else:
            sizes = tuple(k for k in (1, 2, 4, 8, 16) if k <= want) if classes else ()
            state = BudgetState(total, state.leases, (*state.waiters, Waiter(n, n, dep, want, sizes)))
        waiting = {w.ticket: w for w in state.waiters}
        state, grants = allocate(state, shares)
        assert all(1 <= c <= waiting[t].want and (not waiting[t].sizes or c in waiting[t].sizes)
                   for t, c in grants.items())
        assert state.granted <= total
        assert state.free == 0 or not state.waiters


def test_a_grant_is_a_size_the_waiter_can_use() -> None:
    """A worker runs a segment on a thread class: of 3 free cores it takes 2, leaving 1 to others."""
    state = BudgetState(4, (Lease(3, "piper", 1),), (Waiter(1, 1, "piper", 4, (1, 2, 4)),))
    after, grants = allocate(state, {})
    assert grants == {1: 2} and after.free == 1
    after, grants = allocate(BudgetState(4, after.leases, (Waiter(2, 2, "kokoro", 2, (1, 2)),)), {})
    assert grants == {2: 1} and after.free == 0
    assert Waiter(1, 1, "a", 8, (1, 2, 4, 8)).fit(7) == 4 and Waiter(1, 1, "a", 3).fit(7) == 3
