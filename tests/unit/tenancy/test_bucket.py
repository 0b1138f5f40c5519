"""Token buckets with a fake clock: the pure rule, the memory limiter, and the capacity property."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxmesh.tenancy.bucket import (
    BucketSpec,
    BucketState,
    Decision,
    debit,
    evaluate,
    format_duration,
    refill,
    take,
)
from voxmesh.tenancy.limiter import MemoryLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


RPM = BucketSpec("requests", 60, 60.0)  # one token a second


def test_new_bucket_is_full_and_refills_at_rate() -> None:
    assert refill(RPM, None, 5.0) == BucketState(60, 5.0)
    assert refill(RPM, BucketState(0, 5.0), 15.0).tokens == pytest.approx(10)
    assert refill(RPM, BucketState(50, 5.0), 100.0).tokens == 60  # never over capacity
    assert refill(RPM, BucketState(3, 5.0), 4.0) == BucketState(3, 5.0)  # clock went back: no time passed


def test_burst_then_refusal_with_retry_after_and_headers() -> None:
    states: tuple[BucketState | None, ...] = (None,)
    for _ in range(60):
        d, states = take([RPM], states, [1], now=0.0)
        assert d.allowed
    d, states2 = take([RPM], states, [1], now=0.0)
    assert not d.allowed and states2 == states  # a refusal costs nothing
    assert d.retry_after == pytest.approx(1.0)
    assert (d.limit, d.remaining) == (60, 0)
    h = d.headers()
    assert h["Retry-After"] == "1"
    assert h["x-ratelimit-limit-requests"] == "60"
    assert h["x-ratelimit-remaining-requests"] == "0"
    assert h["x-ratelimit-reset-requests"] == "1m0s"
    err = d.error()
    assert err.status == 429 and "requests limit (60)" in err.message
    d, _ = take([RPM], states, [1], now=1.0)
    assert d.allowed


def test_all_or_nothing_over_several_buckets() -> None:
    chars = BucketSpec("tokens", 100, 86_400.0)
    d, after = take([RPM, chars], [None, None], [1, 150], now=0.0)
    assert not d.allowed and math.isinf(d.retry_after)  # 150 chars never fit in 100
    assert "alone exceeds the tokens limit" in d.error().message
    assert "Retry-After" not in d.headers()
    assert [s.tokens for s in after] == [60, 100]  # nothing charged
    d, after = take([RPM, chars], after, [1, 80], now=0.0)
    assert d.allowed and [s.tokens for s in after] == [59, 20]
    assert d.binding is not None and d.binding.name == "tokens"  # nearest empty
    assert d.headers()["x-ratelimit-remaining-tokens"] == "20"


def test_debt_refuses_even_a_free_check_until_repaid() -> None:
    audio = BucketSpec("audio_seconds", 100, 100.0)  # 1 s of audio per second
    st1 = debit(audio, None, 130, now=0.0)
    assert st1.tokens == -30
    assert debit(audio, st1, 1000, now=0.0).tokens == -100  # at most one capacity deep
    d, _ = take([audio], [st1], [0], now=0.0)
    assert not d.allowed and d.retry_after == pytest.approx(30, abs=0.01)
    d, _ = take([audio], [st1], [0], now=30.0)
    assert not d.allowed  # exactly zero left: still refused
    d, _ = take([audio], [st1], [0], now=30.5)
    assert d.allowed


def test_burst_smaller_than_the_limit() -> None:
    spec = BucketSpec("requests", 60, 60.0, burst=10)  # 60/min, at most 10 at once
    states: tuple[BucketState | None, ...] = (None,)
    got = []
    for _ in range(12):
        d, states = take([spec], states, [1], now=0.0)
        got.append(d.allowed)
    assert got == [True] * 10 + [False] * 2
    assert d.headers()["x-ratelimit-limit-requests"] == "60"  # the limit, not the burst
    d, states = take([spec], states, [1], now=1.0)
    assert d.allowed  # then one a second


def test_format_duration_like_openai() -> None:
    assert [format_duration(x) for x in (0.02, 1.5, 60, 3723)] == ["20ms", "1.5s", "1m0s", "1h2m3s"]


def test_unlimited_decision_has_no_headers() -> None:
    assert Decision(True, 0.0).headers() == {} and Decision(True, 0.0).limit is None


async def test_memory_limiter_keys_tenants_apart_and_follows_the_clock() -> None:
    clock = FakeClock()
    lim = MemoryLimiter(clock)
    spec = BucketSpec("requests", 2, 60.0)
    assert [(await lim.take("a", [(spec, 1)])).allowed for _ in range(3)] == [True, True, False]
    assert (await lim.take("b", [(spec, 1)])).allowed  # another tenant's bucket is its own
    clock.now += 30
    assert (await lim.take("a", [(spec, 1)])).allowed
    assert not (await lim.take("a", [(spec, 1)])).allowed


async def test_memory_limiter_prunes_only_full_buckets() -> None:
    clock = FakeClock()
    lim = MemoryLimiter(clock, max_keys=3)
    spec = BucketSpec("requests", 2, 60.0)
    for t in ("a", "b", "c"):
        await lim.take(t, [(spec, 1)])
    clock.now += 10  # a, b, c are not full again yet: kept
    await lim.take("d", [(spec, 1)])
    assert len(lim._states) == 4
    clock.now += 60
    await lim.take("e", [(spec, 1)])
    assert set(lim._states) == {"e:requests"}


@settings(max_examples=300, deadline=None)
@given(
    limit=st.integers(1, 50),
    burst=st.none() | st.integers(1, 50),
    period=st.floats(0.5, 100),
    steps=st.lists(st.tuples(st.floats(0, 5), st.integers(0, 20)), min_size=1, max_size=200),
)
def test_never_admits_more_than_capacity_plus_rate_times_t(
    limit: int, burst: int | None, period: float, steps: list[tuple[float, int]]
) -> None:
    spec = BucketSpec("tokens", limit, period, burst)
    capacity = spec.capacity
    state: BucketState | None = None
    now = 0.0
    admitted: list[tuple[float, int]] = []
    for dt, cost in steps:
        now += dt
        d, (state,) = take([spec], [state], [cost], now)
        if d.allowed:
            admitted.append((now, cost))
        else:
            assert d.retry_after > 0
    # every window [t0, t1] of admitted requests: sum <= capacity + rate * (t1 - t0)
    for i, (t0, _) in enumerate(admitted):
        total = 0
        for t1, cost in admitted[i:]:
            total += cost
            assert total <= capacity + spec.rate * (t1 - t0) + 1e-6


@settings(max_examples=100, deadline=None)
@given(tokens=st.lists(st.floats(-10, 10), min_size=1, max_size=4), costs=st.data())
def test_evaluate_charges_all_or_none(tokens: list[float], costs: st.DataObject) -> None:
    cs = costs.draw(st.lists(st.floats(0, 10), min_size=len(tokens), max_size=len(tokens)))
    specs = [BucketSpec(f"b{i}", 10, 10.0) for i in range(len(tokens))]
    d, after = evaluate(specs, tokens, cs)
    if d.allowed:
        assert list(after) == [t - c for t, c in zip(tokens, cs, strict=True)]
    else:
        assert list(after) == tokens and d.retry_after > 0
