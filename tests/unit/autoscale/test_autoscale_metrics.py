from __future__ import annotations

import voxmesh.autoscale as autoscale
from voxmesh.autoscale.lifecycle import ReplicaState
from voxmesh.autoscale.metrics import counts_from_states, decision_metrics, export, replicas_by_state
from voxmesh.autoscale.policy import Decision, ReplicaCounts, decide
from voxmesh.autoscale.snapshot import (
    Behavior,
    Metric,
    MetricSample,
    PolicyState,
    ScalingRules,
    ScalingSpec,
    Snapshot,
)
from voxmesh.observability.metrics import Registry

S = ReplicaState
SPEC = ScalingSpec(max_replicas=10, target_in_flight_per_replica=2.0,
                   behavior=Behavior(ScalingRules(0.0), ScalingRules(0.0)))


def _decision(value: float = 9.0) -> Decision:
    snap = Snapshot(5.0, "tts-en", 2, 2, 1, (MetricSample(Metric.IN_FLIGHT, value),))
    return decide(snap, SPEC, PolicyState())[0]


def test_replicas_by_state_lists_every_state() -> None:
    counts = replicas_by_state([S.SERVING, S.SERVING, S.WARM, S.LOADING])
    assert counts[S.SERVING] == 2 and counts[S.CRASHED] == 0 and len(counts) == len(ReplicaState)


def test_counts_from_states_for_the_plan() -> None:
    states = [S.SERVING, S.SERVING, S.WARM, S.STARTING, S.LOADING, S.DRAINING, S.STOPPED, S.CRASHED]
    assert counts_from_states(states) == ReplicaCounts(serving=2, promoting=0, warm=1, booting=2, draining=1)


def test_decision_metrics_view() -> None:
    d = _decision()
    values = {(m.name, m.labels): (m.value, m.kind) for m in decision_metrics(d, replicas_by_state([S.SERVING]))}
    dep = ("deployment", "tts-en")
    assert values[("voxmesh_autoscaler_desired_replicas", (dep,))] == (5.0, "gauge")
    assert values[("voxmesh_autoscaler_decisions_total", (dep, ("reason", "metrics")))] == (1.0, "counter_inc")
    assert values[("voxmesh_autoscaler_metric_value", (dep, ("metric", "in_flight")))] == (9.0, "gauge")
    assert values[("voxmesh_autoscaler_metric_target", (dep, ("metric", "in_flight")))] == (2.0, "gauge")
    assert values[("voxmesh_replicas", (dep, ("state", "serving")))] == (1.0, "gauge")
    assert values[("voxmesh_replicas", (dep, ("state", "warm")))] == (0.0, "gauge")


def test_export_to_registry_counts_decisions_by_reason() -> None:
    reg = Registry()
    export(reg, _decision(9.0), replicas_by_state([S.SERVING, S.SERVING]))
    export(reg, _decision(4.0), replicas_by_state([S.SERVING, S.SERVING]))  # within tolerance
    export(reg, _decision(9.0))
    text = reg.render()
    assert 'voxmesh_autoscaler_decisions_total{deployment="tts-en",reason="metrics"} 2' in text
    assert 'voxmesh_autoscaler_decisions_total{deployment="tts-en",reason="within_tolerance"} 1' in text
    assert 'voxmesh_replicas{deployment="tts-en",state="serving"} 2' in text
    assert 'voxmesh_autoscaler_desired_replicas{deployment="tts-en"} 5' in text


def test_public_surface() -> None:
    assert sorted(autoscale.__all__) == sorted([
        "Behavior", "Decision", "IllegalTransition", "Metric", "MetricKind", "MetricSample", "PolicyState",
        "PolicyType", "RatePolicy", "Reason", "ReplicaCounts", "ReplicaPlan", "ReplicaState", "RestartBackoff",
        "ScalingRules", "ScalingSpec", "SelectPolicy", "Snapshot", "decide", "decision_metrics", "plan_replicas",
        "spec_from_deployment", "transition",
    ])
    for name in autoscale.__all__:
        assert getattr(autoscale, name) is not None
