"""Power of two choices over peak-EWMA cost (Linkerd's balancer).

Algorithm
    From a frozen snapshot of the pool (:class:`Candidate` per endpoint: cost, in-flight,
    ejected) drop the endpoints that cannot take a request: ejected by their breaker, or
    at their in-flight cap (load shedding). Pick two distinct survivors uniformly with the
    injected ``random.Random`` and send to the cheaper one (ties go to the first draw). One
    survivor is picked alone. No survivor answers *why* (:class:`Unavailable`), so the data
    plane can tell "all ejected" (503, no healthy upstream) from "all saturated" (503,
    overloaded, Retry-After).

    Two random choices rather than the global minimum: the cheapest endpoint by a stale
    estimate would take a whole burst (herding); two choices spread a burst while still
    avoiding the worst endpoints with high probability (Mitzenmacher 2001).

Limits
    O(n) per choice to filter the snapshot, which is fine for the tens of endpoints a
    deployment has here. ``exclude`` lets a retry avoid the endpoint that just failed,
    unless it is the only one left.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from enum import Enum
from typing import NamedTuple

__all__ = ["Candidate", "PowerOfTwoChoices", "Unavailable"]


class Candidate(NamedTuple):
    """A frozen snapshot of one endpoint (a NamedTuple: built per endpoint per request, so cheap)."""

    id: str
    cost: float
    in_flight: int = 0
    max_in_flight: int = 256
    ejected: bool = False


class Unavailable(Enum):
    NO_ENDPOINTS = "no endpoints"
    ALL_EJECTED = "every endpoint is ejected by its circuit breaker"
    ALL_SATURATED = "every endpoint is at its in-flight limit"


class PowerOfTwoChoices:
    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng if rng is not None else random.Random()

    def choose(
        self, candidates: Sequence[Candidate], exclude: frozenset[str] = frozenset()
    ) -> str | Unavailable:
        if not candidates:
            return Unavailable.NO_ENDPOINTS
        healthy = [c for c in candidates if not c.ejected]
        if not healthy:
            return Unavailable.ALL_EJECTED
        ready = [c for c in healthy if c.in_flight < c.max_in_flight]
        if not ready:
            return Unavailable.ALL_SATURATED
        if exclude:
            others = [c for c in ready if c.id not in exclude]
            ready = others or ready
        if len(ready) == 1:
            return ready[0].id
        # Two distinct uniform indices (cheaper than rng.sample, same distribution).
        n = len(ready)
        i = self.rng.randrange(n)
        j = self.rng.randrange(n - 1)
        j += j >= i
        a, b = ready[i], ready[j]
        return a.id if a.cost <= b.cost else b.id
