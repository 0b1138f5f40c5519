"""Token buckets, sans-IO: pure functions of (specs, states, costs, now).

Algorithm: a bucket refills continuously at ``limit / period_s`` tokens per second (a "per
minute" limit of 60 refills one a second, so no window edge lets a client send 2x the limit)
and holds at most ``capacity`` tokens: the burst, by default the whole limit. The requests
bucket gets a smaller burst (``limits.burst_s`` seconds' worth), so a flood is smoothed to
the rate within seconds. One request may charge several buckets
at once (1 request, N characters); it is admitted only if *every* bucket holds its cost,
and then all are charged, or none is (all-or-nothing, so a refused request costs nothing).
A bucket in debt (see :func:`debit`: audio seconds are only known after synthesis) refuses
until it has refilled above zero, even a request that costs it nothing.

Guarantee (tested as a property): over any interval of length ``t``, admitted costs sum to
at most ``capacity + rate * t`` (capacity: the burst, by default the whole limit).

Limits: a cost larger than the capacity can never be admitted (``retry_after`` is infinite;
the HTTP layer says so). Clocks going backwards are treated as no time passing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from voxmesh.errors import QuotaExceeded, VoxmeshError

__all__ = [
    "UNLIMITED",
    "BucketResult",
    "BucketSpec",
    "BucketState",
    "Decision",
    "debit",
    "evaluate",
    "format_duration",
    "refill",
    "take",
]


@dataclass(frozen=True)
class BucketSpec:
    """``limit`` per ``period_s``, refilled continuously; the bucket holds ``burst`` tokens at
    most (default: the whole ``limit``). ``name`` is the kind of limit: ``requests``,
    ``tokens`` (characters) or ``audio_seconds``."""

    name: str
    limit: float
    period_s: float
    burst: float | None = None

    def __post_init__(self) -> None:
        if self.limit <= 0 or self.period_s <= 0 or (self.burst is not None and self.burst <= 0):
            raise ValueError("a bucket needs limit > 0, period_s > 0 and burst > 0")

    @property
    def capacity(self) -> float:
        return self.limit if self.burst is None else self.burst

    @property
    def rate(self) -> float:
        return self.limit / self.period_s


@dataclass(frozen=True)
class BucketState:
    tokens: float
    updated: float


@dataclass(frozen=True)
class BucketResult:
    """One bucket's part of a decision; times are seconds from now."""

    name: str
    limit: int
    remaining: float
    reset_s: float  # until the bucket is full again
    retry_after: float  # 0 when this bucket admits; inf when the cost exceeds the capacity


@dataclass(frozen=True)
class Decision:
    """What admission answers: allowed or not, when to retry, and every bucket's standing."""

    allowed: bool
    retry_after: float
    buckets: tuple[BucketResult, ...] = ()
    refusal: VoxmeshError | None = field(default=None, compare=False)  # not a matter of waiting

    @property
    def binding(self) -> BucketResult | None:
        """The bucket that refused (the longest wait) or, when allowed, the one nearest empty."""
        if not self.buckets:
            return None
        if not self.allowed:
            return max(self.buckets, key=lambda b: b.retry_after)
        return min(self.buckets, key=lambda b: b.remaining / max(b.limit, 1))

    @property
    def limit(self) -> int | None:
        b = self.binding
        return None if b is None else b.limit

    @property
    def remaining(self) -> int | None:
        b = self.binding
        return None if b is None else max(0, math.floor(b.remaining))

    @property
    def reset(self) -> float | None:
        b = self.binding
        return None if b is None else b.reset_s

    def headers(self) -> dict[str, str]:
        """OpenAI's ``x-ratelimit-*`` headers (``requests`` and ``tokens`` = characters), voxmesh's
        ``x-ratelimit-*-audio-seconds``, and ``Retry-After`` on a refusal."""
        out: dict[str, str] = {}
        for b in self.buckets:
            suffix = b.name.replace("_", "-")
            out[f"x-ratelimit-limit-{suffix}"] = str(b.limit)
            out[f"x-ratelimit-remaining-{suffix}"] = str(max(0, math.floor(b.remaining)))
            out[f"x-ratelimit-reset-{suffix}"] = format_duration(b.reset_s)
        if not self.allowed and math.isfinite(self.retry_after):
            out["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return out

    def error(self) -> VoxmeshError:
        """The error to raise for a refusal: 429 saying which limit and when to retry (or the
        ``refusal`` itself, e.g. 413 for a job over its size limit)."""
        if self.refusal is not None:
            return self.refusal
        b = self.binding
        what = "rate limit" if b is None else f"{b.name.replace('_', ' ')} limit ({b.limit})"
        if math.isfinite(self.retry_after):
            return QuotaExceeded(f"{what} reached: retry in {max(1, math.ceil(self.retry_after))} s",
                                 retry_after=self.retry_after)
        return QuotaExceeded(f"this request alone exceeds the {what}: send less per request")


UNLIMITED = Decision(True, 0.0, ())


def format_duration(seconds: float) -> str:
    """OpenAI's reset format: ``20ms``, ``1.5s``, ``6m0s``, ``1h2m3s``."""
    if not math.isfinite(seconds):
        return "inf"
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    if seconds < 60:
        return f"{round(seconds, 2):g}s"
    total = round(seconds)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m}m{s}s" if h else f"{m}m{s}s"


def refill(spec: BucketSpec, state: BucketState | None, now: float) -> BucketState:
    """The state at ``now``: a bucket never seen is full."""
    if state is None:
        return BucketState(spec.capacity, now)
    if now <= state.updated:
        return state
    return BucketState(min(spec.capacity, state.tokens + (now - state.updated) * spec.rate), now)


def evaluate(
    specs: Sequence[BucketSpec], tokens: Sequence[float], costs: Sequence[float]
) -> tuple[Decision, tuple[float, ...]]:
    """Decide on refilled token counts; the same rule the Redis script runs."""
    admits = [t >= c and t > 0 for t, c in zip(tokens, costs, strict=True)]
    allowed = all(admits)
    after = tuple(t - c for t, c in zip(tokens, costs, strict=True)) if allowed else tuple(tokens)
    results = []
    for spec, tok, cost, ok, left in zip(specs, tokens, costs, admits, after, strict=True):
        if ok:
            wait = 0.0
        elif cost > spec.capacity:
            wait = math.inf
        else:
            # a zero-cost check waits for the debt to clear and then a little more
            wait = (cost - tok) / spec.rate + (1e-3 if cost <= 0 else 0.0)
        results.append(BucketResult(
            name=spec.name, limit=int(spec.limit), remaining=left,
            reset_s=max(0.0, spec.capacity - left) / spec.rate, retry_after=wait,
        ))  # fmt: skip
    retry = 0.0 if allowed else max(r.retry_after for r in results)
    return Decision(allowed, retry, tuple(results)), after


def take(
    specs: Sequence[BucketSpec], states: Sequence[BucketState | None], costs: Sequence[float], now: float
) -> tuple[Decision, tuple[BucketState, ...]]:
    """Charge ``costs`` to every bucket at ``now``, all or nothing."""
    filled = [refill(s, st, now) for s, st in zip(specs, states, strict=True)]
    decision, after = evaluate(specs, [f.tokens for f in filled], costs)
    return decision, tuple(BucketState(t, f.updated) for t, f in zip(after, filled, strict=True))


def debit(spec: BucketSpec, state: BucketState | None, amount: float, now: float) -> BucketState:
    """Charge ``amount`` after the fact (may go into debt, at most one capacity deep)."""
    filled = refill(spec, state, now)
    return BucketState(max(-spec.capacity, filled.tokens - amount), filled.updated)
