"""Service-time distributions for the simulator.

The default is Piper as measured on this machine: ~0.39 s per request with one
onnxruntime thread per request (../shared/peers: p50 0.385-0.39 s at one thread, p99
about 0.5 s under load), modelled as a lognormal fitted to a mean of 0.39 s and a p99 of
0.6 s (a little heavier than measured, to leave room for longer sentences). A measured
sample can replace it (:class:`Empirical`), drawn with replacement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = ["Empirical", "LogNormal", "ServiceTimes", "piper_default"]

_Z99 = 2.3263478740408408  # standard normal 99th percentile


class ServiceTimes(Protocol):
    @property
    def mean_s(self) -> float: ...

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray: ...


@dataclass(frozen=True)
class LogNormal:
    """Lognormal with parameters ``mu``, ``sigma`` of the underlying normal."""

    mu: float
    sigma: float

    @classmethod
    def fit(cls, mean_s: float, p99_s: float) -> LogNormal:
        """Solve ``exp(mu + s^2/2) = mean`` and ``exp(mu + z99 s) = p99`` for the smaller s.

        ``s^2/2 - z99 s + ln(p99/mean) = 0``; real roots need ``ln(p99/mean) <= z99^2/2``.
        """
        if not 0 < mean_s < p99_s:
            raise ValueError(f"need 0 < mean < p99, got mean={mean_s} p99={p99_s}")
        c = math.log(p99_s / mean_s)
        disc = _Z99 * _Z99 - 2 * c
        if disc < 0:
            raise ValueError(f"p99/mean = {p99_s / mean_s:.1f} is too heavy-tailed for a lognormal")
        sigma = _Z99 - math.sqrt(disc)
        return cls(mu=math.log(mean_s) - sigma * sigma / 2, sigma=sigma)

    @property
    def mean_s(self) -> float:
        return math.exp(self.mu + self.sigma * self.sigma / 2)

    @property
    def p99_s(self) -> float:
        return math.exp(self.mu + _Z99 * self.sigma)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.lognormal(self.mu, self.sigma, n)


@dataclass(frozen=True)
class Empirical:
    """Measured service times, resampled with replacement."""

    samples: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.samples or min(self.samples) <= 0:
            raise ValueError("empirical service times need at least one positive sample")

    @property
    def mean_s(self) -> float:
        return float(np.mean(self.samples))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(np.asarray(self.samples, dtype=float), size=n, replace=True)


def piper_default() -> LogNormal:
    return LogNormal.fit(0.39, 0.6)
