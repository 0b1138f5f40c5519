"""Exponential backoff with jitter, used for retries (25-250 ms) and breaker probation (1-60 s).

``delay(attempt) = min(max_s, base * (1 + jitter * u))`` with ``base = min(max_s,
min_s * 2**attempt)`` and ``u`` uniform in [0, 1) from the injected rng (Linkerd's
``ExponentialBackoff``: the jitter only adds). So delays stay in ``[min_s, max_s]`` and
grow with ``attempt``; the jitter keeps many clients from retrying in lock-step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass
class Backoff:
    min_s: float = 0.025
    max_s: float = 0.250
    jitter: float = 1.0
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if not 0 < self.min_s <= self.max_s:
            raise ValueError("backoff needs 0 < min_s <= max_s")
        if self.jitter < 0:
            raise ValueError("jitter must be >= 0")

    def delay(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (0 for the first retry)."""
        base = min(self.max_s, self.min_s * 2.0 ** min(attempt, 60))
        return min(self.max_s, base * (1.0 + self.jitter * self.rng.random()))
