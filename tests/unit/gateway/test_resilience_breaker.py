from __future__ import annotations

import random

import pytest

from voxmesh.clock import FakeClock
from voxmesh.gateway.resilience.breaker import TRANSITIONS, Breaker, BreakerState, Event
from voxmesh.gateway.resilience.classify import Outcome

OK, BAD = Outcome.SUCCESS, Outcome.FAILURE


def _fail(b: Breaker, clock: FakeClock, n: int) -> None:
    for _ in range(n):
        b.record(b.dispatch(clock()), BAD, clock())


def test_walks_every_transition() -> None:
    clock = FakeClock()
    b = Breaker(failures=7, min_backoff_s=1.0, max_backoff_s=60.0, jitter=0.5, rng=random.Random(0))
    seen: set[tuple[BreakerState, Event]] = set()
    original = b._fire

    def spy(event: Event, now: float) -> None:
        seen.add((b._state, event))
        original(event, now)

    b._fire = spy  # type: ignore[method-assign]

    b.record(b.dispatch(clock()), OK, clock())  # CLOSED --SUCCESS--> CLOSED
    _fail(b, clock, 6)  # CLOSED --FAILURE--> CLOSED (x6)
    assert b.state(clock()) is BreakerState.CLOSED and b.consecutive_failures == 6
    b.record(b.dispatch(clock()), OK, clock())
    assert b.consecutive_failures == 0  # a success breaks the run
    stale = b.dispatch(clock())  # sent before the ejection: its answer must not count later
    _fail(b, clock, 7)  # the 7th consecutive failure: CLOSED --FAILURE_LIMIT--> OPEN
    assert b.state(clock()) is BreakerState.OPEN and not b.available(clock())
    first_probation = b.open_until - clock()
    assert 1.0 <= first_probation <= 1.5

    late = b.dispatch(clock())  # (a request that raced the ejection)
    b.record(late, OK, clock())  # OPEN --SUCCESS--> OPEN
    b.record(late, BAD, clock())  # OPEN --FAILURE--> OPEN
    assert b.state(clock()) is BreakerState.OPEN

    clock.advance(first_probation)  # OPEN --PROBATION_OVER--> HALF_OPEN
    assert b.state(clock()) is BreakerState.HALF_OPEN and b.available(clock())
    probe = b.dispatch(clock())  # HALF_OPEN --PROBE_SENT--> HALF_OPEN
    assert probe.probe and not b.available(clock())
    with pytest.raises(RuntimeError):
        b.dispatch(clock())
    b.record(stale, OK, clock())  # an older epoch: ignored
    assert b.state(clock()) is BreakerState.HALF_OPEN
    b.abandon(probe, clock())  # HALF_OPEN --PROBE_ABANDONED--> HALF_OPEN
    assert b.available(clock())

    probe = b.dispatch(clock())
    b.record(probe, BAD, clock())  # HALF_OPEN --FAILURE--> OPEN, longer backoff
    second_probation = b.open_until - clock()
    assert 2.0 <= second_probation <= 3.0

    clock.advance(second_probation)
    probe = b.dispatch(clock())
    b.record(probe, OK, clock())  # HALF_OPEN --SUCCESS--> CLOSED
    assert b.state(clock()) is BreakerState.CLOSED and b.ejections == 0 and b.available(clock())

    assert seen == set(TRANSITIONS)


def test_probation_backoff_grows_to_max() -> None:
    clock = FakeClock()
    b = Breaker(failures=1, min_backoff_s=1.0, max_backoff_s=60.0, jitter=0.5, rng=random.Random(1))
    waits = []
    _fail(b, clock, 1)
    for _ in range(10):
        waits.append(b.open_until - clock())
        clock.advance(waits[-1])
        _fail(b, clock, 1)  # the probe fails
    assert waits[0] < waits[3] < waits[6]
    assert all(1.0 <= w <= 60.0 for w in waits)
    assert waits[-1] == 60.0


def test_only_the_probe_decides_in_half_open() -> None:
    clock = FakeClock()
    b = Breaker(failures=1, rng=random.Random(2))
    _fail(b, clock, 1)
    clock.advance(2.0)
    probe = b.dispatch(clock())
    assert probe.probe
    b.record(probe, OK, clock())
    assert b.state(clock()) is BreakerState.CLOSED
