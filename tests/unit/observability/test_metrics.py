from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxmesh.observability.metrics import LATENCY_BUCKETS, HistogramChild, Registry


def test_buckets_span_half_ms_to_a_minute_at_most_1_5x_apart() -> None:
    assert LATENCY_BUCKETS[0] == 0.0005
    assert LATENCY_BUCKETS[-1] == 60.0
    ratios = [b / a for a, b in itertools.pairwise(LATENCY_BUCKETS)]
    assert max(ratios) <= 1.5 + 1e-9
    assert all(r > 1 for r in ratios)


def test_counter_gauge_labels_and_render() -> None:
    reg = Registry()
    c = reg.counter("vm_requests_total", "Requests.", ["route", "code"])
    c.labels(route="/v1/audio/speech", code="200").inc()
    c.labels("/v1/audio/speech", "200").inc(2)
    c.labels(route='we"ird\\', code="500").inc()
    g = reg.gauge("vm_in_flight", "In flight.")
    g.labels().set(3)
    g.labels().dec()
    assert reg.counter("vm_requests_total", "Requests.", ["route", "code"]) is c
    text = reg.render()
    assert "# TYPE vm_requests_total counter" in text
    assert 'vm_requests_total{route="/v1/audio/speech",code="200"} 3' in text
    assert 'vm_requests_total{route="we\\"ird\\\\",code="500"} 1' in text
    assert "vm_in_flight 2\n" in text
    with pytest.raises(ValueError):
        c.labels(route="x")
    with pytest.raises(ValueError):
        c.labels(route="x", code="1").inc(-1)
    with pytest.raises(ValueError):
        reg.gauge("vm_requests_total", "again")


def test_histogram_render_is_cumulative_with_inf_sum_count() -> None:
    reg = Registry()
    h = reg.histogram("vm_latency_seconds", "Latency.", ["route"])
    for v in (0.0004, 0.001, 0.001, 0.02, 100.0):
        h.labels(route="r").observe(v)
    text = reg.render()
    assert 'vm_latency_seconds_bucket{route="r",le="0.0005"} 1' in text
    assert 'vm_latency_seconds_bucket{route="r",le="0.001"} 3' in text  # a value on a bound is in it
    assert 'vm_latency_seconds_bucket{route="r",le="60"} 4' in text
    assert 'vm_latency_seconds_bucket{route="r",le="+Inf"} 5' in text
    assert 'vm_latency_seconds_count{route="r"} 5' in text
    assert "# TYPE vm_latency_seconds histogram" in text
    h.remove("r")
    assert "vm_latency_seconds_count" not in reg.render()


def test_quantile_basics() -> None:
    h = HistogramChild()
    assert math.isnan(h.quantile(0.5))
    for _ in range(100):
        h.observe(0.010)
    assert h.quantile(0.5) == pytest.approx(0.010)
    assert h.quantile(0.0) == pytest.approx(0.010)
    h.observe(200.0)  # beyond the last bucket: estimated by the max
    assert h.quantile(1.0) == 200.0
    with pytest.raises(ValueError):
        h.quantile(1.5)


def _true_quantile(values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q * n values at or below it."""
    ordered = sorted(values)
    k = max(1, math.ceil(q * len(ordered)))
    return ordered[k - 1]


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(st.floats(min_value=1e-5, max_value=120.0, allow_nan=False), min_size=1, max_size=300),
    q=st.sampled_from([0.5, 0.9, 0.95, 0.99, 0.999]),
)
def test_quantile_estimate_within_bucket_resolution(values: list[float], q: float) -> None:
    h = HistogramChild()
    for v in values:
        h.observe(v)
    est = h.quantile(q)
    true = _true_quantile(values, q)
    lower, upper = h.bucket_of(true)
    # The estimate lies in the bucket of the true quantile (at most one bucket wide off it).
    assert lower - 1e-12 <= est <= max(upper, max(values)) + 1e-12
    if upper != math.inf:
        assert est <= upper + 1e-12
        # relative error bounded by the bucket ratio
        assert true < LATENCY_BUCKETS[0] or 1 / 1.5 - 1e-9 <= est / true <= 1.5 + 1e-9
    assert min(values) <= est <= max(values)
