"""Each pure step on its own, with explicit snapshots and times."""

from __future__ import annotations

import pytest

from voxmesh.autoscale.snapshot import (
    Behavior,
    Metric,
    MetricKind,
    MetricSample,
    PolicyType,
    RatePolicy,
    Recommendation,
    ScaleEvent,
    ScalingRules,
    ScalingSpec,
    SelectPolicy,
    Snapshot,
)
from voxmesh.autoscale.steps import (
    ZeroOutcome,
    apply_bounds,
    apply_max_over_metrics,
    apply_scale_to_zero,
    ceil_replicas,
    desired_for_metric,
    propose,
    record_recommendation,
    record_scale_event,
)


def total(metric: Metric, value: float) -> MetricSample:
    return MetricSample(metric, value, MetricKind.TOTAL)


def snap(now: float = 100.0, current: int = 4, ready: int | None = None, **metrics: float) -> Snapshot:
    samples = []
    for name, value in metrics.items():
        metric = Metric(name)
        kind = MetricKind.AVERAGE if metric is Metric.CPU_UTILIZATION else MetricKind.TOTAL
        samples.append(MetricSample(metric, value, kind))
    return Snapshot(now, "tts-en", current, current if ready is None else ready, 0, tuple(samples))


# ---- the HPA rule --------------------------------------------------------------------

def test_ceil_replicas_ignores_float_noise() -> None:
    assert ceil_replicas(2.0000000000001) == 2
    assert ceil_replicas(2.01) == 3
    assert ceil_replicas(-1.0) == 0


def test_total_metric_desired_is_ceil_total_over_target() -> None:
    p = desired_for_metric(total(Metric.IN_FLIGHT, 9.0), target=2.0, current=2, ready=2, tolerance=0.1)
    assert p.desired == 5  # ceil(9 / 2)
    assert p.ratio == pytest.approx(2.25)  # 9 / (2 * 2)
    assert not p.within_tolerance


def test_within_tolerance_keeps_current() -> None:
    # ratio 1.1 exactly: inside the tolerance band (|ratio - 1| <= 0.1)
    p = desired_for_metric(total(Metric.QPS, 44.0), target=10.0, current=4, ready=4, tolerance=0.1)
    assert p.desired == 4 and p.within_tolerance
    p = desired_for_metric(total(Metric.QPS, 44.4), target=10.0, current=4, ready=4, tolerance=0.1)
    assert p.desired == 5 and not p.within_tolerance  # 1.11 is outside
    p = desired_for_metric(total(Metric.QPS, 36.0), target=10.0, current=4, ready=4, tolerance=0.1)
    assert p.desired == 4 and p.within_tolerance  # 0.9 inside
    p = desired_for_metric(total(Metric.QPS, 35.0), target=10.0, current=4, ready=4, tolerance=0.1)
    assert p.desired == 4 and not p.within_tolerance  # 0.875: ceil(3.5) = 4 anyway
    p = desired_for_metric(total(Metric.QPS, 25.0), target=10.0, current=4, ready=4, tolerance=0.1)
    assert p.desired == 3


def test_average_metric_counts_unready_as_zero() -> None:
    cpu = MetricSample(Metric.CPU_UTILIZATION, 1.0, MetricKind.AVERAGE)
    # 10 ready at 100 %, target 70 %: ceil(10 / 0.7) = 15
    assert desired_for_metric(cpu, 0.7, current=10, ready=10, tolerance=0.1).desired == 15
    # 15 current (5 still loading) and 10 ready at 100 %: ratio 10/(15*0.7)=0.95 -> hold
    p = desired_for_metric(cpu, 0.7, current=15, ready=10, tolerance=0.1)
    assert p.desired == 15 and p.within_tolerance
    # no ready replica: no estimate
    assert desired_for_metric(cpu, 0.7, current=3, ready=0, tolerance=0.1).desired is None


def test_zero_current_estimates_from_total() -> None:
    p = desired_for_metric(total(Metric.IN_FLIGHT, 3.0), 1.0, current=0, ready=0, tolerance=0.1)
    assert p.desired == 3 and p.ratio is None


def test_propose_uses_only_targets_with_samples() -> None:
    spec = ScalingSpec(target_in_flight_per_replica=1.0, target_qps_per_replica=2.0)
    proposals = propose(snap(current=2, in_flight=6.0, cpu_utilization=0.9), spec)
    assert [p.metric for p in proposals] == [Metric.IN_FLIGHT]  # no QPS sample; CPU has no target


def test_default_target_is_cpu_70_percent() -> None:
    assert ScalingSpec().targets() == {Metric.CPU_UTILIZATION: 0.7}


def test_highest_proposal_wins() -> None:
    spec = ScalingSpec(target_in_flight_per_replica=1.0, target_qps_per_replica=2.0, target_queue_per_replica=5)
    proposals = propose(snap(current=2, in_flight=3.0, qps=20.0, queue_length=1.0), spec)
    assert apply_max_over_metrics(proposals, 2) == (10, Metric.QPS)


def test_max_over_metrics_without_estimate_keeps_current() -> None:
    assert apply_max_over_metrics((), 7) == (7, None)


# ---- bounds ---------------------------------------------------------------------------

@pytest.mark.parametrize(("desired", "expected"), [(0, 2), (2, 2), (5, 5), (9, 8), (100, 8)])
def test_bounds(desired: int, expected: int) -> None:
    assert apply_bounds(desired, 2, 8) == expected


def test_spec_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError, match="min_replicas"):
        ScalingSpec(min_replicas=5, max_replicas=2)
    with pytest.raises(ValueError, match="scale_to_zero"):
        ScalingSpec(min_replicas=0)
    with pytest.raises(ValueError, match="must be > 0"):
        ScalingSpec(target_qps_per_replica=0.0)
    with pytest.raises(ValueError, match="positive"):
        RatePolicy(PolicyType.PODS, 0, 15)


# ---- scale to zero --------------------------------------------------------------------

ZERO = ScalingSpec(min_replicas=0, max_replicas=5, scale_to_zero=True, target_in_flight_per_replica=1.0,
                   activation_threshold=0.5, scale_to_zero_cooldown_s=300.0)


def test_activation_from_zero_needs_metric_above_threshold() -> None:
    assert apply_scale_to_zero(0, snap(current=0, in_flight=0.5), ZERO, None)[:2] == (0, ZeroOutcome.STAY_AT_ZERO)
    count, outcome, active_at = apply_scale_to_zero(0, snap(now=7.0, current=0, in_flight=2.0), ZERO, None)
    assert (count, outcome, active_at) == (1, ZeroOutcome.ACTIVATE, 7.0)


def test_scale_to_zero_after_cooldown_only() -> None:
    idle = snap(now=1000.0, current=2, in_flight=0.0)
    # active 200 s ago: keep the pipeline's count
    assert apply_scale_to_zero(1, idle, ZERO, 800.0) == (1, ZeroOutcome.NONE, 800.0)
    # active 300 s ago: go to zero
    assert apply_scale_to_zero(1, idle, ZERO, 700.0) == (0, ZeroOutcome.TO_ZERO, 700.0)
    # never seen active: the cooldown starts now
    assert apply_scale_to_zero(1, idle, ZERO, None) == (1, ZeroOutcome.NONE, 1000.0)


def test_scale_to_zero_off_is_a_no_op() -> None:
    spec = ScalingSpec(target_in_flight_per_replica=1.0)
    assert apply_scale_to_zero(3, snap(current=0), spec, None) == (3, ZeroOutcome.NONE, None)


def test_scale_to_zero_with_min_above_zero_never_goes_to_zero() -> None:
    spec = ScalingSpec(min_replicas=1, scale_to_zero=True, target_in_flight_per_replica=1.0)
    assert apply_scale_to_zero(1, snap(now=1e6, current=1, in_flight=0.0), spec, 0.0)[0] == 1


# ---- history bookkeeping ---------------------------------------------------------------

def test_record_recommendation_prunes_outside_both_windows() -> None:
    b = Behavior(scale_up=ScalingRules(10.0), scale_down=ScalingRules(60.0))
    recs = (Recommendation(0.0, 1), Recommendation(50.0, 2))
    assert record_recommendation(recs, 100.0, 3, b) == (Recommendation(50.0, 2), Recommendation(100.0, 3))


def test_record_scale_event_prunes_and_skips_zero() -> None:
    b = Behavior(
        scale_up=ScalingRules(0.0, (RatePolicy(PolicyType.PODS, 4, 60.0),)),
        scale_down=ScalingRules(0.0, (RatePolicy(PolicyType.PERCENT, 10, 15.0),), SelectPolicy.MIN),
    )
    events = (ScaleEvent(0.0, 2), ScaleEvent(50.0, -1))
    assert record_scale_event(events, 100.0, 0, b) == (ScaleEvent(50.0, -1),)
    assert record_scale_event(events, 100.0, 3, b)[-1] == ScaleEvent(100.0, 3)


def test_spec_from_deployment() -> None:
    from voxmesh.autoscale.snapshot import HPA_DEFAULT_SCALE_DOWN, spec_from_deployment
    from voxmesh.deployments import Deployment

    dep = Deployment.model_validate({
        "name": "tts-en", "engine": "piper", "replicas": {"min": 1, "max": 6, "warm": 2},
        "scaling": {"qps_per_replica": 2.5, "scale_down_window_s": 45},
    })
    spec = spec_from_deployment(dep)
    assert (spec.min_replicas, spec.max_replicas, spec.warm_pool_size) == (1, 6, 2)
    assert spec.targets() == {Metric.QPS: 2.5}
    assert spec.behavior.scale_down.stabilization_window_s == 45
    assert spec.behavior.scale_down.policies == HPA_DEFAULT_SCALE_DOWN.policies
    assert spec.behavior.scale_up.policies == ()  # unlimited: promotion is cheap
    # no target declared: in-flight 1 per replica; min 0 turns on scale to zero
    bare = spec_from_deployment(Deployment.model_validate(
        {"name": "mt", "engine": "llamacpp", "replicas": {"min": 0, "max": 2}}))
    assert bare.targets() == {Metric.IN_FLIGHT: 1.0} and bare.scale_to_zero
