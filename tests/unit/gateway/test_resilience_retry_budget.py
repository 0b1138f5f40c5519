from __future__ import annotations

from voxmesh.clock import FakeClock
from voxmesh.gateway.resilience.retry_budget import RetryBudget


def test_reserve_allows_min_retries_per_second_over_the_window() -> None:
    clock = FakeClock()
    budget = RetryBudget(ratio=0.2, min_per_s=10, window_s=10, clock=clock)
    allowed = sum(budget.try_withdraw() for _ in range(150))
    assert allowed == 100  # 10 retries/s * 10 s, with no requests at all
    assert budget.refused == 50
    clock.advance(10.0)  # the withdrawals expire with the window
    assert budget.try_withdraw()


def test_ratio_of_requests() -> None:
    clock = FakeClock()
    budget = RetryBudget(ratio=0.2, min_per_s=0, window_s=10, clock=clock)
    for _ in range(1000):
        budget.deposit()
    assert sum(budget.try_withdraw() for _ in range(500)) == 200


def test_steady_state_retries_bounded_by_ratio_plus_floor() -> None:
    clock = FakeClock()
    budget = RetryBudget(ratio=0.2, min_per_s=10, window_s=10, clock=clock)
    retries = 0
    for _ in range(60 * 100):  # 100 req/s for 60 s, every request wants a retry
        clock.advance(0.01)
        budget.deposit()
        retries += budget.try_withdraw()
    # per 10 s window: 100 reserve + 0.2 * 1000 requests = 300; six windows -> about 1,800 + one reserve
    assert 1700 <= retries <= 1800 + 100 + 30


def test_old_deposits_expire() -> None:
    clock = FakeClock()
    budget = RetryBudget(ratio=0.5, min_per_s=0, window_s=10, clock=clock)
    for _ in range(10):
        budget.deposit()
    assert budget.balance() == 5.0
    clock.advance(5.0)
    assert budget.balance() == 5.0
    clock.advance(6.0)
    assert budget.balance() == 0.0
    assert not budget.try_withdraw()
