"""The three HPA controller rules beyond ``behavior``, with a fake clock.

References: k8s.io/kubernetes pkg/controller/podautoscaler/replica_calculator.go
(GetResourceReplicas: unready pods at zero on scale-up, no scaling if the direction flips) and
horizontal.go (a fresh recommendation list starts with the current replicas;
computeReplicasForMetrics: an invalid metric blocks a scale-down).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from voxmesh.autoscale.policy import Reason, decide
from voxmesh.autoscale.snapshot import (
    Behavior,
    Metric,
    MetricKind,
    MetricSample,
    PolicyState,
    ScalingRules,
    ScalingSpec,
    Snapshot,
)
from voxmesh.autoscale.steps import desired_for_average, seed_recommendations
from voxmesh.clock import FakeClock

CPU_SPEC = ScalingSpec(min_replicas=1, max_replicas=50, target_cpu_utilization=0.5)


def cpu(value: float) -> MetricSample:
    return MetricSample(Metric.CPU_UTILIZATION, value, MetricKind.AVERAGE)


def inflight(value: float) -> MetricSample:
    return MetricSample(Metric.IN_FLIGHT, value, MetricKind.TOTAL)


# ---- (1) unready replicas count at zero on a scale-up -----------------------------------

def test_scale_up_that_flips_with_unready_at_zero_does_not_scale() -> None:
    # 2 ready at 80 % of a 50 % target (ratio 1.6: up); 4 current, 2 still booting.
    # Recomputed: 2 * 0.8 / (4 * 0.5) = 0.8 -> outside tolerance and below 1: the direction
    # flips, so nothing moves.
    p = desired_for_average(cpu(0.8), 0.5, current=4, ready=2, tolerance=0.1)
    assert p.held_by_unready and p.desired == 4
    clock = FakeClock(100.0)
    d, _ = decide(Snapshot(clock(), "d", 4, 2, metrics=(cpu(0.8),)), CPU_SPEC, PolicyState(started=True))
    assert d.desired_replicas == 4 and d.reason is Reason.UNREADY


def test_old_rule_would_have_scaled_down_here() -> None:
    # 2 ready at 80 % (ratio 1.6: up), 5 current: recomputed 2*0.8/(5*0.5) = 0.64 < 1.
    # Counting unready at zero for both directions would ask ceil(3.2) = 4 < 5 (a scale-down
    # while ready replicas are overloaded); the HPA holds at 5.
    d, _ = decide(Snapshot(0.0, "d", 5, 2, metrics=(cpu(0.8),)), CPU_SPEC, PolicyState(started=True))
    assert d.desired_replicas == 5 and d.reason is Reason.UNREADY


def test_scale_up_that_survives_the_recompute_uses_it() -> None:
    # 3 ready at 100 %, 4 current: recomputed 3 * 1.0 / (4 * 0.5) = 1.5 -> ceil(1.5 * 4) = 6
    p = desired_for_average(cpu(1.0), 0.5, current=4, ready=3, tolerance=0.1)
    assert not p.held_by_unready and p.desired == 6 and p.ratio == 1.5
    d, _ = decide(Snapshot(0.0, "d", 4, 3, metrics=(cpu(1.0),)), CPU_SPEC, PolicyState(started=True))
    assert d.desired_replicas == 6


def test_scale_down_ignores_unready_replicas() -> None:
    # 2 ready at 10 % of 50 %: usage 0.2 -> ceil(0.2 * 2) = 1 whatever is still booting
    p = desired_for_average(cpu(0.1), 0.5, current=6, ready=2, tolerance=0.1)
    assert p.desired == 1 and not p.held_by_unready


def test_tolerance_is_checked_on_the_ready_usage_first() -> None:
    # usage 0.52/0.5 = 1.04 within 10 %: keep current even with unready replicas
    p = desired_for_average(cpu(0.52), 0.5, current=9, ready=3, tolerance=0.1)
    assert p.within_tolerance and p.desired == 9


def test_total_metrics_ignore_readiness() -> None:
    spec = ScalingSpec(min_replicas=1, max_replicas=50, target_in_flight_per_replica=2.0)
    d, _ = decide(Snapshot(0.0, "d", 4, 1, metrics=(inflight(16),)), spec, PolicyState(started=True))
    assert d.desired_replicas == 8


# ---- (2) a (re)started controller seeds its history with current ---------------------------

def test_seed_only_before_the_first_decision() -> None:
    assert seed_recommendations((), 5.0, 7, started=False)[0].replicas == 7
    assert seed_recommendations((), 5.0, 7, started=True) == ()


def test_scale_down_after_restart_waits_a_whole_window() -> None:
    spec = ScalingSpec(min_replicas=1, max_replicas=50, target_cpu_utilization=0.5,
                       behavior=Behavior(scale_up=ScalingRules(0.0), scale_down=ScalingRules(120.0)))
    clock = FakeClock(5000.0)
    state = PolicyState()  # the controller just (re)started
    seen = []
    while clock() <= 5000.0 + 120.0:
        d, state = decide(Snapshot(clock(), "d", 8, 8, metrics=(cpu(0.05),)), spec, state)
        seen.append((clock() - 5000.0, d.desired_replicas, d.reason))
        clock.advance(10.0)
    # raw wants 1 from the very first decision, but the seeded 8 holds for 120 s
    assert all(n == 8 and r is Reason.STABILIZED for t, n, r in seen if t < 120.0)
    assert seen[-1] == (120.0, 1, Reason.METRICS)
    assert state.started


def test_a_warm_state_scales_down_at_once_with_the_same_inputs() -> None:
    spec = ScalingSpec(min_replicas=1, max_replicas=50, target_cpu_utilization=0.5,
                       behavior=Behavior(scale_up=ScalingRules(0.0), scale_down=ScalingRules(120.0)))
    d, _ = decide(Snapshot(0.0, "d", 8, 8, metrics=(cpu(0.05),)), spec, PolicyState(started=True))
    assert d.desired_replicas == 1


def test_restart_does_not_delay_a_scale_up() -> None:
    d, state = decide(Snapshot(0.0, "d", 2, 2, metrics=(cpu(1.0),)), CPU_SPEC, PolicyState())
    assert d.desired_replicas == 4 and state.recommendations[0].replicas == 2


# ---- (3) an unreadable metric blocks a scale-down -----------------------------------------

BOTH = ScalingSpec(min_replicas=1, max_replicas=50, target_in_flight_per_replica=1.0, target_cpu_utilization=0.5,
                   behavior=Behavior(scale_up=ScalingRules(0.0), scale_down=ScalingRules(0.0)))


def test_missing_metric_blocks_scale_down_and_records_nothing() -> None:
    clock = FakeClock(10.0)
    state = PolicyState(started=True)
    snap = Snapshot(clock(), "d", 6, 6, metrics=(inflight(1),), missing_metrics=(Metric.CPU_UTILIZATION,))
    d, after = decide(snap, BOTH, state)
    assert d.desired_replicas == 6 and d.reason is Reason.METRICS_MISSING and d.raw == 1
    assert "cpu_utilization unreadable" in d.message
    assert after.recommendations == state.recommendations and after.scale_events == ()
    clock.advance(15.0)  # the metric is back: the scale-down happens
    d, _ = decide(Snapshot(clock(), "d", 6, 6, metrics=(inflight(1), cpu(0.05))), BOTH, after)
    assert d.desired_replicas == 1


def test_missing_metric_still_allows_a_scale_up() -> None:
    snap = Snapshot(0.0, "d", 2, 2, metrics=(inflight(9),), missing_metrics=(Metric.CPU_UTILIZATION,))
    d, _ = decide(snap, BOTH, PolicyState(started=True))
    assert d.desired_replicas == 9


def test_all_metrics_missing_keeps_current() -> None:
    snap = Snapshot(0.0, "d", 3, 3, missing_metrics=(Metric.CPU_UTILIZATION, Metric.IN_FLIGHT))
    d, _ = decide(snap, BOTH, PolicyState(started=True))
    assert d.desired_replicas == 3 and d.reason is Reason.METRICS_MISSING


def test_unconfigured_missing_metric_is_ignored() -> None:
    spec = ScalingSpec(min_replicas=1, max_replicas=50, target_in_flight_per_replica=1.0,
                       behavior=Behavior(scale_up=ScalingRules(0.0), scale_down=ScalingRules(0.0)))
    snap = Snapshot(0.0, "d", 6, 6, metrics=(inflight(1),), missing_metrics=(Metric.CPU_UTILIZATION,))
    d, _ = decide(snap, spec, PolicyState(started=True))
    assert d.desired_replicas == 1


def test_missing_metric_blocks_scale_to_zero() -> None:
    spec = ScalingSpec(min_replicas=0, max_replicas=5, scale_to_zero=True, target_in_flight_per_replica=1.0,
                       scale_to_zero_cooldown_s=30.0,
                       behavior=Behavior(scale_up=ScalingRules(0.0), scale_down=ScalingRules(0.0)))
    state = PolicyState(started=True, last_active_at=0.0)
    snap = Snapshot(100.0, "d", 1, 1, metrics=(inflight(0),), missing_metrics=(Metric.IN_FLIGHT,))
    d, _ = decide(snap, spec, state)
    assert d.desired_replicas == 1
    d, _ = decide(Snapshot(100.0, "d", 1, 1, metrics=(inflight(0),)), spec, state)
    assert d.desired_replicas == 0 and d.reason is Reason.SCALED_TO_ZERO


# ---- the loop fills readiness and missing metrics ------------------------------------------

@dataclass
class _Rep:
    proc: Any = None


@dataclass
class _Supervisor:
    serving_reps: list[_Rep]
    scraped: list[dict[str, float]]
    desired: dict[str, int] = field(default_factory=dict)
    scaled: list[int] = field(default_factory=list)

    def serving(self, name: str) -> list[_Rep]:
        return self.serving_reps

    def warm(self, name: str) -> list[_Rep]:
        return []

    async def scrape_all(self, name: str) -> list[dict[str, float]]:
        return self.scraped

    def scale(self, name: str, desired: int, reason: str = "") -> None:
        self.scaled.append(desired)


def _loop(sup: _Supervisor) -> Any:
    from voxmesh.deployments import Deployment
    from voxmesh.stack.autoscale import AutoscaleLoop

    dep = Deployment.model_validate({
        "name": "d", "engine": "piper", "replicas": {"min": 1, "max": 8},
        "scaling": {"in_flight_per_replica": 1, "scale_down_window_s": 0},
    })
    loop = AutoscaleLoop(sup, [dep], clock=FakeClock(50.0))
    return loop, dep


def test_loop_counts_booting_replicas_as_current_and_a_failed_scrape_as_missing() -> None:
    sup = _Supervisor([_Rep(), _Rep()], [{"voxmesh_worker_in_flight": 0.0}], desired={"d": 4})
    loop, dep = _loop(sup)
    loop.states["d"] = PolicyState(started=True)
    asyncio.run(loop.tick(dep))
    d = loop.last["d"]
    assert (d.current_replicas, d.ready_replicas) == (4, 2)
    assert d.reason is Reason.METRICS_MISSING and sup.scaled == []
    sup.scraped = [{"voxmesh_worker_in_flight": 0.0}, {"voxmesh_worker_in_flight": 0.0}]
    asyncio.run(loop.tick(dep))
    assert sup.scaled == [1]
