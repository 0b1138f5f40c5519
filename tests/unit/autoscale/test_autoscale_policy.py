"""decide() as a whole, its invariants (hypothesis), and the warm-pool plan."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from voxmesh.autoscale.policy import Decision, Reason, ReplicaCounts, ReplicaPlan, decide, plan_replicas
from voxmesh.autoscale.snapshot import (
    Behavior,
    Metric,
    MetricKind,
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

FAST = Behavior(scale_up=ScalingRules(0.0), scale_down=ScalingRules(0.0))


def inflight(now: float, current: int, value: float, ready: int | None = None) -> Snapshot:
    return Snapshot(now, "tts-en", current, current if ready is None else ready, 0,
                    (MetricSample(Metric.IN_FLIGHT, value),))


def test_decide_scales_on_in_flight_and_records_history() -> None:
    spec = ScalingSpec(min_replicas=1, max_replicas=50, target_in_flight_per_replica=2.0, behavior=FAST)
    state = PolicyState()
    d, new = decide(inflight(10.0, 2, 13.0), spec, state)
    assert d.desired_replicas == 7 and d.reason is Reason.METRICS and d.change == 5
    assert d.raw == 7 and d.stabilized == 7 and d.rate_limited == 7 and d.bounded == 7
    assert "in_flight=13 target=2 ratio=3.25 -> 7" in d.message
    assert new.recommendations == (Recommendation(10.0, 7),)
    assert new.scale_events == ()  # FAST has no policies: nothing to remember for rates
    assert new.last_decision is d
    assert state == PolicyState()


def test_decide_reasons_for_bounds() -> None:
    spec = ScalingSpec(min_replicas=3, max_replicas=5, target_in_flight_per_replica=1.0, behavior=FAST)
    assert decide(inflight(0, 4, 100.0), spec, PolicyState())[0].reason is Reason.MAX_BOUND
    assert decide(inflight(0, 4, 0.0), spec, PolicyState())[0].reason is Reason.MIN_BOUND
    assert decide(Snapshot(0, "d", 4, 4), spec, PolicyState())[0].reason is Reason.NO_METRICS


def test_decide_several_metrics_highest_wins_and_says_so() -> None:
    spec = ScalingSpec(max_replicas=100, target_in_flight_per_replica=1.0, target_qps_per_replica=5.0,
                       behavior=FAST)
    snap = Snapshot(0, "d", 2, 2, 0, (MetricSample(Metric.IN_FLIGHT, 3.0), MetricSample(Metric.QPS, 40.0)))
    d, _ = decide(snap, spec, PolicyState())
    assert d.desired_replicas == 8
    assert "highest: qps" in d.message
    fields = d.log_fields()
    assert fields["qps_desired"] == 8 and fields["in_flight_desired"] == 3 and fields["reason"] == "metrics"


def test_decide_scale_to_zero_cycle() -> None:
    spec = ScalingSpec(min_replicas=0, max_replicas=4, scale_to_zero=True, target_in_flight_per_replica=1.0,
                       activation_threshold=0.0, scale_to_zero_cooldown_s=60.0, behavior=FAST)
    state = PolicyState()
    d, state = decide(inflight(0.0, 0, 0.0), spec, state)
    assert (d.desired_replicas, d.reason) == (0, Reason.IDLE_AT_ZERO)
    d, state = decide(inflight(1.0, 0, 3.0), spec, state)  # a request is held at the gateway
    assert (d.desired_replicas, d.reason) == (1, Reason.ACTIVATED)
    d, state = decide(inflight(2.0, 1, 3.0), spec, state)
    assert (d.desired_replicas, d.reason) == (3, Reason.METRICS)
    d, state = decide(inflight(30.0, 3, 0.0), spec, state)
    assert (d.desired_replicas, d.reason) == (1, Reason.MIN_BOUND)  # floor is 1 while cooling down
    d, state = decide(inflight(62.0, 1, 0.0), spec, state)
    assert (d.desired_replicas, d.reason) == (0, Reason.SCALED_TO_ZERO)


def test_hpa_style_preset_is_rate_limited_on_a_spike() -> None:
    spec = ScalingSpec(max_replicas=1000, target_in_flight_per_replica=1.0)  # HPA default behavior
    d, _ = decide(inflight(0.0, 10, 500.0), spec, PolicyState())
    assert (d.desired_replicas, d.reason) == (20, Reason.RATE_LIMITED)


# ---- invariants ---------------------------------------------------------------------------

policies = st.builds(
    RatePolicy,
    st.sampled_from(list(PolicyType)),
    st.integers(1, 200),
    st.floats(1.0, 120.0),
)
rules = st.builds(
    ScalingRules,
    st.floats(0.0, 600.0),
    st.lists(policies, max_size=3).map(tuple),
    st.sampled_from(list(SelectPolicy)),
)


@st.composite
def specs(draw: st.DrawFn) -> ScalingSpec:
    to_zero = draw(st.booleans())
    low = draw(st.integers(0 if to_zero else 1, 20))
    high = draw(st.integers(max(low, 1), 2000))
    targets = draw(st.fixed_dictionaries({
        "target_in_flight_per_replica": st.none() | st.floats(0.1, 10.0),
        "target_qps_per_replica": st.none() | st.floats(0.1, 50.0),
        "target_cpu_utilization": st.none() | st.floats(0.1, 1.0),
        "target_queue_per_replica": st.none() | st.floats(0.1, 50.0),
    }))
    return ScalingSpec(
        min_replicas=low, max_replicas=high, warm_pool_size=draw(st.integers(0, 10)),
        tolerance=draw(st.floats(0.0, 0.5)), behavior=Behavior(draw(rules), draw(rules)),
        scale_to_zero=to_zero, activation_threshold=draw(st.floats(0.0, 5.0)),
        scale_to_zero_cooldown_s=draw(st.floats(0.0, 600.0)), **targets,
    )


samples = st.lists(
    st.builds(
        MetricSample,
        st.sampled_from(list(Metric)),
        st.floats(0.0, 1e5, allow_nan=False),
        st.sampled_from(list(MetricKind)),
    ),
    max_size=4,
).map(tuple)


@st.composite
def histories(draw: st.DrawFn, now: float) -> PolicyState:
    recs = draw(st.lists(st.builds(Recommendation, st.floats(now - 900, now), st.integers(0, 3000)), max_size=6))
    events = draw(st.lists(st.builds(ScaleEvent, st.floats(now - 200, now), st.integers(-500, 500)), max_size=6))
    last = draw(st.none() | st.floats(now - 900, now))
    return PolicyState(tuple(recs), tuple(events), last)


@settings(max_examples=60, deadline=None)
@given(spec=specs(), current=st.integers(0, 3000), ready=st.integers(0, 3000), metrics=samples, data=st.data())
def test_decision_within_bounds_and_state_untouched(
    spec: ScalingSpec, current: int, ready: int, metrics: tuple[MetricSample, ...], data: st.DataObject
) -> None:
    now = 10_000.0
    state = data.draw(histories(now))
    before = copy.deepcopy(state)
    snap = Snapshot(now, "d", current, min(ready, current), 0, metrics)
    decision, new_state = decide(snap, spec, state)
    assert spec.min_replicas <= decision.desired_replicas <= spec.max_replicas
    if decision.desired_replicas == 0:
        assert spec.scale_to_zero
    assert state == before  # the given state is never mutated (frozen, and not replaced inside)
    assert new_state is not state
    assert isinstance(new_state.last_decision, Decision)
    # same inputs, same answer
    again, again_state = decide(snap, spec, state)
    assert again == decision and again_state == new_state


# ---- warm pool plan -----------------------------------------------------------------------

def test_plan_promotes_warm_before_cold_starting() -> None:
    plan = plan_replicas(8, ReplicaCounts(serving=5, warm=2), warm_pool_size=2, max_replicas=20)
    # 3 short: promote 2, cold-start 1 for serving + 2 to refill the pool
    assert plan == ReplicaPlan(promote=2, start=3)


def test_plan_counts_booting_toward_the_deficit_then_the_pool() -> None:
    plan = plan_replicas(8, ReplicaCounts(serving=5, warm=0, booting=4), warm_pool_size=2, max_replicas=20)
    assert plan == ReplicaPlan(start=1)  # 3 short + 2 pool = 5 wanted booting, 4 already are


def test_plan_cancels_unneeded_boots() -> None:
    plan = plan_replicas(5, ReplicaCounts(serving=5, warm=1, booting=4), warm_pool_size=2, max_replicas=20)
    assert plan == ReplicaPlan(cancel_booting=3)


def test_plan_scale_down_refills_pool_then_stops() -> None:
    plan = plan_replicas(3, ReplicaCounts(serving=8, warm=1), warm_pool_size=2, max_replicas=20)
    assert plan == ReplicaPlan(drain=5, drain_to_warm=1)


def test_plan_stops_surplus_warm_and_empties_pool_at_max() -> None:
    assert plan_replicas(3, ReplicaCounts(serving=3, warm=5), 2, 20) == ReplicaPlan(stop_warm=3)
    assert plan_replicas(20, ReplicaCounts(serving=20, warm=2), 2, 20) == ReplicaPlan(stop_warm=2)
    # one below max: the pool shrinks to one
    assert plan_replicas(19, ReplicaCounts(serving=19, warm=2), 2, 20) == ReplicaPlan(stop_warm=1)


def test_plan_steady_state_is_a_no_op() -> None:
    assert plan_replicas(4, ReplicaCounts(serving=3, promoting=1, warm=2), 2, 20) == ReplicaPlan()


@settings(max_examples=100, deadline=None)
@given(
    desired=st.integers(0, 200), serving=st.integers(0, 200), promoting=st.integers(0, 5), warm=st.integers(0, 20),
    booting=st.integers(0, 50), pool=st.integers(0, 10), extra=st.integers(0, 50),
)
def test_plan_converges(desired: int, serving: int, promoting: int, warm: int, booting: int, pool: int,
                        extra: int) -> None:
    """Apply the plan, let every boot finish (promoted while short, else warm): targets met."""
    max_replicas = max(desired + extra, 1)
    p = plan_replicas(desired, ReplicaCounts(serving, promoting, warm, booting), pool, max_replicas)
    assert p.promote <= warm and p.drain <= serving and p.drain_to_warm <= p.drain
    assert p.start == 0 or p.cancel_booting == 0
    active = serving + promoting + p.promote - p.drain
    booted = booting + p.start - p.cancel_booting
    to_serving = min(booted, max(desired - active, 0))
    warm_final = warm - p.promote + p.drain_to_warm - p.stop_warm + booted - to_serving
    pool_target = max(0, min(pool, max_replicas - desired))
    if promoting <= desired:  # a promotion in flight cannot be drained
        assert active + to_serving == desired
    assert warm_final == pool_target
