from __future__ import annotations

import random

import pytest

from voxmesh.gateway.resilience.backoff import Backoff
from voxmesh.gateway.resilience.timeouts import RouteTimeouts, TimeoutKind


def test_backoff_grows_within_bounds() -> None:
    b = Backoff(0.025, 0.250, jitter=1.0, rng=random.Random(0))
    for attempt in range(10):
        samples = [b.delay(attempt) for _ in range(200)]
        base = min(0.250, 0.025 * 2**attempt)
        assert all(base <= s <= min(0.250, 2 * base) for s in samples)
    assert max(b.delay(0) for _ in range(200)) > 0.04  # jitter really spreads
    assert b.delay(10_000) == 0.250
    with pytest.raises(ValueError):
        Backoff(0.3, 0.2)


def test_backoff_deterministic_with_seed() -> None:
    a, b = Backoff(rng=random.Random(5)), Backoff(rng=random.Random(5))
    assert [a.delay(i) for i in range(5)] == [b.delay(i) for i in range(5)]


def test_deadlines() -> None:
    d = RouteTimeouts(request_s=10.0, first_byte_s=3.0, idle_s=2.0).start(now=100.0)
    assert d.first_byte(100.0) == (3.0, TimeoutKind.FIRST_BYTE)
    assert d.first_byte(108.0) == (2.0, TimeoutKind.REQUEST)
    assert d.next_chunk(101.0) == (2.0, TimeoutKind.IDLE)
    assert d.next_chunk(109.5) == (0.5, TimeoutKind.REQUEST)
    assert d.remaining(200.0) == 0.0
    assert d.can_retry(105.0, 0.1)
    assert not d.can_retry(109.95, 0.1)
    with pytest.raises(ValueError):
        RouteTimeouts(request_s=0)
