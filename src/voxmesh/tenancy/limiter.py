"""The limiter protocol and its in-process implementation.

A limiter keeps bucket states by key (``<tenant>:<bucket name>``) and applies the pure rule
of :mod:`voxmesh.tenancy.bucket`. :class:`MemoryLimiter` serves one gateway process;
:class:`voxmesh.tenancy.redis_limiter.RedisLimiter` shares the buckets between processes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from voxmesh.tenancy.bucket import BucketSpec, BucketState, Decision, debit, take

__all__ = ["Limiter", "MemoryLimiter"]


class Limiter(Protocol):
    async def take(self, tenant: str, buckets: Sequence[tuple[BucketSpec, float]]) -> Decision:
        """Charge every bucket its cost, all or nothing."""
        ...

    async def debit(self, tenant: str, spec: BucketSpec, amount: float) -> None:
        """Charge after the fact (may go into debt)."""
        ...

    async def close(self) -> None: ...


class MemoryLimiter:
    """Buckets in a dict; the clock is injected. Idle buckets are dropped once full again."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self.clock = clock
        self.max_keys = max_keys
        self._states: dict[str, tuple[BucketSpec, BucketState]] = {}

    def _key(self, tenant: str, spec: BucketSpec) -> str:
        return f"{tenant}:{spec.name}"

    def _prune(self, now: float) -> None:
        # a bucket that has refilled completely is the same as one never seen
        if len(self._states) < self.max_keys:
            return
        for key, (spec, st) in list(self._states.items()):
            if st.tokens + (now - st.updated) * spec.rate >= spec.capacity:
                del self._states[key]

    def _state(self, key: str) -> BucketState | None:
        held = self._states.get(key)
        return None if held is None else held[1]

    async def take(self, tenant: str, buckets: Sequence[tuple[BucketSpec, float]]) -> Decision:
        return self.take_now(tenant, buckets)

    def take_now(self, tenant: str, buckets: Sequence[tuple[BucketSpec, float]]) -> Decision:
        """The synchronous form (no I/O here)."""
        now = self.clock()
        keys = [self._key(tenant, spec) for spec, _ in buckets]
        decision, after = take([s for s, _ in buckets], [self._state(k) for k in keys],
                               [c for _, c in buckets], now)  # fmt: skip
        for key, (spec, _), st in zip(keys, buckets, after, strict=True):
            self._states[key] = (spec, st)
        self._prune(now)
        return decision

    async def debit(self, tenant: str, spec: BucketSpec, amount: float) -> None:
        key = self._key(tenant, spec)
        self._states[key] = (spec, debit(spec, self._state(key), amount, self.clock()))

    async def close(self) -> None:
        return None
