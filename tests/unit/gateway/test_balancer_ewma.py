from __future__ import annotations

import math

import pytest

from voxmesh.clock import FakeClock
from voxmesh.gateway.balancer.ewma import PeakEwma


def test_starts_at_default_rtt_and_peaks_at_once() -> None:
    clock = FakeClock()
    e = PeakEwma(default_rtt_s=0.030, decay_s=10.0, clock=clock)
    assert e.estimate() == pytest.approx(0.030)
    e.observe(0.500)  # higher: replaces at once
    assert e.estimate() == pytest.approx(0.500)


def test_lower_samples_decay_in_by_elapsed_time() -> None:
    clock = FakeClock()
    e = PeakEwma(default_rtt_s=0.100, decay_s=10.0, clock=clock)
    clock.advance(10.0)
    e.observe(0.010)
    w = math.exp(-1.0)
    assert e.estimate() == pytest.approx(0.100 * w + 0.010 * (1 - w))
    # samples at the same instant barely move it (w == 1): no burst of fast answers wipes a peak
    before = e.estimate()
    for _ in range(100):
        e.observe(0.001)
    assert e.estimate() == pytest.approx(before)


def test_idle_endpoint_estimate_decays_towards_zero() -> None:
    clock = FakeClock()
    e = PeakEwma(default_rtt_s=0.030, decay_s=10.0, clock=clock)
    e.observe(1.0)
    clock.advance(30.0)
    assert e.estimate() == pytest.approx(math.exp(-3.0))


def test_cost_counts_pending_and_weight() -> None:
    clock = FakeClock()
    e = PeakEwma(default_rtt_s=0.020, clock=clock)
    assert e.cost() == pytest.approx(0.020)
    e.start()
    e.start()
    assert e.cost() == pytest.approx(0.060)
    assert e.cost(weight=2.0) == pytest.approx(0.030)
    e.finish()
    e.finish()
    with pytest.raises(RuntimeError):
        e.finish()
