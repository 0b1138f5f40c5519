"""Arrival traces for the simulator: rate functions and seeded arrival times.

Rates are given per deployment (QPS) and multiplied by ``scale``, so ``scale=100`` is a
cluster of a hundred deployments' worth of traffic behind one autoscaled pool. Arrivals
are a non-homogeneous Poisson process drawn per 1 s bin: a Poisson count at the bin's mean
rate (the rate integrated over the bin), placed uniformly inside it. Limit: the rate is
treated as constant within each second, which is exact for the piecewise-linear traces here
up to the bin's curvature.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["SCENARIOS", "Scenario", "arrivals", "make_scenario"]

RateFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Scenario:
    """A named trace: ``rate(t)`` in requests per second over ``[0, duration_s)``.

    ``spike`` is the (start, end) of the disturbance used for "time to absorb"; ``unit_qps``
    is the per-deployment baseline, used to size replica bounds.
    """

    name: str
    duration_s: float
    rate: RateFn
    scale: float
    spike: tuple[float, float] | None = None
    peak_qps: float = 0.0


def _piecewise(points: list[tuple[float, float]]) -> RateFn:
    xs = np.array([p[0] for p in points], dtype=float)
    ys = np.array([p[1] for p in points], dtype=float)

    def rate(t: np.ndarray) -> np.ndarray:
        return np.asarray(np.interp(t, xs, ys), dtype=float)

    return rate


def spike(scale: float = 1.0, base: float = 2.0, peak: float = 35.0, start: float = 300.0,
          ramp_s: float = 30.0, hold_s: float = 300.0, fall_s: float = 60.0, tail_s: float = 510.0) -> Scenario:
    """A festival spike: ``base`` -> ``peak`` QPS per deployment in ``ramp_s``, held, then back."""
    t1, t2, t3 = start + ramp_s, start + ramp_s + hold_s, start + ramp_s + hold_s + fall_s
    duration = t3 + tail_s
    pts = [(0.0, base), (start, base), (t1, peak), (t2, peak), (t3, base), (duration, base)]
    return Scenario("spike", duration, _piecewise([(x, y * scale) for x, y in pts]), scale,
                    spike=(start, t3), peak_qps=peak * scale)


def diurnal(scale: float = 1.0, mean: float = 8.0, amplitude: float = 0.8, period_s: float = 1800.0) -> Scenario:
    """A day compressed into ``period_s``: ``mean * (1 - amplitude * cos(2 pi t / period))``."""

    def rate(t: np.ndarray) -> np.ndarray:
        return np.asarray(scale * mean * (1.0 - amplitude * np.cos(2.0 * math.pi * t / period_s)))

    return Scenario("diurnal", period_s, rate, scale, peak_qps=scale * mean * (1 + amplitude))


def poisson(scale: float = 1.0, qps: float = 20.0, duration_s: float = 600.0) -> Scenario:
    """Constant-rate Poisson arrivals."""

    def rate(t: np.ndarray) -> np.ndarray:
        return np.full_like(t, qps * scale, dtype=float)

    return Scenario("poisson", duration_s, rate, scale, peak_qps=qps * scale)


SCENARIOS: dict[str, Callable[..., Scenario]] = {"spike": spike, "diurnal": diurnal, "poisson": poisson}


def make_scenario(name: str, scale: float = 1.0) -> Scenario:
    try:
        factory = SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}") from None
    return factory(scale=scale)


def arrivals(scenario: Scenario, rng: np.random.Generator) -> np.ndarray:
    """Sorted arrival times (seconds) for the whole scenario."""
    bins = math.ceil(scenario.duration_s)
    edges = np.arange(bins + 1, dtype=float)
    # mean rate per bin by the trapezoid rule on a 4-point grid (the traces are piecewise smooth)
    sub = np.linspace(0.0, 1.0, 5)
    grid = edges[:-1, None] + sub[None, :]
    means = np.trapezoid(scenario.rate(grid), sub, axis=1)
    counts = rng.poisson(np.maximum(means, 0.0))
    starts = np.repeat(edges[:-1], counts)
    times = starts + rng.random(starts.size)
    times.sort()
    return times[times < scenario.duration_s]
