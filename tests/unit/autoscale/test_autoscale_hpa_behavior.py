"""Each HPA ``behavior`` rule, checked against the Kubernetes semantics with a fake clock.

References: k8s.io/kubernetes pkg/controller/podautoscaler/horizontal.go
(stabilizeRecommendationWithBehaviors, calculateScaleUpLimitWithScalingRules,
calculateScaleDownLimitWithBehaviors) and the HPA docs' "Configurable scaling behavior".
"""

from __future__ import annotations

from voxmesh.autoscale.policy import Reason, decide
from voxmesh.autoscale.snapshot import (
    HPA_DEFAULT_SCALE_DOWN,
    HPA_DEFAULT_SCALE_UP,
    Behavior,
    Metric,
    MetricSample,
    PolicyState,
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
    apply_rate_policies,
    apply_stabilization,
    scale_down_limit,
    scale_up_limit,
)
from voxmesh.clock import FakeClock

NO_LIMIT = ScalingRules(0.0)


def pods(value: int, period: float) -> RatePolicy:
    return RatePolicy(PolicyType.PODS, value, period)


def pct(value: int, period: float) -> RatePolicy:
    return RatePolicy(PolicyType.PERCENT, value, period)


# ---- stabilization windows ---------------------------------------------------------------

def test_default_windows_are_0_up_and_300_down() -> None:
    b = Behavior()
    assert b.scale_up.stabilization_window_s == 0.0
    assert b.scale_down.stabilization_window_s == 300.0
    assert b.scale_up.policies == (pct(100, 15), pods(4, 15))
    assert b.scale_down.policies == (pct(100, 15),)


def test_scale_down_takes_the_max_recommendation_in_the_window() -> None:
    b = Behavior(scale_up=NO_LIMIT, scale_down=ScalingRules(300.0))
    recs = (Recommendation(0.0, 10), Recommendation(100.0, 8), Recommendation(250.0, 6))
    # at t=299 all three are inside: max(10, 8, 6, 3) = 10 -> hold at current 10
    assert apply_stabilization(3, 10, 299.0, recs, b) == 10
    # at t=301 the 10 has left the window: max(8, 6, 3) = 8
    assert apply_stabilization(3, 10, 301.0, recs, b) == 8
    # at t=551 only the 6 remains
    assert apply_stabilization(3, 10, 549.0, recs, b) == 6
    assert apply_stabilization(3, 10, 551.0, recs, b) == 3


def test_scale_up_takes_the_min_recommendation_in_the_window() -> None:
    b = Behavior(scale_up=ScalingRules(60.0), scale_down=ScalingRules(0.0))
    recs = (Recommendation(0.0, 4), Recommendation(30.0, 9))
    assert apply_stabilization(12, 2, 59.0, recs, b) == 4  # min(4, 9, 12)
    assert apply_stabilization(12, 2, 61.0, recs, b) == 9  # the 4 left the window
    assert apply_stabilization(12, 2, 91.0, recs, b) == 12


def test_zero_windows_pass_the_recommendation_through() -> None:
    b = Behavior(scale_up=ScalingRules(0.0), scale_down=ScalingRules(0.0))
    recs = (Recommendation(10.0, 50),)
    assert apply_stabilization(3, 10, 10.0, recs, b) == 3
    assert apply_stabilization(30, 10, 10.0, recs, b) == 30


def test_stabilization_never_moves_against_current() -> None:
    # recommendations both above and below current: stay at current
    b = Behavior(scale_up=ScalingRules(60.0), scale_down=ScalingRules(60.0))
    recs = (Recommendation(0.0, 2), Recommendation(1.0, 20))
    assert apply_stabilization(20, 10, 30.0, recs, b) == 10
    assert apply_stabilization(2, 10, 30.0, recs, b) == 10


# ---- rate policies: scale up --------------------------------------------------------------

def test_scale_up_pods_policy() -> None:
    rules = ScalingRules(0.0, (pods(4, 60),))
    assert scale_up_limit(10, 100.0, (), rules) == 14
    # 3 already added 30 s ago: the period started at 7 -> 7 + 4 = 11
    assert scale_up_limit(10, 100.0, (ScaleEvent(70.0, 3),), rules) == 11
    # the event fell out of the 60 s period
    assert scale_up_limit(10, 131.0, (ScaleEvent(70.0, 3),), rules) == 14


def test_scale_up_percent_policy_rounds_up() -> None:
    rules = ScalingRules(0.0, (pct(50, 15),))
    assert scale_up_limit(3, 0.0, (), rules) == 5  # ceil(4.5)
    assert scale_up_limit(1, 0.0, (), ScalingRules(0.0, (pct(10, 15),))) == 2  # ceil(1.1): progress


def test_scale_up_select_max_min_disabled() -> None:
    both = (pct(100, 15), pods(4, 15))
    assert scale_up_limit(10, 0.0, (), ScalingRules(0.0, both, SelectPolicy.MAX)) == 20
    assert scale_up_limit(10, 0.0, (), ScalingRules(0.0, both, SelectPolicy.MIN)) == 14
    assert scale_up_limit(10, 0.0, (), ScalingRules(0.0, both, SelectPolicy.DISABLED)) == 10
    # at 2 replicas the Pods policy allows more than the Percent one
    assert scale_up_limit(2, 0.0, (), ScalingRules(0.0, both, SelectPolicy.MAX)) == 6


def test_scale_down_events_raise_the_period_start_for_scale_up() -> None:
    rules = ScalingRules(0.0, (pods(2, 60),))
    # 5 removed in the period: the period started at 10 + 5 = 15 -> 17
    assert scale_up_limit(10, 100.0, (ScaleEvent(90.0, -5),), rules) == 17


# ---- rate policies: scale down -----------------------------------------------------------

def test_scale_down_percent_truncates() -> None:
    rules = ScalingRules(0.0, (pct(10, 60),))
    assert scale_down_limit(15, 0.0, (), rules) == 13  # int(13.5)
    assert scale_down_limit(100, 0.0, (), ScalingRules(0.0, (pct(100, 15),))) == 0


def test_scale_down_pods_with_history() -> None:
    rules = ScalingRules(0.0, (pods(4, 60),))
    # 3 removed 10 s ago: the period started at 13 -> 9
    assert scale_down_limit(10, 100.0, (ScaleEvent(90.0, -3),), rules) == 9


def test_scale_down_select_max_min_disabled() -> None:
    both = (pct(10, 60), pods(5, 60))
    assert scale_down_limit(100, 0.0, (), ScalingRules(0.0, both, SelectPolicy.MAX)) == 90  # largest change
    assert scale_down_limit(100, 0.0, (), ScalingRules(0.0, both, SelectPolicy.MIN)) == 95  # smallest change
    assert scale_down_limit(100, 0.0, (), ScalingRules(0.0, both, SelectPolicy.DISABLED)) == 100


def test_rate_limit_clamps_both_directions_and_never_reverses() -> None:
    b = Behavior(scale_up=ScalingRules(0.0, (pods(4, 60),)), scale_down=ScalingRules(0.0, (pods(1, 60),)))
    assert apply_rate_policies(30, 10, 0.0, (), b) == 14
    assert apply_rate_policies(2, 10, 0.0, (), b) == 9
    # budget spent (4 added 10 s ago, and more since): hold at current, never go down
    spent = (ScaleEvent(50.0, 4), ScaleEvent(55.0, 4))
    assert apply_rate_policies(30, 18, 60.0, spent, b) == 18
    assert apply_rate_policies(10, 10, 60.0, spent, b) == 10


def test_empty_policies_mean_unlimited() -> None:
    b = Behavior(scale_up=ScalingRules(0.0), scale_down=ScalingRules(0.0))
    assert apply_rate_policies(1000, 1, 0.0, (), b) == 1000
    assert apply_rate_policies(1, 1000, 0.0, (), b) == 1


# ---- the composed policy, over time (fake clock) ------------------------------------------

def _snapshot(clock: FakeClock, current: int, cpu: float) -> Snapshot:
    from voxmesh.autoscale.snapshot import MetricKind

    return Snapshot(clock(), "d", current, current, 0, (MetricSample(Metric.CPU_UTILIZATION, cpu, MetricKind.AVERAGE),))


def test_hpa_defaults_over_time_scale_down_waits_300_s() -> None:
    spec = ScalingSpec(min_replicas=1, max_replicas=100, target_cpu_utilization=0.7)
    clock = FakeClock(1000.0)
    state = PolicyState()
    current = 10
    # busy: 10 x 70 % -> within tolerance
    d, state = decide(_snapshot(clock, current, 0.7), spec, state)
    assert d.desired_replicas == 10 and d.reason is Reason.WITHIN_TOLERANCE
    # load drops to 14 %: raw desired 2, but the 300 s window holds 10
    for _ in range(19):
        clock.advance(15.0)
        d, state = decide(_snapshot(clock, current, 0.14), spec, state)
        assert d.desired_replicas == 10 and d.reason is Reason.STABILIZED
    clock.advance(15.0)  # t = 1300: the 10 recommendation from t=1000 is now exactly 300 s old
    d, state = decide(_snapshot(clock, current, 0.14), spec, state)
    assert d.desired_replicas == 2 and d.reason is Reason.METRICS


def test_hpa_defaults_over_time_scale_up_doubles_per_15_s() -> None:
    spec = ScalingSpec(min_replicas=1, max_replicas=1000, target_cpu_utilization=0.1,
                       behavior=Behavior(HPA_DEFAULT_SCALE_UP, HPA_DEFAULT_SCALE_DOWN))
    clock = FakeClock(0.0)
    state = PolicyState()
    current = 10
    seen = []
    for _ in range(3):
        d, state = decide(_snapshot(clock, current, 1.0), spec, state)  # raw wants 100
        seen.append((d.desired_replicas, d.reason))
        current = d.desired_replicas
        clock.advance(15.0)
    assert seen == [(20, Reason.RATE_LIMITED), (40, Reason.RATE_LIMITED), (80, Reason.RATE_LIMITED)]
    # within one period a second decision cannot add more
    d, _ = decide(_snapshot(FakeClock(31.0), 80, 1.0), spec, state)
    assert d.desired_replicas == 80
